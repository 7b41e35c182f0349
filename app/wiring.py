"""Composition root: builds the services the desktop and headless runners share.

This is the only module that knows the concrete feed and broker in use: the built-in
simulator and paper broker by default, or a registered live broker (``settings.broker``
for the execution venue, ``settings.feed`` for market data, chosen separately), built
through ``services.brokers.registry`` and run by ``services.brokers.live.LiveBroker``.
Everything else sees ``AppServices``, whose methods are the facade widgets and the HTTP
API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app.settings import SIMULATOR, NodeSettings, Settings, config_dir
from app.venue_switch import NODE, NodeGate, VenueSwitchRefused, switch_venue, venue_names
from services.alerts import Alert, AlertBook, AlertCondition
from services.backtest.service import BacktestService
from services.bars import BarBuilder
from services.broker import BrokerError, OrderChange
from services.brokers import registry
from services.brokers.live import LiveBroker, LiveOptions, resolve_unacknowledged
from services.brokers.ports import (
    ExecutionClient,
    FeedMode,
    GttVenue,
    LoginField,
    LoginPrompt,
)
from services.brokers.registry import DEFAULT_BROKERS, BrokerContext, Brokers, Role
from services.brokers.standby import SessionFor, StandbyBroker, StandbyBrokers
from services.bus import CONNECTION, EventBus
from services.clock import Clock, SystemClock, to_ist
from services.domain import (
    Bar,
    ConnectionState,
    ConnectionStatus,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderRequest,
    Position,
    Tick,
    Timeframe,
)
from services.gtt import Gtt, GttBook, GttError, GttNotFound, LegChange
from services.instruments import InstrumentRegistry, Reference, bundled_universe
from services.marketdata.router import ProviderHealth
from services.marketdata.service import (
    HISTORY,
    HistoryLoaded,
    HistoryService,
    health_state,
    recorded_from,
)
from services.options.chain import OptionChain, option_expiries, option_underlyings
from services.options.pricing import Model
from services.order_path import build_order_path
from services.orders import OrderManager
from services.paper import PaperBroker
from services.quotes import QuoteBook
from services.reconcile import Reconciler
from services.recorder import Recorder
from services.risk import (
    JsonFileStateStore,
    KillReport,
    KillSwitch,
    MemoryStateStore,
    ReconcileReport,
    RiskEngine,
    RiskLimits,
    StateStore,
    StuckOrderMonitor,
    TradingState,
)
from services.risk.killswitch import KillFailure
from services.risk.supervisor import RiskSupervisor
from services.simulator import MarketSimulator
from services.storage import Database
from services.storage.repositories import OrderCountRepository
from services.strategies import StrategyRunner, build_strategy
from services.tasks import cancel_and_wait
from widgets.ports import BrokerRow

if TYPE_CHECKING:
    from app.models_runtime import ModelsRuntime
    from services.brokers.node.config import NodeVenue
    from services.brokers.ports import SecretStore
    from services.marketdata.providers.broker import BrokerHistory

log = logging.getLogger(__name__)

HISTORY_BARS = 300
KEPT_TIMEFRAMES = (Timeframe.M1, Timeframe.M5)  # the chart's usual ones; others are made
HOLDINGS_REFRESH_SECONDS = 60.0
# Breeze counts every call against 5,000 a day per key; holdings (two calls: NSE and BSE)
# every minute would spend 750 of them, so its holdings are read every 15 minutes.


@dataclass
class AppServices:
    settings: Settings
    clock: Clock
    bus: EventBus
    instruments: InstrumentRegistry
    references: dict[str, Reference]
    quotes: QuoteBook
    # With a live feed the simulator does not run: it only backs chart history when the
    # broker's historical API is unavailable (no add-on on the broker app).
    simulator: MarketSimulator
    bars: BarBuilder
    broker: PaperBroker | ExecutionClient
    orders: OrderManager
    risk: RiskEngine
    kill_switch: KillSwitch
    risk_supervisor: RiskSupervisor
    alerts: AlertBook
    recorder: Recorder | None = None
    started_at: datetime | None = None
    live: LiveBroker | None = None  # the live broker (data, and orders when it is the venue)
    reconciler: Reconciler | None = None
    models: ModelsRuntime | None = None  # with a profile database and models_enabled
    secrets: SecretStore | None = None  # broker credentials and tokens (the profile's)
    gtt: GttBook | None = None  # GTT single / OCO orders held by the terminal
    node: NodeVenue | None = None  # orders through the trader's order node (settings.node)
    # Past bars for charts and models: stored and fetched history (services/marketdata).
    history_service: HistoryService | None = None
    _history_requests: set[tuple[str, Timeframe]] = field(default_factory=set)
    _history_tasks: set[asyncio.Task[list[Bar]]] = field(default_factory=set)
    # The Backtest panel's runner: results are kept in the profile database when one is open.
    backtests: BacktestService | None = None
    # Built-in strategies trading on the paper broker (settings.strategies).
    strategy_runners: list[StrategyRunner] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _holdings: list[Holding] = field(default_factory=list)
    # The simulator's past sessions as the profile keeps them (services.simulator.backfill).
    _kept_history: dict[tuple[str, Timeframe], list[Bar]] = field(default_factory=dict)
    _drawings: dict[str, list[dict[str, Any]]] | None = None
    # Every other registered live broker, for the Broker menu (services.brokers.standby).
    standby: StandbyBrokers = field(default_factory=lambda: StandbyBrokers({}))
    # The venue settings.broker names (paper, or a live broker's): where orders go when they
    # do not go through the node; the Broker menu switches between the two (app.venue_switch).
    home_venue: ExecutionClient = field(default=None)  # type: ignore[assignment]
    node_gate: NodeGate = field(default_factory=lambda: NodeGate(None))
    # The home venue's book was restored from the profile at the start (it was the venue).
    home_restored: bool = True
    # The node's address and pin as the settings file has them now (pairing writes there).
    node_settings: Callable[[], NodeSettings] = field(default=lambda: NodeSettings())
    # Told the venue's name after a switch (the desktop keeps the choice in the settings file).
    on_venue_switched: Callable[[Literal["broker", "node"]], None] | None = None
    _switching: bool = False

    def __post_init__(self) -> None:
        if self.home_venue is None:
            self.home_venue = self.broker

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every background service on the running loop (Qt's, through qasync)."""
        loop = asyncio.get_running_loop()
        self.bus.bind_loop(loop)
        self.started_at = self.clock.now()
        if self.history_service is not None and self.history_service.router is not None:
            for health in self.history_service.router.health():  # the status bar's labels
                self.bus.publish(CONNECTION, health_state(health, self.started_at))
            if "nse" in self.settings.marketdata.providers:
                self._refresh_holidays()
        if self.live is not None:
            await self.live.load_instruments()
            self.live.watch(self.settings.watchlist)
        if self.recorder is not None:
            await self._resume_session(self.recorder)
        simulated_past = self.live is None and not self.settings.marketdata.providers
        if self.recorder is not None and simulated_past:
            # Only the simulator knows the past: keep it, so yesterday is the same every start.
            await self._load_kept_history(self.recorder.db)
        # Consumers first, so the first simulated tick already reaches all of them.
        services: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("quotes", self.quotes.run()),
            ("bars", self.bars.run()),
            ("alerts", self.alerts.run()),
        ]
        if isinstance(self.broker, PaperBroker):
            services.append(("broker", self.broker.run()))
        if self.gtt is not None:
            services.append(("gtt", self.gtt.run()))
        services += [
            ("orders", self.orders.run()),
            ("risk", self.risk_supervisor.run()),
        ]
        if self.live is not None:
            services.append(("instrument-master", self.live.follow_master()))
        if self.live is not None and self.live.execution is not None:
            # A live venue: holdings daily; positions, funds and trades re-read after fills.
            services += [
                ("holdings", self.live.follow_holdings(self._apply_holdings)),
                ("portfolio", self.live.follow_fills()),
            ]
        else:
            services.append(("holdings", self._follow_holdings(HOLDINGS_REFRESH_SECONDS)))
        if self.node is not None:
            services.append(("node-stream", self.node.stream.run()))
        if self.reconciler is not None:
            services.append(("reconcile", self.reconciler.run()))
        if self.recorder is not None:
            services.append(("recorder", self.recorder.run()))
        if self.live is not None:
            # A live broker has no loop of its own; "broker" stays the name health probes
            # and /readyz look for, and it notices the token reaching its expiry.
            services.append(("broker", self.live.watchdog()))
        else:
            services.append(("simulator", self.simulator.run()))
        for name, coro in services:
            self._spawn(name, coro)
        if self.live is not None:
            self.live.start_stream(loop)
        if self.models is not None:
            self.models.start()
        for runner in self.strategy_runners:
            self._spawn(f"strategy:{runner.strategy.name}", runner.run(self.bus))

    async def _load_kept_history(self, db: Database) -> None:
        """Read (or make once and keep) the simulated past of the watchlist, off the loop,
        so yesterday's chart is the same on every start of this profile."""
        from services.marketdata.store import HistoryStore
        from services.simulator.backfill import persisted_history

        store = HistoryStore(db)
        now = self.clock.now()
        keys = [k for k in self.settings.watchlist if k in self.references]

        def load() -> dict[tuple[str, Timeframe], list[Bar]]:
            return {
                (key, tf): persisted_history(store, self.simulator, key, tf, HISTORY_BARS, now)
                for key in keys
                for tf in KEPT_TIMEFRAMES
            }

        try:
            self._kept_history = await asyncio.to_thread(load)
        except Exception:  # a chart without kept history is better than no terminal
            log.exception("could not load the simulated history kept in the profile")

    def _simulated_past(
        self, key: str, timeframe: Timeframe, count: int, end: datetime
    ) -> list[Bar]:
        """``count`` bars before ``end``: the kept sessions before today, then today's part
        (made to join the live price)."""
        made = self.simulator.history(key, timeframe, count, end)
        kept = self._kept_history.get((key, timeframe))
        if not kept:
            return made
        from services.simulator.backfill import today_open

        today = [b for b in made if b.start >= today_open(end)]
        cut = today[0].start if today else end
        return ([b for b in kept if b.start < cut] + today)[-count:]

    async def _resume_session(self, recorder: Recorder) -> None:
        """Put today's orders, fills and positions back after a restart.

        An intent journaled without an acknowledgement is an order the process died placing:
        it is looked up at the broker by its tag before anything new is sent (a paper
        broker lived in that process, so it never has it and the intent is closed as not
        placed; a live broker may have it, and its order replaces the intent).
        """
        day = to_ist(self.clock.now()).date()
        waiting: list[Order] = []
        if isinstance(self.broker, PaperBroker):  # yesterday's holdings and carried positions
            earlier_orders, earlier_fills = await recorder.before(day)
            self.broker.carry_forward(
                earlier_fills, day, [o.order_id for o in earlier_orders]
            )
            waiting = self.broker.waiting_amos(earlier_orders, day)
        resumed = await resolve_unacknowledged(recorder, self.broker, day, self.clock.now)
        if isinstance(self.broker, PaperBroker):
            _, fills = await recorder.session(day)
            self.broker.restore([*waiting, *resumed], fills)
            if resumed or fills:
                log.info(
                    "resumed today's paper session: %d orders, %d fills", len(resumed), len(fills)
                )
        await self.orders.resync()
        self.risk_supervisor.seed(self.orders.positions())

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"dalal:{name}")
        task.add_done_callback(_log_task_end)
        self._tasks.append(task)

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background service until ``stop`` (or ``cancel_task(name)``)."""
        self._spawn(name, coro)

    def has_task(self, name: str) -> bool:
        return any(t.get_name() == f"dalal:{name}" and not t.done() for t in self._tasks)

    async def cancel_task(self, name: str) -> None:
        """Stop the background service ``name`` and wait until it has stopped."""
        tasks = [t for t in self._tasks if t.get_name() == f"dalal:{name}"]
        self._tasks = [t for t in self._tasks if t not in tasks]
        await cancel_and_wait(tasks)

    # -- the order venue (app.venue_switch) ------------------------------------------------
    def venues(self) -> list[tuple[str, str, bool]]:
        """(name, title, in use) of each venue orders can go to."""
        return venue_names(self)

    async def switch_venue(self, name: str) -> str:
        """Send orders to ``name`` from now on, without a restart; say what changed.

        Raises ``VenueSwitchRefused`` (nothing changed) while an order is in flight, or when
        the venue cannot be used now.
        """
        if self._switching:  # a second click while the first switch reads the new venue
            raise VenueSwitchRefused("the venue is being switched already; wait for it")
        self._switching = True
        try:
            said = await switch_venue(self, name)
        finally:
            self._switching = False
        if self.on_venue_switched is not None:
            self.on_venue_switched(NODE if self.node is not None else "broker")
        return said

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await cancel_and_wait(list(self._history_tasks))
        await self.alerts.close()
        if self.backtests is not None:
            self.backtests.close()
        if self.models is not None:
            await self.models.stop()
        if self.history_service is not None and self.history_service.router is not None:
            await self.history_service.router.close()
        if self.live is not None:
            feed, order_stream = self.live.feed, self.live.parts.order_stream
            self.live.stop_stream()
            await _stopped(feed, order_stream)
        await self.standby.close()
        if self.node is not None:
            await self.node.execution.close()
        if self.recorder is not None:
            await self.orders.settle_journal()  # the acknowledgements queued behind answers
            await self.recorder.close()

    def running(self) -> dict[str, bool]:
        """Return each background service and whether it is still alive."""
        alive = {t.get_name().removeprefix("dalal:"): not t.done() for t in self._tasks}
        if self.live is not None and "broker" in alive:
            alive["feed"] = self.live.feed_connected
        return alive

    @property
    def feed_name(self) -> str:
        """The market-data source: ``"simulator"`` or the broker's name (metrics, probes)."""
        return self.live.name if self.live is not None else "simulator"

    def on_session_expired(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the loop) when the broker says the login has expired.

        The desktop shows its "log in again" dialog; the same event is also published on
        the CONNECTION topic (component ``broker:<name>``) for status bars and headless.
        """
        if self.live is not None:
            self.live.session_listeners.append(listener)

    async def broker_login(
        self,
        open_browser: Callable[[str], object],
        name: str | None = None,
        ask: Callable[[str, bool], Awaitable[str]] | None = None,
    ) -> None:
        """Log in to a broker: the one in use resumes with the new session; another keeps
        its token in the keyring for when the settings choose it. ``ask(label, secret)``
        is the window's question for what a flow needs typed (a TOTP code)."""
        prompt: LoginPrompt | None = None
        if ask is not None:
            question = ask

            async def prompt(field: LoginField) -> str:
                return await question(field.label, field.secret)

        if self.live is not None and name in (None, self.live.name):
            stored = await self.live.login(open_browser, prompt=prompt)
            if self.node is not None:  # log in once: the order node gets the day's token too
                await self.node.execution.hand_over_session(
                    self.live.name, stored.access_token
                )
            return
        if name is None:
            raise BrokerError("paper trading needs no login")
        await self._standby(name).login(open_browser, prompt)

    def _standby(self, name: str) -> StandbyBroker:
        if name not in self.standby:
            raise BrokerError(f"{name} is not a broker you can log in to")
        return self.standby.get(name)

    def broker_rows(self) -> list[BrokerRow]:
        """Every registered live broker, for the Broker menu."""
        rows = []
        for name in registry.names(Role.SESSION):
            title = registry.entry(name).title
            if self.live is not None and self.live.name == name:
                live = self.live
                rows.append(
                    BrokerRow(name, title, live.session_state, live.feed_connected, True)
                )
            elif name in self.standby:
                other = self.standby.get(name)
                rows.append(BrokerRow(name, title, other.session_state, other.connected, False))
        return rows

    async def refresh_brokers(self) -> None:
        """Read every other broker's stored session again (for the Broker menu)."""
        await self.standby.refresh()

    async def broker_connect(self, name: str) -> str:
        if self.live is not None and self.live.name == name:
            return self.live.connect()
        return await self._standby(name).connect()

    async def broker_disconnect(self, name: str) -> str:
        if self.live is not None and self.live.name == name:
            return self.live.disconnect()
        return await self._standby(name).disconnect()

    def session_renewed(self, access_token: str) -> None:
        """Resume the broker and the feed with a fresh access token after a re-login."""
        if self.live is not None:
            self.live.use_token(access_token)

    # -- facade for views and the API -----------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[Instrument]:
        return self.instruments.search(text, limit)

    def instrument(self, key: str) -> Instrument | None:
        return self.instruments.get(key)

    # GTTs go where they fire with the terminal closed: to the order node when orders go
    # there (it holds them at its broker or in its own book), to the broker when it holds
    # them (BrokerParts.gtt: Kite, Upstox); otherwise (paper) to this terminal's book.
    def _gtt_venue(self) -> GttVenue | None:
        if self.node is not None:
            return self.node.gtt
        if self.live is not None and self.live.execution is not None:
            return self.live.parts.gtt
        return None

    def gtt_held_at(self) -> str | None:
        """The broker holding this session's GTTs ("Zerodha"), or None: this terminal."""
        venue = self._gtt_venue()
        return None if venue is None else venue.title

    def gtt_offers_oco(self) -> bool:
        """False where the broker holding the GTTs has no OCO (Upstox); the book has one."""
        venue = self._gtt_venue()
        return venue is None or venue.oco

    def _gtt_price(self, key: str) -> Decimal:
        price = self.quotes.last_price(key)
        if price is None:
            raise GttError(f"no last price for {key}: a trigger needs one to compare with")
        return price

    async def place_gtt_single(self, trigger: Decimal, order: OrderRequest) -> Gtt:
        venue = self._gtt_venue()
        if venue is None:
            return await self._gtt_book().place_single(trigger, order)
        return await venue.place_single(trigger, order, self._gtt_price(order.key))

    async def place_gtt_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt:
        venue = self._gtt_venue()
        if venue is None:
            return await self._gtt_book().place_oco(
                stop_trigger, stop_order, target_trigger, target_order
            )
        return await venue.place_oco(
            stop_trigger, stop_order, target_trigger, target_order,
            self._gtt_price(stop_order.key),
        )  # fmt: skip

    async def modify_gtt(self, gtt_id: int | str, changes: list[LegChange]) -> Gtt:
        """Move an active GTT's triggers and limit prices, wherever it is held."""
        venue = self._gtt_venue()
        if venue is None:
            return await self._gtt_book().modify(gtt_id, changes)
        current = next((g for g in await venue.gtts() if str(g.gtt_id) == str(gtt_id)), None)
        if current is None:
            raise GttNotFound(f"no GTT {gtt_id}")
        return await venue.modify(current.gtt_id, changes, self._gtt_price(current.key))

    async def cancel_gtt(self, gtt_id: int | str) -> Gtt:
        venue = self._gtt_venue()
        if venue is None:
            return await self._gtt_book().cancel(gtt_id)
        return await venue.cancel(gtt_id)

    async def gtt_list(self) -> list[Gtt]:
        venue = self._gtt_venue()
        if venue is not None:
            return await venue.gtts()
        if self.gtt is None:
            return []
        await self.gtt.load()  # before the book's task has run, the stored GTTs still show
        return self.gtt.gtts()

    def _gtt_book(self) -> GttBook:
        if self.gtt is None:
            raise GttError("GTT orders are not available in this session")
        return self.gtt

    # -- chart drawings, per symbol: a small JSON file beside the settings ----------------
    def _drawings_path(self) -> Path:
        return config_dir() / f"drawings-{self.settings.profile}.json"

    def drawings(self, key: str) -> list[dict[str, Any]]:
        if self._drawings is None:
            try:
                loaded = json.loads(self._drawings_path().read_text("utf-8"))
                self._drawings = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._drawings = {}  # none saved yet, or unreadable: start clean
        return [dict(d) for d in self._drawings.get(key, [])]

    def save_drawings(self, key: str, drawings: list[dict[str, Any]]) -> None:
        """Remember ``key``'s drawings; the file is written off the UI thread."""
        self.drawings(key)
        assert self._drawings is not None
        if drawings:
            self._drawings[key] = [dict(d) for d in drawings]
        else:
            self._drawings.pop(key, None)
        text = json.dumps(self._drawings, indent=1, sort_keys=True)
        path = self._drawings_path()

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, "utf-8")
            tmp.replace(path)

        try:
            asyncio.get_running_loop().run_in_executor(None, write)
        except RuntimeError:  # no loop (a script or a test driving widgets directly)
            write()

    def option_underlyings(self) -> list[str]:
        return option_underlyings(self.instruments)

    def option_expiries(self, underlying: str) -> list[date]:
        return option_expiries(self.instruments, underlying)

    def option_chain(self, underlying: str, expiry: date) -> OptionChain:
        return OptionChain.from_instruments(self.instruments, underlying, expiry)

    def option_pricing(self) -> tuple[float, Model, float]:
        """Risk-free rate, model and dividend yield for IV and Greeks (the settings)."""
        o = self.settings.options
        return o.risk_free_rate, Model(o.model), o.dividend_yield

    def last_tick(self, key: str) -> Tick | None:
        if self.live is not None:
            self.live.watch([key])  # a view asking for a price wants its ticks
            return self.quotes.last_tick(key)
        return self.quotes.last_tick(key) or self.simulator.last_tick(key)

    def history(self, key: str, timeframe: Timeframe, count: int = HISTORY_BARS) -> list[Bar]:
        """Return bars for a chart: live bars built today, preceded by history.

        This call must not block. When real history can be had (a configured market-data
        provider, or the live broker's historical API) it is loaded in the background and the
        chart reloads on ``HISTORY``; ``load_history`` is the awaitable form. Synthetic history
        is used only when no real source covers the chart.
        """
        bars = self.bars.bars(key, timeframe)
        if self.live is not None:
            self.live.watch([key])
            if self._backfills():  # the broker's history through the router and the store
                if len(bars) < count:
                    self._request_history(key, timeframe, count)
                return bars[-count:]
            if self.live.history_available or key not in self.references:
                if len(bars) < count:
                    self.live.request_history(key, timeframe, count)
                return bars[-count:]
        if len(bars) < count and self._backfills():
            self._request_history(key, timeframe, count)
            return bars[-count:]
        if len(bars) < count:
            end = bars[0].start if bars else self.clock.now()
            past = self._simulated_past(key, timeframe, count - len(bars), end)
            self.bars.seed(key, timeframe, past)
            bars = self.bars.bars(key, timeframe)
        return bars[-count:]

    def _refresh_holidays(self) -> None:
        """NSE's holiday list, weekly, when NSE is a configured provider (in the background)."""
        from services import calendar
        from services.marketdata.service import refresh_holidays
        from services.storage.paths import default_cache_dir

        async def run() -> list[Bar]:
            try:
                await refresh_holidays(self.settings.marketdata.nse.endpoints(),
                                       default_cache_dir() / calendar.CACHE_NAME)
            except (BrokerError, ValueError, OSError) as exc:
                log.warning("NSE holiday list not refreshed: %s", exc)
            return []

        task = asyncio.get_running_loop().create_task(run(), name="holidays")
        self._history_tasks.add(task)
        task.add_done_callback(self._history_tasks.discard)

    def _backfills(self) -> bool:
        service = self.history_service
        return (service is not None and service.fetching
                and self.settings.marketdata.backfill_charts)

    def _request_history(self, key: str, timeframe: Timeframe, count: int) -> None:
        slot = (key, timeframe)
        if slot in self._history_requests:
            return
        self._history_requests.add(slot)
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to schedule on
            task = asyncio.get_running_loop().create_task(
                self.load_history(key, timeframe, count), name=f"history:{key}")
            self._history_tasks.add(task)
            task.add_done_callback(self._history_tasks.discard)

    async def load_history(
        self, key: str, timeframe: Timeframe, count: int = HISTORY_BARS
    ) -> list[Bar]:
        """Like ``history``, but waits for the real history when there is a source of it."""
        if self.live is not None and self.live.history_available and not self._backfills():
            # No profile database (no store, no router): straight from the broker.
            with contextlib.suppress(BrokerError):
                return await self.live.load_history(key, timeframe, count)
        service = self.history_service
        if service is not None and service.fetching:
            bars = await service.bars(key, timeframe, count)
            if service.last_error:
                log.warning("chart history of %s %s: %s", key, timeframe, service.last_error)
                # Say it where the trader looks (F&O intraday has no free source, say).
                self.bus.publish(CONNECTION, ConnectionState(
                    "data:history", ConnectionStatus.DISCONNECTED, service.last_error,
                    self.clock.now()))
            self.bars.seed(key, timeframe, [b for b in bars if b.closed])
            self.bus.publish(HISTORY, HistoryLoaded(key, timeframe, len(bars)))
            return self.bars.bars(key, timeframe)[-count:]
        return self.history(key, timeframe, count)

    async def submit_order(self, request: OrderRequest) -> Order:
        return await self.orders.submit(request)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        return await self.orders.modify(order_id, change)

    async def cancel_order(self, order_id: str) -> Order:
        return await self.orders.cancel(order_id)

    def order_list(self) -> list[Order]:
        return self.orders.orders()

    def order_detail(self, order_id: str) -> Order | None:
        return self.orders.order(order_id)

    async def order_by_tag(self, tag: str) -> Order | None:
        """The order sent with our ``tag`` (an idempotent retry's look-up), or None."""
        return await self.orders.find_by_tag(tag)

    def position_list(self) -> list[Position]:
        return self.orders.positions()

    def funds(self) -> Funds | None:
        funds = self.orders.funds()
        if funds is None and isinstance(self.broker, PaperBroker):
            return self.broker.current_funds()  # before the first order moves any money
        return funds

    async def add_alert(
        self, key: str, condition: AlertCondition | str, level: Decimal, note: str = ""
    ) -> Alert:
        """Watch ``key`` for a crossing of ``level`` (see ``services.alerts``)."""
        return await self.alerts.add(key, condition, level, note)

    async def remove_alert(self, alert_id: int) -> bool:
        return await self.alerts.remove(alert_id)

    def alert_list(self) -> list[Alert]:
        """Every alert, active and triggered, oldest first."""
        return self.alerts.all()

    def holding_list(self) -> list[Holding]:
        """Delivery holdings as the broker last reported them (paper: every minute; live:
        daily)."""
        return list(self._holdings)

    def _apply_holdings(self, holdings: list[Holding]) -> None:
        self._holdings = list(holdings)

    async def _follow_holdings(self, every: float = HOLDINGS_REFRESH_SECONDS) -> None:
        """Holdings change only with settlement and corporate actions: a minute is enough."""
        while True:
            try:
                self._holdings = await self.broker.holdings()
            except BrokerError as e:
                log.warning("holdings not refreshed: %s", e)
            await asyncio.sleep(every)

    async def kill(
        self, *, square_off: bool, actor: str = "user", reason: str = "kill switch"
    ) -> KillReport:
        """Cancel every open order, optionally flatten every position, and halt trading.

        Through an order node, the node's kill switch does the cancelling and flattening
        (it holds the orders); this terminal halts too, so nothing new is sent meanwhile.
        """
        if self.node is not None:
            return await self._kill_on_node(self.node, square_off, actor, reason)
        return await self.kill_switch.activate(square_off, actor=actor, reason=reason)

    async def _kill_on_node(
        self, node: NodeVenue, square_off: bool, actor: str, reason: str
    ) -> KillReport:
        started = self.clock.now()
        began = time.perf_counter()
        self.risk.halt(actor, reason)
        failed: list[KillFailure] = []
        cancelled: list[str] = []
        try:
            answer = await node.execution.kill(square_off=square_off, reason=reason)
        except BrokerError as e:
            failed.append(KillFailure("node", "*", str(e)))
        else:
            cancelled = [str(o) for o in answer.get("cancelled", [])]
            failed += [KillFailure(str(f.get("action", "node")), str(f.get("target", "*")),
                                   str(f.get("reason", ""))) for f in answer.get("failed", [])]
        return KillReport(actor, started, time.perf_counter() - began, TradingState.HALTED,
                          tuple(cancelled), (), tuple(failed))  # fmt: skip

    async def resume_node(self, reason: str) -> str | None:
        """Leave HALTED on the order node (after this terminal resumed); its new state."""
        if self.node is None or self.node.stream.trading_state.get("state") != "HALTED":
            return None
        return await self.node.execution.resume(reason)

    async def resume_trading(self, reason: str, actor: str = "user") -> TradingState:
        """Leave HALTED here and, through an order node, on the node too."""
        state = self.risk.resume(actor=actor, reason=reason)
        if self.node is not None and self.node.stream.trading_state.get("state") == "HALTED":
            await self.node.execution.resume(reason)
        return state


async def _stopped(*streams: object) -> None:
    """Wait until each stopped stream has closed its sockets and ended its threads (an
    adapter's ``stopped()``, bounded by the adapter): nothing of a broker outlives ``stop``."""
    for stream in streams:
        wait = getattr(stream, "stopped", None)
        if wait is not None:
            try:
                await wait()
            except Exception:
                log.warning("a broker stream did not stop cleanly", exc_info=True)


def _log_task_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("service %s stopped with an error", task.get_name(), exc_info=exc)


def build_services(
    settings: Settings,
    clock: Clock | None = None,
    *,
    database: Database | None = None,
    state_dir: Path | None = None,
    limits: RiskLimits | None = None,
    secrets: SecretStore | None = None,
    access_token: str | None = None,
    brokers: Brokers = DEFAULT_BROKERS,
) -> AppServices:
    """Wire the feed, the broker, the order path and the risk engine.

    ``database`` (an unlocked profile) turns on the order journal, the audit log and market
    data recording; ``state_dir`` keeps the risk engine's trading state across restarts. Tests
    leave both out and get an in-memory session.

    With a live feed or venue, the broker's credentials and day token come from ``secrets``
    (by default the keyring entries of the profile, which need ``database``);
    ``access_token`` overrides the stored token. Its instrument master is loaded in
    ``start()``, cached in ``database`` and refreshed once a day. ``brokers`` is the
    registry; a test swaps one broker's build there instead of patching this module.
    """
    clock = clock or SystemClock()
    bus = EventBus()
    universe, references = bundled_universe(clock.now().date())
    feed = settings.data_feed
    live_feed = feed != SIMULATOR
    # With a live feed the registry is filled from the broker's master in start(), never
    # with the simulator's made-up contracts, so an order cannot be validated against them.
    instruments = InstrumentRegistry(() if live_feed else universe)
    quotes = QuoteBook(bus)
    simulator = MarketSimulator(
        universe,
        references,
        bus,
        clock,
        seed=settings.seed,
        ticks_per_second=settings.ticks_per_second,
        always_open=settings.always_open,
    )
    bars = BarBuilder(bus, clock=clock)
    live: LiveBroker | None = None
    broker: PaperBroker | ExecutionClient | None = None
    if secrets is None and database is not None:
        # The profile's keyring entries: the live broker's, and every other one's for the
        # Broker menu (a login there keeps its token for when the settings choose it).
        from services.security import CredentialStore

        secrets = CredentialStore(settings.profile, database, actor="terminal")
    if live_feed:
        section = settings.broker_section(feed)
        live = LiveBroker(
            feed,
            BrokerContext(
                clock,
                bus,
                secrets=secrets,
                counts=OrderCountRepository(database) if database is not None else None,
                settings=section,
                access_token=access_token,
            ),
            instruments,
            bars,
            database=database,
            options=LiveOptions(
                feed_mode=FeedMode(str(section.get("ticker_mode") or FeedMode.FULL)),
                trading=settings.broker == feed,
            ),
            brokers=brokers,
        )
        broker = live.execution
    if broker is None and settings.node.venue == "node":
        # The venue orders go to when the Broker menu switches away from the node.
        home = brokers.build(settings.broker, _paper_context(settings, clock, bus, instruments))
        assert home.execution is not None
        broker = home.execution
    home_venue = broker
    node: NodeVenue | None = None
    if settings.node.venue == "node":
        # Orders leave from the node's static IP; the data feed stays as configured.
        from services.brokers.node.config import build_venue

        if secrets is None and database is not None:
            from services.security import CredentialStore

            secrets = CredentialStore(settings.profile, database, actor="terminal")
        node = build_venue(settings.node.url, settings.node.fingerprint, secrets, bus, clock)
        broker = node.execution
    if broker is None:
        venue = brokers.build(settings.broker, _paper_context(settings, clock, bus, instruments))
        assert venue.execution is not None
        broker = venue.execution
    recorder = Recorder(database, bus) if database is not None else None
    broker_history = None
    if live is not None and live.parts.history is not None:
        from services.marketdata.providers.broker import BrokerHistory

        broker_history = BrokerHistory(live.parts.name, live.parts.history)
    history_service = _history_service(settings, database, bus, clock, bars, simulator, live,
                                       broker_history)
    store: StateStore = (
        JsonFileStateStore(state_dir / "risk_state.json")
        if state_dir is not None
        else MemoryStateStore()
    )
    audit = recorder.audit_nowait if recorder is not None else None
    node_gate = NodeGate(node)
    path = build_order_path(
        broker,
        instruments,
        quotes,
        bus,
        clock,
        limits or settings.risk,
        # A live broker's funds arrive with the first reconciliation; until then the funds
        # check is open.
        funds_until_known=(
            Decimal(settings.opening_balance) if isinstance(broker, PaperBroker) else None
        ),
        journal=recorder,
        store=store,
        audit=audit,
        admission=node_gate,
    )
    orders, risk = path.orders, path.risk
    kill_switch = KillSwitch(
        broker,
        risk,
        instruments=instruments.get,
        clock=clock,
        place=lambda request: orders.submit_exempt(request, reason="kill switch square-off"),
        settle=orders.settle_in_flight,
    )

    def report_stuck(report: ReconcileReport) -> None:
        """Stuck orders are a notice in the status bar and the log, not a silent sweep."""
        if report.missing or report.error:
            detail = (
                f"{len(report.missing)} order(s) the broker does not know: "
                + ", ".join(o.order_id for o in report.missing)
                if report.missing
                else f"stuck orders could not be checked: {report.error}"
            )
            status = ConnectionStatus.DISCONNECTED
        else:
            detail = f"{len(report.refreshed)} quiet order(s) refreshed from the broker"
            status = ConnectionStatus.CONNECTED
        bus.publish(CONNECTION, ConnectionState("risk:stuck-orders", status, detail, clock.now()))

    supervisor = RiskSupervisor(
        risk,
        bus,
        broker,
        StuckOrderMonitor(settings.stuck_order_seconds, clock),
        on_refreshed=orders.apply_broker_update,
        on_stuck=report_stuck,
    )
    reconciler = None
    if live is not None and live.execution is not None:
        reconciler = Reconciler(
            broker,
            orders,
            bus,
            clock,
            audit=audit if audit is not None else risk.audit,
            feed_component=live.feed_component,
            notice_component=f"reconcile:{live.execution.name}",
            after=[_discard(live.repair.repair)],
        )
    models = None
    if database is not None and settings.models_enabled:
        from app.models_runtime import ModelsConfig, build_models_runtime  # numpy, no sklearn

        models = build_models_runtime(
            database, bus, clock, profile=settings.profile,
            symbol_known=lambda key: instruments.get(key) is not None,
            history=HistoryService(
                history_service.router, recorded=recorded_from(database),
                fallback=simulator.history, clock=clock,
            ),
            # Signals trade only on the paper broker: never real money by a paper setting.
            order_submit=orders.submit if isinstance(broker, PaperBroker) else None,
            config=ModelsConfig(
                paper_trading=settings.models_paper_trading,
                paper_quantity=settings.models_paper_quantity,
                min_confidence=settings.models_min_confidence,
                training_backend=settings.models_training_backend,
                training_jobs=settings.models_training_jobs,
            ),
        )
    return AppServices(
        settings=settings,
        clock=clock,
        bus=bus,
        instruments=instruments,
        references=references,
        quotes=quotes,
        simulator=simulator,
        bars=bars,
        broker=broker,
        orders=orders,
        risk=risk,
        kill_switch=kill_switch,
        risk_supervisor=supervisor,
        alerts=AlertBook(bus, clock, database),
        gtt=GttBook(bus, clock, orders.submit, quotes.last_price, database),
        recorder=recorder,
        live=live,
        secrets=secrets,
        reconciler=reconciler,
        models=models,
        node=node,
        home_venue=home_venue if home_venue is not None else broker,
        home_restored=node is None,
        node_gate=node_gate,
        node_settings=lambda: settings.node,
        history_service=history_service,
        backtests=BacktestService(database),
        strategy_runners=_strategy_runners(settings, broker, orders, clock),
        standby=_standby_brokers(settings, live, clock, bus, secrets, brokers),
    )


def _paper_context(
    settings: Settings, clock: Clock, bus: EventBus, instruments: InstrumentRegistry
) -> BrokerContext:
    return BrokerContext(
        clock,
        bus,
        instruments=instruments,
        settings={
            "opening_balance": settings.opening_balance,
            "tariff": settings.paper_tariff,
            # A simulated market that never closes has no cut-off to square MIS off at.
            "square_off_at": None if settings.always_open else settings.paper_square_off_at,
        },
    )


def _standby_brokers(
    settings: Settings,
    live: LiveBroker | None,
    clock: Clock,
    bus: EventBus,
    secrets: SecretStore | None,
    brokers: Brokers,
) -> StandbyBrokers:
    """Every registered live broker but the feed in use, for the Broker menu."""

    def config_for(name: str) -> Callable[[], SessionFor]:
        return lambda: SessionFor(settings.broker_section(name), secrets)

    return StandbyBrokers(
        {
            name: StandbyBroker(
                name, clock, bus, config_for(name), watch=settings.watchlist, brokers=brokers
            )
            for name in registry.names(Role.SESSION)
            if live is None or name != live.name
        }
    )


def _strategy_runners(
    settings: Settings, broker: object, orders: OrderManager, clock: Clock
) -> list[StrategyRunner]:
    """Runners for the configured strategies; none unless the paper broker takes the orders."""
    if not settings.strategies:
        return []
    if not isinstance(broker, PaperBroker):
        log.warning("strategies are configured but trade only on the paper broker; not started")
        return []
    runners = []
    for n, s in enumerate(settings.strategies, 1):
        strategy = build_strategy(
            s.name, {k: str(v) for k, v in s.params.items()}, quantity=s.quantity,
            product=s.product, timeframe=s.timeframe,
        )
        runners.append(
            StrategyRunner(strategy, orders, clock, keys=s.symbols, tag_prefix=f"S{n}")
        )
    return runners


def _history_service(
    settings: Settings,
    database: Database | None,
    bus: EventBus,
    clock: Clock,
    bars: BarBuilder,
    simulator: MarketSimulator,
    live: LiveBroker | None,
    broker_history: BrokerHistory | None = None,
) -> HistoryService:
    """The one history service: the profile's store, the configured providers (the live
    broker's own history as "broker", first when none are configured), today's live bars,
    and the simulator's history where nothing real covers a chart."""
    router = None
    config = settings.marketdata
    if broker_history is not None and "broker" not in config.providers:
        # The logged-in broker's own history comes first unless the trader placed it.
        config = config.model_copy(update={"providers": ["broker", *config.providers]})
    if database is not None and config.providers:
        from services.marketdata.service import open_router
        from services.security import CredentialStore
        from services.storage.paths import default_cache_dir

        credentials = CredentialStore(settings.profile, database, actor="terminal")
        router = open_router(
            database, config, credentials.get, clock=clock, broker=broker_history,
            cache_dir=default_cache_dir() / "marketdata",
        )

        def publish(health: ProviderHealth) -> None:
            bus.publish(CONNECTION, health_state(health, clock.now()))

        router.listeners.append(publish)

    def synthetic(key: str, timeframe: Timeframe, count: int, end: datetime) -> list[Bar]:
        if live is not None and live.history_available:
            return []  # the broker's own history serves the charts; no made-up bars beside it
        return simulator.history(key, timeframe, count, end)

    return HistoryService(router, live=bars.bars, fallback=synthetic, clock=clock)


def _discard(
    fn: Callable[[], Coroutine[Any, Any, object]],
) -> Callable[[], Coroutine[Any, Any, None]]:
    """Adapt a coroutine function with a result to a post-reconnect hook."""

    async def run() -> None:
        await fn()

    return run
