"""Fixtures that run the real services on a qasync loop inside a pytest-qt test.

The qasync loop is created in "already running" mode: asyncio sees it as the running loop for
the whole test and its callbacks run whenever Qt processes events. ``run_until`` therefore just
lets Qt process events (``qtbot.waitUntil``) until a condition holds, exactly as the app's own
Qt loop would. (Calling ``run_until_complete`` repeatedly instead would let Qt fire asyncio
callbacks between runs, when no loop is marked running, and the services would crash.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.settings import Settings
from app.wiring import AppServices, build_services

T = TypeVar("T")

TEST_WATCHLIST = ["NSE:NIFTY 50", "NSE:RELIANCE", "NSE:INFY", "NSE:TCS"]


def make_settings() -> Settings:
    return Settings(seed=7, always_open=True, ticks_per_second=2000, watchlist=TEST_WATCHLIST)


class LoopRunner:
    def __init__(self, loop: qasync.QEventLoop, qtbot: QtBot) -> None:
        self.loop = loop
        self._qtbot = qtbot

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine to completion on the loop and return its result."""
        task = self.loop.create_task(coro)
        self._qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    def until(self, predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
        """Let the loop run until ``predicate()`` is truthy; fail after ``timeout`` seconds."""
        try:
            self._qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout * 1000))
        except Exception as e:
            raise AssertionError(f"waited {timeout}s for {what or predicate}") from e

    def for_seconds(self, seconds: float) -> None:
        self._qtbot.wait(int(seconds * 1000))


@pytest.fixture
def qloop(qapp: QApplication, qtbot: QtBot) -> Iterator[LoopRunner]:
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    runner = LoopRunner(loop, qtbot)
    try:
        yield runner
    finally:
        leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in leftovers:
            task.cancel()
        qtbot.waitUntil(lambda: all(t.done() for t in leftovers), timeout=5000)
        # Not loop.stop(): that calls QApplication.exit(), which ends the next test's waits.
        loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
        asyncio.events._set_running_loop(None)
        loop.close()
        asyncio.set_event_loop(None)
        # qasync's close() only flags its call_later timer object as stopped: its Qt timers
        # stay registered, and once the loop is garbage-collected a later test's event
        # processing fires them at a deleted object (a segfault in the next Qt-using test).
        timer = loop._timer
        callbacks = timer._SimpleTimer__callbacks
        for timer_id in list(callbacks):
            timer.killTimer(timer_id)
        callbacks.clear()


@pytest.fixture
def services(qloop: LoopRunner) -> Iterator[AppServices]:
    """Real services (simulator, paper broker, order manager), built but not started."""
    svc = build_services(make_settings())
    yield svc
    qloop.run(svc.stop())


@pytest.fixture
def running(services: AppServices, qloop: LoopRunner) -> AppServices:
    """The same services, started and ticking."""
    qloop.run(services.start())
    qloop.until(
        lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST),
        what="a first tick for every watchlist instrument",
    )
    return services
