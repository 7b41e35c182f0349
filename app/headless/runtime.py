"""The services plus what watches them: metrics, readiness probes and their background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from app.headless.broker_session import broker_session_probe
from app.headless.order_node import build_node_controls
from app.http.auth import AuditFn, KeyVerifier, log_audit
from app.http.context import ApiContext, NodeControls
from app.wiring import AppServices
from services.apikeys import Failure, Verdict
from services.brokers.live import SessionRenewal
from services.health import (
    Check,
    DatabaseMonitor,
    FeedMonitor,
    Readiness,
    database_probe,
    feed_probe,
    not_configured,
    services_probe,
)
from services.metrics import FeedSource, Metrics, PortfolioSource, RiskSource
from services.storage.paths import default_data_dir
from services.tasks import cancel_and_wait

log = logging.getLogger("dalal.headless")


class NoKeys:
    """The verifier when no key store is open: every presented key is unknown.

    ``available`` is false so the guard answers 503 instead of 401 and never counts the
    request toward the address lockout: the fault is ours, not the client's.
    """

    available = False

    def verify(self, presented: str | None) -> Verdict:
        return Verdict(None, Failure.MISSING if not presented else Failure.UNKNOWN)

    def flush_last_used(self) -> int:
        return 0



@dataclass
class HeadlessRuntime:
    """The services plus what watches them: metrics, readiness and their background tasks."""

    services: AppServices
    metrics: Metrics
    readiness: Readiness
    feed: FeedMonitor
    lag_interval: float = 0.1
    keys: KeyVerifier = field(default_factory=NoKeys)
    flush_interval: float = 30.0
    database: DatabaseMonitor | None = None
    renewal: SessionRenewal | None = None
    # The key store's only thread: verification (``Guard``) and last-use flushes queue here.
    key_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="dalal-keys")
    )
    node: NodeControls = field(default_factory=NodeControls)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.services.start()
        loop = asyncio.get_running_loop()
        if self.database is not None:
            await self.database.refresh()  # readiness knows the database from the first probe
            self._tasks.append(loop.create_task(self.database.run(),
                                                name="dalal-headless:database"))
        if self.renewal is not None:
            self._tasks.append(loop.create_task(self.renewal.run(),
                                                name="dalal-headless:broker-session"))
        for name, coro in (
            ("feed-monitor", self.feed.run()),
            ("loop-lag", self.metrics.measure_loop_lag(self.lag_interval)),
            ("feed-lag", self.metrics.measure_feed_lag(
                self.services.bus, self.services.feed_name, self.services.clock.now)),
            ("key-last-used", self._flush_keys()),
        ):  # fmt: skip
            self._tasks.append(loop.create_task(coro, name=f"dalal-headless:{name}"))
        events = self.node.events
        if events is not None:
            # After services.start(): a restart's resync has rebuilt the order book.
            orders = self.services.orders
            events.seed(orders.orders(), orders.fills(), orders.positions(), orders.funds())
            self._tasks.append(loop.create_task(events.run(), name="dalal-headless:stream"))
        await self.node.idempotency.prune()
        self.metrics.started.set(self.services.clock.now().timestamp())

    async def stop(self) -> None:
        self.readiness.stopping = True
        await self.node.idempotency.settled()  # every answer given is stored before closing
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self._flush_off_loop()
        self.key_executor.shutdown(wait=False)
        await self.services.stop()

    async def _flush_keys(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self._flush_off_loop()

    async def _flush_off_loop(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # the executor is already shut down
            await loop.run_in_executor(self.key_executor, self._flush_once)

    def _flush_once(self) -> None:
        try:
            self.keys.flush_last_used()
        except Exception:  # a locked or closed database must not stop the server
            log.exception("could not record API key last-use times")

    def api_context(self, audit: AuditFn = log_audit) -> ApiContext:
        return ApiContext(
            trading=self.services,
            metrics=self.metrics,
            killswitch=self.services.kill_switch,
            audit=audit,
            fetch_funds=self.services.broker.funds,
            models=self.services.models,
            trading_state=self.services.risk,
            node=self.node,
            gtts=self.services,
        )


def build_runtime(
    services: AppServices, *, version: str = "unknown", keys: KeyVerifier | None = None
) -> HeadlessRuntime:
    metrics = Metrics(version=version)
    feed_name = services.feed_name
    feed = FeedMonitor(services.bus, feed_name)
    metrics.watch_orders(services.order_list)
    metrics.watch_risk(RiskSource(services.risk.rejections, lambda: services.risk.state.value))
    metrics.watch_portfolio(
        PortfolioSource(services.position_list, services.funds, services.holding_list)
    )
    if services.models is not None:
        metrics.watch_model_accuracy(services.models.live_accuracy)
    if services.history_service is not None and services.history_service.router is not None:
        metrics.watch_data_providers(services.history_service.router.health)
    metrics.watch_bus(services.bus)
    if services.recorder is not None:
        metrics.watch_recorder(services.recorder.metrics_source())
    metrics.watch_feed(FeedSource(feed_name, lambda: feed.ticks_received, feed.last_tick_age))
    services.orders.on_ack = _chain(
        services.orders.on_ack, metrics.order_ack_observer(services.broker.name)
    )

    readiness = Readiness()
    readiness.add(
        "feed",
        feed_probe(
            feed,
            services.clock,
            always_open=services.settings.always_open,
            alive=lambda: services.running().get(
                "simulator" if feed_name == "simulator" else "feed", False
            ),
        ),
    )
    readiness.add("broker", services_probe("broker", services.running, ["broker", "orders"]))
    renewal = None
    if services.live is not None:
        readiness.add("broker_session", broker_session_probe(services.live))
        renewal = SessionRenewal(services.live)
    readiness.add("services", services_probe("services", services.running, ["quotes", "bars"]))
    node_settings = services.settings.node
    readiness.add("egress", lambda: Check(
        "egress", True, node_settings.egress_family, required=False,
        details={"registered_ip": node_settings.registered_ip,
                 "family": node_settings.egress_family}))  # fmt: skip
    database = services.recorder.db if services.recorder is not None else None
    monitor = DatabaseMonitor(database) if database is not None else None
    readiness.add(
        "database",
        database_probe(monitor) if monitor is not None else not_configured("database"),
    )
    if services.models is not None:
        models = services.models
        readiness.add("models", lambda: Check(
            "models", models.started, "loaded" if models.started else "not started",
            required=False, details={"versions_loaded": len(models.loaded)}))
        models.attach_metrics(metrics.model_observers)
        models.on_rollback = lambda model, reason: metrics.model_rollbacks.labels(
            model=model, reason=reason).inc()
    else:
        readiness.add("models", not_configured("models"))
    if keys is None or isinstance(keys, NoKeys):
        readiness.add("api_keys", lambda: Check(
            "api_keys", False, "no key store: the profile database is not open",
            required=False))
    metrics.watch_components(lambda: {c.name: c.ready for c in readiness.report().checks})
    metrics.watch_disk(
        "data", database.path.parent if database is not None else default_data_dir()
    )
    return HeadlessRuntime(
        services, metrics, readiness, feed, keys=keys or NoKeys(), database=monitor,
        renewal=renewal, node=build_node_controls(services),
    )


def _chain(
    first: Callable[[float], None] | None, second: Callable[[float], None]
) -> Callable[[float], None]:
    if first is None:
        return second

    def both(seconds: float) -> None:
        first(seconds)
        second(seconds)

    return both
