"""Cyclic garbage is collected on the UI thread, never on a worker thread.

CPython runs its cyclic collector in whichever thread allocates past the threshold. In the
desktop that is often the recorder's or the journal's thread, or an executor's: a Qt object
caught in a cycle there (a closed chart, a dialog's timer held by its own lambdas) has its
destructor run on the wrong thread. Qt then refuses to stop its timers ("QObject::killTimer:
Timers cannot be stopped from another thread"), the memory is freed anyway, and the UI
thread's next timer event is delivered to freed memory: a segfault some seconds later, far
from its cause. (It showed as a native crash in about half of the widget-test runs.)

pyqtgraph's ``GarbageCollector`` is the known cure: automatic collection off, and a Qt timer
on the UI thread that collects each generation when CPython's own thresholds say it would
have. Reference counting still frees everything that is not in a cycle, on any thread.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

INTERVAL_S = 0.25  # young cycles wait at most this long; a gen-0 pass is well under a frame

# The collector is process-wide state (``gc.disable`` is), so it is held here, once.
_installed: GarbageCollector | None = None


def install(interval_s: float = INTERVAL_S) -> None:
    """Collect on this (the UI) thread from now on; call it after the QApplication exists.
    A second call while installed does nothing."""
    global _installed
    if _installed is None:
        _installed = GarbageCollector(interval=interval_s)


def installed() -> bool:
    return _installed is not None and not gc.isenabled()


def uninstall() -> None:
    """Collect what is left here, on the UI thread, then let CPython collect again."""
    global _installed
    if _installed is None:
        return
    _installed.timer.stop()
    _installed = None
    gc.collect()
    gc.enable()
