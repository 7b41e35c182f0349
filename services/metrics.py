"""Prometheus metrics for the terminal, on a registry owned by one ``Metrics`` instance.

Each ``Metrics`` owns its own ``CollectorRegistry`` instead of using prometheus-client's global
one, so a test can build many apps in one process and the desktop can build its own later.

Two kinds of metric live here:

* *pushed* metrics (counters and histograms a service updates as things happen), such as the
  event-loop lag and the order acknowledgement latency;
* *pulled* metrics, computed at scrape time from a snapshot (orders by state, bus counters,
  feed tick counts and age). A pulled gauge is exact by construction: there is no increment
  that a crash or a missed event could leave behind.

Names follow https://prometheus.io/docs/practices/naming: the ``dalal_`` prefix, base units
(seconds), ``_total`` on counters, no unbounded labels (never an order id or a symbol).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.registry import Collector

from services.bus import TICKS, EventBus
from services.domain import ZERO, Funds, Holding, Order, OrderStatus, Position

# Event-loop lag: 0.5 ms (healthy) to 1 s (the UI or API is frozen).
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Order round trips to a broker: 1 ms (paper) to 10 s (a struggling REST API).
ORDER_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Feed lag (exchange timestamp to our receipt): 1 ms (co-located) to 30 s (a stalled feed).
FEED_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# HTTP handlers on loopback: 100 us to 1 s.
HTTP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Model inference, measured at 7 us to 5 ms (research/ml_headless.md 7.1).
MODEL_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(frozen=True)
class FeedSource:
    """How to read one feed's figures at scrape time.

    ``ticks_received`` returns a monotonically growing count; ``last_tick_age`` returns the
    seconds since the feed's last tick, or ``None`` before the first one.
    """

    name: str
    ticks_received: Callable[[], int]
    last_tick_age: Callable[[], float | None]


TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")


@dataclass(frozen=True)
class RiskSource:
    """The risk engine's counters, read at scrape time."""

    rejections: Callable[[], Mapping[str, int]]
    state: Callable[[], str]


@dataclass(frozen=True)
class PortfolioSource:
    """Positions, holdings and funds snapshots, read at scrape time."""

    positions: Callable[[], Iterable[Position]]
    funds: Callable[[], Funds | None]
    holdings: Callable[[], Iterable[Holding]] = tuple


@dataclass(frozen=True)
class RecorderSource:
    """The tick recorder's accounting (``services.recorder.Recorder``), read at scrape time:
    how far behind the disk it is, rather than only the losses once it is too far."""

    tick_backlog: Callable[[], int]
    backlog_peak: Callable[[], int]
    ticks_written: Callable[[], int]
    errors: Callable[[], int]


class ProviderStatus(Protocol):
    """One market-data provider's health (``services.marketdata.router.ProviderHealth``)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str:  # "closed", "half-open" or "open": the provider's circuit
        ...
    @property
    def requests(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def last_latency(self) -> float | None: ...
    @property
    def delayed(self) -> bool: ...


_CIRCUIT_UP = {"closed": 1.0, "half-open": 0.5, "open": 0.0}


class _DataProviderCollector(Collector):
    """Market-data providers' circuit, request counts and latency, read at scrape time."""

    def __init__(self, health: Callable[[], Iterable[ProviderStatus]]) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "dalal_marketdata_provider_up",
            "Circuit of a market-data provider: 1 closed, 0.5 half-open (probing), 0 open.",
            labels=["provider"],
        )
        requests = CounterMetricFamily(
            "dalal_marketdata_provider_requests", "Requests sent to a market-data provider.",
            labels=["provider"],
        )
        failures = CounterMetricFamily(
            "dalal_marketdata_provider_failures",
            "Failed requests (down, 429/403, quota, unreadable answers) per provider.",
            labels=["provider"],
        )
        latency = GaugeMetricFamily(
            "dalal_marketdata_provider_latency_seconds",
            "Duration of the provider's last request.", labels=["provider"],
        )
        delayed = GaugeMetricFamily(
            "dalal_marketdata_provider_delayed",
            "1 when the provider's prices are delayed or end of day (never used for orders).",
            labels=["provider"],
        )
        for h in self.health():
            up.add_metric([h.name], _CIRCUIT_UP.get(str(h.state), 0.0))
            requests.add_metric([h.name], h.requests)
            failures.add_metric([h.name], h.failures)
            delayed.add_metric([h.name], 1.0 if h.delayed else 0.0)
            if h.last_latency is not None:
                latency.add_metric([h.name], h.last_latency)
        yield from (up, requests, failures, latency, delayed)


def _recorder_metrics(source: RecorderSource) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "dalal_recorder_tick_backlog",
        "Ticks received by the recorder and not yet committed (mailbox and encoded).",
        value=source.tick_backlog(),
    )
    yield GaugeMetricFamily(
        "dalal_recorder_tick_backlog_peak",
        "The largest tick backlog the recorder has had since it started.",
        value=source.backlog_peak(),
    )
    yield CounterMetricFamily(
        "dalal_recorder_ticks_written", "Ticks committed to the database.",
        value=source.ticks_written(),
    )  # fmt: skip
    yield CounterMetricFamily(
        "dalal_recorder_errors",
        "Recorder writes that failed or events it missed by falling a mailbox behind.",
        value=source.errors(),
    )


class _SnapshotCollector(Collector):
    """Builds the pulled metrics from whatever sources the runner attached."""

    def __init__(self) -> None:
        self.orders: Callable[[], Iterable[Order]] | None = None
        self.bus: EventBus | None = None
        self.feeds: dict[str, FeedSource] = {}
        self.blocked_addresses: Callable[[], int] | None = None
        self.components: Callable[[], Mapping[str, bool]] | None = None
        self.disk_paths: dict[str, str] = {}
        self.risk: RiskSource | None = None
        self.portfolio: PortfolioSource | None = None
        self.model_accuracy: Callable[[], Mapping[tuple[str, int], float]] | None = None
        self.recorder: RecorderSource | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self._collect_security_and_health()
        yield from self._collect_trading()
        if self.orders is not None:
            counts = dict.fromkeys(OrderStatus, 0)
            for order in self.orders():
                counts[order.status] += 1
            gauge = GaugeMetricFamily(
                "dalal_orders", "Orders known to the order manager, by state.", labels=["state"]
            )
            for status, n in counts.items():
                gauge.add_metric([status.value], n)
            yield gauge
        if self.bus is not None:
            published = CounterMetricFamily(
                "dalal_bus_published", "Events published on the event bus.", labels=["topic"]
            )
            for topic, n in sorted(self.bus.published.items()):
                published.add_metric([topic], n)
            yield published
            lagged = CounterMetricFamily(
                "dalal_bus_subscriber_lagged",
                "Times a lossless subscriber fell a full mailbox behind and resynchronised.",
                labels=["subscriber"],
            )
            for name, n in sorted(self.bus.lagged.items()):
                lagged.add_metric([name], n)
            yield lagged
        if self.recorder is not None:
            yield from _recorder_metrics(self.recorder)
        if self.feeds:
            ticks = CounterMetricFamily(
                "dalal_ticks_received", "Market data ticks received.", labels=["feed"]
            )
            age = GaugeMetricFamily(
                "dalal_feed_last_tick_age_seconds",
                "Seconds since the feed's last tick (absent before the first tick).",
                labels=["feed"],
            )
            for feed in self.feeds.values():
                ticks.add_metric([feed.name], feed.ticks_received())
                seconds = feed.last_tick_age()
                if seconds is not None:
                    age.add_metric([feed.name], seconds)
            yield ticks
            yield age

    def _collect_trading(self) -> Iterator[Metric]:
        if self.risk is not None:
            rejections = CounterMetricFamily(
                "dalal_risk_rejections",
                "Orders refused before reaching the broker, by the rule that refused them "
                "(every source: ticket, hotkey, API, models).",
                labels=["rule"],
            )
            for rule, n in sorted(self.risk.rejections().items()):
                rejections.add_metric([rule], n)
            yield rejections
            state = GaugeMetricFamily(
                "dalal_trading_state",
                "1 for the risk engine's current trading state, 0 for the others.",
                labels=["state"],
            )
            current = self.risk.state()
            for name in TRADING_STATES:
                state.add_metric([name], 1.0 if name == current else 0.0)
            yield state
        if self.portfolio is not None:
            positions = list(self.portfolio.positions())
            yield GaugeMetricFamily(
                "dalal_positions_open",
                "Positions with a non-zero net quantity.",
                value=sum(1 for p in positions if p.quantity != 0),
            )
            pnl = GaugeMetricFamily(
                "dalal_pnl_rupees", "Day P&L over all positions, in rupees.", labels=["kind"]
            )
            pnl.add_metric(["realised"], float(sum((p.realised_pnl for p in positions), ZERO)))
            pnl.add_metric(
                ["unrealised"], float(sum((p.unrealised_pnl for p in positions), ZERO))
            )
            pnl.add_metric(["charges"], float(sum((p.charges for p in positions), ZERO)))
            pnl.add_metric(["net"], float(sum((p.net_pnl for p in positions), ZERO)))
            yield pnl
            holdings = list(self.portfolio.holdings())
            yield GaugeMetricFamily(
                "dalal_holdings_value_rupees",
                "Market value of delivery holdings at their last price, in rupees.",
                value=float(sum((h.last_price * h.quantity for h in holdings), ZERO)),
            )
            funds = self.portfolio.funds()
            if funds is not None:
                money = GaugeMetricFamily(
                    "dalal_funds_rupees",
                    "Trading account funds, in rupees.",
                    labels=["kind"],
                )
                money.add_metric(["available"], float(funds.available_cash))
                money.add_metric(["margin_used"], float(funds.margin_used))
                yield money
        if self.model_accuracy is not None:
            accuracy = GaugeMetricFamily(
                "dalal_model_live_accuracy",
                "Share of resolved live predictions that were right, per production version.",
                labels=["model", "version"],
            )
            for (model, version), value in sorted(self.model_accuracy().items()):
                accuracy.add_metric([model, str(version)], value)
            yield accuracy

    def _collect_security_and_health(self) -> Iterator[Metric]:
        if self.blocked_addresses is not None:
            yield GaugeMetricFamily(
                "dalal_blocked_addresses",
                "Client addresses currently blocked after repeated failed authentication.",
                value=self.blocked_addresses(),
            )
        if self.components is not None:
            ready = GaugeMetricFamily(
                "dalal_component_ready",
                "1 when the component passes its readiness check, else 0.",
                labels=["component"],
            )
            for name, ok in sorted(self.components().items()):
                ready.add_metric([name], 1.0 if ok else 0.0)
            yield ready
        if self.disk_paths:
            free = GaugeMetricFamily(
                "dalal_disk_free_bytes",
                "Bytes available to the process on the volume holding the path.",
                labels=["volume"],
            )
            size = GaugeMetricFamily(
                "dalal_disk_size_bytes", "Size of the volume holding the path.", labels=["volume"]
            )
            for volume, path in sorted(self.disk_paths.items()):
                try:
                    usage = shutil.disk_usage(path)
                except OSError:
                    continue  # a vanished mount: absent, which the disk alert treats as unknown
                free.add_metric([volume], usage.free)
                size.add_metric([volume], usage.total)
            yield free
            yield size


class Metrics:
    """The terminal's metrics and the registry that exposes them."""

    def __init__(self, *, version: str = "unknown", process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        Info("dalal_build", "Version of the running terminal.", registry=self.registry).info(
            {"version": version}
        )
        self.event_loop_lag = Histogram(
            "dalal_event_loop_lag_seconds",
            "How late the event loop woke a fixed-interval sleeper: time the loop was blocked.",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )
        self.order_ack = Histogram(
            "dalal_order_ack_seconds",
            "Time from placing an order to the broker's first answer (accept or reject).",
            labelnames=["broker"],
            buckets=ORDER_ACK_BUCKETS,
            registry=self.registry,
        )
        self.started = Gauge(
            "dalal_start_time_seconds",
            "Unix time the services were started.",
            registry=self.registry,
        )
        self.feed_lag = Histogram(
            "dalal_feed_lag_seconds",
            "Time from a tick's exchange timestamp to its arrival on our event bus.",
            labelnames=["feed"],
            buckets=FEED_LAG_BUCKETS,
            registry=self.registry,
        )
        self.order_path = Histogram(
            "dalal_order_path_seconds",
            "Time from an order entering the order path (validation, risk checks) to the "
            "broker's acknowledgement, by where the order came from.",
            labelnames=["source"],
            buckets=ORDER_ACK_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "dalal_auth_failures",
            "Control API requests refused for a missing or bad credential, by reason.",
            labelnames=["reason"],
            registry=self.registry,
        )
        self.address_blocks = Counter(
            "dalal_address_blocks",
            "Times a client address was blocked after repeated failed authentication.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "dalal_rate_limited",
            "Control API requests refused with 429 by a key's rate limit or an address block.",
            labelnames=["cause"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "dalal_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            labelnames=["handler", "method", "code"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "dalal_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            labelnames=["handler"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        # Hooks for the models issue: no samples until a model reports (no invented zeros).
        self.model_inference = Histogram(
            "dalal_model_inference_duration_seconds",
            "Time to produce one prediction (hook: fed by model inference).",
            labelnames=["model", "version"],
            buckets=MODEL_BUCKETS,
            registry=self.registry,
        )
        self.model_outcomes = Counter(
            "dalal_model_prediction_outcomes",
            "Predictions whose outcome is known, by correctness (hook: fed by model monitoring).",
            labelnames=["model", "version", "correct"],
            registry=self.registry,
        )
        self.model_rollbacks = Counter(
            "dalal_model_rollbacks",
            "Automatic or manual model rollbacks, by reason (hook: fed by the model registry).",
            labelnames=["model", "reason"],
            registry=self.registry,
        )
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)

    # -- pulled sources ---------------------------------------------------------------------
    def watch_orders(self, snapshot: Callable[[], Iterable[Order]]) -> None:
        """Report ``dalal_orders`` by state from ``snapshot()`` at every scrape."""
        self._snapshot.orders = snapshot

    def watch_bus(self, bus: EventBus) -> None:
        self._snapshot.bus = bus

    def watch_recorder(self, recorder: RecorderSource) -> None:
        self._snapshot.recorder = recorder

    def watch_feed(self, feed: FeedSource) -> None:
        self._snapshot.feeds[feed.name] = feed

    def watch_blocked_addresses(self, count: Callable[[], int]) -> None:
        self._snapshot.blocked_addresses = count

    def watch_components(self, states: Callable[[], Mapping[str, bool]]) -> None:
        """Report ``dalal_component_ready`` from ``states()`` (component name -> ready)."""
        self._snapshot.components = states

    def watch_risk(self, source: RiskSource) -> None:
        """Report rejections by rule and the trading state from the risk engine itself."""
        self._snapshot.risk = source

    def watch_portfolio(self, source: PortfolioSource) -> None:
        self._snapshot.portfolio = source

    def watch_model_accuracy(
        self, accuracy: Callable[[], Mapping[tuple[str, int], float]]
    ) -> None:
        self._snapshot.model_accuracy = accuracy

    def watch_data_providers(self, health: Callable[[], Iterable[ProviderStatus]]) -> None:
        """Export the market-data providers' health (``MarketDataRouter.health``)."""
        self.registry.register(_DataProviderCollector(health))

    def watch_disk(self, volume: str, path: str | os.PathLike[str]) -> None:
        """Report free and total bytes of the volume holding ``path`` under label ``volume``."""
        self._snapshot.disk_paths[volume] = os.fspath(path)

    # -- exposition -------------------------------------------------------------------------
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return the scrape body and its content type, negotiated from the Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """Return one sample's current value (for tests and status pages)."""
        return self.registry.get_sample_value(name, labels or {})

    # -- pushed measurements ----------------------------------------------------------------
    async def measure_loop_lag(self, interval: float = 0.1) -> None:
        """Sleep ``interval`` forever and record by how much each wake-up overshot.

        The overshoot is the time some callback held the loop: exactly what makes ticks,
        repaints and HTTP answers late.
        """
        observe = self.event_loop_lag.observe
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(interval)
            observe(max(0.0, time.monotonic() - t0 - interval))

    def order_ack_observer(self, broker: str) -> Callable[[float], None]:
        """Return a callback recording one order acknowledgement, in seconds, for ``broker``.

        Hand it to the order manager's ``on_ack`` hook; the label child is bound once here
        because binding per observation costs twice as much.
        """
        return self.order_ack.labels(broker=broker).observe

    def order_path_observer(self, source: str) -> Callable[[float], None]:
        return self.order_path.labels(source=source).observe

    def model_observers(
        self, model: str, version: str
    ) -> tuple[Callable[[float], None], Callable[[bool], None]]:
        """Return ``(inference_seconds, outcome_correct)`` callbacks for one model version.

        The hook the models issue feeds: children are bound once per version because label
        lookups per prediction cost as much as a small model's inference.
        """
        latency = self.model_inference.labels(model=model, version=version).observe
        right = self.model_outcomes.labels(model=model, version=version, correct="true")
        wrong = self.model_outcomes.labels(model=model, version=version, correct="false")

        def outcome(correct: bool) -> None:
            (right if correct else wrong).inc()

        return latency, outcome

    async def measure_feed_lag(
        self, bus: EventBus, feed: str, now: Callable[[], datetime]
    ) -> None:
        """Observe, for every tick batch, how old each tick is when we see it.

        The tick topic is coalesced per instrument, so under load this samples the newest tick
        of each instrument, which is the one whose lag matters.
        """
        observe = self.feed_lag.labels(feed=feed).observe
        sub = bus.subscribe(TICKS, f"metrics:{feed}:lag")
        try:
            while True:
                batch = await sub.next_batch()
                received = now()
                for tick in batch:
                    observe(max(0.0, (received - tick.ts).total_seconds()))
        finally:
            sub.close()
