"""Zerodha Kite's limits and endpoints: the numbers the generic broker code reads.

Order limits (research/brokers.md §4.3): Kite allows 10 orders a second, 400 a minute and
5,000 a day per account and answers 429 above that; we stay at 8/s, 350/min and 4,500/day so
that a burst from the terminal leaves headroom for orders placed elsewhere on the same
account (Kite web, the app). Tags are at most 20 letters and digits; an order may be
modified 25 times. The ticker carries 3,000 instruments a connection, 3 connections a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.brokers.errors import CredentialsMissing
from services.brokers.ports import (
    BrokerLimits,
    FeedCapacity,
    InstrumentMaster,
    LoginSpec,
    ProtectionRange,
    RateWindow,
    SessionToken,
)
from services.brokers.registry import BrokerContext, BrokerParts
from services.brokers.throttle import OrderThrottle

NAME = "kite"
TITLE = "Zerodha Kite"
# Must equal the redirect URL registered on the Kite Connect app, character for character.
DEFAULT_REDIRECT = "http://127.0.0.1:5010/kite/callback"
LOGIN = LoginSpec(
    help="Zerodha Kite: browser login, the token kept in the keyring until 06:00 IST",
)

LIMITS = BrokerLimits(
    tag_max_length=20,
    order_windows=(RateWindow(8, 1.0), RateWindow(350, 60.0)),
    orders_per_day=4_500,
    max_modifications=25,
    market_protection=ProtectionRange(supported=True, auto=True, min_percent=1, max_percent=100),
    feed=FeedCapacity(per_connection=3_000, connections=3),
)


@dataclass(frozen=True, slots=True)
class KiteEndpoints:
    """Where the SDK talks to; production by default, a local fake in tests."""

    root: str = "https://api.kite.trade"
    login: str = "https://kite.zerodha.com/connect/login"
    ticker: str = "wss://ws.kite.trade"


def endpoints_from(settings: Mapping[str, Any]) -> KiteEndpoints:
    """Production endpoints, or the overrides in the ``kite`` settings (a local fake)."""
    default = KiteEndpoints()
    return KiteEndpoints(
        root=settings.get("api_root") or default.root,
        login=settings.get("login_url") or default.login,
        ticker=settings.get("ticker_url") or default.ticker,
    )


def build(context: BrokerContext) -> BrokerParts:
    """Kite's adapters on the official SDK (imported here, not at module import)."""
    from services.brokers.kite.execution import KiteBroker
    from services.brokers.kite.feed import KiteFeed
    from services.brokers.kite.gtt import KiteGtt
    from services.brokers.kite.history import KiteHistory
    from services.brokers.kite.instruments import KiteInstruments
    from services.brokers.kite.session import KiteSecrets, KiteSession

    clock = context.clock
    settings = context.settings
    secrets = KiteSecrets(context.secrets) if context.secrets is not None else None
    configured = str(settings.get("api_key") or "")
    if secrets is not None:
        api_key = secrets.api_key(configured or None)
    elif configured:
        api_key = configured
    else:
        raise CredentialsMissing(
            "no Kite API key: set kite.api_key in the settings or run "
            "`dalal credentials set kite`"
        )
    token = context.access_token
    if token is None and secrets is not None:
        token = secrets.valid_token(clock.now())
    endpoints: KiteEndpoints = context.endpoints or endpoints_from(settings)
    options = dict(context.options)  # KiteBroker's knobs: timeout, sleep, lookup_delay...
    throttle = OrderThrottle.for_limits(
        LIMITS,
        clock,
        broker="Kite",
        store=context.counts,
        executor=context.executor,
        **({"sleep": options["sleep"]} if "sleep" in options else {}),
    )
    broker = KiteBroker(
        api_key,
        token,
        endpoints=endpoints,
        clock=clock,
        throttle=throttle,
        on_session_expired=context.on_session_expired,
        **options,
    )
    session = None
    if secrets is not None:
        session = KiteSession(
            secrets,
            clock,
            client=broker,
            redirect_url=str(settings.get("redirect_url") or DEFAULT_REDIRECT),
        )
    history = KiteHistory(broker.history, clock)
    feeds: list[KiteFeed] = []

    def feed(master: InstrumentMaster) -> KiteFeed:
        current = broker.access_token or ""
        made = KiteFeed(
            api_key,
            current,
            context.bus,
            master,
            root=endpoints.ticker,
            on_session_rejected=context.on_session_expired,
            capacity=LIMITS.feed,
        )
        feeds.append(made)
        return made

    def use_token(new: SessionToken) -> None:
        broker.set_access_token(new.access_token)
        for made in feeds:
            made.use_token(new.access_token)

    def use_master(master: InstrumentMaster) -> None:
        history.use_master(master)
        for made in feeds:
            made.use_master(master)

    return BrokerParts(
        NAME,
        session=session,
        instruments=KiteInstruments(broker.instruments, clock),
        execution=broker,
        history=history,
        gtt=KiteGtt(broker),
        feed=feed,
        use_token=use_token,
        use_master=use_master,
        logged_in=token is not None,
    )
