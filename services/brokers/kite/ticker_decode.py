"""Decoder for KiteTicker's binary frames, straight into the terminal's ``Tick``.

We decode the bytes ourselves instead of using the SDK's ``_parse_binary`` because the SDK
turns prices into binary floats and exchange times into naive local-time datetimes; the
terminal needs exact rupees (``Decimal``) and IST-aware times, and it needs them fast (a
full-depth feed of a few hundred instruments is tens of thousands of packets a second).

Wire format (big-endian, see research/brokers.md §2.1): a frame is ``uint16 count`` then, per
packet, ``uint16 length`` and the packet. The packet's length gives its mode: 8 ltp, 28/32
index quote/full, 44 quote, 184 full with five levels of depth a side. Prices are integers in
the segment's smallest unit: paise (divide by 100) except currency derivatives (1e7) and
BCD/NCO (1e4). The segment is the low byte of the instrument token.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.brokers.fast_build import fast_depth, fast_level, fast_tick
from services.clock import IST
from services.domain import ZERO, Depth, DepthLevel, Tick

MODE_LTP = "ltp"
MODE_QUOTE = "quote"
MODE_FULL = "full"

SEGMENT_CDS = 3
SEGMENT_BCD = 6
SEGMENT_INDICES = 9
SEGMENT_NCO = 12

_HUNDRED = Decimal(100)
_DIVISORS: dict[int, Decimal] = {
    SEGMENT_CDS: Decimal(10_000_000),
    SEGMENT_BCD: Decimal(10_000),
    SEGMENT_NCO: Decimal(10_000),
}

_U16 = struct.Struct(">H")
_LTP = struct.Struct(">II")
_INDEX_QUOTE = struct.Struct(">7I")
_INDEX_FULL = struct.Struct(">8I")
_QUOTE = struct.Struct(">11I")
_FULL_HEAD = struct.Struct(">16I")
_DEPTH = struct.Struct(">" + "IIH2x" * 10)


class TickerDecodeError(ValueError):
    """A frame or packet that does not follow the KiteTicker layout."""


def divisor_for(token: int) -> Decimal:
    """Return the divisor that turns this token's integer prices into rupees."""
    return _DIVISORS.get(token & 0xFF, _HUNDRED)


def split_frame(frame: bytes) -> list[bytes]:
    """Split a binary frame into its packets; a 1-byte heartbeat yields no packets."""
    if len(frame) < 2:
        return []
    (count,) = _U16.unpack_from(frame, 0)
    packets: list[bytes] = []
    offset = 2
    for _ in range(count):
        if offset + 2 > len(frame):
            raise TickerDecodeError("frame ends inside a packet header")
        (length,) = _U16.unpack_from(frame, offset)
        offset += 2
        end = offset + length
        if end > len(frame):
            raise TickerDecodeError(f"packet of {length} bytes runs past the end of the frame")
        packets.append(frame[offset:end])
        offset = end
    return packets


def build_frame(packets: list[bytes]) -> bytes:
    """Wrap packets in a frame, as the Kite server does (used by the fake and the bench)."""
    parts = [_U16.pack(len(packets))]
    for packet in packets:
        parts.append(_U16.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class KitePacket:
    """Every field a packet carries, in rupees and IST; the conformance view of a packet."""

    token: int
    mode: str
    tradable: bool
    last_price: Decimal
    last_quantity: int = 0
    average_price: Decimal = ZERO
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    close: Decimal = ZERO
    last_trade_time: datetime | None = None
    oi: int = 0
    oi_day_high: int = 0
    oi_day_low: int = 0
    exchange_timestamp: datetime | None = None
    depth: Depth | None = None


def _ist(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, IST) if epoch else None


def _depth(packet: bytes, div: Decimal) -> Depth:
    v = _DEPTH.unpack_from(packet, 64)
    levels = [DepthLevel(v[i + 1] / div, v[i], v[i + 2]) for i in range(0, 30, 3)]
    return Depth(bids=tuple(levels[:5]), asks=tuple(levels[5:]))


def decode_packet(packet: bytes) -> KitePacket:
    """Decode one packet (without its length prefix) with every field it carries."""
    n = len(packet)
    if n < 8:
        raise TickerDecodeError(f"packet of {n} bytes is too short")
    token, ltp = _LTP.unpack_from(packet, 0)
    div = divisor_for(token)
    tradable = token & 0xFF != SEGMENT_INDICES
    if n == 8:
        return KitePacket(token, MODE_LTP, tradable, ltp / div)
    if n in (28, 32):
        if n == 28:
            v = _INDEX_QUOTE.unpack_from(packet, 0)
            ts = None
        else:
            v = _INDEX_FULL.unpack_from(packet, 0)
            ts = _ist(v[7])
        return KitePacket(
            token,
            MODE_QUOTE if n == 28 else MODE_FULL,
            tradable,
            ltp / div,
            high=v[2] / div,
            low=v[3] / div,
            open=v[4] / div,
            close=v[5] / div,
            exchange_timestamp=ts,
        )
    if n == 44:
        q = _QUOTE.unpack_from(packet, 0)
        return KitePacket(
            token,
            MODE_QUOTE,
            tradable,
            ltp / div,
            last_quantity=q[2],
            average_price=q[3] / div,
            volume=q[4],
            buy_quantity=q[5],
            sell_quantity=q[6],
            open=q[7] / div,
            high=q[8] / div,
            low=q[9] / div,
            close=q[10] / div,
        )
    if n == 184:
        f = _FULL_HEAD.unpack_from(packet, 0)
        return KitePacket(
            token,
            MODE_FULL,
            tradable,
            ltp / div,
            last_quantity=f[2],
            average_price=f[3] / div,
            volume=f[4],
            buy_quantity=f[5],
            sell_quantity=f[6],
            open=f[7] / div,
            high=f[8] / div,
            low=f[9] / div,
            close=f[10] / div,
            last_trade_time=_ist(f[11]),
            oi=f[12],
            oi_day_high=f[13],
            oi_day_low=f[14],
            exchange_timestamp=_ist(f[15]),
            depth=_depth(packet, div),
        )
    raise TickerDecodeError(f"unknown packet length {n}")


class TickDecoder:
    """Turns frames into ``Tick`` events for the instruments the terminal subscribed to.

    ``keys`` maps instrument tokens to the app's ``EXCHANGE:SYMBOL`` keys (from the
    instrument master). A packet for a token we never asked for is counted in ``unknown``
    and dropped rather than published under a made-up key. Modes without an exchange time
    (ltp, quote) are stamped with ``now()``, the receive time.

    Prices near the market repeat all day (depth levels, OHLC), so each divisor keeps a
    bounded cache from integer price to ``Decimal``.
    """

    _CACHE_LIMIT = 200_000

    def __init__(self, keys: Mapping[int, str], now: Callable[[], datetime] | None = None) -> None:
        self.keys = dict(keys)
        self._now = now or (lambda: datetime.now(IST))
        self.unknown = 0
        self._last_epoch = -1
        self._last_dt = datetime.fromtimestamp(0, IST)
        self._caches: dict[Decimal, dict[int, Decimal]] = {}

    def _ts(self, epoch: int) -> datetime:
        # Most packets of a frame share their second: reuse the datetime built for it.
        if epoch != self._last_epoch:
            self._last_epoch = epoch
            self._last_dt = datetime.fromtimestamp(epoch, IST)
        return self._last_dt

    def _cache(self, div: Decimal) -> dict[int, Decimal]:
        cache = self._caches.get(div)
        if cache is None or len(cache) > self._CACHE_LIMIT:
            cache = self._caches[div] = {}
        return cache

    def decode(self, frame: bytes) -> list[Tick]:
        """Decode a whole frame; heartbeats and unknown tokens give no ticks."""
        ticks: list[Tick] = []
        if len(frame) < 2:
            return ticks
        keys = self.keys
        received: datetime | None = None
        (count,) = _U16.unpack_from(frame, 0)
        offset = 2
        size = len(frame)
        for _ in range(count):
            if offset + 2 > size:
                raise TickerDecodeError("frame ends inside a packet header")
            (n,) = _U16.unpack_from(frame, offset)
            start = offset + 2
            offset = start + n
            if offset > size:
                raise TickerDecodeError(f"packet of {n} bytes runs past the end of the frame")
            token, ltp = _LTP.unpack_from(frame, start)
            key = keys.get(token)
            if key is None:
                self.unknown += 1
                continue
            div = _DIVISORS.get(token & 0xFF, _HUNDRED)
            cache = self._cache(div)
            get = cache.get
            if n == 184:
                f = _FULL_HEAD.unpack_from(frame, start)
                d = _DEPTH.unpack_from(frame, start + 64)
                prices = []
                for raw in (ltp, f[7], f[8], f[9], f[10], *d[1:30:3]):
                    price = get(raw)
                    if price is None:
                        price = cache[raw] = raw / div
                    prices.append(price)
                levels = [fast_level(prices[5 + i], d[3 * i], d[3 * i + 2]) for i in range(10)]
                ticks.append(
                    fast_tick(
                        key,
                        self._ts(f[15]),
                        prices[0],
                        f[2],
                        f[4],
                        prices[1],
                        prices[2],
                        prices[3],
                        prices[4],
                        fast_depth(tuple(levels[:5]), tuple(levels[5:])),
                        f[12],
                    )
                )
            elif n == 44:
                if received is None:
                    received = self._now()
                q = _QUOTE.unpack_from(frame, start)
                ticks.append(
                    fast_tick(
                        key,
                        received,
                        ltp / div,
                        q[2],
                        q[4],
                        q[7] / div,
                        q[8] / div,
                        q[9] / div,
                        q[10] / div,
                        None,
                    )
                )
            elif n == 8:
                if received is None:
                    received = self._now()
                ticks.append(
                    fast_tick(key, received, ltp / div, 0, 0, ZERO, ZERO, ZERO, ZERO, None)
                )
            elif n in (28, 32):
                if n == 32:
                    v = _INDEX_FULL.unpack_from(frame, start)
                    ts = self._ts(v[7])
                else:
                    if received is None:
                        received = self._now()
                    ts = received
                    v = _INDEX_QUOTE.unpack_from(frame, start)
                ticks.append(
                    fast_tick(
                        key,
                        ts,
                        ltp / div,
                        0,
                        0,
                        v[4] / div,
                        v[2] / div,
                        v[3] / div,
                        v[5] / div,
                        None,
                    )
                )
            else:
                raise TickerDecodeError(f"unknown packet length {n}")
        return ticks
