"""Which threads a test left running: the check that a stopped broker adapter is gone.

Executor workers are excluded: they belong to the event loop or the app (the default
executor, ``concurrent.futures`` pools, qasync's Qt threads, seen by Python as ``Dummy``
threads), not to the adapter, and are idle between calls. Everything else started since
``before`` and still alive is a leak: a feed thread, an SDK socket thread, a pinger.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

_POOLED = ("asyncio_", "ThreadPoolExecutor-", "Dummy-")


def adapter_threads(before: Iterable[threading.Thread]) -> list[str]:
    """Names of the non-executor threads alive now that were not alive in ``before``."""
    known = set(before)
    return sorted(
        t.name
        for t in threading.enumerate()
        if t not in known and t.is_alive() and not t.name.startswith(_POOLED)
    )
