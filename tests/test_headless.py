"""`dalal headless`: the real process on a free port, the HTTP app in-process, readiness rules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.headless import (
    STOPPED_LINE,
    ListenError,
    build_runtime,
    check_exposure,
    parse_listen,
)
from app.http.routes import ProbeContext, build_app
from app.settings import Settings
from app.wiring import build_services
from services.bus import CONNECTION, EventBus
from services.clock import IST, ManualClock
from services.domain import (
    ConnectionState,
    ConnectionStatus,
    OrderRequest,
    OrderType,
    Product,
    Side,
    round_to_tick,
)
from services.health import Check, FeedMonitor, Readiness, feed_probe, not_configured

REPO = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "qasync")


# -- the real process ---------------------------------------------------------------------


def start_headless(
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> tuple[subprocess.Popen[str], str, Path]:
    """Start `python -m app headless` on a free port; return it, its base URL and its log."""
    log_path = tmp_path / "stderr.log"
    cmd = [sys.executable, "-X", "importtime", "-m", "app", "headless", "--listen", "127.0.0.1:0"]
    config = tmp_path / "settings.json"
    if not config.exists():
        config.write_text("{}")
    cmd += ["--config", str(config), "--ticks-per-second", "100", *extra]
    with log_path.open("w") as log:  # a file, not a pipe: -X importtime writes a lot
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            pass_fds=pass_fds,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=30):
            proc.kill()
            pytest.fail(f"no address printed in 30 s; stderr:\n{log_path.read_text()[-3000:]}")
    line = proc.stdout.readline().strip()
    match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert match, f"unexpected first line {line!r}; stderr:\n{log_path.read_text()[-3000:]}"
    return proc, match.group(1), log_path


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text: str, name: str, labels: str = "") -> float | None:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None


def wait_ready(base: str, timeout: float = 15.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(base + "/readyz")
        if status == 200:
            return json.loads(body)  # type: ignore[no-any-return]
        assert status == 503, body
        if time.monotonic() > deadline:
            pytest.fail(f"not ready after {timeout} s: {body}")
        time.sleep(0.1)


def test_headless_process_serves_probes_and_metrics_then_stops_on_sigterm(tmp_path: Path) -> None:
    proc, base, log_path = start_headless(tmp_path)
    try:
        ready = wait_ready(base)
        components = ready["components"]
        assert isinstance(components, dict)
        assert components["feed"]["state"] == "connected"
        assert components["feed"]["last_tick_age_seconds"] < 5
        assert components["broker"]["state"] == "running"
        assert components["database"] == {
            "state": "not configured",
            "ready": True,
            "required": False,
        }
        assert components["models"]["state"] == "not configured"

        status, body = get(base + "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert get(base + "/livez")[0] == 200

        status, first = get(base + "/metrics")
        assert status == 200
        time.sleep(0.5)
        second = get(base + "/metrics")[1]
        feed = '{feed="simulator"}'
        before = sample(first, "dalal_ticks_received_total", feed)
        after = sample(second, "dalal_ticks_received_total", feed)
        assert before is not None and after is not None and after > before
        for state in ("PENDING", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED"):
            assert sample(second, "dalal_orders", f'{{state="{state}"}}') == 0
        assert sample(second, "dalal_event_loop_lag_seconds_count") > 0
        assert 'dalal_event_loop_lag_seconds_bucket{le="0.0005"}' in second
        assert sample(second, "dalal_feed_last_tick_age_seconds", feed) < 5
        assert sample(second, "dalal_bus_published_total", '{topic="ticks"}') > 0
        assert sample(second, "process_resident_memory_bytes") > 0
        assert get(base + "/nope")[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    lines = [ln for ln in log.splitlines() if not ln.startswith("import time:")]
    assert STOPPED_LINE in lines[-1]
    assert any("received SIGTERM" in ln for ln in lines)
    # No Qt anywhere in the headless process: -X importtime lists every module imported.
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in log.splitlines() if "import time:" in ln}
    assert imported, "-X importtime produced nothing"
    assert not {m for m in imported if m.split(".")[0] in QT_MODULES}
    assert "Traceback" not in log


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_headless_process_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    proc, base, log_path = start_headless(tmp_path, "--market-hours")
    assert get(base + "/livez")[0] == 200
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=10) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert STOPPED_LINE in log_path.read_text()


def test_taken_port_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cmd = [sys.executable, "-m", "app", "headless", "--listen", f"127.0.0.1:{port}"]
        (tmp_path / "settings.json").write_text("{}")
        cmd += ["--config", str(tmp_path / "settings.json")]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


# -- the HTTP app in-process --------------------------------------------------------------


async def test_orders_gauge_tracks_a_paper_order_through_the_api() -> None:
    services = build_services(Settings(ticks_per_second=200))
    runtime = build_runtime(services, version="test")
    await runtime.start()
    client = TestClient(TestServer(build_app(ProbeContext(runtime.metrics, runtime.readiness))))
    await client.start_server()
    try:

        async def orders_in(state: str) -> float | None:
            resp = await client.get("/metrics")
            assert resp.status == 200
            return sample(await resp.text(), "dalal_orders", f'{{state="{state}"}}')

        deadline = time.monotonic() + 10
        while (tick := services.last_tick("NSE:RELIANCE")) is None:
            assert time.monotonic() < deadline, "no tick for NSE:RELIANCE"
            await asyncio.sleep(0.05)
        instrument = services.instrument("NSE:RELIANCE")
        assert instrument is not None
        price = round_to_tick(tick.last_price * Decimal("0.8"), instrument.tick_size)
        assert await orders_in("OPEN") == 0

        order = await services.submit_order(
            OrderRequest(
                "NSE:RELIANCE",
                Side.BUY,
                instrument.lot_size,
                OrderType.LIMIT,
                Product.CNC,
                price=price,
            )
        )
        assert await orders_in("OPEN") == 1
        ack = runtime.metrics.sample("dalal_order_ack_seconds_count", {"broker": "paper"})
        assert ack == 1

        await services.cancel_order(order.order_id)
        assert await orders_in("OPEN") == 0
        assert await orders_in("CANCELLED") == 1

        resp = await client.get("/readyz")
        assert resp.status == 200
        runtime.readiness.stopping = True  # draining: monitors must stop sending traffic
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["status"] == "stopping"
        assert (await client.get("/healthz")).status == 200  # but the process is alive
    finally:
        await client.close()
        await runtime.stop()
    assert not any(services.running().values())


# -- readiness rules ----------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monitor_and_probe(
    when: datetime, *, always_open: bool, alive: bool = True
) -> tuple[FeedMonitor, FakeMonotonic, Readiness]:
    mono = FakeMonotonic()
    monitor = FeedMonitor(EventBus(), "simulator", monotonic=mono)
    readiness = Readiness()
    readiness.add(
        "feed",
        feed_probe(
            monitor, ManualClock(when), always_open=always_open, alive=lambda: alive, stale_after=5
        ),
    )
    readiness.add("database", not_configured("database"))
    return monitor, mono, readiness


MONDAY_OPEN = datetime(2026, 3, 2, 11, 0, tzinfo=IST)
MONDAY_NIGHT = datetime(2026, 3, 2, 20, 0, tzinfo=IST)


def test_feed_is_ready_only_while_ticks_are_fresh_in_market_hours() -> None:
    monitor, mono, readiness = monitor_and_probe(MONDAY_OPEN, always_open=False)
    report = readiness.report()
    assert not report.ready
    assert report.checks[0].state == "waiting for first tick"

    monitor.last_tick_at = mono.now
    mono.now += 1
    assert readiness.report().ready

    mono.now += 10  # no tick for 11 s while the market is open
    report = readiness.report()
    assert not report.ready
    assert report.to_json()["components"]["feed"]["state"] == "stale"
    assert report.to_json()["components"]["feed"]["last_tick_age_seconds"] == 11


def test_silent_feed_is_normal_when_the_market_is_closed() -> None:
    _, _, readiness = monitor_and_probe(MONDAY_NIGHT, always_open=False)
    report = readiness.report()
    assert report.ready
    assert report.checks[0].state == "idle"


def test_feed_reported_disconnected_or_stopped_is_not_ready() -> None:
    monitor, mono, readiness = monitor_and_probe(MONDAY_OPEN, always_open=True)
    monitor.last_tick_at = mono.now
    monitor.connection = ConnectionState("feed:simulator", ConnectionStatus.DISCONNECTED)
    report = readiness.report()
    assert not report.ready and report.checks[0].state == "disconnected"

    _, _, dead = monitor_and_probe(MONDAY_OPEN, always_open=True, alive=False)
    assert dead.report().checks[0].state == "stopped"


async def test_feed_monitor_follows_the_feeds_connection_reports() -> None:
    bus = EventBus()
    monitor = FeedMonitor(bus, "simulator")
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0)
    bus.publish(CONNECTION, ConnectionState("broker:paper", ConnectionStatus.DISCONNECTED))
    bus.publish(CONNECTION, ConnectionState("feed:simulator", ConnectionStatus.CONNECTED))
    await asyncio.sleep(0.01)
    task.cancel()
    assert monitor.status is ConnectionStatus.CONNECTED
    assert bus.subscriber_count(CONNECTION) == 1  # closed once the task is done...
    await asyncio.gather(task, return_exceptions=True)
    assert bus.subscriber_count(CONNECTION) == 0  # ...so a stopped monitor leaks nothing


def test_a_failing_probe_fails_readiness_without_raising() -> None:
    readiness = Readiness()

    def broken() -> Check:
        raise RuntimeError("boom")

    readiness.add("models", broken)
    readiness.add("database", not_configured("database"))
    report = readiness.report()
    assert not report.ready
    assert report.to_json()["components"]["models"]["state"] == "error"


# -- --listen -----------------------------------------------------------------------------


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:0").port == 0
    assert parse_listen("[::1]:9400").host == "::1"
    assert parse_listen("localhost:9400").loopback
    for bad in ("9400", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "::1:80", ":80"):
        with pytest.raises(ListenError):
            parse_listen(bad)
    for exposed in ("0.0.0.0:9400", "[::]:9400", "10.0.0.5:9400", "example.com:9400"):
        with pytest.raises(ListenError, match="--insecure-bind"):
            check_exposure(parse_listen(exposed), insecure_bind=False)
        check_exposure(parse_listen(exposed), insecure_bind=True)
    check_exposure(parse_listen("127.0.0.2:1"), insecure_bind=False)


def test_an_unreachable_broker_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "settings.json"
    config.write_text(
        json.dumps({"broker": "kite", "kite": {"api_key": "k", "api_root": "http://127.0.0.1:9"}})
    )
    result = subprocess.run(
        [sys.executable, "-m", "app", "headless", "--listen", "127.0.0.1:0",
         "--config", str(config), "--no-database"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "cannot start:" in result.stderr
    assert "Traceback" not in result.stderr
