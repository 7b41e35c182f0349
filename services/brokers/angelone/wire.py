"""SmartWebSocketV2's binary packets decoded straight into the terminal's ``Tick``.

We read the bytes ourselves instead of using the SDK's ``_parse_binary_data``: the SDK slices
and unpacks field by field into a float-free but untyped dict (about 60 struct calls for a
SnapQuote), leaves prices in paise, times as epoch milliseconds and the best-five lists
swapped by their flag. The terminal needs rupees as ``Decimal``, IST-aware times, and speed
(the benchmark is 50,000 packets a second on one core).

Layout (little-endian, one packet per WebSocket message; research/brokers.md §2.4 and
``SmartApi/smartWebSocketV2.py`` ``_parse_binary_data``):

======  =====================  =======================================================
offset  type                   field
======  =====================  =======================================================
0       u8                     mode: 1 LTP, 2 QUOTE, 3 SNAP_QUOTE, 4 DEPTH
1       u8                     exchange type (1 nse_cm, 2 nse_fo, 3 bse_cm, ...)
2       25 bytes, NUL-padded   token (ASCII)
27      i64                    sequence number
35      i64                    exchange timestamp, epoch milliseconds
43      i64                    last traded price, paise            -> LTP is 51 bytes
51      i64 x3                 last traded qty, average price, volume
75      f64 x2                 total buy qty, total sell qty
91      i64 x4                 open, high, low, close              -> QUOTE is 123 bytes
123     i64 x3                 last traded time, open interest, OI change %
147     10 x {u16 flag, i64 qty, i64 price, u16 orders}   best five; flag 1 buy, 0 sell
347     i64 x4                 upper/lower circuit, 52-week high/low -> SNAP is 379 bytes
======  =====================  =======================================================

Prices are paise for every segment the terminal trades (currency derivatives, which Angel
quotes in 1e-7 rupees, are not offered by this adapter).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.brokers.fast_build import fast_depth, fast_level, fast_tick
from services.clock import IST
from services.domain import ZERO, Depth, DepthLevel, Tick

MODE_LTP = 1
MODE_QUOTE = 2
MODE_SNAP_QUOTE = 3
MODE_DEPTH = 4

LTP_SIZE = 51
QUOTE_SIZE = 123
SNAP_QUOTE_SIZE = 379

EXCHANGE_TYPES: dict[str, int] = {
    "NSE": 1,  # nse_cm
    "NFO": 2,  # nse_fo
    "BSE": 3,  # bse_cm
    "BFO": 4,  # bse_fo
    "MCX": 5,  # mcx_fo
    "NCDEX": 7,  # ncx_fo
    "CDS": 13,  # cde_fo
}

_HUNDRED = Decimal(100)
_HEAD = struct.Struct("<BB25sqqq")  # up to and including LTP
_QUOTE = struct.Struct("<BB25sqqqqqqddqqqq")
_SNAP = struct.Struct("<BB25sqqqqqqddqqqqqqq" + "HqqH" * 10 + "qqqq")
_SNAP_DEPTH_AT = 18  # index of the first best-five field in a _SNAP tuple
# The same fields from offset 27 on: the token's 25 bytes are not copied on the hot path.
_SNAP_BODY = struct.Struct("<qqqqqqddqqqqqqq" + "HqqH" * 10 + "qqqq")
_BUY_THEN_SELL = (1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
_QUOTE_BODY = struct.Struct("<qqqqqqddqqqq")
_LTP_BODY = struct.Struct("<qq")  # exchange time and LTP, from offset 35


class WireDecodeError(ValueError):
    """A packet that does not follow the SmartWebSocketV2 layout."""


def token_field(exchange_type: int, token: str) -> bytes:
    """The 26 bytes (exchange type + NUL-padded token) that identify a packet's instrument."""
    raw = token.encode("ascii")
    if len(raw) > 25:
        raise ValueError(f"Angel token {token!r} is longer than 25 bytes")
    return bytes((exchange_type,)) + raw.ljust(25, b"\0")


def _token(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class AngelPacket:
    """Every field a packet carries, in rupees and IST: the conformance view of a packet."""

    mode: int
    exchange_type: int
    token: str
    sequence: int
    exchange_timestamp: datetime
    last_price: Decimal
    last_quantity: int = 0
    average_price: Decimal = ZERO
    volume: int = 0
    total_buy_quantity: float = 0.0
    total_sell_quantity: float = 0.0
    open: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    close: Decimal = ZERO
    last_trade_time: datetime | None = None
    oi: int = 0
    oi_change_percent: int = 0
    depth: Depth | None = None
    upper_circuit: Decimal = ZERO
    lower_circuit: Decimal = ZERO
    week52_high: Decimal = ZERO
    week52_low: Decimal = ZERO


def _rupees(paise: int) -> Decimal:
    return Decimal(paise) / _HUNDRED


def _ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, IST)


def _best_five(values: tuple[Any, ...], to_price: Callable[[int], Decimal]) -> Depth:
    bids: list[DepthLevel] = []
    asks: list[DepthLevel] = []
    for i in range(_SNAP_DEPTH_AT, _SNAP_DEPTH_AT + 40, 4):
        flag, qty, price, orders = values[i : i + 4]
        (bids if flag else asks).append(DepthLevel(to_price(price), qty, orders))
    return Depth(bids=tuple(bids), asks=tuple(asks))


def decode_packet(data: bytes) -> AngelPacket:
    """Decode one packet with every field it carries (the slow, complete path)."""
    n = len(data)
    if n < LTP_SIZE:
        raise WireDecodeError(f"packet of {n} bytes is too short for SmartWebSocketV2")
    mode = data[0]
    if mode == MODE_LTP:
        m, ex, tok, seq, ts, ltp = _HEAD.unpack_from(data)
        return AngelPacket(m, ex, _token(tok), seq, _ms(ts), _rupees(ltp))
    if mode == MODE_QUOTE and n >= QUOTE_SIZE:
        q = _QUOTE.unpack_from(data)
        return AngelPacket(
            q[0], q[1], _token(q[2]), q[3], _ms(q[4]), _rupees(q[5]),
            last_quantity=q[6], average_price=_rupees(q[7]), volume=q[8],
            total_buy_quantity=q[9], total_sell_quantity=q[10],
            open=_rupees(q[11]), high=_rupees(q[12]), low=_rupees(q[13]), close=_rupees(q[14]),
        )  # fmt: skip
    if mode == MODE_SNAP_QUOTE and n >= SNAP_QUOTE_SIZE:
        s = _SNAP.unpack_from(data)
        return AngelPacket(
            s[0], s[1], _token(s[2]), s[3], _ms(s[4]), _rupees(s[5]),
            last_quantity=s[6], average_price=_rupees(s[7]), volume=s[8],
            total_buy_quantity=s[9], total_sell_quantity=s[10],
            open=_rupees(s[11]), high=_rupees(s[12]), low=_rupees(s[13]), close=_rupees(s[14]),
            last_trade_time=_ms(s[15]) if s[15] else None, oi=s[16], oi_change_percent=s[17],
            depth=_best_five(s, _rupees),
            upper_circuit=_rupees(s[58]), lower_circuit=_rupees(s[59]),
            week52_high=_rupees(s[60]), week52_low=_rupees(s[61]),
        )  # fmt: skip
    raise WireDecodeError(f"mode {mode} packet of {n} bytes is not LTP, QUOTE or SNAP_QUOTE")


class AngelTickDecoder:
    """Turns packets into ``Tick``s for the instruments the terminal subscribed to.

    ``keys`` maps ``(exchange type, token)`` to the app's ``EXCHANGE:SYMBOL`` key. Lookups
    use the packet's 26 raw identifying bytes, so the common case costs one slice and one
    dict probe; a packet whose token field carries bytes after its NUL is resolved the slow
    way once and remembered. A packet for an instrument we never asked for is counted in
    ``unknown`` and dropped rather than published under a made-up key.

    Prices near the market repeat all day (OHLC, depth levels), so integer paise map to
    ``Decimal`` through a bounded cache.
    """

    _CACHE_LIMIT = 200_000

    def __init__(self, keys: Mapping[tuple[int, str], str] | None = None) -> None:
        self._by_field: dict[bytes, str] = {}
        self._keys: dict[tuple[int, str], str] = {}
        self.unknown = 0
        self.unsupported = 0
        self._prices: dict[int, Decimal] = {}
        self._last_ms = -1
        self._last_dt = datetime.fromtimestamp(0, IST)
        if keys:
            self.add(keys)

    def add(self, keys: Mapping[tuple[int, str], str]) -> None:
        for (exchange_type, token), key in keys.items():
            self._keys[(exchange_type, token)] = key
            self._by_field[token_field(exchange_type, token)] = key

    def remove(self, ids: list[tuple[int, str]]) -> None:
        for exchange_type, token in ids:
            key = self._keys.pop((exchange_type, token), None)
            if key is not None:
                self._by_field.pop(token_field(exchange_type, token), None)

    def _key(self, data: bytes) -> str | None:
        ident = data[1:27]
        key = self._by_field.get(ident)
        if key is None:
            key = self._keys.get((data[1], _token(data[2:27])))
            if key is None:
                self.unknown += 1
                return None
            self._by_field[ident] = key
        return key

    def _ts(self, epoch_ms: int) -> datetime:
        # Packets of one burst share their millisecond more often than not.
        if epoch_ms != self._last_ms:
            self._last_ms = epoch_ms
            self._last_dt = datetime.fromtimestamp(epoch_ms / 1000, IST)
        return self._last_dt

    def decode(self, data: bytes) -> Tick | None:
        """Decode one packet; ``None`` for an unknown instrument or an unsupported mode."""
        n = len(data)
        if n < LTP_SIZE:
            raise WireDecodeError(f"packet of {n} bytes is too short for SmartWebSocketV2")
        key = self._key(data)
        if key is None:
            return None
        cache = self._prices
        if len(cache) > self._CACHE_LIMIT:
            cache.clear()
        get = cache.get
        mode = data[0]
        if mode == MODE_SNAP_QUOTE and n >= SNAP_QUOTE_SIZE:
            # One unpack for everything after the token (59 fields); prices via the cache.
            s = _SNAP_BODY.unpack_from(data, 27)
            prices = []
            for raw in (s[2], s[8], s[9], s[10], s[11], *s[17:55:4]):
                price = get(raw)
                if price is None:
                    price = cache[raw] = Decimal(raw) / _HUNDRED
                prices.append(price)
            levels = [fast_level(prices[5 + i], s[16 + 4 * i], s[18 + 4 * i]) for i in range(10)]
            flags = s[15:55:4]  # 1 for a bid, 0 for an ask
            if flags == _BUY_THEN_SELL:  # how Angel sends them
                depth = fast_depth(tuple(levels[:5]), tuple(levels[5:]))
            else:
                depth = fast_depth(
                    tuple(lv for lv, f in zip(levels, flags, strict=True) if f),
                    tuple(lv for lv, f in zip(levels, flags, strict=True) if not f),
                )
            return fast_tick(
                key, self._ts(s[1]), prices[0], s[3], s[5],
                prices[1], prices[2], prices[3], prices[4], depth, s[13],
            )  # fmt: skip
        if mode == MODE_QUOTE and n >= QUOTE_SIZE:
            q = _QUOTE_BODY.unpack_from(data, 27)
            ltp = get(q[2])
            if ltp is None:
                ltp = cache[q[2]] = Decimal(q[2]) / _HUNDRED
            open_ = get(q[8])
            if open_ is None:
                open_ = cache[q[8]] = Decimal(q[8]) / _HUNDRED
            high = get(q[9])
            if high is None:
                high = cache[q[9]] = Decimal(q[9]) / _HUNDRED
            low = get(q[10])
            if low is None:
                low = cache[q[10]] = Decimal(q[10]) / _HUNDRED
            close = get(q[11])
            if close is None:
                close = cache[q[11]] = Decimal(q[11]) / _HUNDRED
            return fast_tick(key, self._ts(q[1]), ltp, q[3], q[5], open_, high, low, close, None)
        if mode == MODE_LTP:
            ts, raw = _LTP_BODY.unpack_from(data, 35)
            price = get(raw)
            if price is None:
                price = cache[raw] = Decimal(raw) / _HUNDRED
            return fast_tick(key, self._ts(ts), price, 0, 0, ZERO, ZERO, ZERO, ZERO, None)
        if mode in (MODE_QUOTE, MODE_SNAP_QUOTE):
            raise WireDecodeError(f"mode {mode} packet cut short at {n} bytes")
        self.unsupported += 1
        return None
