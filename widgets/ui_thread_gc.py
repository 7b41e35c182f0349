"""Cyclic garbage is collected on the UI thread, never on a worker thread.

CPython runs its cyclic collector in whichever thread allocates past the threshold. In the
desktop that is often the recorder's or the journal's thread, or an executor's: a Qt object
caught in a cycle there (a closed chart, a dialog's timer held by its own lambdas) has its
destructor run on the wrong thread. Qt then refuses to stop its timers ("QObject::killTimer:
Timers cannot be stopped from another thread"), the memory is freed anyway, and the UI
thread's next timer event is delivered to freed memory: a segfault some seconds later, far
from its cause. (It showed as a native crash in about half of the widget-test runs.)

The cure is known (pyqtgraph ships it as ``GarbageCollector``): automatic collection off, and
a Qt timer on the UI thread that collects when CPython would have. pyqtgraph's version reads
the thresholds once and runs a full pass whenever generation 2's counter passes its
threshold, about every ten young passes; CPython also waits until a quarter as many objects
as survived the last full pass have been promoted since, and without that rule the desktop's
full passes (tens of milliseconds over a large heap) would come every few seconds. So this
one keeps CPython's rule, and reads the thresholds at each check (``app.heap`` paces them).
Reference counting still frees everything that is not in a cycle, on any thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QTimer

INTERVAL_S = 0.1  # how late a due collection may come: well inside a few UI frames
# Full passes between exact counts of generation 2 (in between: survivors by arithmetic,
# which misses what reference counting freed there, so full passes come a little later).
RECOUNT_EVERY = 8


def due_generation(
    counts: tuple[int, int, int], thresholds: tuple[int, int, int], pending: int, total: int
) -> int | None:
    """The generation CPython would collect now (3.11's ``gc_collect_generations``), or None.

    ``pending``: objects promoted into generation 2 since the last full pass; ``total``: the
    objects that pass left there.
    """
    for generation in (2, 1, 0):
        if counts[generation] <= thresholds[generation]:
            continue
        if generation == 2 and pending < total // 4:
            continue  # a full pass is due only when the old heap has grown by a quarter
        return generation
    return None


class _Collector:
    def __init__(self, interval_s: float) -> None:
        self._pending = 0
        self._total = 0
        self.passes = [0, 0, 0]  # per generation, for tests and curiosity
        self._timer = QTimer()
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start(max(1, int(interval_s * 1000)))

    def check(self) -> None:
        threshold = gc.get_threshold()
        generation = due_generation(
            gc.get_count(), (threshold[0], threshold[1], threshold[2]),
            self._pending, self._total,
        )  # fmt: skip
        if generation is None:
            return
        if generation == 2:
            young = len(gc.get_objects(0)) + len(gc.get_objects(1))
            found = gc.collect(2)
            if self.passes[2] % RECOUNT_EVERY == RECOUNT_EVERY - 1:
                self._total = len(gc.get_objects(2))  # the estimate's drift, corrected
            else:  # listing the old generation costs a third of the pass: estimate it
                self._total = max(0, self._total + self._pending + young - found)
            self._pending = 0
        elif generation == 1:
            young = len(gc.get_objects(0)) + len(gc.get_objects(1))
            self._pending += max(0, young - gc.collect(1))  # the survivors move to gen 2
        else:
            gc.collect(0)
        self.passes[generation] += 1

    def stop(self) -> None:
        self._timer.stop()


# The collector is process-wide state (``gc.disable`` is), so it is held here, once.
_installed: _Collector | None = None


def install(interval_s: float = INTERVAL_S) -> None:
    """Collect on this (the UI) thread from now on; call it after the QApplication exists.
    A second call while installed does nothing."""
    global _installed
    if _installed is None:
        _installed = _Collector(interval_s)


def installed() -> bool:
    return _installed is not None and not gc.isenabled()


def passes() -> tuple[int, int, int]:
    """Collections run by the installed collector, per generation (zeros when none is)."""
    if _installed is None:
        return (0, 0, 0)
    young, middle, full = _installed.passes
    return (young, middle, full)


def uninstall() -> None:
    """Collect what is left here, on the UI thread, then let CPython collect again."""
    global _installed
    if _installed is None:
        return
    _installed.stop()
    _installed = None
    gc.collect()
    gc.enable()
