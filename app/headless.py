"""`dalal headless`: the same services as the desktop, with no Qt, watched over HTTP.

The runner owns the process lifecycle: build the services, start them and the monitors,
serve the probe routes, then on SIGTERM or SIGINT stop in the order that loses nothing:
mark not-ready, stop accepting connections, stop the services, close the HTTP runner.

Binding beyond loopback is refused unless ``--insecure-bind`` is given: the control API that
arrives with the secured headless issue will require TLS there, and until then nothing here
authenticates anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.http.routes import ProbeContext, build_app
from app.settings import Settings
from app.wiring import AppServices, build_services
from services.health import FeedMonitor, Readiness, feed_probe, not_configured, services_probe
from services.metrics import FeedSource, Metrics

log = logging.getLogger("dalal.headless")

FEED_NAME = "simulator"
BROKER_NAME = "paper"
STOPPED_LINE = "dalal headless stopped cleanly"


class ListenError(ValueError):
    """A ``--listen`` value that cannot be used; the message is shown to the user as is."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name we would have to resolve: treat as exposed


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 asks the OS for a free port."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ListenError(f"--listen {text!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ListenError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9400")
        if ":" in host:
            raise ListenError(f"--listen {text!r}: write IPv6 addresses as [ADDRESS]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenError(f"--listen {text!r}: port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise ListenError(f"--listen {text!r}: {host!r} is not a valid host") from None
    return ListenAddress(host, int(port_text))


def check_exposure(address: ListenAddress, *, insecure_bind: bool) -> None:
    if not address.loopback and not insecure_bind:
        raise ListenError(
            f"refusing to listen on {address.host}: it is not a loopback address and this "
            "server has no TLS or authentication yet; use 127.0.0.1 (and an SSH tunnel), "
            "or pass --insecure-bind if the network is private"
        )


@dataclass
class HeadlessRuntime:
    """The services plus what watches them: metrics, readiness and their background tasks."""

    services: AppServices
    metrics: Metrics
    readiness: Readiness
    feed: FeedMonitor
    lag_interval: float = 0.1
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.services.start()
        loop = asyncio.get_running_loop()
        for name, coro in (
            ("feed-monitor", self.feed.run()),
            ("loop-lag", self.metrics.measure_loop_lag(self.lag_interval)),
        ):
            self._tasks.append(loop.create_task(coro, name=f"dalal-headless:{name}"))
        self.metrics.started.set(self.services.clock.now().timestamp())

    async def stop(self) -> None:
        self.readiness.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.services.stop()


def build_runtime(services: AppServices, *, version: str = "unknown") -> HeadlessRuntime:
    metrics = Metrics(version=version)
    feed = FeedMonitor(services.bus, FEED_NAME)
    metrics.watch_orders(services.order_list)
    metrics.watch_bus(services.bus)
    metrics.watch_feed(FeedSource(FEED_NAME, lambda: feed.ticks_received, feed.last_tick_age))
    services.orders.on_ack = _chain(services.orders.on_ack, metrics.order_ack_observer(BROKER_NAME))

    readiness = Readiness()
    readiness.add(
        "feed",
        feed_probe(
            feed,
            services.clock,
            always_open=services.settings.always_open,
            alive=lambda: services.running().get("simulator", False),
        ),
    )
    readiness.add("broker", services_probe("broker", services.running, ["broker", "orders"]))
    readiness.add("services", services_probe("services", services.running, ["quotes", "bars"]))
    readiness.add("database", not_configured("database"))
    readiness.add("models", not_configured("models"))
    return HeadlessRuntime(services, metrics, readiness, feed)


def _chain(
    first: Callable[[float], None] | None, second: Callable[[float], None]
) -> Callable[[float], None]:
    if first is None:
        return second

    def both(seconds: float) -> None:
        first(seconds)
        second(seconds)

    return both


def bound_url(runner: web.AppRunner) -> str:
    sockname: Any = runner.addresses[0]
    host, port = sockname[0], sockname[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def serve(
    settings: Settings,
    address: ListenAddress,
    *,
    version: str = "unknown",
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return the process exit code."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _on_signal, sig, stop)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass

    runtime = build_runtime(build_services(settings), version=version)
    runner = web.AppRunner(
        build_app(ProbeContext(runtime.metrics, runtime.readiness, version)),
        access_log=None,  # probes every few seconds would drown the log
        shutdown_timeout=5.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, address.host, address.port)
    try:
        await site.start()  # bind before starting anything, so a taken port fails fast
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", address.host, address.port, e.strerror or e)
        await runner.cleanup()
        _remove_handlers(loop, handled)
        return 1
    await runtime.start()

    url = bound_url(runner)
    log.info(
        "dalal headless %s serving on %s (feed %s, broker %s, seed %s, %s ticks/s)",
        version, url, FEED_NAME, BROKER_NAME, settings.seed, settings.ticks_per_second,
    )  # fmt: skip
    (announce or _print_line)(f"listening on {url}")

    await stop.wait()
    log.info("shutting down: refusing new connections")
    runtime.readiness.stopping = True
    await site.stop()
    log.info("stopping services")
    await runtime.stop()
    await runner.cleanup()
    _remove_handlers(loop, handled)
    log.info(STOPPED_LINE)
    return 0


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    if stop.is_set():
        log.info("received %s again; already shutting down", sig.name)
    else:
        log.info("received %s", sig.name)
    stop.set()


def _remove_handlers(loop: asyncio.AbstractEventLoop, handled: list[signal.Signals]) -> None:
    for sig in handled:
        loop.remove_signal_handler(sig)


def _print_line(text: str) -> None:
    print(text, flush=True)


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )


def run_headless(
    settings: Settings, listen: str, *, insecure_bind: bool = False, version: str = "unknown"
) -> int:
    """Entry point for ``dalal headless``; raises ``ListenError`` for an unusable address."""
    address = parse_listen(listen)
    check_exposure(address, insecure_bind=insecure_bind)
    if not address.loopback:
        log.warning("listening on non-loopback %s without TLS (--insecure-bind)", address.host)
    return asyncio.run(serve(settings, address, version=version))
