"""Request and response bodies of the control API, as pydantic models.

Requests forbid unknown fields (a misspelt ``trigger_prce`` must fail loudly, not place an
order without its trigger) and take prices as decimal strings: a JSON number goes through a
binary float in most clients, and an order price must arrive exactly as the trader typed it.
Quantities are strict integers, so ``"10"``, ``10.5`` and ``true`` are refused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from services.broker import OrderChange
from services.domain import (
    AUTO_PROTECTION,
    Funds,
    MarketProtection,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Product,
    Side,
    Validity,
)

API_SOURCE = "api"

DecimalString = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,9}(\.[0-9]{1,4})?$", max_length=14),
    Field(description="a non-negative decimal written as a string, e.g. \"1520.05\""),
]
InstrumentKey = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2,4}:[A-Za-z0-9&_.\-]{1,40}$", max_length=45),
    Field(description="EXCHANGE:TRADINGSYMBOL, e.g. NSE:RELIANCE"),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderBody(_Request):
    """A new order; validated again by the order manager against the exchange's rules."""

    key: InstrumentKey
    side: Side
    quantity: Annotated[StrictInt, Field(gt=0, le=10_000_000)]
    order_type: OrderType
    product: Product
    validity: Validity = Validity.DAY
    price: DecimalString | None = None
    trigger_price: DecimalString | None = None
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,20}$")] | None = None
    amo: StrictBool = Field(
        default=False, description="an after-market order, for the next session's open")
    market_protection: Annotated[str, StringConstraints(
        pattern=r"^(auto|[0-9]{1,3}(\.[0-9]{1,2})?)$")] | None = Field(
        default=None, description="MARKET/SL-M: 'auto' (the broker's) or a percentage above 0 "
        "and at most 100; the node puts its own on such orders that carry none")

    @field_validator("market_protection")
    @classmethod
    def _protection_in_range(cls, value: str | None) -> str | None:
        _protection(value)  # MarketProtection refuses 0 and above 100, with the reason
        return value

    def to_request(self) -> OrderRequest:
        return OrderRequest(
            key=self.key,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            product=self.product,
            validity=self.validity,
            price=None if self.price is None else Decimal(self.price),
            trigger_price=None if self.trigger_price is None else Decimal(self.trigger_price),
            tag=self.tag,
            source=API_SOURCE,
            market_protection=_protection(self.market_protection),
            amo=self.amo,
        )


def _protection(text: str | None) -> MarketProtection | None:
    if text is None:
        return None
    return AUTO_PROTECTION if text == "auto" else MarketProtection(Decimal(text))


class OrderChangeBody(_Request):
    """A modification of a working order: only the fields given change."""

    quantity: Annotated[StrictInt, Field(gt=0, le=10_000_000)] | None = None
    price: DecimalString | None = None
    trigger_price: DecimalString | None = None
    order_type: OrderType | None = None

    def to_change(self) -> OrderChange:
        return OrderChange(
            quantity=self.quantity,
            price=None if self.price is None else Decimal(self.price),
            trigger_price=None if self.trigger_price is None else Decimal(self.trigger_price),
            order_type=self.order_type,
        )

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.quantity, self.price, self.trigger_price,
                                       self.order_type))


class ResumeBody(_Request):
    """Leave HALTED: who decided is the key's id; why is recorded in the audit log."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=200,
                                             strip_whitespace=True)]
    to: Literal["ACTIVE", "REDUCING"] = "ACTIVE"


class KillSwitchBody(_Request):
    square_off: StrictBool = Field(
        default=False, description="also close every open position with market orders"
    )
    reason: Annotated[str, StringConstraints(max_length=200)] = "api"


# -- responses -------------------------------------------------------------------------------


class OrderOut(BaseModel):
    order_id: str
    key: str
    side: Side
    quantity: int
    order_type: OrderType
    product: Product
    validity: Validity
    price: str | None
    trigger_price: str | None
    status: str
    filled_quantity: int
    average_price: str
    status_message: str
    placed_at: str
    updated_at: str
    source: str
    tag: str | None
    amo: bool = False

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        r = o.request
        return cls(
            order_id=o.order_id,
            key=r.key,
            side=r.side,
            quantity=r.quantity,
            order_type=r.order_type,
            product=r.product,
            validity=r.validity,
            price=None if r.price is None else str(r.price),
            trigger_price=None if r.trigger_price is None else str(r.trigger_price),
            status=o.status.value,
            filled_quantity=o.filled_quantity,
            average_price=str(o.average_price),
            status_message=o.status_message,
            placed_at=o.placed_at.isoformat(),
            updated_at=o.updated_at.isoformat(),
            source=r.source,
            tag=r.tag,
            amo=r.amo,
        )


class PositionOut(BaseModel):
    key: str
    product: Product
    quantity: int
    average_price: str
    last_price: str
    realised_pnl: str
    unrealised_pnl: str
    charges: str
    net_pnl: str

    @classmethod
    def of(cls, p: Position) -> PositionOut:
        return cls(
            key=p.key,
            product=p.product,
            quantity=p.quantity,
            average_price=str(p.average_price),
            last_price=str(p.last_price),
            realised_pnl=str(p.realised_pnl),
            unrealised_pnl=str(p.unrealised_pnl),
            charges=str(p.charges),
            net_pnl=str(p.net_pnl),
        )


class FundsOut(BaseModel):
    opening_balance: str
    available_cash: str
    margin_used: str
    realised_pnl: str
    unrealised_pnl: str
    charges: str
    net_pnl: str

    @classmethod
    def of(cls, f: Funds) -> FundsOut:
        return cls(
            opening_balance=str(f.opening_balance),
            available_cash=str(f.available_cash),
            margin_used=str(f.margin_used),
            realised_pnl=str(f.realised_pnl),
            unrealised_pnl=str(f.unrealised_pnl),
            charges=str(f.charges),
            net_pnl=str(f.net_pnl),
        )


class OrderList(BaseModel):
    orders: list[OrderOut]


class PositionList(BaseModel):
    positions: list[PositionOut]


class KillSwitchOut(BaseModel):
    mode: str = Field(description="'risk': trading halted, orders cancelled, positions "
                      "squared off when asked")
    halted: bool
    cancelled: list[str]
    failed: list[dict[str, str]]
    closed: list[dict[str, object]] = []
    note: str = ""


class TradingStateOut(BaseModel):
    state: str = Field(description="ACTIVE, REDUCING or HALTED")
    reason: str


class KeyInfoOut(BaseModel):
    """The calling key as the node knows it: a desktop pairing checks the scopes it needs."""

    name: str
    scopes: list[str] = Field(description="read, trade, models")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None
