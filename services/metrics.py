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
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
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

from services.bus import EventBus
from services.domain import Order, OrderStatus

# Event-loop lag: 0.5 ms (healthy) to 1 s (the UI or API is frozen).
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Order round trips to a broker: 1 ms (paper) to 10 s (a struggling REST API).
ORDER_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class FeedSource:
    """How to read one feed's figures at scrape time.

    ``ticks_received`` returns a monotonically growing count; ``last_tick_age`` returns the
    seconds since the feed's last tick, or ``None`` before the first one.
    """

    name: str
    ticks_received: Callable[[], int]
    last_tick_age: Callable[[], float | None]


class _SnapshotCollector(Collector):
    """Builds the pulled metrics from whatever sources the runner attached."""

    def __init__(self) -> None:
        self.orders: Callable[[], Iterable[Order]] | None = None
        self.bus: EventBus | None = None
        self.feeds: dict[str, FeedSource] = {}

    def collect(self) -> Iterator[Metric]:
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
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)

    # -- pulled sources ---------------------------------------------------------------------
    def watch_orders(self, snapshot: Callable[[], Iterable[Order]]) -> None:
        """Report ``dalal_orders`` by state from ``snapshot()`` at every scrape."""
        self._snapshot.orders = snapshot

    def watch_bus(self, bus: EventBus) -> None:
        self._snapshot.bus = bus

    def watch_feed(self, feed: FeedSource) -> None:
        self._snapshot.feeds[feed.name] = feed

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
