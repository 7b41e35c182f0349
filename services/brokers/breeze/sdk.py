"""breeze-connect, imported on our terms.

Importing ``breeze_connect`` as shipped (1.0.69) has side effects a terminal cannot accept
(research/brokers.md §1.3):

- it downloads ``SecurityMaster.zip`` from ICICI with ``urlopen`` and no timeout, so the
  import blocks on a multi-megabyte download, or fails offline;
- it does ``sys.path.insert(1, pkgdir); import config``: a top-level module named ``config``,
  which would shadow (or be shadowed by) any other ``config`` in the process;
- it creates ``./logs`` in the working directory and attaches file handlers that write every
  API response there, and it turns IPv6 off for all of ``requests``.

So the SDK is only ever loaded through ``load_sdk``: its ``config`` is executed by us under a
private name, its URLs are seeded before the SDK's first line runs (the master download reads
an empty zip from a ``data:`` URL: no socket at all; we fetch the real master ourselves, on
our schedule, in ``instruments``), ``sys.path``/``sys.modules`` are put back as they were, the
log files are never opened and the IPv6 switch is restored. The SDK's REST calls go through
module-level ``requests.get/post/...`` with no timeout; we give its module a ``requests`` with
one. ``load_sdk`` blocks (the import costs about a second): call it off the event loop and
off the UI thread (``await asyncio.to_thread(load_sdk, endpoints)``).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import requests
import urllib3.util.connection

from services.brokers.breeze.config import REQUEST_TIMEOUT, BreezeEndpoints

# The smallest valid zip (an end-of-central-directory record and nothing else).
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18
EMPTY_ZIP_URL = "data:application/zip;base64," + base64.b64encode(EMPTY_ZIP).decode("ascii")
_SDK_LOG_FILES = frozenset({"logs/apiLogs.log", "logs/websocketLogs.log"})
_SDK_LOGGERS = ("APILogger", "WebsocketLogger")

_lock = threading.Lock()
_module: ModuleType | None = None
_config: ModuleType | None = None


class TimeoutRequests:
    """Stands in for ``requests`` inside the SDK's module: same calls, with a timeout.

    One ``Session`` per thread keeps connections alive between calls (the SDK opens a new
    connection for every request otherwise) without sharing a session across threads.
    """

    def __init__(self, timeout: float = REQUEST_TIMEOUT) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self._session().request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


http = TimeoutRequests()


def _package_dir() -> Path:
    spec = importlib.util.find_spec("breeze_connect")  # locates without executing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("breeze-connect is not installed: pip install breeze-connect==1.0.69")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_config(pkgdir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_breeze_sdk_config", pkgdir / "config.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"breeze-connect has no config.py in {pkgdir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_endpoints(config: ModuleType, endpoints: BreezeEndpoints) -> None:
    """Point the SDK's URL constants at ``endpoints`` (they are read at call time)."""
    values = {
        "API_URL": endpoints.api,
        "BREEZE_NEW_URL": endpoints.api_v2,
        "LIVE_FEEDS_URL": endpoints.order_feed,
        "LIVE_STREAM_URL": endpoints.stream,
        "LIVE_OHLC_STREAM_URL": endpoints.ohlc_stream,
        # The SDK downloads the master at import and in generate_session; we never let it.
        "SECURITY_MASTER_URL": EMPTY_ZIP_URL,
        "STOCK_SCRIPT_CSV_URL": EMPTY_ZIP_URL,
    }
    for name, value in values.items():
        setattr(config, name, value)


class _NoSdkLogFile(logging.FileHandler):
    """While the SDK imports: its two log files become null handlers; others are untouched."""

    def __new__(cls, filename: Any, *args: Any, **kwargs: Any) -> Any:
        if str(filename) in _SDK_LOG_FILES:
            return logging.NullHandler()
        return logging.FileHandler(filename, *args, **kwargs)


def _import_contained(pkgdir: Path, config: ModuleType) -> ModuleType:
    real_makedirs = os.makedirs
    real_file_handler = logging.FileHandler
    connection = urllib3.util.connection  # what the SDK reaches as requests.packages.urllib3
    had_ipv6 = connection.HAS_IPV6
    saved_path = list(sys.path)
    missing = object()
    saved_config = sys.modules.get("config", missing)

    def makedirs(name: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(name) == "logs":
            return
        real_makedirs(name, *args, **kwargs)

    sys.modules["config"] = config
    os.makedirs = makedirs
    logging.FileHandler = _NoSdkLogFile  # type: ignore[misc]
    try:
        module = importlib.import_module("breeze_connect.breeze_connect")
    finally:
        os.makedirs = real_makedirs
        logging.FileHandler = real_file_handler  # type: ignore[misc]
        connection.HAS_IPV6 = had_ipv6
        sys.path[:] = saved_path
        if saved_config is missing:
            sys.modules.pop("config", None)
        else:
            sys.modules["config"] = saved_config  # type: ignore[assignment]
    for name in _SDK_LOGGERS:
        # The SDK logs whole API responses (holdings, funds) at DEBUG: keep them out of ours.
        sdk_logger = logging.getLogger(name)
        sdk_logger.handlers.clear()
        sdk_logger.propagate = False
        sdk_logger.disabled = True
    module.requests = http  # type: ignore[attr-defined]
    return module


def load_sdk(endpoints: BreezeEndpoints | None = None) -> ModuleType:
    """Return ``breeze_connect.breeze_connect`` with its URLs set to ``endpoints``.

    Blocking and idempotent; the first call imports the SDK (about a second, no network).
    """
    global _module, _config
    with _lock:
        if _module is None:
            if "breeze_connect.breeze_connect" in sys.modules:
                raise ImportError(
                    "breeze_connect was imported outside services.brokers.breeze.sdk; its "
                    "import-time download and sys.path change were not contained"
                )
            pkgdir = _package_dir()
            config = _load_config(pkgdir)
            apply_endpoints(config, endpoints or BreezeEndpoints())
            _module = _import_contained(pkgdir, config)
            _config = config
        elif endpoints is not None and _config is not None:
            apply_endpoints(_config, endpoints)
        return _module


def sdk_config() -> ModuleType:
    """The SDK's own ``config`` module (after ``load_sdk``)."""
    if _config is None:
        raise RuntimeError("breeze-connect is not loaded yet: call load_sdk() first")
    return _config
