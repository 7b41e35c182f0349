"""`dalal headless`: the same services as the desktop, with no Qt, watched over HTTP.

The runner owns the process lifecycle: build the services, start them and the monitors,
serve the probe routes, then on SIGTERM or SIGINT stop in the order that loses nothing:
mark not-ready, stop accepting connections, stop the services, close the HTTP runner.

Binding beyond loopback needs TLS 1.3 (``--tls-cert``/``--tls-key``) or an explicit
``--insecure-bind`` for a private network. The control API under ``/v1`` needs API keys
(``dalal apikey create``); see docs/operator-guide.md.

Under systemd with ``Type=notify`` the runner says ``READY=1`` once it is serving and
``STOPPING=1`` when it starts to drain, by writing to ``$NOTIFY_SOCKET`` (a few lines of the
documented datagram protocol; no libsystemd needed).

With Zerodha Kite the access token dies at 06:00 IST every day. ``/readyz`` then reports
``broker_session`` as expired, and the running process takes the token that the next
``dalal login kite`` saves, without a restart: at once on SIGHUP, and by reading the credential
store every minute (in a worker thread) while the session is expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from app.http.api import ApiContext
from app.http.auth import AuditFn, Guard, KeyVerifier, log_audit
from app.http.routes import ProbeContext
from app.http.server import build_control_app, runner_options, tls_context
from app.settings import Settings
from app.wiring import AppServices, build_services
from services.apikeys import Failure, Verdict
from services.broker import BrokerError
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
from services.storage import Database
from services.storage.paths import default_data_dir
from services.tasks import cancel_and_wait

if TYPE_CHECKING:
    from app.kite_runtime import KiteRuntime
    from services.brokers.kite.session import SecretStore
    from services.security import KeySource, Vault

log = logging.getLogger("dalal.headless")

DEFAULT_CREDENTIAL = "dalal-db-key"  # LoadCredential= name in packaging/systemd
STOPPED_LINE = "dalal headless stopped cleanly"
SESSION_POLL_SECONDS = 60.0  # how often an expired Kite session looks for a new token


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


def check_exposure(address: ListenAddress, *, insecure_bind: bool, tls: bool = False) -> None:
    if not address.loopback and not tls and not insecure_bind:
        raise ListenError(
            f"refusing to listen on {address.host} without TLS: it is not a loopback address; "
            "give --tls-cert and --tls-key, use 127.0.0.1 (and an SSH tunnel), "
            "or pass --insecure-bind if the network is private"
        )


def load_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Build the TLS 1.3 context, or ``None`` without files; ``ListenError`` if unusable."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ListenError("--tls-cert and --tls-key must be given together")
    try:
        return tls_context(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ListenError(f"cannot load TLS certificate {cert} / key {key}: {e}") from None


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


def sd_notify(state: str, *, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd's notify socket; False when not under it."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", environ.get("NOTIFY_SOCKET"), e)
        return False
    return True


class SessionRenewal:
    """Takes a Kite token saved by another process (``dalal login kite``) into this one.

    ``wake`` (SIGHUP) checks at once; while the session is expired or missing the credential
    store is read every ``poll_interval`` seconds. An expiry itself only starts the polling:
    at that moment the stored token is the one Kite just refused. The read blocks (keyring,
    database), so it runs in a worker thread. A stored token equal to the one in use is not
    news.
    """

    def __init__(
        self,
        services: AppServices,
        kite: KiteRuntime,
        *,
        poll_interval: float = SESSION_POLL_SECONDS,
    ) -> None:
        self._services = services
        self._kite = kite
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._rearm = asyncio.Event()  # the session changed state: recompute the poll timeout
        self.renewals = 0
        services.on_session_expired(self._rearm.set)

    def wake(self) -> None:
        self._wake.set()

    async def check_now(self) -> bool:
        """Resume with the stored token if it is new; True if it was taken."""
        token = await asyncio.to_thread(self._kite.stored_token)
        if token is None or token == self._kite.broker.access_token:
            return False
        log.info("a new Kite access token was saved: resuming the broker session")
        self._services.session_renewed(token)
        self.renewals += 1
        return True

    async def run(self) -> None:
        while True:
            timeout = None if self._kite.session_valid else self.poll_interval
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
            except Exception:  # a locked keyring must not end the watcher
                log.exception("could not read the stored Kite token")


def broker_session_probe(kite: KiteRuntime) -> Callable[[], Check]:
    def probe() -> Check:
        state = kite.session_state
        details: dict[str, Any] = {"broker": "zerodha"}
        if state != "valid":
            details["action"] = "run `dalal login kite`, then SIGHUP or wait up to a minute"
        return Check("broker_session", state == "valid", state, details=details)

    return probe


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
                                                name="dalal-headless:kite-session"))
        for name, coro in (
            ("feed-monitor", self.feed.run()),
            ("loop-lag", self.metrics.measure_loop_lag(self.lag_interval)),
            ("feed-lag", self.metrics.measure_feed_lag(
                self.services.bus, self.services.feed_name, self.services.clock.now)),
            ("key-last-used", self._flush_keys()),
        ):  # fmt: skip
            self._tasks.append(loop.create_task(coro, name=f"dalal-headless:{name}"))
        self.metrics.started.set(self.services.clock.now().timestamp())

    async def stop(self) -> None:
        self.readiness.stopping = True
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
    metrics.watch_bus(services.bus)
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
    if services.kite is not None:
        readiness.add("broker_session", broker_session_probe(services.kite))
        renewal = SessionRenewal(services, services.kite)
    readiness.add("services", services_probe("services", services.running, ["quotes", "bars"]))
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
        renewal=renewal,
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


def bound_url(runner: web.AppRunner, *, tls: bool = False) -> str:
    sockname: Any = runner.addresses[0]
    host, port = sockname[0], sockname[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


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
    secrets: SecretStore | None = None  # Kite credentials (default: the profile's keyring)
    session_poll: float = SESSION_POLL_SECONDS  # token look-ups while a Kite session is expired


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
    await site.stop()
    log.info("stopping services")
    await runtime.stop()
    await runner.cleanup()
    _remove_handlers(loop, handled)
    log.info(STOPPED_LINE)
    return 0


def install_reload_signal(loop: asyncio.AbstractEventLoop, renewal: SessionRenewal) -> bool:
    """SIGHUP: look for a new broker token now; False where signals cannot be handled."""
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return False
    try:
        loop.add_signal_handler(sighup, _on_reload, renewal)
    except (NotImplementedError, RuntimeError):
        return False
    return True


def _on_reload(renewal: SessionRenewal) -> None:
    log.info("received SIGHUP: looking for a new broker session token")
    renewal.wake()


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


@dataclass
class ProfileStore:
    db: Database
    state_dir: Path
    keys: KeyVerifier
    close: Callable[[], None]


class NoDatabaseKey(Exception):
    """No key could be had for the profile database; the message says what to do."""


def open_profile_store(
    profile: str, *, key_fd: int | None = None, key_credential: str | None = None
) -> ProfileStore | None:
    """Unlock the profile database for the headless session, or return ``None``.

    Headless runs unattended, so the key is handed in: on a file descriptor (``--key-fd``), as
    a systemd credential (``LoadCredential=dalal-db-key`` in the unit; picked up by itself when
    ``$CREDENTIALS_DIRECTORY`` holds it), or from a keyring that is safe to use unattended
    (keyrings.cryptfile). With none of those the server still runs, on an in-memory session
    without the journal, API keys or the audit log, and says so.
    """
    from services.apikeys import ApiKeyStore, DatabaseConnection
    from services.security import (
        InsecureKeyringError,
        KeyUnavailableError,
        LockedOutError,
        Vault,
    )
    from services.storage import ProfilePaths, StorageError, WrongKeyError

    paths = ProfilePaths.for_profile(profile)
    vault = Vault(paths)
    credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if (
        key_credential is None
        and credentials_dir
        and (Path(credentials_dir) / DEFAULT_CREDENTIAL).exists()
    ):
        key_credential = DEFAULT_CREDENTIAL
    source: KeySource
    try:
        source = headless_key_source(vault, key_fd, key_credential)
    except KeyUnavailableError as e:
        raise NoDatabaseKey(str(e)) from None
    try:
        db = vault.unlock(source, actor="headless")
    except (WrongKeyError, LockedOutError, StorageError) as e:
        raise NoDatabaseKey(str(e)) from None
    except (KeyUnavailableError, InsecureKeyringError) as e:
        if key_fd is not None or key_credential is not None or vault.exists:
            # A profile that exists but cannot be opened: serving without it would refuse
            # every API key. Refuse to start instead, and say how to hand the key.
            raise NoDatabaseKey(
                f"{e}; hand the key with --key-fd or a systemd credential, or run "
                "with --no-database for an in-memory session"
            ) from None
        log.warning(
            "no database key (%s): running without the encrypted database: no order journal, "
            "no API keys, no audit log. Hand a key with --key-fd or a systemd credential.",
            e,
        )
        return None
    # Audit events of the server go through the recorder's journal thread (see ``serve``).
    return ProfileStore(db, paths.directory, ApiKeyStore(DatabaseConnection(db)), db.close)


def headless_key_source(
    vault: Vault, key_fd: int | None, key_credential: str | None
) -> KeySource:
    """The key of an unattended start, by the profile's mode.

    A passphrase profile takes its passphrase on the descriptor or in the credential, or
    asks for it when standard input is a terminal; with none of those it cannot start.
    Other profiles take the raw key handed in, or a trusted keyring.
    """
    from services.security import (
        CredentialFileKeySource,
        FileDescriptorKeySource,
        KeyUnavailableError,
    )
    from services.security.keys import MODE_PASSPHRASE

    if key_fd is not None:
        from app.commands.vault import check_key_fd, read_handed_passphrase

        check_key_fd(key_fd)
        if vault.mode == MODE_PASSPHRASE:
            return vault.passphrase_source(lambda: read_handed_passphrase(key_fd))
        return FileDescriptorKeySource(key_fd)
    if key_credential is not None:
        if vault.mode == MODE_PASSPHRASE:
            credential = CredentialFileKeySource(key_credential)
            return vault.passphrase_source(lambda: credential.read_text())
        return CredentialFileKeySource(key_credential)
    if vault.mode == MODE_PASSPHRASE:
        if not sys.stdin.isatty():
            raise KeyUnavailableError(
                f"profile {vault.paths.profile!r} is passphrase-protected and standard input "
                "is not a terminal: type it in a terminal, or hand it with --key-fd or a "
                "systemd credential"
            )
        from app.commands.vault import prompt_secret

        return vault.passphrase_source(lambda: prompt_secret("Passphrase: "))
    return vault.keyring_source()


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
    check_exposure(address, insecure_bind=insecure_bind, tls=tls is not None)
    if not address.loopback and tls is None:
        log.warning("listening on non-loopback %s without TLS (--insecure-bind)", address.host)
    store = None
    if keys is None and use_database:
        store = open_profile_store(
            settings.profile, key_fd=key_fd, key_credential=key_credential
        )
    options = ServerOptions(
        tls=tls, keys=keys, audit=audit, metrics_require_key=metrics_require_key
    )
    if store is not None:
        options = ServerOptions(
            tls=tls,
            keys=store.keys,
            audit=audit,  # None: the profile's audit log, written off the loop
            database=store.db,
            state_dir=store.state_dir,
            metrics_require_key=metrics_require_key,
        )
    try:
        return asyncio.run(serve(settings, address, version=version, options=options))
    finally:
        if store is not None:
            store.close()
