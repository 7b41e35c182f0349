"""`dalal headless`: the same services as the desktop, with no Qt, watched over HTTP.

The package is split by what each part holds:

* ``listen``: ``--listen`` parsing, the loopback rule, the TLS 1.3 context;
* ``systemd``: ``READY=1``/``STOPPING=1`` on ``$NOTIFY_SOCKET`` under ``Type=notify``;
* ``broker_session``: the broker's day token in a long-running process (SIGHUP, polling);
* ``runtime``: the services plus metrics, readiness and their background tasks;
* ``profile``: unlocking the profile database with a handed key;
* ``lifecycle``: ``serve`` and ``run_headless``, start and an orderly stop.

The control API under ``/v1`` needs API keys (``dalal apikey create``); see
docs/operator-guide.md. The names below are re-exported so callers import from one place.
"""

from app.headless.broker_session import (
    SESSION_POLL_SECONDS,
    SessionRenewal,
    broker_session_probe,
    install_reload_signal,
)
from app.headless.lifecycle import (
    STOPPED_LINE,
    ServerOptions,
    run_headless,
    serve,
)
from app.headless.listen import (
    ListenAddress,
    ListenError,
    bound_url,
    check_exposure,
    is_loopback,
    load_tls,
    parse_listen,
)
from app.headless.profile import (
    DEFAULT_CREDENTIAL,
    NoDatabaseKey,
    ProfileStore,
    open_profile_store,
)
from app.headless.runtime import HeadlessRuntime, NoKeys, build_runtime
from app.headless.systemd import sd_notify

__all__ = [
    "DEFAULT_CREDENTIAL",
    "SESSION_POLL_SECONDS",
    "STOPPED_LINE",
    "HeadlessRuntime",
    "ListenAddress",
    "ListenError",
    "NoDatabaseKey",
    "NoKeys",
    "ProfileStore",
    "ServerOptions",
    "SessionRenewal",
    "bound_url",
    "broker_session_probe",
    "build_runtime",
    "check_exposure",
    "install_reload_signal",
    "is_loopback",
    "load_tls",
    "open_profile_store",
    "parse_listen",
    "run_headless",
    "sd_notify",
    "serve",
]
