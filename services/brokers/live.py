"""A live broker in a running terminal, driven only by the ports: what every broker needs.

``app.wiring`` builds one ``LiveBroker`` for the broker that supplies market data (and, when
it is also the execution venue, its orders). It owns what is the same for every broker:

- the day's instrument master: one download a day, cached in the profile database when the
  provider can rebuild it from the records (``CachedMasterProvider``), reloaded every
  morning for a process left running;
- the session: the day's token, its expiry (a token past ``expires_at`` is treated as
  expired before the broker has to refuse it), the "log in again" signal, the interactive
  login, and ``SessionRenewal``: a token saved by another process (``dalal login``) or
  renewed without the trader (a stored TOTP seed) taken into a running one (headless:
  SIGHUP or polling);
- the feed: subscriptions from the views, the master's new tokens after a reload;
- the portfolio: positions, funds and trades read back after every fill the broker reports
  (at most once a second, so a burst of partial fills costs one refresh), holdings at start,
  after a login and once a day;
- history: candles from the ``HistoryProvider``, the repair of missed candles, and the
  fallback when the broker has no history to give;
- after a crash, an order intent without an acknowledgement is looked up by its tag at the
  broker (``resolve_unacknowledged``) before anything new is sent.

Component names on the ``CONNECTION`` topic are ``broker:<execution name>`` and
``feed:<broker>``; nothing here names a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from services.bars import BarBuilder
from services.broker import BrokerError
from services.brokers import registry
from services.brokers.errors import PermissionDenied, SessionExpired
from services.brokers.ports import (
    BrokerSession,
    CachedMasterProvider,
    FeedMode,
    InstrumentMaster,
    InteractiveSession,
    LoginPrompt,
    MarketDataFeed,
    OrderUpdateStream,
    SessionToken,
)
from services.bus import CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, SubscriberLagged
from services.candle_repair import CandleRepair
from services.clock import IST, to_ist
from services.domain import (
    Bar,
    ConnectionState,
    ConnectionStatus,
    Holding,
    Instrument,
    Order,
    OrderStatus,
    Timeframe,
)
from services.instruments import InstrumentRegistry

if TYPE_CHECKING:
    from services.storage import Database

log = logging.getLogger(__name__)

SESSION_EXPIRED = "session expired: log in again"
# A burst of partial fills becomes one read of positions, funds and trades per second.
FILL_REFRESH_SECONDS = 1.0
# Holdings are settled overnight and masters are published early; by 08:00 IST both are new.
MORNING_RELOAD_AT = time(8, 0)
RETRY_SECONDS = 60.0
SESSION_POLL_SECONDS = 60.0  # how often an expired session looks for a new token


# Which broker's master the profile's instruments table holds, and of which day:
# ``"<broker> <YYYY-MM-DD>"``. One table serves every broker (their ids differ: Kite's int
# tokens, Upstox's instrument keys), so a cache is only ever read back by the broker that
# wrote it, on the day it was written.
MASTER_CACHE_SETTING = "instruments.master"


def master_stamp(name: str, day: date) -> str:
    return f"{name} {day.isoformat()}"


def seconds_to_morning(now: datetime) -> float:
    """Seconds from ``now`` to the next 08:00 IST (holdings and master reload)."""
    local = to_ist(now)
    at = datetime.combine(local.date(), MORNING_RELOAD_AT, tzinfo=IST)
    if at <= local:
        at += timedelta(days=1)
    return (at - local).total_seconds()


@dataclass(frozen=True, slots=True)
class LiveOptions:
    feed_mode: FeedMode = FeedMode.FULL
    trading: bool = True  # the broker is also the execution venue


class Journal(Protocol):
    """What the resolution of unacknowledged intents needs of the recorder."""

    async def session(self, day: Any) -> tuple[list[Order], list[Any]]: ...

    async def record_update(self, order: Order) -> None: ...

    async def record_ack(self, intent_id: str, order: Order) -> None: ...

    async def audit(self, kind: str, actor: str, details: dict[str, object]) -> None: ...


class LiveBroker:
    """One registered broker's parts, running. ``name`` is the registry name."""

    def __init__(
        self,
        name: str,
        context: registry.BrokerContext,
        instruments: InstrumentRegistry,
        bars: BarBuilder,
        *,
        database: Database | None = None,
        options: LiveOptions = LiveOptions(),
        brokers: registry.Brokers = registry.DEFAULT_BROKERS,
    ) -> None:
        self.name = name
        self.title = registry.entry(name).title
        self._bus = context.bus
        self._clock = context.clock
        self._instruments = instruments
        self._bars = bars
        self._database = database
        self.options = options
        self.redirect_url: str | None = context.settings.get("redirect_url")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        context.on_session_expired = self._session_expired_anywhere
        self.parts = brokers.build(name, context)
        self.session = self.parts.session
        self.execution = self.parts.execution if options.trading else None
        self.history_provider = self.parts.history
        self.master: InstrumentMaster | None = None
        self.feed: MarketDataFeed | None = None
        self._wanted: set[str] = set()
        self.session_listeners: list[Callable[[], None]] = []
        self.session_valid = self.parts.logged_in
        self._prompted = False
        self.expires_at: datetime | None = None
        self.access_token: str | None = context.access_token
        if self.session is not None and self.session_valid:
            current = self.session.current(self._clock.now())
            if current is not None:
                self.expires_at = current.expires_at
                self.access_token = self.access_token or current.access_token
        self.history_available = self.history_provider is not None
        self._history_requests: set[tuple[str, Timeframe]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.repair = CandleRepair(bars, self._history_for_repair, self._clock, self._bar_keys)
        self._filled: dict[str, int] = {}  # order id -> filled quantity last seen
        self._fills_seen: set[str] = set()
        self._holdings_due = asyncio.Event()
        self.portfolio_refreshes = 0
        self.master_loads = 0

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def feed_component(self) -> str:
        return f"feed:{self.name}"

    @property
    def component(self) -> str:
        """The CONNECTION component of the broker's session: ``broker:<execution name>``."""
        execution = self.parts.execution
        return f"broker:{execution.name if execution is not None else self.name}"

    # -- session ----------------------------------------------------------------------------

    def _session_expired_anywhere(self) -> None:
        """The broker refused the token: from the loop (REST) or an SDK thread (stream)."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._session_expired)
        else:
            self._session_expired()

    def _session_expired(self) -> None:
        # Prompt once per expiry: when a valid session dies, or at the first refusal of a
        # terminal that never had one today.
        first = self.session_valid or not self._prompted
        self._prompted = True
        self.session_valid = False
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                self.component, ConnectionStatus.DISCONNECTED, SESSION_EXPIRED, self._clock.now()
            ),
        )
        if first:
            for listener in list(self.session_listeners):
                try:
                    listener()
                except Exception:
                    log.exception("session listener failed")

    @property
    def session_state(self) -> str:
        """``"valid"``, ``"expired"`` (refused or past its expiry) or ``"not logged in"``."""
        if self.session_valid:
            return "valid"
        return "expired" if self.access_token is not None else "not logged in"

    def stored_token(self) -> str | None:
        """The token saved by a login (this process or another) and still valid; blocking."""
        current = self.stored_session()
        return current.access_token if current is not None else None

    def stored_session(self) -> SessionToken | None:
        """The session saved by a login (this process or another), with its expiry; blocking
        (the keyring and the profile database)."""
        if self.session is None:
            return None
        return self.session.current(self._clock.now())

    def use_token(self, access_token: str, expires_at: datetime | None = None) -> None:
        """A new day's token (a login here or in another process): resume everything."""
        self.parts.use_token(
            SessionToken(access_token, expires_at or self._clock.now() + timedelta(hours=24))
        )
        self.access_token = access_token
        self.expires_at = expires_at
        self.session_valid = True
        self._prompted = False
        self._holdings_due.set()
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                self.component, ConnectionStatus.CONNECTED, "logged in", self._clock.now()
            ),
        )

    async def login(
        self,
        open_browser: Callable[[str], object],
        *,
        within: float = 300.0,
        on_listening: Callable[[str], None] | None = None,
        values: Mapping[str, str] | None = None,
        prompt: LoginPrompt | None = None,
    ) -> SessionToken:
        """The interactive login (the desktop's dialog, ``dalal login``); resumes everything."""
        token = await interactive_login(
            self.name,
            self.session,
            open_browser,
            redirect_url=self.redirect_url,
            within=within,
            on_listening=on_listening,
            values=values,
            prompt=prompt,
        )
        self.use_token(token.access_token, token.expires_at)
        return token

    def check_expiry(self) -> bool:
        """Treat a token past its expiry (Kite: 06:00 IST) as expired; False if it is."""
        expiry = self.expires_at
        if self.session_valid and expiry is not None and self._clock.now() >= expiry:
            log.info("%s session reached its expiry", self.title)
            self._session_expired()
            return False
        return self.session_valid

    # -- instruments ------------------------------------------------------------------------

    async def load_instruments(self) -> int:
        """Load today's master: from the database if it was downloaded today, else fetch it.

        Without a database (tests, a throwaway session) the master is fetched each start.
        """
        provider = self.parts.instruments
        if provider is None:
            raise BrokerError(f"{self.title} has no instrument master")
        today = to_ist(self._clock.now()).date()
        db = self._database
        master: InstrumentMaster | None = None
        cacheable = isinstance(provider, CachedMasterProvider)
        if db is not None and cacheable:
            stamp = await asyncio.to_thread(db.settings.get, MASTER_CACHE_SETTING)
            if stamp == master_stamp(self.name, today):
                cached = await asyncio.to_thread(db.instruments.all)
                if cached:
                    assert isinstance(provider, CachedMasterProvider)
                    master = await asyncio.to_thread(provider.master_from_cache, cached, today)
        if master is None:
            master = await provider.fetch_master()
            if db is not None and cacheable:
                await asyncio.to_thread(
                    self._store_master, db, master.instruments(), master_stamp(self.name, today)
                )
        fresh = [i for i in master.instruments() if i.expiry is None or i.expiry >= today]
        self.master = master
        self._instruments.add(fresh)
        self._instruments.remove_expired(today)
        self.parts.use_master(master)
        self.master_loads += 1
        return len(fresh)

    def _store_master(self, db: Database, instruments: list[Instrument], stamp: str) -> None:
        # The stamp goes first and comes back last: a crash in between leaves no stamp, and
        # the next start downloads, never reading rows under another broker's stamp.
        db.settings.set(MASTER_CACHE_SETTING, "")
        db.instruments.replace_all(instruments)
        db.settings.set(MASTER_CACHE_SETTING, stamp)

    async def follow_master(self, retry: float = RETRY_SECONDS) -> None:
        """Reload the master every morning for a process left running: new contracts appear,
        expired ones go, and tick and lot sizes follow the exchange."""
        delay = seconds_to_morning(self._clock.now())
        while True:
            await asyncio.sleep(delay)
            try:
                count = await self.load_instruments()
            except BrokerError as exc:
                log.warning("instrument master not refreshed: %s", exc)
                delay = retry
            else:
                log.info("instrument master refreshed: %d instruments", count)
                delay = seconds_to_morning(self._clock.now())

    # -- streaming ---------------------------------------------------------------------------

    def start_stream(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        if not self.session_valid:
            self._session_expired()
            return
        if self.parts.feed is None or self.master is None:
            return
        self.feed = self.parts.feed(self.master)
        self._subscribe(self._wanted)
        self.feed.start()
        # Order updates on a socket of their own (Upstox), not on the feed (Kite).
        order_stream = self._order_stream
        if order_stream is not None:
            order_stream.start()

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def connect(self) -> str:
        """Start the feed again after ``disconnect`` (the Broker menu); says what happened."""
        if self.feed is not None:
            return f"{self.title} is already connected"
        if self._loop is None:
            return f"{self.title} is not running yet"
        self.start_stream(self._loop)
        if self.feed is None:
            return f"{self.title} cannot connect: {self.session_state}; log in first"
        return f"connecting to {self.title}"

    def disconnect(self) -> str:
        """Stop the feed until ``connect``: prices stop, orders and the session stay."""
        if self.feed is None:
            return f"{self.title} is not connected"
        self.feed.stop()
        self.feed = None
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                self.feed_component,
                ConnectionStatus.DISCONNECTED,
                "disconnected by the trader",
                self._clock.now(),
            ),
        )
        return f"disconnected from {self.title}"

    @property
    def _order_stream(self) -> OrderUpdateStream | None:
        """The broker's order-update socket, when this process trades on it."""
        return self.parts.order_stream if self.execution is not None else None

    def stop_stream(self) -> None:
        order_stream = self._order_stream
        if order_stream is not None:
            order_stream.stop()
        if self.feed is not None:
            self.feed.stop()
        for task in self._tasks:
            task.cancel()

    def watch(self, keys: Iterable[str]) -> None:
        """Make sure ticks flow for ``keys`` (idempotent; before or after the stream starts)."""
        new = {k for k in keys if k not in self._wanted and self._instruments.get(k)}
        if not new:
            return
        self._wanted |= new
        self._subscribe(new)

    def _subscribe(self, keys: Iterable[str]) -> None:
        if self.feed is None:
            return
        try:
            self.feed.subscribe(sorted(keys), self.options.feed_mode)
        except BrokerError as exc:  # capacity or a key the master lost
            log.warning("not streamed: %s", exc)

    @property
    def feed_connected(self) -> bool:
        return self.feed is not None and self.feed.status().connected

    async def watchdog(self, interval: float = 1.0) -> None:
        """The broker's own loop: notices a token reaching its expiry (the feed watches
        itself for staleness)."""
        while True:
            await asyncio.sleep(interval)
            self.check_expiry()

    def _bar_keys(self) -> list[str]:
        return sorted(self._wanted)

    # -- portfolio ---------------------------------------------------------------------------

    async def refresh_portfolio(self) -> bool:
        """Read positions, funds and trades and publish them; False if the broker failed.

        Only trades not published before go out on FILLS, so the chart marks each once.
        """
        execution = self.execution
        if execution is None:
            return False
        try:
            positions, funds, fills = await asyncio.gather(
                execution.positions(), execution.funds(), execution.fills()
            )
        except BrokerError as exc:
            log.warning("positions and funds not refreshed from %s: %s", self.title, exc)
            return False
        for position in positions:
            self._bus.publish(POSITIONS, position)
        self._bus.publish(FUNDS, funds)
        new = [f for f in fills if f.fill_id not in self._fills_seen]
        self._fills_seen.update(f.fill_id for f in new)
        if new:
            self._bus.publish_many(FILLS, sorted(new, key=lambda f: f.ts))
        self.portfolio_refreshes += 1
        return True

    def _note_fills(self, orders: Iterable[Order]) -> bool:
        """Remember each order's filled quantity; True if any order filled more than before."""
        more = False
        for order in orders:
            seen = self._filled.get(order.order_id, 0)
            if order.filled_quantity > seen:
                self._filled[order.order_id] = order.filled_quantity
                more = True
        return more

    async def follow_fills(self, min_interval: float = FILL_REFRESH_SECONDS) -> None:
        """Refresh the portfolio at start and after every (partial) fill the broker reports.

        The first fill after a quiet spell is refreshed at once; fills arriving within
        ``min_interval`` of a refresh wait for the next one, which covers them all.
        """
        loop = asyncio.get_running_loop()
        sub = self._bus.subscribe(ORDERS, f"{self.name}-portfolio")
        try:
            await self.refresh_portfolio()
            last = loop.time() - min_interval
            while True:
                try:
                    due = self._note_fills(await sub.next_batch())
                except SubscriberLagged:
                    due = True
                if not due:
                    continue
                wait = last + min_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                with contextlib.suppress(SubscriberLagged):
                    self._note_fills(sub.drain())  # this refresh covers them too
                last = loop.time()
                await self.refresh_portfolio()
        finally:
            sub.close()

    def seconds_to_holdings_refresh(self, now: datetime | None = None) -> float:
        return seconds_to_morning(now or self._clock.now())

    async def follow_holdings(
        self, apply: Callable[[list[Holding]], None], retry: float = RETRY_SECONDS
    ) -> None:
        """Hand the holdings to ``apply`` at start, after a login and once a day.

        A failed read (no session yet, broker down) is retried after ``retry`` seconds. The
        holdings' symbols are streamed, so their prices stay live between the daily reads.
        """
        execution = self.execution
        if execution is None:
            return
        while True:
            self._holdings_due.clear()
            try:
                holdings = await execution.holdings()
            except BrokerError as exc:
                log.warning("holdings not read from %s: %s", self.title, exc)
                delay = retry
            else:
                apply(holdings)
                self.watch(h.key for h in holdings)
                delay = self.seconds_to_holdings_refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._holdings_due.wait(), delay)

    # -- history -----------------------------------------------------------------------------

    async def history(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        provider = self.history_provider
        if provider is None:
            raise BrokerError(f"{self.title} has no historical data")
        try:
            return await provider.candles(key, timeframe, start, end)
        except PermissionDenied:
            # The broker app has no historical-data subscription: say so once, fall back.
            self.history_available = False
            raise

    async def _history_for_repair(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        return await self.history(key, timeframe, start, end)

    async def load_history(self, key: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """Backfill about ``count`` bars ending now and seed the bar builder."""
        end = self._clock.now()
        span = timeframe.seconds * count
        # Sessions are 6h15m of 24h: ask for enough calendar time to cover ``count`` bars.
        days = 1 + span // 22_500 if timeframe is not Timeframe.D1 else count * 7 // 5 + 5
        start = end - timedelta(days=min(days, 60 if timeframe is Timeframe.M1 else 365))
        bars = await self.history(key, timeframe, start, end)
        closed = [b for b in bars if b.start + timedelta(seconds=timeframe.seconds) <= end]
        live = self._bars.bars(key, timeframe)
        merged = {b.start: b for b in closed}
        merged.update({b.start: b for b in live if b.closed})
        self._bars.seed(key, timeframe, merged.values())
        return self._bars.bars(key, timeframe)[-count:]

    def request_history(self, key: str, timeframe: Timeframe, count: int) -> None:
        """Start a background history load once per chart (the facade's history is sync)."""
        slot = (key, timeframe)
        if slot in self._history_requests or not self.history_available:
            return
        self._history_requests.add(slot)
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to schedule on
            task = asyncio.get_running_loop().create_task(self._load_quietly(key, timeframe, count))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _load_quietly(self, key: str, timeframe: Timeframe, count: int) -> None:
        try:
            await self.load_history(key, timeframe, count)
        except BrokerError as exc:
            log.warning("no %s history for %s %s: %s", self.title, key, timeframe, exc)
            self._history_requests.discard((key, timeframe))


class SessionRenewal:
    """Takes a new day's token into a running process, for whichever broker is in use.

    Broker tokens die every day (Kite 06:00 IST, Upstox 03:30, ICICI and Angel One at
    midnight); a long-running process (headless, the order node) resumes without a restart:

    - a token that ``dalal login BROKER`` saved in another process is taken at once on
      ``wake`` (SIGHUP) and, while the session is expired or missing, by reading the
      credential store every ``poll_interval`` seconds;
    - a broker that can renew without the trader (Angel One with its TOTP seed stored:
      ``BrokerSession.renew``) is renewed at the same moments.

    An expiry itself only starts the polling: at that moment the stored token is the one the
    broker just refused. The reads block (keyring, database), so they run in a worker
    thread. A stored token equal to the one in use is not news.
    """

    def __init__(self, live: LiveBroker, *, poll_interval: float = SESSION_POLL_SECONDS) -> None:
        self._live = live
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._rearm = asyncio.Event()  # the session changed state: recompute the poll timeout
        self.renewals = 0
        live.session_listeners.append(self._rearm.set)

    def wake(self) -> None:
        self._wake.set()

    async def check_now(self) -> bool:
        """Resume with a stored token if it is new, else renew an expired session when the
        broker allows it; True if a new token was taken."""
        live = self._live
        token = await asyncio.to_thread(live.stored_session)
        if token is not None and token.access_token == live.access_token:
            token = None
        if token is None and not live.session_valid and live.session is not None:
            token = await live.session.renew(live.now())
        if token is None:
            return False
        log.info("a new %s token is here: resuming the broker session", live.title)
        live.use_token(token.access_token, token.expires_at)
        self.renewals += 1
        return True

    async def run(self) -> None:
        while True:
            timeout = None if self._live.session_valid else self.poll_interval
            waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, self._rearm)]
            try:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if self._rearm.is_set() and not self._wake.is_set():
                self._rearm.clear()
                continue  # just expired: poll from now on, the stored token is the refused one
            self._rearm.clear()
            self._wake.clear()
            try:
                await self.check_now()
            except Exception:  # a locked keyring or a refused renewal must not end the watcher
                log.exception("could not take a new %s session", self._live.title)


async def interactive_login(
    name: str,
    session: BrokerSession | None,
    open_browser: Callable[[str], object],
    *,
    redirect_url: str | None = None,
    within: float = 300.0,
    on_listening: Callable[[str], None] | None = None,
    values: Mapping[str, str] | None = None,
    prompt: LoginPrompt | None = None,
) -> SessionToken:
    """Log in to broker ``name``, the one entry for every broker (``dalal login``, the
    desktop's Broker menu and dialog): its own flow when it has one, else the generic
    redirect. ``values`` and ``prompt`` carry what the trader types (``InteractiveSession``)."""
    if session is None:
        raise BrokerError(f"{name}: no keyring is open for its credentials (unlock a profile)")
    if isinstance(session, InteractiveSession):
        return await session.login(
            open_browser, within=within, on_listening=on_listening, values=values, prompt=prompt
        )
    from services.brokers.login import redirect_login

    return await redirect_login(
        session,
        open_browser,
        redirect_url=redirect_url,
        within=within,
        on_listening=on_listening,
    )


async def resolve_unacknowledged(
    journal: Journal, execution: Any, day: Any, now: Callable[[], datetime]
) -> list[Order]:
    """After a crash: each intent journaled without an ack is looked up at the broker by its
    tag, before anything new is sent. Found: the broker's order replaces the intent (and is
    audited); not found: the intent is closed as never placed. Returns the day's orders."""
    orders, _fills = await journal.session(day)
    resolved: list[Order] = []
    for order in orders:
        if order.status is OrderStatus.PENDING and order.order_id == order.request.tag:
            tag = order.request.tag or ""
            try:
                found = await execution.order_by_tag(tag)
            except SessionExpired:
                raise
            except BrokerError as exc:
                log.warning("intent %s not resolved (%s): left pending", tag, exc)
                resolved.append(order)
                continue
            if found is not None:
                await journal.record_ack(tag, found)
                await journal.audit(
                    "order_intent_resolved",
                    "reconcile",
                    {"tag": tag, "order_id": found.order_id, "status": found.status.value},
                )
                resolved.append(found)
                continue
            order = order.evolve(
                OrderStatus.REJECTED,
                now(),
                status_message="not placed: the terminal stopped before the broker "
                "acknowledged it, and the broker has no order with its tag",
            )
            await journal.record_update(order)
        resolved.append(order)
    return resolved
