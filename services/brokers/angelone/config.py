"""Angel One's limits and endpoints, and ``build``: the numbers the generic broker code reads.

Limits come from Angel's rate-limit page as summarised in research/wave2.md §1 (they
supersede the older 20/s figure): place, modify and cancel count *together* against 9 a
second, 500 a minute and 1,000 an hour per client code; an excess is answered with HTTP 403
"Access denied because of exceeding rate limit". ``ordertag`` must be shorter than 20
characters (AB4008). getCandleData: 3 a second; the order and trade books, positions and
holdings: 1 a second each.

Market protection: Angel has no protection field; it turns every MARKET order into a limit
inside its own band (automatic), and the adapter honours an explicit percentage by sending
the limit itself (``mapping.protected_limit``), so every percentage the domain allows works.

The feed: SmartWebSocketV2 takes 1,000 token subscriptions per connection (E1002 beyond);
the adapter pools up to three sockets, so the feed as a whole carries 3,000 (declared as the
port's capacity, since the port sees one feed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.brokers.ports import (
    BrokerLimits,
    FeedCapacity,
    LoginField,
    LoginSpec,
    ProtectionRange,
    RateWindow,
    SessionToken,
)
from services.brokers.registry import BrokerContext, BrokerParts

NAME = "angelone"
TITLE = "Angel One"
BROKER_ID = NAME
DISPLAY_NAME = TITLE
TOTP_FIELD = LoginField(
    "totp",
    "Angel One TOTP code (6 digits)",
    "totp",
    secret=True,
    help="the six-digit code (default: generated from the stored totp_secret, or asked)",
)
LOGIN = LoginSpec(
    help="Angel One: client code, PIN and TOTP (no browser); the session lasts until "
    "midnight IST",
    browser=False,
    fields=(TOTP_FIELD,),
)

ORDER_WINDOWS = (RateWindow(9, 1.0), RateWindow(500, 60.0), RateWindow(1000, 3600.0))
HISTORY_CALLS_PER_SECOND = 3.0
BOOK_INTERVAL = 1.0  # order book, trade book, positions, holdings: 1 a second each

TOKENS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 3
MAX_TAG_LENGTH = 19

LIMITS = BrokerLimits(
    tag_max_length=MAX_TAG_LENGTH,
    order_windows=ORDER_WINDOWS,
    orders_per_day=None,
    market_protection=ProtectionRange(supported=True, auto=True, min_percent=1, max_percent=100),
    feed=FeedCapacity(per_connection=TOKENS_PER_CONNECTION * MAX_CONNECTIONS, connections=1),
)


STREAM = "wss://smartapisocket.angelone.in/smart-stream"


@dataclass(frozen=True, slots=True)
class AngelEndpoints:
    """The SDK's REST root, the market-data socket, the daily instrument master, and the
    order-update socket.

    ``order_stream`` left empty follows ``stream``: Angel's own host when the market feed is
    Angel's, otherwise the same host as the overridden feed (a local fake serves both), so
    overriding the feed alone never leaves the order socket dialling Angel.
    """

    root: str = "https://apiconnect.angelone.in"
    stream: str = STREAM
    scrip_master: str = (
        "https://margincalculator.angelone.in/OpenAPI_File/files/OpenAPIScripMaster.json"
    )
    order_stream: str = ""

    def order_updates_url(self) -> str:
        if self.order_stream:
            return self.order_stream
        if self.stream == STREAM:
            return ORDER_STREAM
        parts = urlsplit(self.stream)
        return urlunsplit((parts.scheme, parts.netloc, "/smart-order-update", "", ""))


ORDER_STREAM = "wss://tns.angelone.in/smart-order-update"  # SmartWebSocketOrderUpdate's


def endpoints_from(settings: Mapping[str, Any]) -> AngelEndpoints:
    """Production endpoints, or the overrides in the ``angelone`` settings (a local fake)."""
    default = AngelEndpoints()
    return AngelEndpoints(
        root=str(settings.get("api_root") or default.root),
        stream=str(settings.get("stream_url") or default.stream),
        scrip_master=str(settings.get("scrip_master_url") or default.scrip_master),
        order_stream=str(settings.get("order_stream_url") or ""),
    )


def build(context: BrokerContext) -> BrokerParts:
    """Angel One's adapters on smartapi-python (imported lazily, in a worker thread)."""
    from services.brokers.angelone.execution import AngelExecution, AngelTokens
    from services.brokers.angelone.feed import AngelFeed
    from services.brokers.angelone.history import AngelHistory
    from services.brokers.angelone.instruments import (
        AngelInstrumentProvider,
        AngelInstruments,
        ScripMasterCache,
    )
    from services.brokers.angelone.order_stream import AngelOrderStream
    from services.brokers.angelone.session import AngelSecrets, AngelSession
    from services.brokers.ports import InstrumentMaster, MarketDataFeed
    from services.brokers.throttle import OrderThrottle
    from services.storage.paths import default_cache_dir

    clock = context.clock
    endpoints = context.endpoints or endpoints_from(context.settings)
    options = dict(context.options)
    secrets = AngelSecrets(context.secrets) if context.secrets is not None else None
    configured_key = str(context.settings.get("api_key") or "")
    api_key = secrets.api_key(configured_key or None) if secrets is not None else configured_key
    tokens: AngelTokens | None = None
    if context.access_token is not None:
        tokens = AngelTokens.from_token(
            SessionToken(context.access_token, clock.now(), dict(options.pop("session", {})))
        )
    elif secrets is not None:
        stored = secrets.current(clock.now())
        if stored is not None:
            tokens = AngelTokens.from_token(stored)
    cache_dir = context.settings.get("cache_dir")
    cache = ScripMasterCache(Path(str(cache_dir)) if cache_dir else default_cache_dir())
    holder = AngelInstruments()
    provider = AngelInstrumentProvider(endpoints.scrip_master, clock, cache=cache, holder=holder)
    throttle = OrderThrottle.for_limits(
        LIMITS,
        clock,
        broker=TITLE,
        store=context.counts,
        executor=context.executor,
        **({"sleep": options["sleep"]} if "sleep" in options else {}),
    )
    execution = AngelExecution(
        api_key,
        tokens,
        holder,
        throttle=throttle,
        endpoints=endpoints,
        clock=clock,
        executor=context.executor,
        on_session_expired=context.on_session_expired,
        master_loader=provider.fetch_master,
        bus=context.bus,
        **{k: v for k, v in options.items() if k in _EXECUTION_OPTIONS},
    )
    order_stream = AngelOrderStream(
        execution,
        endpoints.order_updates_url(),
        bus=context.bus,
        on_session_expired=context.on_session_expired,
        **{
            name: options[key]
            for key, name in _ORDER_STREAM_OPTIONS.items()
            if key in options
        },
    )
    history = AngelHistory(
        execution,
        holder,
        clock=clock,
        sleep=options.get("sleep"),
        master_loader=provider.fetch_master,
    )
    session = None
    if secrets is not None:
        session = AngelSession(secrets, clock, login=execution.login)
    feeds: list[AngelFeed] = []

    def feed(master: InstrumentMaster) -> MarketDataFeed:
        if master is not holder.master:
            holder.use(master)
        if execution.tokens is None:
            from services.brokers.errors import SessionExpired

            raise SessionExpired("no Angel One session today: run `dalal login angelone`")
        made = AngelFeed(
            api_key,
            execution.tokens,
            holder,
            context.bus,
            endpoints=endpoints,
            on_session_rejected=context.on_session_expired,
            **{k: v for k, v in options.items() if k in _FEED_OPTIONS},
        )
        feeds.append(made)
        return made

    def use_token(token: SessionToken) -> None:
        new = AngelTokens.from_token(token)
        execution.set_tokens(new)
        for made in feeds:
            made.set_tokens(new)

    return BrokerParts(
        NAME,
        session=session,
        instruments=provider,
        execution=execution,
        history=history,
        feed=feed,
        order_stream=order_stream,
        use_token=use_token,
        logged_in=tokens is not None,
    )


_EXECUTION_OPTIONS = frozenset(
    {
        "timeout",
        "lookup_attempts",
        "lookup_delay",
        "book_interval",
        "sleep",
        "tag_prefix",
        "confirm_after",
    }
)
_ORDER_STREAM_OPTIONS = {
    "order_ping_every": "ping_every",
    "order_stale_after": "stale_after",
    "order_first_delay": "first_delay",
}
_FEED_OPTIONS = frozenset({"stale_after", "ping_every", "per_connection", "max_connections"})
