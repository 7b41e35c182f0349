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

from services.brokers import fast_build
from services.brokers.fast_build import fast_tick
from services.clock import IST
from services.domain import ZERO, Depth, DepthLevel, OptionGreeks, Tick

_CACHE_LIMIT = 200_000

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
        new = fast_build.new
        set_price = fast_build.set_level_price
        set_qty = fast_build.set_level_quantity
        set_orders = fast_build.set_level_orders
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
        fast_build.set_bids(depth, tuple(bids))
        fast_build.set_asks(depth, tuple(asks))
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
