"""The kill switch: halt, cancel every open order, optionally flatten, and say what happened.

The engine is HALTED first, so no strategy, hotkey or API call can add an order while we
clean up; orders already on their way to the broker are waited for (``settle``) before the
order book is read, so none slips past the cancel round. Square-off orders go out through
``place`` (the order manager's risk-exempt door in the app, so they are journaled before they
are sent and get their own unique tags) as MARKET orders with automatic market protection and
``source="killswitch"``. Every call has its own timeout and the whole sequence has a time
budget measured on the event loop's clock, so the switch returns locally within a second even
when the broker hangs; whatever did not finish is listed as failed with its reason, never
silently dropped. Positions larger than the exchange freeze quantity are closed in slices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.brokers.ports import ExecutionClient
from services.clock import Clock, SystemClock
from services.domain import (
    AUTO_PROTECTION,
    Instrument,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from services.risk.checks import freeze_limit
from services.risk.engine import RiskEngine
from services.risk.state import AuditSink, TradingState

T = TypeVar("T")

KILLSWITCH_SOURCE = "killswitch"


@dataclass(frozen=True, slots=True)
class KillFailure:
    action: str  # "list_orders", "cancel", "list_positions", "close"
    target: str  # order id, position key/product, or "*"
    reason: str


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    key: str
    product: str
    quantity: int  # the signed position that was closed
    orders: tuple[Order, ...]  # the square-off orders as the broker acknowledged them


@dataclass(frozen=True, slots=True)
class KillReport:
    actor: str
    started_at: datetime
    elapsed_seconds: float
    state: TradingState
    cancelled: tuple[str, ...]
    closed: tuple[ClosedPosition, ...]
    failed: tuple[KillFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "cancelled": list(self.cancelled),
            "closed": [
                {
                    "key": c.key,
                    "product": c.product,
                    "quantity": c.quantity,
                    "orders": [o.order_id for o in c.orders],
                }
                for c in self.closed
            ],
            "failed": [
                {"action": f.action, "target": f.target, "reason": f.reason} for f in self.failed
            ],
        }


# The exchange-mandated protection for market orders, chosen by the broker.
MARKET_PROTECTION_AUTO = AUTO_PROTECTION


class _BudgetExhausted(Exception):
    pass


class KillSwitch:
    def __init__(
        self,
        broker: ExecutionClient,
        engine: RiskEngine,
        *,
        instruments: Callable[[str], Instrument | None] | None = None,
        audit: AuditSink | None = None,
        clock: Clock | None = None,
        call_timeout: float = 0.3,
        budget: float = 0.9,
        place: Callable[[OrderRequest], Awaitable[Order]] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.broker = broker
        self._place = place if place is not None else broker.place_order
        self._settle = settle
        self.engine = engine
        self._instruments = instruments
        self._audit = audit if audit is not None else engine.audit
        self._clock = clock if clock is not None else SystemClock()
        self.call_timeout = call_timeout
        self.budget = budget
        self._lock = asyncio.Lock()

    async def activate(
        self, square_off: bool, *, actor: str = "user", reason: str = "kill switch"
    ) -> KillReport:
        """Halt trading, cancel all open orders, optionally flatten; report what happened."""
        async with self._lock:  # a second press waits for the first, then runs again
            return await self._activate(square_off, actor, reason)

    async def resume(
        self, actor: str, reason: str, to: TradingState = TradingState.ACTIVE
    ) -> TradingState:
        """Lift the halt on a person's explicit, reasoned decision; return the state entered.

        Waits for a running activation first, so a resume can never land between the halt
        and the cancel round of a press still in progress. The engine refuses an empty actor
        or reason and lands in REDUCING while a loss limit is still crossed; both the risk
        engine's ``risk.resume`` and ``killswitch.resume`` go to the audit log.
        """
        async with self._lock:
            state = self.engine.resume(actor, reason, to)
            self._audit(
                "killswitch.resume",
                actor,
                {"reason": reason, "requested": to.value, "state": state.value},
            )
            return state

    async def _activate(self, square_off: bool, actor: str, reason: str) -> KillReport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.budget
        started_at = self._clock.now()
        if self.engine.state is not TradingState.HALTED:
            self.engine.halt(actor, f"kill switch: {reason}")
        self._audit("killswitch.activate", actor, {"square_off": square_off, "reason": reason})

        failed: list[KillFailure] = []
        if self._settle is not None:  # orders sent before the halt: wait for their acks
            try:
                await asyncio.wait_for(
                    self._settle(), max(0.0, min(self.call_timeout, deadline - loop.time()))
                )
            except TimeoutError:
                failed.append(KillFailure("settle", "*", "orders still in flight to the broker"))
        cancelled = await self._cancel_all(deadline, failed)
        closed: list[ClosedPosition] = []
        if square_off:
            closed = await self._square_off(deadline, failed)

        report = KillReport(
            actor=actor,
            started_at=started_at,
            elapsed_seconds=loop.time() - started,
            state=self.engine.state,
            cancelled=tuple(cancelled),
            closed=tuple(closed),
            failed=tuple(failed),
        )
        self._audit("killswitch.report", actor, report.summary())
        return report

    async def _call(self, deadline: float, call: Callable[[], Awaitable[T]]) -> T:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise _BudgetExhausted("kill switch time budget exhausted before the call")
        return await asyncio.wait_for(call(), min(self.call_timeout, remaining))

    async def _cancel_all(self, deadline: float, failed: list[KillFailure]) -> list[str]:
        try:
            orders = await self._call(deadline, self.broker.orders)
        except Exception as exc:
            failed.append(KillFailure("list_orders", "*", _describe(exc)))
            return []
        working = [o for o in orders if o.status.is_working]
        results = await asyncio.gather(
            *(self._call(deadline, _bind(self.broker.cancel_order, o.order_id)) for o in working),
            return_exceptions=True,
        )
        cancelled: list[str] = []
        for order, result in zip(working, results, strict=True):
            if isinstance(result, BaseException):
                failed.append(KillFailure("cancel", order.order_id, _describe(result)))
            else:
                cancelled.append(order.order_id)
        return cancelled

    async def _square_off(self, deadline: float, failed: list[KillFailure]) -> list[ClosedPosition]:
        try:
            positions = await self._call(deadline, self.broker.positions)
        except Exception as exc:
            failed.append(KillFailure("list_positions", "*", _describe(exc)))
            return []
        open_positions = [p for p in positions if p.quantity != 0]
        plans = [(p, self._slices(p)) for p in open_positions]
        flat = [
            self._call(deadline, _bind(self._place, request))
            for _, requests in plans
            for request in requests
        ]
        results = iter(await asyncio.gather(*flat, return_exceptions=True))
        closed: list[ClosedPosition] = []
        for pos, requests in plans:
            placed: list[Order] = []
            errors: list[str] = []
            for _ in requests:
                result = next(results)
                if isinstance(result, BaseException):
                    errors.append(_describe(result))
                else:
                    placed.append(result)
            target = f"{pos.key}/{pos.product}"
            if errors:
                done = sum(o.quantity for o in placed)
                failed.append(
                    KillFailure(
                        "close",
                        target,
                        f"{'; '.join(errors)} ({done} of {abs(pos.quantity)} sent)",
                    )
                )
            else:
                closed.append(ClosedPosition(pos.key, pos.product, pos.quantity, tuple(placed)))
        return closed

    def _slices(self, pos: Position) -> list[OrderRequest]:
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        remaining = abs(pos.quantity)
        chunk = remaining
        inst = self._instruments(pos.key) if self._instruments is not None else None
        if inst is not None:
            freeze = freeze_limit(inst, self.engine.limits.freeze_quantities)
            if freeze is not None:
                chunk = max(freeze - freeze % inst.lot_size, inst.lot_size)
        requests = []
        while remaining > 0:
            qty = min(chunk, remaining)
            requests.append(
                OrderRequest(
                    key=pos.key,
                    side=side,
                    quantity=qty,
                    order_type=OrderType.MARKET,
                    product=pos.product,
                    source=KILLSWITCH_SOURCE,
                    market_protection=MARKET_PROTECTION_AUTO,
                )
            )
            remaining -= qty
        return requests


def _bind(func: Callable[[Any], Awaitable[T]], arg: Any) -> Callable[[], Awaitable[T]]:
    return lambda: func(arg)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["KILLSWITCH_SOURCE", "ClosedPosition", "KillFailure", "KillReport", "KillSwitch"]
