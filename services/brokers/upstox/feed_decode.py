"""Market Data Feed V3 frames (protobuf ``FeedResponse``) decoded into domain ``Tick``s.

The messages are parsed with the SDK's bundled ``MarketDataFeedV3_pb2`` (the schema of the
installed SDK, research/brokers.md §2.2) and read field by field: the SDK's own streamer
goes through ``MessageToDict``, which turns every int64 into a string and costs several
times more. Prices arrive as doubles; each becomes an exact ``Decimal`` through its shortest
``repr`` (``2450.05`` stays ``2450.05``), memoised because a feed repeats the same prices
on the tick grid all day. ``ltt`` (last trade time) is epoch milliseconds and becomes an
IST-aware datetime.

Per mode:

* ``ltpc`` - last price, quantity and time, and the previous close (``cp``);
* ``full`` (``marketFF``) - plus five levels of depth, the day's OHLC (the ``1d`` entry) and
  the day's volume (``vtt``); ``indexFF`` for indices has no depth or volume;
* ``option_greeks`` (``firstLevelWithGreeks``) - the best bid and ask, the volume and open
  interest, and the option's greeks (delta, gamma, theta, vega, rho) with its implied
  volatility: those become an ``OptionGreeks`` each, collected in ``greeks`` for the feed
  to publish beside the ticks.

A ``market_info`` frame carries segment status only and yields no tick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.clock import IST
from services.domain import ZERO, Depth, DepthLevel, OptionGreeks, Tick

_CACHE_LIMIT = 200_000

# Ticks arrive by the tens of thousands a second; a frozen dataclass's __init__ goes through
# object.__setattr__ per field, so the hot path fills the slots directly (as the Kite decoder
# does). The field lists are spelled out so a new field in a domain type fails loudly here.
_new = object.__new__


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_dl_price, _dl_qty, _dl_orders = (_setter(DepthLevel, n) for n in ("price", "quantity", "orders"))
_dp_bids, _dp_asks = (_setter(Depth, n) for n in ("bids", "asks"))
_TICK_FIELDS = (
    "key",
    "ts",
    "last_price",
    "last_quantity",
    "volume",
    "open",
    "high",
    "low",
    "close",
    "depth",
    "oi",
    "oi_close",
)
assert tuple(Tick.__slots__) == _TICK_FIELDS, "Tick changed: update the fast constructor"
(
    _t_key,
    _t_ts,
    _t_ltp,
    _t_ltq,
    _t_vol,
    _t_open,
    _t_high,
    _t_low,
    _t_close,
    _t_depth,
    _t_oi,
    _t_oi_close,
) = (_setter(Tick, n) for n in _TICK_FIELDS)


def fast_level(price: Decimal, quantity: int) -> DepthLevel:
    level: DepthLevel = _new(DepthLevel)
    _dl_price(level, price)
    _dl_qty(level, quantity)
    _dl_orders(level, 0)  # Upstox's depth has no order counts
    return level


def fast_tick(
    key: str,
    ts: datetime,
    last_price: Decimal,
    last_quantity: int,
    volume: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    depth: Depth | None,
    oi: int = 0,
) -> Tick:
    """``Tick(...)`` without the frozen dataclass's per-field ``object.__setattr__``."""
    tick: Tick = _new(Tick)
    _t_key(tick, key)
    _t_ts(tick, ts)
    _t_ltp(tick, last_price)
    _t_ltq(tick, last_quantity)
    _t_vol(tick, volume)
    _t_open(tick, open_)
    _t_high(tick, high)
    _t_low(tick, low)
    _t_close(tick, close)
    _t_depth(tick, depth)
    _t_oi(tick, oi)
    _t_oi_close(tick, 0)  # not in the feed; the chain counts change in OI from first seen
    return tick


def _pb() -> Any:
    from upstox_client.feeder.proto import MarketDataFeedV3_pb2  # type: ignore[import-untyped]

    return MarketDataFeedV3_pb2


class FeedDecoder:
    """Decodes frames for the instrument keys it knows (Upstox key -> canonical key)."""

    def __init__(
        self, keys: Mapping[str, str], now: Callable[[], datetime] | None = None
    ) -> None:
        self.pb = _pb()
        self.keys = dict(keys)
        self._now = now or (lambda: datetime.now(IST))
        self._prices: dict[float, Decimal] = {}
        self.market_status: dict[str, str] = {}
        self.unknown_keys = 0
        self.greeks: list[OptionGreeks] = []  # from option_greeks frames; the feed drains it
        self._last_millis = -1
        self._last_ts = self._now()

    def price(self, value: float) -> Decimal:
        cached = self._prices.get(value)
        if cached is None:
            if len(self._prices) >= _CACHE_LIMIT:
                self._prices.clear()
            cached = self._prices[value] = Decimal(repr(value)) if value else ZERO
        return cached

    def _ts(self, millis: int) -> datetime:
        if millis == self._last_millis:
            return self._last_ts
        if millis <= 0:
            return self._now()
        ts = datetime.fromtimestamp(millis / 1000, IST)
        self._last_millis, self._last_ts = millis, ts
        return ts

    def _depth(self, quotes: Any) -> Depth | None:
        """Five levels a side; the hot loop of full mode, so written out by hand."""
        if not quotes:
            return None
        cache = self._prices
        price = self.price
        new = _new
        set_price, set_qty, set_orders = _dl_price, _dl_qty, _dl_orders
        bids: list[DepthLevel] = []
        asks: list[DepthLevel] = []
        for quote in quotes:
            p, q = quote.bidP, quote.bidQ
            if p and q:
                level = new(DepthLevel)
                set_price(level, cache.get(p) or price(p))
                set_qty(level, q)
                set_orders(level, 0)
                bids.append(level)
            p, q = quote.askP, quote.askQ
            if p and q:
                level = new(DepthLevel)
                set_price(level, cache.get(p) or price(p))
                set_qty(level, q)
                set_orders(level, 0)
                asks.append(level)
        depth: Depth = new(Depth)
        _dp_bids(depth, tuple(bids))
        _dp_asks(depth, tuple(asks))
        return depth

    def decode(self, frame: bytes) -> list[Tick]:
        response = self.pb.FeedResponse.FromString(frame)
        if response.type == self.pb.market_info:
            status_name = self.pb.MarketStatus.Name
            for segment, status in response.marketInfo.segmentStatus.items():
                self.market_status[segment] = status_name(status)
            return []
        ticks: list[Tick] = []
        keys = self.keys
        cache = self._prices
        price = self.price
        for upstox_key, feed in response.feeds.items():
            key = keys.get(upstox_key)
            if key is None:
                self.unknown_keys += 1
                continue
            kind = feed.WhichOneof("FeedUnion")
            if kind == "ltpc":
                ltpc = feed.ltpc
                last = price(ltpc.ltp)
                ticks.append(
                    fast_tick(
                        key,
                        self._ts(ltpc.ltt),
                        last,
                        ltpc.ltq,
                        0,
                        ZERO,
                        ZERO,
                        ZERO,
                        price(ltpc.cp),
                        None,
                    )
                )
            elif kind == "fullFeed":
                full = feed.fullFeed
                which = full.WhichOneof("FullFeedUnion")
                if which == "marketFF":
                    market = full.marketFF
                    ltpc = market.ltpc
                    day = None
                    for entry in market.marketOHLC.ohlc:
                        if entry.interval == "1d":
                            day = entry
                            break
                    ltp, cp, ltt = ltpc.ltp, ltpc.cp, ltpc.ltt
                    if day is None:
                        o = h = lo = ZERO
                    else:
                        o, h, lo = day.open, day.high, day.low
                        o = cache.get(o) or price(o)
                        h = cache.get(h) or price(h)
                        lo = cache.get(lo) or price(lo)
                    ticks.append(
                        fast_tick(
                            key,
                            self._last_ts if ltt == self._last_millis else self._ts(ltt),
                            cache.get(ltp) or price(ltp),
                            ltpc.ltq,
                            market.vtt,
                            o,
                            h,
                            lo,
                            cache.get(cp) or price(cp),
                            self._depth(market.marketLevel.bidAskQuote),
                        )
                    )
                elif which == "indexFF":
                    index = full.indexFF
                    ltpc = index.ltpc
                    day = _day_ohlc(index.marketOHLC.ohlc)
                    ticks.append(
                        fast_tick(
                            key,
                            self._ts(ltpc.ltt),
                            price(ltpc.ltp),
                            0,
                            0,
                            price(day.open) if day is not None else ZERO,
                            price(day.high) if day is not None else ZERO,
                            price(day.low) if day is not None else ZERO,
                            price(ltpc.cp),
                            None,
                        )
                    )
            elif kind == "firstLevelWithGreeks":
                first = feed.firstLevelWithGreeks
                ltpc = first.ltpc
                ts = self._ts(ltpc.ltt)
                oi = int(first.oi)
                ticks.append(
                    fast_tick(
                        key,
                        ts,
                        price(ltpc.ltp),
                        ltpc.ltq,
                        first.vtt,
                        ZERO,
                        ZERO,
                        ZERO,
                        price(ltpc.cp),
                        self._depth([first.firstDepth]) if first.HasField("firstDepth") else None,
                        oi,
                    )
                )
                if first.HasField("optionGreeks"):
                    g = first.optionGreeks
                    self.greeks.append(
                        OptionGreeks(
                            key, ts, g.delta, g.gamma, g.theta, g.vega, g.rho, first.iv, oi
                        )
                    )
        return ticks


def _day_ohlc(entries: Any) -> Any:
    for entry in entries:
        if entry.interval == "1d":
            return entry
    return None
