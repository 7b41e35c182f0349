"""Where Breeze lives and the limits we keep with it; production by default, a fake in tests.

Every URL the SDK or the adapter uses is here, so tests exercise the exact production code
with only these values swapped. The SDK keeps its URLs as module constants, which makes them
process-wide: one Breeze account per process (``sdk.load_sdk`` applies the endpoints of the
latest caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.brokers.errors import CredentialsMissing
from services.brokers.ports import (
    BrokerLimits,
    FeedCapacity,
    InstrumentMaster,
    LoginField,
    LoginSpec,
    MarketDataFeed,
    ProtectionRange,
    RateWindow,
    SessionToken,
)
from services.brokers.registry import BrokerContext, BrokerParts

NAME = "breeze"
TITLE = "ICICI Direct Breeze"
# ICICI posts API_Session to the app's redirect URL; a trader whose app is registered on a
# URL that is not loopback pastes it instead (``dalal login breeze --paste``).
API_SESSION_FIELD = LoginField(
    "API_Session",
    "API_Session from ICICI's redirect",
    "session",
    paste=True,
    help="the API_Session from ICICI's redirect (instead of the browser)",
)
LOGIN = LoginSpec(
    help="ICICI Direct Breeze: browser login (or a pasted API_Session), session kept in "
    "the vault until midnight IST",
    fields=(API_SESSION_FIELD,),
)


@dataclass(frozen=True, slots=True)
class BreezeEndpoints:
    api: str = "https://api.icicidirect.com/breezeapi/api/v1/"
    api_v2: str = "https://breezeapi.icicidirect.com/api/v2/"
    order_feed: str = "https://livefeeds.icicidirect.com"
    stream: str = "https://livestream.icicidirect.com"
    ohlc_stream: str = "https://breezeapi.icicidirect.com"
    security_master: str = "https://directlink.icicidirect.com/NewSecurityMaster/SecurityMaster.zip"
    login: str = "https://api.icicidirect.com/apiuser/login"

    @classmethod
    def local(cls, base_url: str) -> BreezeEndpoints:
        """All of Breeze on one local server (the test fake serves every path)."""
        base = base_url.rstrip("/")
        return cls(
            api=f"{base}/breezeapi/api/v1/",
            api_v2=f"{base}/api/v2/",
            order_feed=f"{base}/orderfeed",
            stream=base,
            ohlc_stream=base,
            security_master=f"{base}/SecurityMaster.zip",
            login=f"{base}/apiuser/login",
        )


# Limits published by ICICI (PyPI README, research/wave2.md §1): 10 orders a second including
# square-offs, and 5,000 API calls a day per key, past which every call answers
# ``{"Status": 5, "Error": "Limit exceed: API call per day: "}`` until midnight.
ORDERS_PER_SECOND = 10
CALLS_PER_DAY = 5000

# Instruments per Socket.IO connection. ICICI documents no cap; users report the OHLC stream
# dropping above about 40 instruments (Breeze-Python-SDK#45). The tick stream against our
# fake holds far more (bench/bench_breeze_feed.py measures it), but the fake is not ICICI, so
# we cap at a figure well inside what is reported to work for live ticks.
MAX_INSTRUMENTS_PER_CONNECTION = 100

# History: Breeze answers at most 1,000 candles per request.
MAX_CANDLES_PER_REQUEST = 1000

# The aggressive-limit rule Breeze applies to market orders (PyPI README): the limit sits a
# percentage beyond the last price, but at least a minimum gap, inside the circuit band.
AGGRESSIVE_PERCENT = {
    "cash": Decimal("3"),
    "futures": Decimal("1.5"),
    "options": Decimal("10"),
}
AGGRESSIVE_MIN_GAP = {
    "cash": Decimal("0.05"),
    "futures": Decimal("0.05"),
    "options": Decimal("5"),
}

# Seconds before a REST call is given up (the SDK itself sets no timeout at all).
REQUEST_TIMEOUT = 10.0

# Kept at ICICI's published figures: every call counts against the key's 5,000 a day, and
# the terminal holds back at 4,900 so that a few calls remain for the trader to log in and
# read the order book from ICICI's own site when the day has been heavy.
API_CALLS_PER_DAY_KEPT = 4_900
API_COUNT_NAME = "breeze-api"  # the daily-count store's entry for API calls

LIMITS = BrokerLimits(
    tag_max_length=20,
    order_windows=(RateWindow(ORDERS_PER_SECOND, 1.0),),
    orders_per_day=None,  # every order is an API call: the API-call count caps them
    max_modifications=None,
    market_protection=ProtectionRange(supported=True, auto=True, min_percent=1, max_percent=50),
    feed=FeedCapacity(per_connection=MAX_INSTRUMENTS_PER_CONNECTION, connections=1),
)


def build(context: BrokerContext) -> BrokerParts:
    """Breeze's adapters on the official SDK (imported lazily, inside the adapters)."""
    from platformdirs import user_cache_path

    from services.brokers.breeze.execution import BreezeExecution
    from services.brokers.breeze.feed import BreezeFeed
    from services.brokers.breeze.history import BreezeHistory
    from services.brokers.breeze.instruments import (
        BreezeInstruments,
        MasterCache,
        Masters,
        SecurityMaster,
    )
    from services.brokers.breeze.order_stream import BreezeOrderStream
    from services.brokers.breeze.session import BreezeSecrets, BreezeSession
    from services.brokers.throttle import OrderThrottle

    clock = context.clock
    base_url = context.settings.get("base_url")  # the settings' breeze section (a fake)
    endpoints: BreezeEndpoints = context.endpoints or (
        BreezeEndpoints.local(str(base_url)) if base_url else BreezeEndpoints()
    )
    options = dict(context.options)
    secrets = BreezeSecrets(context.secrets) if context.secrets is not None else None
    configured = str(context.settings.get("api_key") or "") or None
    if secrets is None:
        raise CredentialsMissing(
            "no Breeze credentials: run `dalal credentials set breeze` (api_key, api_secret)"
        )
    api_key = secrets.api_key(configured)
    api_secret = secrets.api_secret()
    token = secrets.token()
    if token is not None and not token.valid_at(clock.now()):
        token = None
    sleep = {"sleep": options["sleep"]} if "sleep" in options else {}
    throttle = OrderThrottle.for_limits(
        LIMITS, clock, broker="Breeze", store=context.counts, executor=context.executor, **sleep
    )
    api_calls = OrderThrottle(
        clock,
        per_day=int(options.pop("api_calls_per_day", API_CALLS_PER_DAY_KEPT)),
        broker=API_COUNT_NAME,
        store=context.counts,
        executor=context.executor,
    )
    cache_dir = options.pop("cache_dir", None)
    cache = MasterCache(cache_dir or user_cache_path("dalal") / "breeze")
    provider = BreezeInstruments(endpoints.security_master, clock, cache=cache)
    masters = Masters(provider, clock)
    execution = BreezeExecution(
        api_key,
        api_secret,
        token,
        masters,
        endpoints=endpoints,
        clock=clock,
        throttle=throttle,
        api_calls=api_calls,
        executor=context.executor,
        on_session_expired=context.on_session_expired,
        bus=context.bus,
        **options,
    )
    redirect = context.settings.get("redirect_url")
    session = BreezeSession(
        secrets,
        clock,
        endpoints=endpoints,
        api_key=configured,
        **({"redirect_url": str(redirect)} if redirect else {}),
    )
    history = BreezeHistory(execution, masters, clock=clock)
    state: dict[str, SessionToken | None] = {"token": token}
    order_stream = BreezeOrderStream(
        execution,
        lambda: state["token"],
        bus=context.bus,
        endpoints=endpoints,
        clock=clock,
        on_session_expired=context.on_session_expired,
    )

    def feed(master: InstrumentMaster) -> MarketDataFeed:
        if isinstance(master, SecurityMaster):
            masters.set(master)
        return BreezeFeed(
            context.bus,
            masters,
            lambda: state["token"],
            endpoints=endpoints,
            clock=clock,
            on_session_expired=context.on_session_expired,
        )

    def use_token(new: SessionToken) -> None:
        state["token"] = new
        execution.use_token(new)

    return BrokerParts(
        NAME,
        session=session,
        instruments=provider,
        execution=execution,
        history=history,
        feed=feed,
        order_stream=order_stream,
        use_token=use_token,
        logged_in=token is not None,
    )
