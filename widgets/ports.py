"""The one surface widgets see of the running services.

Widgets type their dependency as this protocol instead of importing ``app``: the dependency
arrow stays ``services <- widgets <- app``, and a test or a headless tool can hand a view any
object with these methods. ``app.wiring.AppServices`` satisfies it structurally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from services.alerts import Alert, AlertCondition
from services.broker import OrderChange
from services.bus import EventBus
from services.domain import (
    Bar,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderRequest,
    Position,
    Tick,
    Timeframe,
)
from services.gtt import Gtt, LegChange
from services.options.chain import OptionChain
from services.options.pricing import Model
from services.risk import KillReport, RiskEngine


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

    def holding_list(self) -> list[Holding]: ...

    @property
    def risk(self) -> RiskEngine: ...

    async def kill(self, *, square_off: bool, actor: str = ...) -> KillReport: ...

    async def resume_node(self, reason: str) -> str | None:
        """Resume the order node too, when orders go through one and it is HALTED."""
        ...

    async def add_alert(
        self, key: str, condition: AlertCondition | str, level: Decimal, note: str = ""
    ) -> Alert: ...

    async def remove_alert(self, alert_id: int) -> bool: ...

    def alert_list(self) -> list[Alert]: ...

    # -- chart drawings, per symbol --
    def drawings(self, key: str) -> list[dict[str, Any]]: ...

    def save_drawings(self, key: str, drawings: list[dict[str, Any]]) -> None: ...

    # -- GTT orders (at the broker when it holds them, else the terminal's book) --
    def gtt_held_at(self) -> str | None: ...

    def gtt_offers_oco(self) -> bool: ...

    async def place_gtt_single(self, trigger: Decimal, order: OrderRequest) -> Gtt: ...

    async def place_gtt_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt: ...

    async def modify_gtt(self, gtt_id: int | str, changes: list[LegChange]) -> Gtt: ...

    async def cancel_gtt(self, gtt_id: int | str) -> Gtt: ...

    async def gtt_list(self) -> list[Gtt]: ...

    # -- options (the chain panel) --
    def option_underlyings(self) -> list[str]: ...

    def option_expiries(self, underlying: str) -> list[date]: ...

    def option_chain(self, underlying: str, expiry: date) -> OptionChain: ...

    def option_pricing(self) -> tuple[float, Model, float]: ...


class UnlockGate(Protocol):
    """What a locked view needs to let the trader back in, whatever guards the profile.

    ``unlock`` raises ``WrongKeyError`` or ``LockedOutError`` (both safe to show); it runs any
    slow work (Argon2, the keyring) off the event loop.
    """

    @property
    def needs_passphrase(self) -> bool: ...

    @property
    def description(self) -> str: ...

    def retry_after(self) -> float: ...

    async def unlock(self, passphrase: str) -> None: ...


@dataclass(frozen=True, slots=True)
class BrokerRow:
    """One registered live broker as the Broker menu shows it."""

    name: str  # the registry name (``dalal login NAME``)
    title: str
    session: str  # "valid", "expired", "not logged in", "not set up"
    connected: bool  # its feed is streaming
    in_use: bool  # the terminal's feed (and venue) right now


@runtime_checkable
class BrokerControls(Protocol):
    """The Broker menu's verbs: log in, connect and disconnect, per registered broker.

    ``broker_rows`` is instant (what is known now); ``refresh_brokers`` reads the stored
    sessions again off the loop. ``ask(label, secret)`` is how a login asks the trader for
    something typed (a TOTP code). Connect and disconnect answer with what they did.
    """

    def broker_rows(self) -> list[BrokerRow]: ...

    async def refresh_brokers(self) -> None: ...

    async def broker_login(
        self,
        open_browser: Callable[[str], object],
        name: str | None = None,
        ask: Callable[[str, bool], Awaitable[str]] | None = None,
    ) -> None: ...

    async def broker_connect(self, name: str) -> str: ...

    async def broker_disconnect(self, name: str) -> str: ...


@runtime_checkable
class VenueControls(Protocol):
    """Where orders go (the Broker menu's "Send orders to"): the terminal's own venue or the
    order node, switched without a restart.

    ``venues`` is (name, title, in use) per venue; ``switch_venue`` answers with what changed
    and raises with a message for the trader when it did not switch (an order in flight, the
    node unreachable).
    """

    def venues(self) -> list[tuple[str, str, bool]]: ...

    async def switch_venue(self, name: str) -> str: ...
