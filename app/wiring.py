"""Composition root: builds the services the desktop and headless runners share.

This is the only module that knows the concrete feed and broker in use (today the built-in
simulator and paper broker). Everything else sees ``AppServices``, whose methods are the
facade widgets and the HTTP API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.settings import Settings
from services.bars import BarBuilder
from services.broker import OrderChange
from services.bus import EventBus
from services.clock import Clock, SystemClock
from services.domain import (
    Bar,
    Funds,
    Instrument,
    Order,
    OrderRequest,
    Position,
    Tick,
    Timeframe,
)
from services.instruments import InstrumentRegistry, Reference, bundled_universe
from services.orders import OrderManager
from services.paper import PaperBroker, PaperMarginModel
from services.quotes import QuoteBook
from services.recorder import Recorder
from services.risk import (
    CallbackContext,
    JsonFileStateStore,
    KillReport,
    KillSwitch,
    MemoryStateStore,
    RiskEngine,
    RiskLimits,
    StateStore,
    StuckOrderMonitor,
)
from services.risk.supervisor import RiskSupervisor
from services.simulator import MarketSimulator
from services.storage import Database

log = logging.getLogger(__name__)

HISTORY_BARS = 300


@dataclass
class AppServices:
    settings: Settings
    clock: Clock
    bus: EventBus
    instruments: InstrumentRegistry
    references: dict[str, Reference]
    quotes: QuoteBook
    simulator: MarketSimulator
    bars: BarBuilder
    broker: PaperBroker
    orders: OrderManager
    risk: RiskEngine
    kill_switch: KillSwitch
    risk_supervisor: RiskSupervisor
    recorder: Recorder | None = None
    started_at: datetime | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every background service on the running loop (Qt's, through qasync)."""
        self.bus.bind_loop(asyncio.get_running_loop())
        self.started_at = self.clock.now()
        # Consumers first, so the first simulated tick already reaches all of them.
        services: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("quotes", self.quotes.run()),
            ("bars", self.bars.run()),
            ("broker", self.broker.run()),
            ("orders", self.orders.run()),
            ("risk", self.risk_supervisor.run()),
        ]
        if self.recorder is not None:
            services.append(("recorder", self.recorder.run()))
        services.append(("simulator", self.simulator.run()))
        for name, coro in services:
            self._spawn(name, coro)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"dalal:{name}")
        task.add_done_callback(_log_task_end)
        self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.recorder is not None:
            await self.recorder.close()

    def running(self) -> dict[str, bool]:
        """Return each background service and whether it is still alive."""
        return {t.get_name().removeprefix("dalal:"): not t.done() for t in self._tasks}

    # -- facade for views and the API -----------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[Instrument]:
        return self.instruments.search(text, limit)

    def instrument(self, key: str) -> Instrument | None:
        return self.instruments.get(key)

    def last_tick(self, key: str) -> Tick | None:
        return self.quotes.last_tick(key) or self.simulator.last_tick(key)

    def history(self, key: str, timeframe: Timeframe, count: int = HISTORY_BARS) -> list[Bar]:
        """Return bars for a chart: live bars built today, preceded by synthetic history."""
        bars = self.bars.bars(key, timeframe)
        if len(bars) < count:
            end = bars[0].start if bars else self.clock.now()
            past = self.simulator.history(key, timeframe, count - len(bars), end)
            self.bars.seed(key, timeframe, past)
            bars = self.bars.bars(key, timeframe)
        return bars[-count:]

    async def submit_order(self, request: OrderRequest) -> Order:
        return await self.orders.submit(request)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        return await self.orders.modify(order_id, change)

    async def cancel_order(self, order_id: str) -> Order:
        return await self.orders.cancel(order_id)

    def order_list(self) -> list[Order]:
        return self.orders.orders()

    def position_list(self) -> list[Position]:
        return self.orders.positions()

    def funds(self) -> Funds | None:
        return self.orders.funds()

    async def kill(self, *, square_off: bool, actor: str = "user") -> KillReport:
        """Cancel every open order, optionally flatten every position, and halt trading."""
        return await self.kill_switch.activate(square_off, actor=actor)


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
) -> AppServices:
    """Wire the simulator, paper broker, order path and risk engine.

    ``database`` (an unlocked profile) turns on the order journal, the audit log and market
    data recording; ``state_dir`` keeps the risk engine's trading state across restarts. Tests
    leave both out and get an in-memory session.
    """
    clock = clock or SystemClock()
    bus = EventBus()
    universe, references = bundled_universe(clock.now().date())
    instruments = InstrumentRegistry(universe)
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
    broker = PaperBroker(
        instruments, bus, clock, opening_balance=Decimal(settings.opening_balance)
    )
    recorder = Recorder(database, bus) if database is not None else None
    orders = OrderManager(broker, instruments, quotes, bus, clock, journal=recorder)

    def available_funds() -> Decimal | None:
        funds = orders.funds()
        return funds.available_cash if funds is not None else Decimal(settings.opening_balance)

    context = CallbackContext(
        clock=clock,
        last_price_of=quotes.last_price,
        open_orders_of=orders.open_orders,
        positions_of=orders.positions,
        funds_of=available_funds,
        margin=PaperMarginModel(),
    )
    store: StateStore = (
        JsonFileStateStore(state_dir / "risk_state.json")
        if state_dir is not None
        else MemoryStateStore()
    )
    audit = recorder.audit_nowait if recorder is not None else None
    risk = RiskEngine(limits or RiskLimits(), context, store=store, audit=audit)
    orders.checks.append(risk)
    kill_switch = KillSwitch(broker, risk, instruments=instruments.get, clock=clock)
    supervisor = RiskSupervisor(
        risk, bus, broker, StuckOrderMonitor(60, clock), on_refreshed=orders.apply_broker_update
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
        recorder=recorder,
    )
