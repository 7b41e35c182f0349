"""Zerodha Kite in a running terminal: adapter, ticker, instrument master, session, repair.

Imported only when the settings choose ``broker = "kite"`` (the SDK costs 0.6 s to import
and its ticker brings in Twisted). ``app.wiring`` builds one ``KiteRuntime`` and hands its
broker to the order path; this module owns what only Kite has: the daily instrument master
cached in the profile database, the access token and its expiry, the re-login signal, the
reconciliation after every reconnect and the repair of missed candles.

Kite's order updates on the ticker say that an order filled, but not what that did to the
account: positions, margins and the day's trades are read back over REST after each fill
(``follow_fills``, at most once a second so a burst of partial fills costs one refresh) and
published on the bus, where the order manager, the risk supervisor and the panels take them
exactly as they take the paper broker's. Holdings change only with the overnight settlement,
so they are read at start, after a re-login and once a day (``follow_holdings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from typing import Any

from app.settings import Settings
from services.bars import BarBuilder
from services.broker import BrokerError
from services.brokers.kite.config import KiteEndpoints
from services.brokers.kite.errors import PermissionDenied
from services.brokers.kite.execution import KiteBroker
from services.brokers.kite.feed import COMPONENT as FEED_COMPONENT
from services.brokers.kite.feed import KiteStream
from services.brokers.kite.login import login_and_store
from services.brokers.kite.session import CredentialsMissing, KiteSecrets, SecretStore, StoredToken
from services.bus import CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, EventBus, SubscriberLagged
from services.candle_repair import CandleRepair
from services.clock import IST, Clock, to_ist
from services.domain import (
    Bar,
    ConnectionState,
    ConnectionStatus,
    Holding,
    Instrument,
    Order,
    Timeframe,
)
from services.instruments import InstrumentRegistry
from services.storage import Database

log = logging.getLogger(__name__)

BROKER_COMPONENT = "broker:zerodha"
SESSION_EXPIRED = "session expired: log in to Kite again"
MASTER_DATE_SETTING = "kite.instruments.date"
# A burst of partial fills becomes one read of positions, funds and trades per second.
FILL_REFRESH_SECONDS = 1.0
# Holdings are settled overnight; by this time (IST) Kite shows the new day's.
HOLDINGS_REFRESH_AT = time(8, 0)
HOLDINGS_RETRY_SECONDS = 60.0


def endpoints_for(settings: Settings) -> KiteEndpoints:
    default = KiteEndpoints()
    kite = settings.kite
    return KiteEndpoints(
        root=kite.api_root or default.root,
        login=kite.login_url or default.login,
        ticker=kite.ticker_url or default.ticker,
    )


class KiteRuntime:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        clock: Clock,
        instruments: InstrumentRegistry,
        bars: BarBuilder,
        *,
        database: Database | None = None,
        secrets: SecretStore | None = None,
        access_token: str | None = None,
    ) -> None:
        self.settings = settings
        self._bus = bus
        self._clock = clock
        self._instruments = instruments
        self._bars = bars
        self._database = database
        self.secrets = KiteSecrets(secrets) if secrets is not None else None
        self.endpoints = endpoints_for(settings)
        if self.secrets is not None:
            api_key = self.secrets.api_key(settings.kite.api_key)
            access_token = access_token or self.secrets.valid_token(clock.now())
        elif settings.kite.api_key:
            api_key = settings.kite.api_key
        else:
            raise CredentialsMissing(
                "no Kite API key: set kite.api_key in the settings or store it in the keyring"
            )
        self.api_key = api_key
        self.broker = KiteBroker(
            api_key,
            access_token,
            endpoints=self.endpoints,
            clock=clock,
            on_session_expired=self._session_expired,
        )
        self.stream: KiteStream | None = None
        self.tokens: dict[int, str] = {}  # shared with the stream's decoder
        self._wanted: set[str] = set()
        self.session_listeners: list[Callable[[], None]] = []
        self.session_valid = access_token is not None
        self.history_available = True
        self._history_requests: set[tuple[str, Timeframe]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.repair = CandleRepair(bars, self._history_for_repair, clock, self._bar_keys)
        self._filled: dict[str, int] = {}  # order id -> filled quantity last seen
        self._fills_seen: set[str] = set()
        self._holdings_due = asyncio.Event()
        self.portfolio_refreshes = 0

    # -- session ----------------------------------------------------------------------------

    def _session_expired(self) -> None:
        """Kite refused the token (REST TokenException or a 403 on the ticker)."""
        first = self.session_valid
        self.session_valid = False
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                BROKER_COMPONENT, ConnectionStatus.DISCONNECTED, SESSION_EXPIRED, self._clock.now()
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
        """``"valid"``, ``"expired"`` (Kite refused the token) or ``"not logged in"``."""
        if self.session_valid:
            return "valid"
        return "expired" if self.broker.access_token is not None else "not logged in"

    def stored_token(self) -> str | None:
        """The saved token still valid now (``dalal login kite`` saves one); reads the keyring.

        Blocking: call it off the event loop. ``None`` without a secret store.
        """
        if self.secrets is None:
            return None
        return self.secrets.valid_token(self._clock.now())

    def _session_expired_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._session_expired)

    def use_token(self, access_token: str) -> None:
        """A new access token (after ``dalal login kite`` or the dialog): resume everything."""
        self.broker.set_access_token(access_token)
        if self.stream is not None:
            self.stream.set_access_token(access_token)
        self.session_valid = True
        self._holdings_due.set()
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                BROKER_COMPONENT, ConnectionStatus.CONNECTED, "logged in", self._clock.now()
            ),
        )

    async def login(
        self, open_browser: Callable[[str], object], *, within: float = 300.0
    ) -> StoredToken:
        """The browser login (the re-login dialog runs this); resumes broker and feed."""
        if self.secrets is None:
            raise CredentialsMissing("no keyring for Kite credentials: unlock a profile first")
        stored = await login_and_store(
            self.broker,
            self.secrets,
            self._clock,
            redirect_url=self.settings.kite.redirect_url,
            open_browser=open_browser,
            within=within,
        )
        self.use_token(stored.access_token)
        return stored

    # -- instruments ------------------------------------------------------------------------

    async def load_instruments(self) -> int:
        """Load today's master: from the database if downloaded today, else from Kite.

        Without a database (tests, a throwaway session) the master is downloaded each start.
        """
        today = to_ist(self._clock.now()).date()
        db = self._database
        cached: list[Instrument] = []
        if db is not None:
            stamp = await asyncio.to_thread(db.settings.get, MASTER_DATE_SETTING)
            if stamp == today.isoformat():
                cached = await asyncio.to_thread(db.instruments.all)
        if cached:
            fresh = [i for i in cached if i.expiry is None or i.expiry >= today]
        else:
            parsed = await self.broker.instruments()
            fresh = parsed.instruments
            if db is not None:
                await asyncio.to_thread(self._store_master, db, fresh, today.isoformat())
        self._instruments.add(fresh)
        self._instruments.remove_expired(today)
        self.tokens.update({int(i.token): i.key for i in fresh})
        return len(fresh)

    async def follow_master(self, retry: float = HOLDINGS_RETRY_SECONDS) -> None:
        """Reload the instrument master every morning (08:00 IST) for a process left running:
        new contracts appear, expired ones go, and tick and lot sizes follow the exchange."""
        delay = self.seconds_to_holdings_refresh()
        while True:
            await asyncio.sleep(delay)
            try:
                count = await self.load_instruments()
            except BrokerError as exc:
                log.warning("instrument master not refreshed: %s", exc)
                delay = retry
            else:
                log.info("instrument master refreshed: %d instruments", count)
                delay = self.seconds_to_holdings_refresh()

    @staticmethod
    def _store_master(db: Database, instruments: list[Instrument], stamp: str) -> None:
        db.instruments.upsert_many(instruments)
        db.settings.set(MASTER_DATE_SETTING, stamp)

    # -- streaming ---------------------------------------------------------------------------

    def start_stream(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        token = self.broker.access_token
        if token is None:
            self._session_expired()
            return
        self.stream = KiteStream(
            self.api_key,
            token,
            self._bus,
            self.tokens,
            root=self.endpoints.ticker,
            on_session_rejected=self._session_expired_threadsafe,
            loop=loop,
        )
        self.stream.decoder.keys = self.tokens  # one dict: later master loads reach it
        self._subscribe(self._wanted)
        self.stream.start()

    def stop_stream(self) -> None:
        if self.stream is not None:
            self.stream.stop()
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
        if self.stream is None:
            return
        tokens = [int(i.token) for k in keys if (i := self._instruments.get(k)) is not None]
        if tokens:
            self.stream.subscribe(tokens, self.settings.kite.ticker_mode)

    async def watchdog(self, interval: float = 1.0) -> None:
        """Drop a silent feed so it reconnects (Kite sends a heartbeat every second)."""
        while True:
            await asyncio.sleep(interval)
            if self.stream is not None:
                self.stream.check_alive()

    def _bar_keys(self) -> list[str]:
        return sorted(self._wanted)

    # -- portfolio ---------------------------------------------------------------------------

    async def refresh_portfolio(self) -> bool:
        """Read positions, funds and trades from Kite and publish them; False if Kite failed.

        The reads run in the adapter's executor, concurrently. Only trades not published
        before go out on FILLS, so the chart marks each once.
        """
        try:
            positions, funds, fills = await asyncio.gather(
                self.broker.positions(), self.broker.funds(), self.broker.fills()
            )
        except BrokerError as exc:
            log.warning("positions and funds not refreshed from Kite: %s", exc)
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
        """Refresh the portfolio at start and after every (partial) fill the ticker reports.

        The first fill after a quiet spell is refreshed at once; fills arriving within
        ``min_interval`` of a refresh wait for the next one, which covers them all.
        """
        loop = asyncio.get_running_loop()
        sub = self._bus.subscribe(ORDERS, "kite-portfolio")
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
        """Seconds from ``now`` to the next daily holdings refresh (08:00 IST)."""
        local = to_ist(now or self._clock.now())
        at = datetime.combine(local.date(), HOLDINGS_REFRESH_AT, tzinfo=IST)
        if at <= local:
            at += timedelta(days=1)
        return (at - local).total_seconds()

    async def follow_holdings(
        self, apply: Callable[[list[Holding]], None], retry: float = HOLDINGS_RETRY_SECONDS
    ) -> None:
        """Hand Kite's holdings to ``apply`` at start, after a re-login and once a day.

        A failed read (no session yet, Kite down) is retried after ``retry`` seconds. The
        holdings' symbols are streamed, so their prices stay live between the daily reads.
        """
        while True:
            self._holdings_due.clear()
            try:
                holdings = await self.broker.holdings()
            except BrokerError as exc:
                log.warning("holdings not read from Kite: %s", exc)
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
        instrument = self._instruments.get(key)
        if instrument is None:
            raise BrokerError(f"unknown instrument {key}")
        try:
            return await self.broker.history(key, int(instrument.token), timeframe, start, end)
        except PermissionDenied:
            # The Kite Connect app has no historical-data add-on: say so once, fall back.
            self.history_available = False
            raise

    async def _history_for_repair(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        return await self.history(key, timeframe, start, end)

    async def load_history(self, key: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """Fetch about ``count`` bars ending now from Kite and seed the bar builder."""
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
            log.warning("no Kite history for %s %s: %s", key, timeframe, exc)
            self._history_requests.discard((key, timeframe))


__all__ = ["BROKER_COMPONENT", "FEED_COMPONENT", "SESSION_EXPIRED", "KiteRuntime"]
