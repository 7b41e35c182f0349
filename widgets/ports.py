"""The one surface widgets see of the running services.

Widgets type their dependency as this protocol instead of importing ``app``: the dependency
arrow stays ``services <- widgets <- app``, and a test or a headless tool can hand a view any
object with these methods. ``app.wiring.AppServices`` satisfies it structurally.
"""

from __future__ import annotations

from typing import Protocol

from services.broker import OrderChange
from services.bus import EventBus
from services.domain import Bar, Funds, Instrument, Order, OrderRequest, Position, Tick, Timeframe


class TerminalFacade(Protocol):
    @property
    def bus(self) -> EventBus: ...

    def search(self, text: str, limit: int = 20) -> list[Instrument]: ...

    def instrument(self, key: str) -> Instrument | None: ...

    def last_tick(self, key: str) -> Tick | None: ...

    def history(self, key: str, timeframe: Timeframe, count: int = ...) -> list[Bar]: ...

    async def submit_order(self, request: OrderRequest) -> Order: ...

    async def modify_order(self, order_id: str, change: OrderChange) -> Order: ...

    async def cancel_order(self, order_id: str) -> Order: ...

    def order_list(self) -> list[Order]: ...

    def position_list(self) -> list[Position]: ...

    def funds(self) -> Funds | None: ...
