"""Mapping between services.domain records and SQL rows.

Decimals are stored as TEXT (exact, and ``Decimal(str(d)) == d``), enums as their values,
tick and bar times as integer nanoseconds since the epoch (compact, sortable, indexable) and
order and fill times as ISO-8601 UTC text (readable in an export). Everything read back is
timezone-aware UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from operator import attrgetter
from typing import Any

from services.domain import (
    Bar,
    Depth,
    DepthLevel,
    Exchange,
    Fill,
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Tick,
    Timeframe,
    Validity,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: storage only accepts timezone-aware times")
    d = ts - EPOCH  # integer arithmetic on the parts: exact, cheaper than a timedelta division
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def to_iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: storage only accepts timezone-aware times")
    return ts.astimezone(UTC).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def undec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def instrument_row(i: Instrument) -> tuple[Any, ...]:
    return (
        i.exchange.value,
        i.tradingsymbol,
        i.token,
        i.name,
        i.kind.value,
        str(i.tick_size),
        i.lot_size,
        i.expiry.isoformat() if i.expiry else None,
        dec(i.strike),
        i.underlying,
        i.freeze_quantity,
    )


def instrument_from(row: tuple[Any, ...]) -> Instrument:
    return Instrument(
        exchange=Exchange(row[0]),
        tradingsymbol=row[1],
        token=str(row[2]),
        name=row[3],
        kind=InstrumentKind(row[4]),
        tick_size=Decimal(row[5]),
        lot_size=int(row[6]),
        expiry=date.fromisoformat(row[7]) if row[7] else None,
        strike=undec(row[8]),
        underlying=row[9],
        freeze_quantity=row[10],
    )


# A recorded tick's text (``tick_rows.data``, migration 12): a JSON array, built by one
# %-format per tick with a format string per depth shape. It is byte for byte the
# ``json_array`` SQLite made of the v10 columns, so converted and new rows read the same.
# A price's text is digits, sign, point and exponent only: it needs no escaping.
_HEAD = '["%s",%d,%d,"%s","%s","%s","%s",%d,%d,'
_LEVEL = '["%s",%d,%d]'
_NO_DEPTH = _HEAD + "null]"
_WITH_DEPTH: dict[tuple[int, int], str] = {}
_level_fields: Callable[[DepthLevel], tuple[Decimal, int, int]] = attrgetter(
    "price", "quantity", "orders"
)
_flat = chain.from_iterable


def _with_depth(bids: int, asks: int) -> str:
    form = _WITH_DEPTH[(bids, asks)] = (
        _HEAD + '{"b":[' + ",".join([_LEVEL] * bids) + '],"a":[' + ",".join([_LEVEL] * asks)
        + "]}]"
    )  # fmt: skip
    return form


def tick_row(t: Tick) -> str:
    """The stored text of one tick (``tick_rows.data``)."""
    return tick_rows((t,), {t.key: 0})[0][2]


def tick_rows(ticks: Iterable[Tick], ids: dict[str, int]) -> list[tuple[int, int, str]]:
    """``(instrument id, time in ns, text)`` of a batch in one loop: the recorder's per-tick
    cost, measured at a third of building the twelve columns v10 stored.

    Every tick's key must be in ``ids``. Ticks of one instant (a feed frame, a simulator
    step) share their timestamp object, so its conversion is reused while it repeats.
    """
    last_ts: datetime | None = None
    ns = 0
    forms = _WITH_DEPTH
    fields = _level_fields
    flat = _flat
    rows: list[tuple[int, int, str]] = []
    append = rows.append
    for t in ticks:
        ts = t.ts
        if ts is not last_ts:
            ns = to_ns(ts)
            last_ts = ts
        depth = t.depth
        if depth is None:
            text = _NO_DEPTH % (
                t.last_price, t.last_quantity, t.volume, t.open, t.high, t.low, t.close,
                t.oi, t.oi_close,
            )  # fmt: skip
        else:
            levels: tuple[object, ...]
            if type(depth) is Depth:
                bids, asks = depth.bids, depth.asks
                nb, na = len(bids), len(asks)
                levels = (*flat(map(fields, bids)), *flat(map(fields, asks)))
            else:  # a lazily built book knows a cheaper way to its text
                bid_texts, ask_texts = depth.level_texts()
                nb, na = len(bid_texts), len(ask_texts)
                levels = (*flat(bid_texts), *flat(ask_texts))
            form = forms.get((nb, na)) or _with_depth(nb, na)
            text = form % (
                t.last_price, t.last_quantity, t.volume, t.open, t.high, t.low, t.close,
                t.oi, t.oi_close, *levels,
            )  # fmt: skip
        append((ids[t.key], ns, text))
    return rows


def ticks_from(key: str, rows: Iterable[tuple[int, str]]) -> list[Tick]:
    """Decode one instrument's ``(ts_ns, data)`` rows (``TICK_COLUMNS``) in one tight loop.

    Prices are parsed once per distinct text: open/high/low/close repeat on almost every tick
    of a day and Decimal is immutable, so sharing them is safe; this keeps reading back a
    chart's 500 ticks well under the 2 ms budget.
    """
    cache: dict[str, Decimal] = {}

    def d(text: str) -> Decimal:
        value = cache.get(text)
        if value is None:
            value = cache[text] = Decimal(text)
        return value

    def side(levels: list[list[Any]]) -> tuple[DepthLevel, ...]:
        return tuple([DepthLevel(d(p), q, o) for p, q, o in levels])

    def _depth(book: dict[str, list[list[Any]]]) -> Depth:
        return Depth(side(book["b"]), side(book["a"]))

    fromtimestamp = datetime.fromtimestamp
    loads = json.loads
    out: list[Tick] = []
    for ns, data in rows:
        # The text is ours (or json_array's, the same): nine scalars with no comma inside,
        # then the depth. Split, not json.loads: a chart's 500 depthless ticks read back in
        # half the time.
        last, last_qty, volume, open_, high, low, close, oi, oi_close, depth = data.split(",", 9)
        out.append(
            Tick(
                key,
                # Exact to the microsecond until ~2112 (µs count < 2**52), 2x a timedelta.
                fromtimestamp(ns // 1000 / 1e6, UTC),
                d(last[2:-1]),  # '["1500.05"'
                int(last_qty),
                int(volume),
                d(open_[1:-1]),
                d(high[1:-1]),
                d(low[1:-1]),
                d(close[1:-1]),
                None if depth == "null]" else _depth(loads(depth[:-1])),
                int(oi),
                int(oi_close),
            )
        )
    return out


# The columns ``ticks_from`` decodes, in its order.
TICK_COLUMNS = "ts_ns, data"


def bar_row(b: Bar) -> tuple[Any, ...]:
    return (
        b.key,
        b.timeframe.value,
        to_ns(b.start),
        str(b.open),
        str(b.high),
        str(b.low),
        str(b.close),
        b.volume,
        int(b.closed),
    )


def bar_from(row: tuple[Any, ...]) -> Bar:
    return Bar(
        key=row[0],
        timeframe=Timeframe(row[1]),
        start=from_ns(row[2]),
        open=Decimal(row[3]),
        high=Decimal(row[4]),
        low=Decimal(row[5]),
        close=Decimal(row[6]),
        volume=int(row[7]),
        closed=bool(row[8]),
    )


def order_row(o: Order) -> tuple[Any, ...]:
    r = o.request
    return (
        o.order_id,
        r.key,
        r.side.value,
        r.quantity,
        r.order_type.value,
        r.product.value,
        r.validity.value,
        dec(r.price),
        dec(r.trigger_price),
        r.tag,
        r.source,
        o.status.value,
        to_iso(o.placed_at),
        to_iso(o.updated_at),
        o.filled_quantity,
        str(o.average_price),
        o.status_message,
        o.broker_order_id,
    )


def order_from(row: tuple[Any, ...]) -> Order:
    request = OrderRequest(
        key=row[1],
        side=Side(row[2]),
        quantity=int(row[3]),
        order_type=OrderType(row[4]),
        product=Product(row[5]),
        validity=Validity(row[6]),
        price=undec(row[7]),
        trigger_price=undec(row[8]),
        tag=row[9],
        source=row[10],
    )
    return Order(
        order_id=row[0],
        request=request,
        status=OrderStatus(row[11]),
        placed_at=from_iso(row[12]),
        updated_at=from_iso(row[13]),
        filled_quantity=int(row[14]),
        average_price=Decimal(row[15]),
        status_message=row[16],
        broker_order_id=row[17],
    )


def fill_row(f: Fill) -> tuple[Any, ...]:
    return (
        f.fill_id,
        f.order_id,
        f.key,
        f.side.value,
        f.product.value,
        f.quantity,
        str(f.price),
        to_iso(f.ts),
    )


def fill_from(row: tuple[Any, ...]) -> Fill:
    return Fill(
        fill_id=row[0],
        order_id=row[1],
        key=row[2],
        side=Side(row[3]),
        product=Product(row[4]),
        quantity=int(row[5]),
        price=Decimal(row[6]),
        ts=from_iso(row[7]),
    )


def position_row(p: Position) -> tuple[Any, ...]:
    return (
        p.key,
        p.product.value,
        p.quantity,
        str(p.average_price),
        str(p.realised_pnl),
        str(p.last_price),
        p.buy_quantity,
        p.sell_quantity,
        p.multiplier,
    )


def position_from(row: tuple[Any, ...]) -> Position:
    return Position(
        key=row[0],
        product=Product(row[1]),
        quantity=int(row[2]),
        average_price=Decimal(row[3]),
        realised_pnl=Decimal(row[4]),
        last_price=Decimal(row[5]),
        buy_quantity=int(row[6]),
        sell_quantity=int(row[7]),
        multiplier=int(row[8]),
    )
