"""Qt objects in reference cycles are freed on the UI thread, whatever thread allocates.

Without ``widgets.ui_thread_gc`` the worker below triggers CPython's collector on its own
thread, the cycle's QTimer is destroyed there, Qt warns that it cannot stop the timer, and the
UI thread later delivers a timer event to freed memory (the widget suite's old segfault).
"""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject, QTimer
from pytestqt.qtbot import QtBot

from widgets import ui_thread_gc


class _Cyclic(QObject):
    """A QObject owning a running timer, kept alive only by a cycle through itself."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.start(5)
        self.cycle = self


def _drop_cycle(freed_on: list[int]) -> weakref.ref[_Cyclic]:
    obj = _Cyclic()
    weakref.finalize(obj, lambda: freed_on.append(threading.get_ident()))
    return weakref.ref(obj)


def _allocate_on_a_worker(kept: list[object]) -> None:
    def churn() -> None:
        kept.append([[i] for i in range(200_000)])  # containers: far past gen 0's threshold

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()


def test_a_cycle_holding_a_qt_timer_is_freed_on_the_ui_thread(qtbot: QtBot) -> None:
    assert not gc.isenabled(), "Qt tests run under the UI-thread collector (tests/conftest.py)"
    freed_on: list[int] = []
    ref = _drop_cycle(freed_on)
    kept: list[object] = []
    _allocate_on_a_worker(kept)
    assert ref() is not None, "the worker's allocations must not collect Qt objects"
    qtbot.waitUntil(lambda: ref() is None, timeout=5000)  # the collector's next pass
    assert freed_on == [threading.get_ident()]


def test_uninstall_collects_what_is_left_and_gives_collection_back(qtbot: QtBot) -> None:
    assert ui_thread_gc.installed()
    freed_on: list[int] = []
    ref = _drop_cycle(freed_on)
    ui_thread_gc.uninstall()
    try:
        assert ref() is None and freed_on == [threading.get_ident()]
        assert gc.isenabled() and not ui_thread_gc.installed()
    finally:
        ui_thread_gc.install()  # the fixture's uninstall follows


def test_a_full_pass_waits_until_the_old_heap_has_grown_by_a_quarter() -> None:
    due = ui_thread_gc.due_generation
    assert due((10, 0, 0), (700, 10, 10), pending=0, total=0) is None
    assert due((701, 0, 0), (700, 10, 10), pending=0, total=0) == 0
    assert due((701, 11, 0), (700, 10, 10), pending=0, total=0) == 1
    # Generation 2's counter is past its threshold, but 1,000 promoted onto 1,000,000 old
    # objects is no reason for a full pass: CPython would collect generation 1 instead.
    assert due((701, 11, 11), (700, 10, 10), pending=1_000, total=1_000_000) == 1
    assert due((701, 11, 11), (700, 10, 10), pending=250_000, total=1_000_000) == 2
    assert due((20_001, 0, 0), (20_000, 10, 10), pending=0, total=0) == 0  # paced thresholds


def test_the_collector_follows_the_thresholds_set_after_it_started(qtbot: QtBot) -> None:
    before = ui_thread_gc.passes()
    threshold = gc.get_threshold()
    gc.set_threshold(100_000, threshold[1], threshold[2])
    try:
        kept = [[i] for i in range(50_000)]  # past CPython's 700, not past 100,000
        qtbot.wait(400)
        assert ui_thread_gc.passes()[0] == before[0]
        kept += [[i] for i in range(60_000)]
        qtbot.waitUntil(lambda: ui_thread_gc.passes()[0] > before[0], timeout=5000)
    finally:
        gc.set_threshold(*threshold)
