"""The smartapi-python SDK, imported once, lazily, with its side effects contained.

Why this module exists (research/brokers.md §1.4, wave2.md §1):

* ``SmartConnect``'s class body calls ``requests.get('https://api.ipify.org')`` with no
  timeout when ``SmartApi`` is imported. On a machine without network that import hangs or
  fails; on any machine it leaks the trader's IP to a third party. We swap ``requests.get``
  for a function that refuses at once, only for the duration of the import, under a lock.
  The SDK then falls back to its hard-coded placeholder IPs (which is all Angel ever sees
  from it anyway: static-IP checks use the socket's source address).
* Both ``SmartConnect`` and ``SmartWebSocketV2`` create ``./logs/<date>/`` in the current
  directory and repoint logzero's global log file there, and the SDK logs every failed
  request *with its headers* (the JWT among them). We give those two modules a no-op
  ``makedirs``/``logfile`` and filter every record the SDK emits out of logzero's logger,
  so no token reaches a file or the console.

The import costs about half a second, so callers run ``load_sdk`` in an executor, never on
the UI thread or the event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import types
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
_sdk: AngelSdk | None = None


@dataclass(frozen=True, slots=True)
class AngelSdk:
    """The two SDK classes the adapter uses."""

    SmartConnect: Any
    SmartWebSocketV2: Any


class PublicIpLookupBlocked(ConnectionRefusedError):
    """Raised in place of the SDK's import-time call to a public-IP service."""


def _refuse_network(*_args: Any, **_kwargs: Any) -> Any:
    raise PublicIpLookupBlocked("public-IP lookup disabled by Dalal Terminal")


class _SdkRecords(logging.Filter):
    """Drops every log record raised from inside the SmartApi package."""

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self._prefix = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self._prefix)


def _no_log_folder(module: types.ModuleType) -> None:
    shim_os = types.SimpleNamespace(path=os.path, makedirs=lambda *a, **k: None)
    shim_logzero = types.SimpleNamespace(logfile=lambda *a, **k: None)
    module.os = shim_os  # type: ignore[attr-defined]
    module.logzero = shim_logzero  # type: ignore[attr-defined]


def load_sdk() -> AngelSdk:
    """Import SmartApi without network traffic or files; the same object on every call."""
    global _sdk
    with _lock:
        if _sdk is not None:
            return _sdk
        import logzero  # type: ignore[import-untyped]
        import requests

        original_get = requests.get
        # The SDK logs the refused lookup as an error; keep that out of the console too.
        quiet = logzero.logger.disabled
        requests.get = _refuse_network
        logzero.logger.disabled = True
        try:
            from SmartApi import (  # type: ignore[import-untyped]
                smartConnect,
                smartWebSocketV2,
            )
        finally:
            requests.get = original_get
            logzero.logger.disabled = quiet
        smartConnect.get = _refuse_network
        for module in (smartConnect, smartWebSocketV2):
            _no_log_folder(module)
        package_dir = os.path.dirname(os.path.abspath(smartConnect.__file__ or ""))
        logzero.logger.addFilter(_SdkRecords(package_dir))
        _sdk = AngelSdk(smartConnect.SmartConnect, smartWebSocketV2.SmartWebSocketV2)
        return _sdk
