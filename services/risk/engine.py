"""The risk engine: the one gate every order passes before any broker sees it.

``RiskEngine`` is a ``PreTradeCheck`` for the order manager: calling it with an order request
and its instrument returns ``None`` or raises ``OrderRejected`` naming the rule. Rules run
cheapest first, and the duplicate window and the rate window only count orders that passed
every rule, because those are the orders that reach the exchange.

The checks are synchronous and answer from memory (see ``RiskContext``): the order path must
not wait on the network to be told no.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.broker import OrderRejected
from services.domain import Instrument, Order, OrderRequest
from services.risk import checks
from services.risk.context import RiskContext
from services.risk.limits import RiskLimits
from services.risk.state import (
    DAILY_LOSS,
    MAX_DRAWDOWN,
    AuditSink,
    StateStore,
    TradingState,
    TradingStateMachine,
)

log = logging.getLogger(__name__)


def _log_audit(kind: str, actor: str, details: Mapping[str, Any]) -> None:
    log.info("audit %s by %s: %s", kind, actor, dict(details))


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One line of the risk panel: the configured limit and how much of it is in use now.

    ``used`` is ``None`` for per-order limits, which have no running usage.
    """

    limit: Decimal | int | float | bool | None
    used: Decimal | int | None


class RiskEngine:
    def __init__(
        self,
        limits: RiskLimits,
        context: RiskContext,
        *,
        store: StateStore | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.limits = limits
        self.context = context
        self.audit: AuditSink = audit if audit is not None else _log_audit
        self._machine = TradingStateMachine(
            store=store,
            audit=self.audit,
            daily_loss_limit=limits.daily_loss_limit,
            max_drawdown=limits.max_drawdown,
        )
        self._duplicates = (
            checks.DuplicateWindow(limits.duplicate_window_seconds)
            if limits.duplicate_window_seconds is not None
            else None
        )
        self._rate = (
            checks.RateWindow(limits.max_orders_per_second)
            if limits.max_orders_per_second is not None
            else None
        )
        self._rejections: Counter[str] = Counter()
        self._accepted = 0

    # -- the check ---------------------------------------------------------------------------

    def __call__(self, request: OrderRequest, instrument: Instrument) -> None:
        """Raise ``OrderRejected`` if ``request`` breaks a rule; record it if it passes."""
        try:
            self._check(request, instrument)
        except OrderRejected as exc:
            self._rejections[exc.rule] += 1
            raise

    check = __call__

    def check_modify(self, request: OrderRequest, instrument: Instrument, original: Order) -> None:
        """Check ``original`` as modified into ``request``.

        A modification is not a new order: it does not add an open order and cannot be a
        duplicate of itself, and the broker re-blocks its margin; but it counts against the
        order rate (the exchange counts modifications) and must respect every per-order limit
        and the trading state, or a modify could move an order outside the price band.
        """
        try:
            self._check(request, instrument, modifying=original)
        except OrderRejected as exc:
            self._rejections[exc.rule] += 1
            raise

    def _check(
        self, request: OrderRequest, instrument: Instrument, *, modifying: Order | None = None
    ) -> None:
        ctx = self.context
        limits = self.limits
        state = self._machine.state
        if state is TradingState.HALTED:
            reason = self._machine.snapshot.reason
            raise checks.reject(
                checks.TRADING_STATE,
                f"trading is HALTED ({reason}); only cancels are allowed"
                if reason
                else "trading is HALTED; only cancels are allowed",
            )

        last_price = ctx.last_price(request.key)
        checks.check_well_formed(request, instrument, last_price)

        open_orders = ctx.open_orders()
        if modifying is not None:  # the order being modified is replaced, not added
            open_orders = [o for o in open_orders if o.order_id != modifying.order_id]
        reducible = -1  # computed lazily: only REDUCING and the margin check need it
        if state is TradingState.REDUCING:
            reducible = checks.reducible_quantity(request, ctx.positions(), open_orders)
            checks.check_reduce_only(request, reducible)

        checks.check_freeze_quantity(
            request, checks.freeze_limit(instrument, limits.freeze_quantities)
        )
        checks.check_max_quantity(request, limits.max_order_quantity)
        checks.check_price_band(request, instrument, last_price, limits)

        price = checks.order_price(request, last_price)
        checks.check_market_has_price(request, price)
        if price is not None:
            checks.check_max_value(price * request.quantity, limits.max_order_value)

        now = ctx.now()
        if modifying is not None:
            if self._rate is not None:
                self._rate.check(now)
                self._rate.record(now)
            return

        if limits.max_open_orders is not None:
            working = sum(1 for o in open_orders if o.status.is_working)
            checks.check_open_orders(working, limits.max_open_orders)

        if self._duplicates is not None:
            self._duplicates.check(request, now)
        if self._rate is not None:
            self._rate.check(now)

        if limits.check_margin and price is not None:
            if reducible < 0:
                reducible = checks.reducible_quantity(request, ctx.positions(), open_orders)
            if request.quantity > reducible:  # closing a position frees margin, never blocks it
                checks.check_margin(
                    ctx.required_margin(request, instrument, price), ctx.available_funds()
                )

        self._record(request, now)

    def _record(self, request: OrderRequest, now: datetime) -> None:
        if self._duplicates is not None:
            self._duplicates.record(request, now)
        if self._rate is not None:
            self._rate.record(now)
        self._accepted += 1

    # -- trading state -----------------------------------------------------------------------

    @property
    def state(self) -> TradingState:
        return self._machine.state

    @property
    def state_reason(self) -> str:
        return self._machine.snapshot.reason

    def set_state(self, state: TradingState, actor: str, reason: str) -> None:
        """ACTIVE <-> REDUCING, or -> HALTED. Leaving HALTED raises: use ``resume``."""
        self._machine.set_state(state, actor, reason, self.context.now())

    def halt(self, actor: str, reason: str) -> None:
        self._machine.halt(actor, reason, self.context.now())

    def resume(
        self, actor: str, reason: str, to: TradingState = TradingState.ACTIVE
    ) -> TradingState:
        return self._machine.resume(actor, reason, self.context.now(), to)

    def on_pnl(self, total_pnl: Decimal) -> TradingState:
        """Feed the day's P&L; the engine halts itself on the daily loss or drawdown limit."""
        return self._machine.on_pnl(total_pnl, self.context.now())

    def allows_cancel(self) -> bool:
        """Cancels are always allowed, in every state: they can only reduce risk."""
        return True

    # -- visibility --------------------------------------------------------------------------

    def rejections(self) -> dict[str, int]:
        """Rejections so far by rule (every rule listed, zeros included, for /metrics)."""
        return {rule: self._rejections.get(rule, 0) for rule in checks.ALL_RULES}

    @property
    def accepted(self) -> int:
        return self._accepted

    def usage(self) -> dict[str, LimitUsage]:
        limits = self.limits
        ctx = self.context
        now = ctx.now()
        working = sum(1 for o in ctx.open_orders() if o.status.is_working)
        machine = self._machine
        return {
            checks.MAX_OPEN_ORDERS: LimitUsage(limits.max_open_orders, working),
            checks.ORDER_RATE: LimitUsage(
                limits.max_orders_per_second,
                self._rate.count(now) if self._rate is not None else None,
            ),
            DAILY_LOSS: LimitUsage(limits.daily_loss_limit, machine.day_loss),
            MAX_DRAWDOWN: LimitUsage(limits.max_drawdown, machine.drawdown),
            checks.MAX_ORDER_VALUE: LimitUsage(limits.max_order_value, None),
            checks.MAX_ORDER_QUANTITY: LimitUsage(limits.max_order_quantity, None),
            checks.DUPLICATE_ORDER: LimitUsage(limits.duplicate_window_seconds, None),
            checks.MARGIN: LimitUsage(limits.check_margin, None),
            checks.PRICE_BAND: LimitUsage(limits.equity_price_band_percent, None),
        }

    def status(self) -> Mapping[str, Any]:
        """Everything a risk panel or ``/metrics`` shows, as plain data."""
        snap = self._machine.snapshot
        return {
            "state": snap.state.value,
            "reason": snap.reason,
            "changed_at": snap.changed_at,
            "changed_by": snap.changed_by,
            "limits": self.usage(),
            "rejections": self.rejections(),
            "accepted": self._accepted,
        }
