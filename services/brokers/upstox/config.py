"""Where Upstox lives and what it allows: endpoints, order and API limits, feed caps.

Every number here is Upstox's published figure (research/brokers.md §4.3, wave2.md §1):
order APIs 10/s, 500/min and 2,000 per 30 minutes per user; other APIs 50/s; the Market
Data Feed V3 allows 2 connections per user and, with modes mixed, 2,000 ltpc keys and
1,500 full keys. Upstox answers 429 (UDAPI10005) above a limit with no Retry-After, so the
terminal keeps below them on its own side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from services.brokers.ports import (
    BrokerLimits,
    FeedCapacity,
    FeedMode,
    InstrumentMaster,
    LoginSpec,
    MarketDataFeed,
    ProtectionRange,
    RateWindow,
    SessionToken,
)
from services.brokers.registry import BrokerContext, BrokerParts

BROKER = "upstox"
API_VERSION = "2.0"  # the Api-Version header the v2 endpoints require

ORDERS_PER_SECOND = 10
ORDERS_PER_MINUTE = 500
ORDERS_PER_30_MINUTES = 2_000
OTHER_PER_SECOND = 50

TAG_MAX_LENGTH = 40
# Upstox's market protection for MARKET and SL-M orders: -1 (automatic) or 0..25 percent.
MARKET_PROTECTION_AUTO = -1
MARKET_PROTECTION_MAX = 25

FEED_CONNECTIONS = 2
FEED_LTPC_KEYS = 2_000
FEED_FULL_KEYS = 1_500
FEED_GREEKS_KEYS = 2_000  # option_greeks, combined across modes (wave2.md §1)

# The access token is valid until 03:30 IST the next morning; there is no refresh token.
TOKEN_EXPIRY = time(3, 30)


@dataclass(frozen=True, slots=True)
class UpstoxEndpoints:
    """Upstox's addresses; production by default, a loopback fake in tests.

    ``host`` and ``order_host`` become the SDK's ``Configuration.host`` and ``order_host``
    (the SDK sends place/modify/cancel to the second). The feed URLs are not configured:
    the authorize calls return them, single-use, for each connection.
    """

    host: str = "https://api.upstox.com"
    order_host: str = "https://api-hft.upstox.com"
    login: str = "https://api.upstox.com/v2/login/authorization/dialog"
    instruments: str = (
        "https://assets.upstox.com/market-quote/instruments/exchange/complete.json.gz"
    )
    # Verify TLS certificates (always in production; the loopback fake speaks plain HTTP).
    verify_tls: bool = True

    @classmethod
    def local(cls, base_url: str) -> UpstoxEndpoints:
        """Every Upstox address on one local server (a fake, a recording proxy)."""
        base = base_url.rstrip("/")
        return cls(
            host=base,
            order_host=base,
            login=f"{base}/v2/login/authorization/dialog",
            instruments=f"{base}/market-quote/instruments/exchange/complete.json.gz",
            verify_tls=not base.startswith("http://"),
        )


def limits() -> BrokerLimits:
    """Upstox's limits as the shared throttle and the conformance suite read them."""
    return BrokerLimits(
        tag_max_length=TAG_MAX_LENGTH,
        order_windows=(
            RateWindow(ORDERS_PER_SECOND, 1.0),
            RateWindow(ORDERS_PER_MINUTE, 60.0),
            RateWindow(ORDERS_PER_30_MINUTES, 1800.0),
        ),
        orders_per_day=None,
        tag_alphanumeric=True,
        max_modifications=None,
        market_protection=ProtectionRange(
            supported=True, auto=True, min_percent=1, max_percent=MARKET_PROTECTION_MAX
        ),
        feed=FEED_CAPACITY,
    )


FEED_CAPACITY = FeedCapacity(
    per_connection=FEED_LTPC_KEYS,
    connections=FEED_CONNECTIONS,
    per_mode={
        FeedMode.LTP: FEED_LTPC_KEYS,
        FeedMode.QUOTE: FEED_FULL_KEYS,
        FeedMode.FULL: FEED_FULL_KEYS,
        FeedMode.GREEKS: FEED_GREEKS_KEYS,
    },
)
API_WINDOWS = (RateWindow(OTHER_PER_SECOND, 1.0),)
LIMITS = limits()


NAME = BROKER
TITLE = "Upstox"
LOGIN = LoginSpec(help="Upstox: browser login (OAuth), token kept in the vault until 03:30 IST")


def build(context: BrokerContext) -> BrokerParts:
    """Upstox's adapters on the official SDK (imported here, not at module import).

    One ``UpstoxApi`` (one SDK client, one token) serves execution, history, the feed and
    the order stream, so ``use_token`` reaches them all at once. Orders go through the
    order throttle (10/s, 500/min, 2,000/30 min); every other call through the API
    throttle (50/s). ``context.options`` are knobs for tests: ``timeout``, ``sleep``,
    ``lookup_delay``, and ``feed`` (a dict for the feed and the order stream).
    """
    from services.brokers.throttle import OrderThrottle
    from services.brokers.upstox.client import UpstoxApi
    from services.brokers.upstox.execution import UpstoxExecution
    from services.brokers.upstox.feed import UpstoxFeed
    from services.brokers.upstox.history import UpstoxHistory
    from services.brokers.upstox.instruments import MasterCache, UpstoxInstruments
    from services.brokers.upstox.portfolio import UpstoxOrderStream
    from services.brokers.upstox.session import UpstoxSession

    clock = context.clock
    base_url = context.settings.get("base_url")  # the settings' upstox section (a fake)
    endpoints = context.endpoints or (
        UpstoxEndpoints.local(str(base_url)) if base_url else UpstoxEndpoints()
    )
    options = dict(context.options)
    sleep = {"sleep": options["sleep"]} if "sleep" in options else {}
    feed_options = dict(options.pop("feed", {}) or {})
    session = None
    if context.secrets is not None:
        session = UpstoxSession(
            context.secrets,
            endpoints=endpoints,
            redirect_uri=str(context.settings.get("redirect_url") or "") or None,
            clock=clock,
        )
    token = context.access_token
    if token is None and session is not None:
        current = session.current(clock.now())
        token = current.access_token if current is not None else None
    api_throttle = OrderThrottle(
        clock, windows=API_WINDOWS, broker="Upstox API", max_wait=10.0, **sleep
    )
    api = UpstoxApi(
        token,
        endpoints=endpoints,
        timeout=float(options.get("timeout", 7.0)),
        executor=context.executor,
        throttle=api_throttle,
        on_session_expired=context.on_session_expired,
    )
    instruments = UpstoxInstruments(endpoints, clock=clock)
    cache = MasterCache(instruments, clock)
    instruments.cache = cache
    throttle = OrderThrottle.for_limits(
        LIMITS,
        clock,
        broker=TITLE,
        store=context.counts,
        executor=context.executor,
        **sleep,
    )
    execution = UpstoxExecution(
        api,
        cache,
        throttle=throttle,
        clock=clock,
        algo_name=str(context.settings.get("algo_name") or "") or None,
        lookup_delay=float(options.get("lookup_delay", 0.5)),
        **sleep,
    )
    from services.brokers.upstox.gtt import UpstoxGtt, UpstoxGttVenue

    order_stream = UpstoxOrderStream(api, context.bus, execution, clock=clock, **feed_options)
    sockets: list[UpstoxFeed | UpstoxOrderStream] = [order_stream]
    # Upstox's own single-trigger GTTs (services/brokers/upstox/gtt.py), the desktop's GTT
    # venue when Upstox is the execution venue (BrokerParts.gtt).
    execution.gtt = UpstoxGtt(execution)

    def feed(master: InstrumentMaster) -> MarketDataFeed:
        cache.set(master)
        built = UpstoxFeed(api, context.bus, master, clock=clock, **feed_options)
        sockets.append(built)
        return built

    def use_token(new: SessionToken) -> None:
        api.set_access_token(new.access_token)
        for socket in sockets:
            socket.renew(new.access_token)

    return BrokerParts(
        NAME,
        session=session,
        instruments=instruments,
        execution=execution,
        history=UpstoxHistory(api, cache, clock=clock),
        feed=feed,
        order_stream=order_stream,
        gtt=UpstoxGttVenue(execution.gtt),
        use_token=use_token,
        logged_in=token is not None,
    )
