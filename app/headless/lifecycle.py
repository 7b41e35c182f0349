"""The process: build, serve, and on SIGTERM or SIGINT stop in the order that loses nothing.

Mark not-ready, stop accepting connections, stop the services, close the HTTP runner.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from app.headless.broker_session import SESSION_POLL_SECONDS, install_reload_signal
from app.headless.listen import (
    ListenAddress,
    bound_url,
    certificate_fingerprint,
    check_exposure,
    load_tls,
    parse_listen,
)
from app.headless.profile import open_profile_store
from app.headless.runtime import NoKeys, build_runtime
from app.headless.systemd import sd_notify
from app.heap import freeze_startup_heap
from app.http.auth import AuditFn, Guard, KeyVerifier, log_audit
from app.http.routes import ProbeContext
from app.http.server import build_control_app, runner_options
from app.settings import Settings
from app.wiring import build_services
from services.broker import BrokerError
from services.node.egress import pin_family
from services.storage import Database

if TYPE_CHECKING:
    from services.brokers.ports import SecretStore

log = logging.getLogger("dalal.headless")

STOPPED_LINE = "dalal headless stopped cleanly"


@dataclass(frozen=True)
class ServerOptions:
    """What ``serve`` needs beyond the settings: TLS, keys, audit and the traffic limits."""

    tls: ssl.SSLContext | None = None
    keys: KeyVerifier | None = None
    # None: the profile's audit log through the recorder's journal thread when there is a
    # database, else the process log. Whatever is given must not block (it runs on the loop).
    audit: AuditFn | None = None
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    rate: float = 20.0
    burst: float = 40.0
    database: Database | None = None  # the unlocked profile: journal, audit, recording
    state_dir: Path | None = None  # where the risk engine keeps its trading state
    metrics_require_key: bool = False  # /metrics needs a read key even from loopback
    secrets: SecretStore | None = None  # broker credentials (default: the profile keyring)
    session_poll: float = SESSION_POLL_SECONDS  # token look-ups while a session is expired
    # Freeze start-up's objects out of the cyclic GC once serving (app.heap): the process's
    # own choice (run_headless), not that of a test suite serving in its own process.
    freeze_heap: bool = False


async def serve(
    settings: Settings,
    address: ListenAddress,
    *,
    version: str = "unknown",
    announce: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    options: ServerOptions | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return the process exit code."""
    from services.apikeys import AddressLockout, KeyRateLimiter

    options = options or ServerOptions()
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _on_signal, sig, stop)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass

    try:
        services = build_services(
            settings, database=options.database, state_dir=options.state_dir,
            secrets=options.secrets,
        )
    except BrokerError as e:  # missing broker credentials, an unusable endpoint
        log.error("cannot start: %s", e)
        _remove_handlers(loop, handled)
        return 2
    pin_family(settings.node.egress_family)  # order calls leave by the registered family
    runtime = build_runtime(services, version=version, keys=options.keys)
    if runtime.renewal is not None:
        runtime.renewal.poll_interval = options.session_poll
        if install_reload_signal(loop, runtime.renewal):
            handled.append(signal.SIGHUP)
    audit = options.audit
    if audit is None:
        audit = services.recorder.audit_nowait if services.recorder is not None else log_audit
    api = runtime.api_context(audit)
    api.body_timeout = options.body_timeout
    guard = Guard(
        runtime.keys,
        runtime.metrics,
        KeyRateLimiter(options.rate, options.burst),
        AddressLockout(),
        audit,
        metrics_require_key=options.metrics_require_key,
        executor=runtime.key_executor,
    )
    app = build_control_app(ProbeContext(runtime.metrics, runtime.readiness, version), api, guard)
    runner = web.AppRunner(app, **runner_options(options.header_timeout))
    await runner.setup()
    site = web.TCPSite(runner, address.host, address.port, ssl_context=options.tls)
    try:
        await site.start()  # bind before starting anything, so a taken port fails fast
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", address.host, address.port, e.strerror or e)
        await runner.cleanup()
        _remove_handlers(loop, handled)
        return 1
    try:
        await runtime.start()
    except BrokerError as e:  # the broker refused the session or cannot be reached
        log.error("cannot start: %s", e)
        await runtime.stop()
        await runner.cleanup()
        _remove_handlers(loop, handled)
        return 2

    if options.freeze_heap:
        freeze_startup_heap(collect=True)  # no full GC pass over start-up's objects mid-order
    url = bound_url(runner, tls=options.tls is not None)
    if isinstance(runtime.keys, NoKeys):
        log.warning("no API key store is open: every /v1 request will be refused")
    log.info(
        "dalal headless %s serving on %s (feed %s, broker %s, seed %s, %s ticks/s)",
        version, url, services.feed_name, services.broker.name, settings.seed,
        settings.ticks_per_second,
    )  # fmt: skip
    (announce or _print_line)(f"listening on {url}")
    sd_notify(f"READY=1\nSTATUS=serving on {url}")

    await stop.wait()
    sd_notify("STOPPING=1")
    log.info("shutting down: refusing new connections")
    runtime.readiness.stopping = True
    if runtime.node.events is not None:
        runtime.node.events.close_clients()  # they reconnect to the next node and resume
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


def run_headless(
    settings: Settings,
    listen: str,
    *,
    insecure_bind: bool = False,
    version: str = "unknown",
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    keys: KeyVerifier | None = None,
    audit: AuditFn | None = None,
    key_fd: int | None = None,
    key_credential: str | None = None,
    use_database: bool = True,
    metrics_require_key: bool = False,
) -> int:
    """Entry point for ``dalal headless``; raises ``ListenError`` for an unusable address.

    ``keys`` and ``audit`` override the profile database's key store and audit log (tests);
    otherwise the profile database is unlocked with the handed key (see
    ``open_profile_store``) unless ``use_database`` is false.
    """
    address = parse_listen(listen)
    tls = load_tls(tls_cert, tls_key)
    if tls is not None and tls_cert is not None:
        # What a desktop pinning this node compares (`dalal node pair`): public, not secret.
        log.info("TLS certificate SHA-256 fingerprint %s", certificate_fingerprint(tls_cert))
    check_exposure(address, insecure_bind=insecure_bind, tls=tls is not None)
    if not address.loopback and tls is None:
        log.warning("listening on non-loopback %s without TLS (--insecure-bind)", address.host)
    store = None
    if keys is None and use_database:
        store = open_profile_store(
            settings.profile, key_fd=key_fd, key_credential=key_credential
        )
    options = ServerOptions(
        tls=tls, keys=keys, audit=audit, metrics_require_key=metrics_require_key,
        freeze_heap=True,
    )
    if store is not None:
        options = ServerOptions(
            tls=tls,
            keys=store.keys,
            audit=audit,  # None: the profile's audit log, written off the loop
            database=store.db,
            state_dir=store.state_dir,
            metrics_require_key=metrics_require_key,
            freeze_heap=True,
        )
    try:
        return asyncio.run(serve(settings, address, version=version, options=options))
    finally:
        if store is not None:
            store.close()
