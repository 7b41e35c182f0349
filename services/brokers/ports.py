"""The five ports every broker adapter implements, and the small values they exchange.

A broker is split along what the rest of the terminal needs from it, so that the data feed
and the execution venue can be chosen separately (paper orders on live Kite data) and a
broker that lacks one side (a data-only provider) still plugs in:

==================  ========================================  =========================
port                used by                                   file in the broker folder
==================  ========================================  =========================
BrokerSession       login commands, the Broker menu, live.py  session.py
InstrumentProvider  live.py (daily master), feed, history     instruments.py
ExecutionClient     the order manager, reconciliation, risk   execution.py
MarketDataFeed      live.py (subscriptions from the views)    feed.py
HistoryProvider     backfill, charts, models                  history.py
==================  ========================================  =========================

Optional: ``GttVenue`` (GTTs held at the broker; Kite's ``execution.py``/``gtt.py``).

Every port speaks the domain (``services.domain``): canonical keys ``EXCHANGE:SYMBOL``,
``Decimal`` prices, aware datetimes, and the error taxonomy of ``services.brokers.errors``.
Nothing here names a broker; broker words stay inside the broker's folder.

The contract tables in each docstring are what ``tests/brokers/conformance`` checks.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from services.broker import OrderChange
from services.brokers.errors import HistoryNotCovered, InstrumentUnknown
from services.domain import (
    Bar,
    Fill,
    Funds,
    Holding,
    Instrument,
    MarketProtection,
    Order,
    OrderRequest,
    Position,
    Timeframe,
)
from services.gtt import Gtt, LegChange

__all__ = [
    "BrokerId",
    "BrokerLimits",
    "BrokerSession",
    "CachedMasterProvider",
    "Coverage",
    "ExecutionClient",
    "FeedCapacity",
    "FeedMode",
    "FeedStatus",
    "GttVenue",
    "HistoryProvider",
    "InstrumentMaster",
    "InstrumentProvider",
    "InteractiveSession",
    "Listing",
    "LoginField",
    "LoginKind",
    "LoginPrompt",
    "LoginSpec",
    "MarketDataFeed",
    "MarketProtection",
    "OrderChange",
    "OrderUpdateStream",
    "ProtectionRange",
    "RateWindow",
    "SecretStore",
    "SessionToken",
    "TokenHandover",
]

# The broker's own id for an instrument: Kite's int token, Upstox's ``NSE_EQ|INE002A01018``,
# Angel's string symbol token, Breeze's stock code.
BrokerId = int | str


# -- limits and configuration -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most ``limit`` sends in any sliding ``seconds`` (a day window is an IST calendar day)."""

    limit: int
    seconds: float

    @property
    def label(self) -> str:
        names = {1.0: "a second", 60.0: "a minute", 1800.0: "30 minutes", 3600.0: "an hour"}
        return f"{self.limit:,} orders {names.get(self.seconds, f'in {self.seconds:g} s')}"


@dataclass(frozen=True, slots=True)
class ProtectionRange:
    """What market protection a broker accepts: its automatic mode and a percentage range.

    ``auto`` False means the broker has no automatic protection: the adapter must send an
    explicit percentage (or, with ``supported`` False, a marketable limit price instead).
    """

    supported: bool = True
    auto: bool = True
    min_percent: int = 1
    max_percent: int = 100


class FeedMode(enum.StrEnum):
    """How much a subscription carries: last price, a quote with OHLC/volume, or full depth.

    ``GREEKS`` is an option's last price and best bid/ask with the greeks its broker
    computes (``OptionGreeks`` on the ``GREEKS`` topic): Upstox's ``option_greeks`` mode.
    A broker that streams no greeks refuses it (``errors.unsupported_mode``).
    """

    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"
    GREEKS = "option_greeks"


@dataclass(frozen=True, slots=True)
class FeedCapacity:
    """What one data connection can carry; ``per_mode`` caps a mode below ``per_connection``."""

    per_connection: int
    connections: int = 1
    per_mode: Mapping[FeedMode, int] = field(default_factory=dict)

    def limit(self, mode: FeedMode) -> int:
        return min(self.per_connection, self.per_mode.get(mode, self.per_connection))


@dataclass(frozen=True, slots=True)
class BrokerLimits:
    """A broker's limits, from its ``config.py``: the domain never hard-codes them.

    ``order_windows`` feed the ``OrderThrottle`` (kept below the broker's published limits,
    leaving headroom for orders from the broker's own apps); ``orders_per_day`` is the daily
    count that survives a restart.
    """

    tag_max_length: int
    order_windows: tuple[RateWindow, ...]
    orders_per_day: int | None = None
    tag_alphanumeric: bool = True
    max_modifications: int | None = None
    market_protection: ProtectionRange = ProtectionRange()
    feed: FeedCapacity | None = None

    def check_tag(self, tag: str) -> str | None:
        """Return why ``tag`` cannot be sent to this broker, or ``None`` when it can."""
        if len(tag) > self.tag_max_length:
            return f"order tag {tag!r} is longer than {self.tag_max_length} characters"
        if self.tag_alphanumeric and not tag.isalnum():
            return f"order tag {tag!r} must be letters and digits only"
        return None


# -- session ----------------------------------------------------------------------------------


class LoginKind(enum.StrEnum):
    """How the trader logs in: a browser redirect carrying a code, or a TOTP typed/derived."""

    REDIRECT = "redirect"
    TOTP = "totp"


@dataclass(frozen=True, slots=True)
class LoginField:
    """A value a login flow may need from the trader: a TOTP code typed, a session pasted.

    ``name`` is its key in ``complete_login``'s callback; ``option`` the ``dalal login``
    flag that gives it (``--totp``); ``secret`` hides it while typed; ``paste`` makes it an
    alternative to the browser (``dalal login BROKER --paste`` asks for it up front).
    """

    name: str
    label: str
    option: str
    secret: bool = False
    paste: bool = False
    help: str = ""


# What a flow calls when it needs a field the caller did not give (a terminal's prompt, a
# desktop dialog); it returns the trader's answer.
LoginPrompt = Callable[[LoginField], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class LoginSpec:
    """How a broker's login looks from outside, read without building the broker (each
    ``config.py`` has ``LOGIN``): the command's help, whether a browser is involved (a
    redirect URL and a time limit then apply), and the fields the trader may supply."""

    help: str = "the day's login, token kept in the keyring until it expires"
    browser: bool = True
    fields: tuple[LoginField, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionToken:
    """The day's session. ``extra`` holds other per-day secrets (a feed token, a user id)."""

    access_token: str = field(repr=False)
    expires_at: datetime
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def valid_at(self, now: datetime) -> bool:
        return now < self.expires_at


class SecretStore(Protocol):
    """Keyring-backed storage by entry name (``services.security.CredentialStore`` is one).

    Credentials live under the broker's name (``kite``), the day's session under
    ``<name>-session``; values never reach a log, the database or an exception message.
    """

    def get(self, broker: str) -> dict[str, str] | None: ...

    def set(self, broker: str, fields: dict[str, str]) -> None: ...

    def delete(self, broker: str) -> bool: ...


@runtime_checkable
class BrokerSession(Protocol):
    """Login flow, token expiry and renewal, and where the day's token is kept.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    login_url()          must:   the page to open for a REDIRECT login; None for TOTP
                         raises: CredentialsMissing
                         timing: instant, no network
    complete_login(cb)   must:   exchange the redirect's fields (request_token, code, ...) or
                                 {"totp": ...} for a SessionToken, keep it in the SecretStore
                                 under "<broker>-session", return it
                         raises: SessionExpired (code refused), CredentialsMissing,
                                 BrokerUnavailable
                         timing: one REST round trip, off the loop
    current(now)         must:   the stored token if still valid at ``now``, else None
                         raises: never; timing: instant
    renew(now)           must:   a new token without the trader when the broker allows it
                                 (TOTP), else None
                         raises: as complete_login; timing: one round trip
    forget()             must:   drop the stored token (the broker refused it)
                         raises: never; timing: instant
    ===================  =====================================================================

    The interactive flow around ``login_url``/``complete_login`` (catching the redirect on
    the loopback address) is generic (``services.brokers.login``); a broker whose flow
    differs implements ``InteractiveSession.login`` as well.
    """

    broker: str
    login_kind: LoginKind

    def login_url(self) -> str | None: ...

    async def complete_login(self, callback: Mapping[str, str]) -> SessionToken: ...

    def current(self, now: datetime) -> SessionToken | None: ...

    async def renew(self, now: datetime) -> SessionToken | None: ...

    def forget(self) -> None: ...


@runtime_checkable
class InteractiveSession(BrokerSession, Protocol):
    """A session with its own interactive flow (Kite: a nonce in ``redirect_params``).

    ``login(open_browser, within=, on_listening=, values=, prompt=)`` must do the whole
    flow: open the login page with ``open_browser`` (or use the stored TOTP secret), store
    and return the token; ``on_listening(url)`` tells a CLI what to print. ``values`` are
    the ``LoginField``s the caller already has (a code given on the command line, a pasted
    session: then no browser); ``prompt`` asks the trader for one the flow needs and was not
    given (without it, a missing field is ``CredentialsMissing``). The flow never reads a
    terminal or shows a window itself. Raises as ``complete_login``, plus ``BrokerError``
    when cancelled or not completed within ``within`` seconds.
    """

    async def login(
        self,
        open_browser: Callable[[str], object],
        *,
        within: float = 300.0,
        on_listening: Callable[[str], None] | None = None,
        values: Mapping[str, str] | None = None,
        prompt: LoginPrompt | None = None,
    ) -> SessionToken: ...


@runtime_checkable
class TokenHandover(Protocol):
    """A session that takes the day's token from a login made elsewhere: the trader logs in
    once on the desktop, which hands the token to its order node (``POST /v1/session/NAME``).

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    adopt(token, at)     must:   keep ``token`` as ``complete_login`` would have (same store,
                                 the broker's expiry counted from ``at``), return it
                         raises: never for a non-empty token (the broker judges it on the
                                 next call, which raises SessionExpired if it is bad)
                         timing: blocking (the keyring): call it off the loop
    ===================  =====================================================================

    A broker whose day's session is more than one token (ICICI's user id, Angel One's feed
    token) cannot be handed over this way and does not implement it.
    """

    def adopt(self, access_token: str, login_at: datetime) -> SessionToken: ...


# -- instruments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """One instrument as a broker lists it: the domain record plus the broker's own id."""

    instrument: Instrument
    broker_id: BrokerId

    @property
    def key(self) -> str:
        return self.instrument.key


class InstrumentMaster:
    """A day's instrument master: canonical key <-> broker id, with lot, tick, expiry, freeze.

    Built by an ``InstrumentProvider``; lookups are dictionary reads, safe on the event loop
    and on an SDK thread (the master is never mutated after construction).
    """

    def __init__(self, broker: str, day: date | None, listings: Iterable[Listing]) -> None:
        self.broker = broker
        self.day = day
        self._by_key: dict[str, Listing] = {}
        self._by_id: dict[BrokerId, Listing] = {}
        for listing in listings:
            self._by_key[listing.key] = listing
            self._by_id[listing.broker_id] = listing

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Listing]:
        return iter(self._by_key.values())

    def instruments(self) -> list[Instrument]:
        return [listing.instrument for listing in self._by_key.values()]

    def listing(self, key: str) -> Listing:
        found = self._by_key.get(key)
        if found is None:
            raise InstrumentUnknown(self._unknown(key))
        return found

    def instrument(self, key: str) -> Instrument:
        return self.listing(key).instrument

    def broker_id(self, key: str) -> BrokerId:
        return self.listing(key).broker_id

    def key_of(self, broker_id: BrokerId) -> str:
        found = self._by_id.get(broker_id)
        if found is None:
            raise InstrumentUnknown(
                f"{self.broker} id {broker_id!r} is not in the instrument master"
            )
        return found.key

    def keys_by_id(self) -> dict[BrokerId, str]:
        """The reverse map a feed decoder needs (broker id -> canonical key)."""
        return {bid: listing.key for bid, listing in self._by_id.items()}

    def _unknown(self, key: str) -> str:
        if not self._by_key:
            return f"{key}: the {self.broker} instrument master is not loaded yet"
        return f"{key} is not in the {self.broker} instrument master of {self.day or 'today'}"


@runtime_checkable
class InstrumentProvider(Protocol):
    """The broker's daily instrument master.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    fetch_master()       must:   download and parse today's master into an InstrumentMaster:
                                 exact tick size, lot size, expiry, strike, freeze quantity
                                 when the broker publishes it; rows it cannot map are skipped
                                 and counted, never guessed; every canonical key round-trips
                                 (master.key_of(master.broker_id(k)) == k) and every
                                 instrument's ``token`` is ``str`` of its broker id
                         raises: SessionExpired, BrokerUnavailable, DataError (unreadable)
                         timing: a download of up to tens of MB, off the loop; parsing in a
                                 worker thread
    master lookups       raises: InstrumentUnknown for a key not listed
                         timing: dictionary reads
    ===================  =====================================================================

    The morning reload is ``services.brokers.live``'s job. A provider whose master can be
    rebuilt from the instrument records alone also implements ``CachedMasterProvider``, and
    live.py then downloads it once a day into the profile database; others cache their own
    files (Breeze keeps the day's zip).
    """

    broker: str

    async def fetch_master(self) -> InstrumentMaster: ...


@runtime_checkable
class CachedMasterProvider(InstrumentProvider, Protocol):
    """``master_from_cache(instruments, day)``: the day's master rebuilt, without a download,
    from instruments cached in the profile database (each ``token`` is ``str(broker_id)``;
    this turns it back into the broker's id type). CPU only; called in a worker thread."""

    def master_from_cache(
        self, instruments: Iterable[Instrument], day: date
    ) -> InstrumentMaster: ...


# -- execution --------------------------------------------------------------------------------


@runtime_checkable
class ExecutionClient(Protocol):
    """Orders and the account: what the order manager, risk and reconciliation talk to.

    The broker is the source of truth; adapters push what happens to orders onto the event
    bus (``ORDERS``, ``FILLS``, ``POSITIONS``, ``FUNDS``) and the snapshot methods exist for
    reconciliation and restarts. All methods are coroutines; blocking SDK calls run in an
    executor.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    place_order(req)     must:   send with ``req.tag`` (the order manager always sets one;
                                 length and alphabet from ``limits``) and return the
                                 acknowledged Order (PENDING / OPEN / TRIGGER_PENDING, the
                                 broker's order id); a send whose answer is lost (timeout,
                                 dropped socket, gateway page) is resolved with order_by_tag
                                 before any retry: never two orders for one tag
                         raises: OrderRejected and its subclasses (InvalidInput,
                                 InsufficientFunds, IpNotAllowed, InstrumentUnknown,
                                 ThrottleLimited), SessionExpired, RateLimited; OutcomeUnknown
                                 only when the tag cannot be resolved
                         timing: one REST round trip plus the throttle's wait (<= max_wait)
    modify_order(id, c)  must:   change a working order; return its state after the change
    cancel_order(id)     raises: OrderNotFound, OrderRejected (not working), as above
                         timing: one or two round trips
    order_status(id)     must:   the order's latest state at the broker
                         raises: OrderNotFound; timing: one round trip
    order_by_tag(tag)    must:   the order placed today with our tag, or None
                         raises: SessionExpired, BrokerUnavailable; timing: one round trip
    orders() fills()     must:   today's snapshots, for reconciliation and restarts
    positions()          raises: SessionExpired, BrokerUnavailable, RateLimited
    holdings() funds()   timing: one round trip each
    ===================  =====================================================================
    """

    name: str
    limits: BrokerLimits

    async def place_order(self, request: OrderRequest) -> Order: ...

    async def modify_order(self, order_id: str, change: OrderChange) -> Order: ...

    async def cancel_order(self, order_id: str) -> Order: ...

    async def order_status(self, order_id: str) -> Order: ...

    async def order_by_tag(self, tag: str) -> Order | None: ...

    async def orders(self) -> list[Order]: ...

    async def fills(self) -> list[Fill]: ...

    async def positions(self) -> list[Position]: ...

    async def holdings(self) -> list[Holding]: ...

    async def funds(self) -> Funds: ...


@runtime_checkable
class GttVenue(Protocol):
    """Good-till-triggered orders held *at the broker*: they fire when the terminal is closed.

    ``BrokerParts.gtt`` holds it (Kite: single and two-leg OCO; Upstox: single only). The
    terminal's own book (``services.gtt.GttBook``) is what the paper venue, and any venue
    without this port, offers instead: it fires only while the terminal runs.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    title                the broker's name as the trader knows it ("Zerodha"), for "held at"
    oco                  whether ``place_oco`` is offered; when False it raises NotOffered
    place_single(t, o,   must:   rest ``o`` at the broker until the price reaches ``t`` from
      last_price)                where ``last_price`` is; return the Gtt as the broker then
                                 reports it, with the broker's own id
                         raises: InvalidInput (an order the broker's GTT cannot carry, said
                                 before anything is sent), InstrumentUnknown, SessionExpired
    place_oco(stop, so,  must:   one GTT with the stop leg below ``last_price`` (leg 0) and the
      target, to, lp)            target above (leg 1); the first reached fires, the other is void
                         raises: NotOffered when ``oco`` is False; otherwise as place_single
    modify(id, changes,  must:   move an active GTT's triggers and limit prices in place (its
      last_price)                id, kind, sides and quantities stay), checked by
                                 ``services.gtt.changed_legs``; return it as the broker reports it
                         raises: GttError (not active, a trigger on the wrong side), as place_*
    cancel(id)           must:   delete the broker's GTT; return it as the broker reports it
                         raises: InvalidInput (not active, unknown id)
    gtts()               must:   every GTT on the account, as the broker reports it now
                         timing: one round trip each (blocking SDK calls in an executor)
    ===================  =====================================================================
    """

    title: str
    oco: bool

    async def place_single(
        self, trigger: Decimal, order: OrderRequest, last_price: Decimal
    ) -> Gtt: ...

    async def place_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
        last_price: Decimal,
    ) -> Gtt: ...

    async def modify(
        self, gtt_id: int | str, changes: list[LegChange], last_price: Decimal
    ) -> Gtt: ...

    async def cancel(self, gtt_id: int | str) -> Gtt: ...

    async def gtts(self) -> list[Gtt]: ...


# -- market data ------------------------------------------------------------------------------


@runtime_checkable
class OrderUpdateStream(Protocol):
    """An execution client's own order-update socket, for a broker whose order updates do
    not come on the market feed (Upstox's portfolio stream; Kite's come on the ticker).

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    start()              must:   connect and keep reconnecting (as a feed does); publish each
                                 update as an ``Order`` on the ORDERS topic and its state on
                                 CONNECTION (component ``orders:<broker>``)
                         raises: never; timing: instant (the socket connects in the loop)
    stop()               must:   close the socket and stop reconnecting
                         raises: never; timing: instant
    ===================  =====================================================================

    ``BrokerParts.order_stream`` holds it; ``live.py`` starts and stops it with the feed,
    and ``BrokerParts.use_token`` hands it a new day's token.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """A feed's health as the status bar and ``check-connections`` show it."""

    connected: bool
    subscribed: int
    connects: int  # successful connections since start: > 1 means it reconnected
    silent_for: float | None  # seconds since the last message (heartbeats count), None if never
    stale: bool  # silent past the feed's stale threshold: it is being reconnected
    detail: str = ""


@runtime_checkable
class MarketDataFeed(Protocol):
    """A live stream of domain ``Tick``s on the event bus's ``TICKS`` topic.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    start() / stop()     must:   connect / disconnect in the background, publishing
                                 ConnectionState (``component``) on CONNECTION; a refused
                                 token is reported through the session-expired callback
                         timing: return at once
    subscribe(keys, m)   must:   canonical keys, remembered across reconnects; a key already
                                 subscribed changes mode
                         raises: InstrumentUnknown (not in the master), CapacityExceeded
                                 (over ``capacity``: the message gives the count in use and
                                 the limit), before anything is sent
                         timing: return at once, never block the loop
    unsubscribe(keys)    raises: never (unknown keys are ignored); timing: at once
    reconnect            must:   after a drop, reconnect with backoff and jitter and
                                 resubscribe every key with its mode
                         timing: resubscribed within 1 s of the socket being back
    stale detection      must:   no message (heartbeats count) for the stale threshold:
                                 report DISCONNECTED and reconnect
                         timing: detected within 3 s of silence
    status()             must:   FeedStatus; subscriptions(): key -> mode
                         raises: never; timing: instant
    ===================  =====================================================================
    """

    component: str  # "feed:<broker>", the ConnectionState component
    capacity: FeedCapacity

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def subscribe(self, keys: Iterable[str], mode: FeedMode = FeedMode.QUOTE) -> None: ...

    def unsubscribe(self, keys: Iterable[str]) -> None: ...

    def subscriptions(self) -> dict[str, FeedMode]: ...

    def status(self) -> FeedStatus: ...


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a history provider can serve: intervals, how far back, and the span of one call.

    ``lookback[tf]`` is how far before now the provider has ``tf`` candles (absent: no
    limit); ``span_per_call[tf]`` is the longest range one request may ask for (absent: no
    limit). ``chunks`` splits a longer range into calls; ``check`` refuses what cannot be had.
    """

    intervals: frozenset[Timeframe]
    lookback: Mapping[Timeframe, timedelta] = field(default_factory=dict)
    span_per_call: Mapping[Timeframe, timedelta] = field(default_factory=dict)
    calls_per_second: float | None = None

    def check(self, timeframe: Timeframe, start: datetime, end: datetime, now: datetime) -> None:
        if timeframe not in self.intervals:
            offered = ", ".join(sorted(tf.value for tf in self.intervals))
            raise HistoryNotCovered(f"{timeframe.value} candles are not offered (only {offered})")
        if end <= start:
            raise HistoryNotCovered(f"empty range: {start.isoformat()} to {end.isoformat()}")
        back = self.lookback.get(timeframe)
        if back is not None and start < now - back:
            raise HistoryNotCovered(
                f"{timeframe.value} candles go back {back.days} days only "
                f"(asked from {start.date().isoformat()})"
            )

    def chunks(
        self, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        span = self.span_per_call.get(timeframe)
        if span is None:
            return [(start, end)]
        out: list[tuple[datetime, datetime]] = []
        at = start
        while at < end:
            stop = min(at + span, end)
            out.append((at, stop))
            at = stop
        return out


@runtime_checkable
class HistoryProvider(Protocol):
    """Candles by interval and range, from the broker's historical API.

    ===================  =====================================================================
    call                 contract
    ===================  =====================================================================
    candles(k, tf, a, b) must:   closed Bars in [a, b), oldest first, Decimal prices, aware
                                 times; a range longer than one call's span is fetched in
                                 ``coverage.chunks``
                         raises: HistoryNotCovered (interval or lookback outside
                                 ``coverage``, before any request), InstrumentUnknown,
                                 SessionExpired, RateLimited
                         timing: one round trip per chunk, paced to calls_per_second
    ===================  =====================================================================
    """

    coverage: Coverage

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]: ...


def listings(instruments: Sequence[tuple[Instrument, BrokerId]]) -> list[Listing]:
    """Pairs to ``Listing``s: a convenience for providers and fakes."""
    return [Listing(i, bid) for i, bid in instruments]
