"""The terminal's vocabulary: immutable records and enums shared by every service.

Brokers, the simulator, storage and widgets all speak these types, so a broker adapter only
has to translate at its edge. Prices and money are ``Decimal`` and quantities are ``int`` so
that nothing in the order path is a binary float; times are timezone-aware (IST for display,
any zone for storage because aware datetimes compare correctly).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Self

ZERO = Decimal(0)
PAISA = Decimal("0.01")


class Exchange(enum.StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    MCX = "MCX"
    CDS = "CDS"


class InstrumentKind(enum.StrEnum):
    EQUITY = "EQ"
    INDEX = "INDEX"
    FUTURE = "FUT"
    CALL = "CE"
    PUT = "PE"


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the direction a fill moves the net position."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    SL_M = "SL-M"

    @property
    def needs_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.SL)

    @property
    def needs_trigger(self) -> bool:
        return self in (OrderType.SL, OrderType.SL_M)


class Product(enum.StrEnum):
    CNC = "CNC"  # cash and carry: delivery equity, full value paid
    MIS = "MIS"  # intraday, squared off by the broker before the close
    NRML = "NRML"  # overnight derivatives


class Validity(enum.StrEnum):
    DAY = "DAY"
    IOC = "IOC"
    TTL = "TTL"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"  # accepted by us, not yet acknowledged by the broker
    TRIGGER_PENDING = "TRIGGER_PENDING"  # SL / SL-M resting until its trigger is touched
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_working(self) -> bool:
        """True while the order can still fill, be modified or be cancelled."""
        return not self.is_terminal


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})

# The order state machine. A broker update that asks for any other move is a bug in an
# adapter or a reordered message, and the order manager refuses it instead of corrupting state.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.TRIGGER_PENDING,
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.TRIGGER_PENDING: frozenset(
        {
            OrderStatus.TRIGGER_PENDING,  # modify while resting
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.OPEN: frozenset(
        {
            OrderStatus.OPEN,  # modify
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


class InvalidTransition(Exception):
    """An order was asked to move between two states the state machine does not connect."""


class Timeframe(enum.StrEnum):
    S1 = "1s"  # history only (Breeze, Polygon serve it): never built live, never charted
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        return _TIMEFRAME_SECONDS[self]


_TIMEFRAME_SECONDS = {
    Timeframe.S1: 1,
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.M30: 1800,
    Timeframe.H1: 3600,
    Timeframe.D1: 86400,
}


# What the bar builder makes from ticks and a chart, a model or a backtest may ask for:
# every timeframe but 1-second bars, which would publish and record sixty bars for each
# one-minute bar of every watched instrument (1-second candles are fetched, not built).
LIVE_TIMEFRAMES: tuple[Timeframe, ...] = tuple(tf for tf in Timeframe if tf is not Timeframe.S1)


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Return ``price`` on the tick grid (banker's rounding), with the tick's exponent."""
    steps = (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return (steps * tick).quantize(tick)


def format_inr(amount: Decimal) -> str:
    """Format rupees the Indian way: ``₹12,50,000.00`` (lakh and crore grouping)."""
    value = amount.quantize(PAISA, rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    whole, _, paise = f"{abs(value):f}".partition(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join([*groups, tail])
    return f"{sign}₹{whole}.{paise or '00'}"


def is_on_tick(price: Decimal, tick: Decimal) -> bool:
    return price % tick == 0


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable (or index) contract, keyed ``EXCHANGE:SYMBOL`` everywhere in the terminal.

    ``token`` is the opaque id the listing source gave it (a Kite token, an Upstox
    instrument key...), kept for display and storage only: brokers map keys to their own
    ids through their ``InstrumentMaster``, never through this field.
    """

    exchange: Exchange
    tradingsymbol: str
    token: str
    name: str
    kind: InstrumentKind
    tick_size: Decimal
    lot_size: int
    expiry: date | None = None
    strike: Decimal | None = None
    underlying: str | None = None
    freeze_quantity: int | None = None

    @property
    def key(self) -> str:
        """Return the id used everywhere in the app, ``EXCHANGE:TRADINGSYMBOL``."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def tradable(self) -> bool:
        """Indices have prices but no order book."""
        return self.kind is not InstrumentKind.INDEX

    @property
    def is_derivative(self) -> bool:
        return self.kind in (InstrumentKind.FUTURE, InstrumentKind.CALL, InstrumentKind.PUT)


@dataclass(frozen=True, slots=True)
class DepthLevel:
    price: Decimal
    quantity: int
    orders: int


# One depth level as stored: the price's exact decimal text, the quantity, the orders.
LevelText = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Depth:
    """Five levels a side, best first (highest bid, lowest ask)."""

    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]

    @property
    def best_bid(self) -> DepthLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> DepthLevel | None:
        return self.asks[0] if self.asks else None

    def level_texts(self) -> tuple[list[LevelText], list[LevelText]]:
        """Bids and asks as (price text, quantity, orders): what the recorder stores.

        A book built on first read (the simulator's ``LazyDepth``) makes these from its own
        integers instead, without building the levels nobody else may ever read.
        """
        return (
            [(str(x.price), x.quantity, x.orders) for x in self.bids],
            [(str(x.price), x.quantity, x.orders) for x in self.asks],
        )


@dataclass(frozen=True, slots=True)
class Tick:
    key: str
    ts: datetime
    last_price: Decimal
    last_quantity: int
    volume: int  # cumulative for the day
    open: Decimal  # day open
    high: Decimal
    low: Decimal
    close: Decimal  # previous session's close, the base of change %
    depth: Depth | None = None
    oi: int = 0  # open interest of a future or option (units, not lots); 0 when not sent
    oi_close: int = 0  # previous session's open interest, the base of change in OI

    @property
    def change(self) -> Decimal:
        return self.last_price - self.close

    @property
    def change_percent(self) -> Decimal:
        if self.close == 0:
            return ZERO
        return (self.last_price - self.close) * 100 / self.close


@dataclass(frozen=True, slots=True)
class OptionGreeks:
    """An option's sensitivities as the exchange feed computes them (Upstox's
    ``option_greeks`` mode), beside the ``Tick`` of the same instant. Model outputs, not
    money: floats. ``iv`` is implied volatility as the broker sends it (a fraction, 0.14 for
    14 %). The option chain's own greeks come from ``services.options.pricing``."""

    key: str
    ts: datetime
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float
    iv: float
    oi: int = 0


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    timeframe: Timeframe
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    closed: bool = False  # False while the bar is still being built from live ticks


@dataclass(frozen=True, slots=True)
class MarketProtection:
    """The exchange-mandated protection of a market order: a percentage band or automatic.

    ``percent`` None is the broker's automatic protection (Kite sends -1, Upstox its own
    default); a percentage is above 0 and at most 100, and a broker may accept less
    (``BrokerLimits.market_protection``), which its adapter checks.
    """

    percent: Decimal | None = None

    def __post_init__(self) -> None:
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ValueError(
                f"market protection {self.percent}% must be above 0 and at most 100 "
                "(or automatic)"
            )

    @property
    def is_auto(self) -> bool:
        return self.percent is None

    def __str__(self) -> str:
        return "auto" if self.percent is None else f"{self.percent}%"


AUTO_PROTECTION = MarketProtection()


@dataclass(frozen=True, slots=True)
class OrderRequest:
    key: str
    side: Side
    quantity: int
    order_type: OrderType
    product: Product
    validity: Validity = Validity.DAY
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str | None = None  # our own correlation id, sent to the broker
    source: str = "manual"  # ticket, hotkey, api, model:<id>: shown in the audit log
    # An after-market order: queued by the broker until the next session opens.
    amo: bool = False
    # How far from the last price a MARKET or SL-M order may fill; None leaves it to the
    # broker's default (its automatic protection). Each adapter maps it to its own field.
    market_protection: MarketProtection | None = None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    request: OrderRequest
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime
    filled_quantity: int = 0
    average_price: Decimal = ZERO
    status_message: str = ""
    broker_order_id: str | None = None

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def quantity(self) -> int:
        return self.request.quantity

    @property
    def pending_quantity(self) -> int:
        if self.status.is_terminal:
            return 0
        return self.request.quantity - self.filled_quantity

    def evolve(self, status: OrderStatus, updated_at: datetime, **changes: object) -> Self:
        """Return a copy moved to ``status``; raise ``InvalidTransition`` for an illegal move."""
        if status not in ORDER_TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"order {self.order_id}: {self.status} -> {status} is not a legal transition"
            )
        return replace(self, status=status, updated_at=updated_at, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    order_id: str
    key: str
    side: Side
    product: Product
    quantity: int
    price: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class Position:
    """Net position per instrument and product.

    ``average_price`` is the cost of the open quantity; realised P&L is booked when a fill
    reduces the position, so the two together give the trader the P&L a broker would show.
    """

    key: str
    product: Product
    quantity: int = 0
    average_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    last_price: Decimal = ZERO
    buy_quantity: int = 0
    sell_quantity: int = 0
    multiplier: int = 1
    # Brokerage, taxes and fees paid on this position's fills (services/costs); P&L before
    # them is gross, after them net: a trader's real result is the net one.
    charges: Decimal = ZERO

    @property
    def unrealised_pnl(self) -> Decimal:
        if self.quantity == 0:
            return ZERO
        return (self.last_price - self.average_price) * self.quantity * self.multiplier

    @property
    def pnl(self) -> Decimal:
        """Gross P&L: realised plus unrealised, before charges."""
        return self.realised_pnl + self.unrealised_pnl

    @property
    def net_pnl(self) -> Decimal:
        return self.pnl - self.charges

    def apply_fill(self, side: Side, quantity: int, price: Decimal) -> Position:
        """Return the position after a fill, booking realised P&L on the closed part."""
        signed = side.sign * quantity
        qty, avg, realised = self.quantity, self.average_price, self.realised_pnl
        if qty == 0 or (qty > 0) == (signed > 0):
            new_qty = qty + signed
            avg = (avg * abs(qty) + price * quantity) / abs(new_qty)
            qty = new_qty
        else:
            closing = min(abs(signed), abs(qty))
            direction = 1 if qty > 0 else -1
            realised += (price - avg) * closing * direction * self.multiplier
            qty += signed
            if qty == 0:
                avg = ZERO
            elif (qty > 0) != (direction > 0):  # flipped through zero: the rest opens at price
                avg = price
        buys = self.buy_quantity + (quantity if side is Side.BUY else 0)
        sells = self.sell_quantity + (quantity if side is Side.SELL else 0)
        return replace(
            self,
            quantity=qty,
            average_price=avg,
            realised_pnl=realised,
            buy_quantity=buys,
            sell_quantity=sells,
            last_price=self.last_price if self.last_price else price,
        )


@dataclass(frozen=True, slots=True)
class Holding:
    key: str
    quantity: int
    average_price: Decimal
    last_price: Decimal = ZERO

    @property
    def pnl(self) -> Decimal:
        return (self.last_price - self.average_price) * self.quantity


@dataclass(frozen=True, slots=True)
class Funds:
    opening_balance: Decimal
    available_cash: Decimal
    margin_used: Decimal
    realised_pnl: Decimal = ZERO
    unrealised_pnl: Decimal = ZERO
    charges: Decimal = ZERO  # paid today on the account's fills, already out of available cash

    @property
    def net_pnl(self) -> Decimal:
        return self.realised_pnl + self.unrealised_pnl - self.charges


class ConnectionStatus(enum.StrEnum):
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    component: str  # "feed:simulator", "broker:paper", ...
    status: ConnectionStatus
    detail: str = ""
    ts: datetime | None = field(default=None, compare=False)
