"""SmartWebSocketV2 packets built byte by byte at the documented offsets.

Written independently of ``services.brokers.angelone.wire`` (``pack_into`` at each offset of
research/brokers.md §2.4 instead of one struct format), so the decoder's tests compare two
readings of the layout, and the SDK's own ``_parse_binary_data`` is the third.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from decimal import Decimal

LTP, QUOTE, SNAP_QUOTE = 1, 2, 3
SIZES = {LTP: 51, QUOTE: 123, SNAP_QUOTE: 379}


def paise(rupees: Decimal | str) -> int:
    value = Decimal(rupees) * 100
    if value != value.to_integral_value():
        raise ValueError(f"{rupees} is not a whole number of paise")
    return int(value)


@dataclass
class Quote:
    """What the fake knows about one instrument's market, in rupees."""

    exchange_type: int
    token: str
    ltp: Decimal
    sequence: int = 1
    exchange_ms: int = 0
    last_quantity: int = 25
    average: Decimal = Decimal("0")
    volume: int = 100_000
    total_buy: float = 51234.0
    total_sell: float = 48766.0
    open: Decimal = Decimal("0")
    high: Decimal = Decimal("0")
    low: Decimal = Decimal("0")
    close: Decimal = Decimal("0")
    last_trade_ms: int = 0
    oi: int = 0
    oi_change: int = 0
    bids: list[tuple[int, Decimal, int]] = field(default_factory=list)  # qty, price, orders
    asks: list[tuple[int, Decimal, int]] = field(default_factory=list)
    upper_circuit: Decimal = Decimal("0")
    lower_circuit: Decimal = Decimal("0")
    high52: Decimal = Decimal("0")
    low52: Decimal = Decimal("0")


def encode(quote: Quote, mode: int) -> bytes:
    buf = bytearray(SIZES[mode])
    struct.pack_into("<B", buf, 0, mode)
    struct.pack_into("<B", buf, 1, quote.exchange_type)
    token = quote.token.encode("ascii")
    buf[2 : 2 + len(token)] = token  # the rest of the 25 bytes stays NUL
    struct.pack_into("<q", buf, 27, quote.sequence)
    struct.pack_into("<q", buf, 35, quote.exchange_ms)
    struct.pack_into("<q", buf, 43, paise(quote.ltp))
    if mode == LTP:
        return bytes(buf)
    struct.pack_into("<q", buf, 51, quote.last_quantity)
    struct.pack_into("<q", buf, 59, paise(quote.average))
    struct.pack_into("<q", buf, 67, quote.volume)
    struct.pack_into("<d", buf, 75, quote.total_buy)
    struct.pack_into("<d", buf, 83, quote.total_sell)
    struct.pack_into("<q", buf, 91, paise(quote.open))
    struct.pack_into("<q", buf, 99, paise(quote.high))
    struct.pack_into("<q", buf, 107, paise(quote.low))
    struct.pack_into("<q", buf, 115, paise(quote.close))
    if mode == QUOTE:
        return bytes(buf)
    struct.pack_into("<q", buf, 123, quote.last_trade_ms)
    struct.pack_into("<q", buf, 131, quote.oi)
    struct.pack_into("<q", buf, 139, quote.oi_change)
    levels = [(1, *b) for b in quote.bids[:5]] + [(0, *a) for a in quote.asks[:5]]
    for i, (flag, qty, price, orders) in enumerate(levels):
        at = 147 + 20 * i
        struct.pack_into("<H", buf, at, flag)  # 1 buy, 0 sell (the SDK swaps its lists)
        struct.pack_into("<q", buf, at + 2, qty)
        struct.pack_into("<q", buf, at + 10, paise(price))
        struct.pack_into("<H", buf, at + 18, orders)
    struct.pack_into("<q", buf, 347, paise(quote.upper_circuit))
    struct.pack_into("<q", buf, 355, paise(quote.lower_circuit))
    struct.pack_into("<q", buf, 363, paise(quote.high52))
    struct.pack_into("<q", buf, 371, paise(quote.low52))
    return bytes(buf)


def sample_quote(exchange_type: int, token: str, ltp: str, ms: int) -> Quote:
    """A realistic quote around ``ltp`` with five levels a side one tick apart."""
    price = Decimal(ltp)
    tick = Decimal("0.05")
    return Quote(
        exchange_type=exchange_type,
        token=token,
        ltp=price,
        exchange_ms=ms,
        last_trade_ms=ms - 250,
        average=price - Decimal("1.10"),
        open=price - Decimal("5.00"),
        high=price + Decimal("7.25"),
        low=price - Decimal("9.40"),
        close=price - Decimal("3.35"),
        oi=0,
        bids=[(100 * (i + 1), price - tick * (i + 1), i + 2) for i in range(5)],
        asks=[(90 * (i + 1), price + tick * (i + 1), i + 3) for i in range(5)],
        upper_circuit=(price * Decimal("1.2")).quantize(tick),
        lower_circuit=(price * Decimal("0.8")).quantize(tick),
        high52=price + Decimal("100"),
        low52=price - Decimal("100"),
    )
