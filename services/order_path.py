"""The order path, composed once: the order manager, its risk engine and its admission gate
around an execution venue (the paper broker or a live one, its throttle inside the venue).

The live terminal (``app.wiring``) and the backtester (``services.backtest.engine``) both
build it here, so a backtest replays through the same checks in the same order as a live
session: the admission gate (trading HALTED, then the caller's own gate, such as the order
node's), then the pre-trade risk checks, then the journal (when one is given) and the
venue. Parity between the two is a test (``tests/backtest``), and this is what makes it
hold by construction rather than by keeping two copies alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from services.brokers.ports import ExecutionClient
from services.bus import EventBus
from services.clock import Clock
from services.instruments import InstrumentRegistry
from services.orders import OrderJournalPort, OrderManager, QuoteSource
from services.paper.margin import PaperMarginModel
from services.risk import AuditSink, RiskEngine, TradingState
from services.risk.context import CallbackContext
from services.risk.limits import RiskLimits
from services.risk.state import MemoryStateStore, StateStore

Admission = Callable[[], str | None]


@dataclass
class OrderPath:
    orders: OrderManager
    risk: RiskEngine


def build_order_path(
    venue: ExecutionClient,
    instruments: InstrumentRegistry,
    quotes: QuoteSource,
    bus: EventBus,
    clock: Clock,
    limits: RiskLimits,
    *,
    funds_until_known: Decimal | None,
    journal: OrderJournalPort | None = None,
    store: StateStore | None = None,
    audit: AuditSink | None = None,
    admission: Admission | None = None,
) -> OrderPath:
    """Compose the order path around ``venue``.

    ``funds_until_known`` is what the funds check uses before the venue has reported any
    funds: the opening balance of a paper account, ``None`` (no check yet) for a live
    broker whose funds arrive with the first reconciliation. ``admission`` is a further
    gate after the HALTED one (the order node's rate and session checks).
    """
    orders = OrderManager(venue, instruments, quotes, bus, clock, journal=journal)

    def available_funds() -> Decimal | None:
        funds = orders.funds()
        return funds.available_cash if funds is not None else funds_until_known

    context = CallbackContext(
        clock=clock,
        last_price_of=quotes.last_price,
        open_orders_of=orders.open_orders,
        positions_of=orders.positions,
        funds_of=available_funds,
        margin=PaperMarginModel(),
    )
    risk = RiskEngine(limits, context, store=store or MemoryStateStore(), audit=audit)

    def admit() -> str | None:
        if risk.state is TradingState.HALTED:
            return f"trading_state: trading is HALTED ({risk.state_reason}); the order was not sent"
        return admission() if admission is not None else None

    orders.admission = admit
    orders.checks.append(risk)
    return OrderPath(orders, risk)
