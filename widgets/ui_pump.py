"""The one coroutine per window that moves bus events into views, at most once per frame.

Views never subscribe to the bus themselves: the pump waits for any subscription to have a
batch, hands every waiting batch to its handlers, has the window paint what they changed
(``after_frame``: ``widgets.frame.FramePresenter``), then sleeps for the rest of the frame. Ticks
are coalesced per instrument by the bus while the pump sleeps, so however fast the feed runs a
frame costs one model update per visible instrument, and the Qt loop (which is also the asyncio
loop, through qasync) always has time left to paint and handle input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.bus import EventBus, SubscriberLagged, Subscription, Topic
from services.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")

# 60 Hz: a tick waits on average half a frame before it is drawn. At 30 Hz the whole window
# measured p99 76 ms tick-to-paint at 5,000 ticks/s; at 60 Hz 19-35 ms, for the CPU of the
# extra repaints (bench/bench_window_ticks.py).
FRAME_SECONDS = 1 / 60


@dataclass
class _Route(Generic[T]):
    sub: Subscription[T]
    handler: Callable[[list[T]], None]
    on_lagged: Callable[[], None] | None


class UiPump:
    def __init__(self, bus: EventBus, name: str, frame_seconds: float = FRAME_SECONDS) -> None:
        self._bus = bus
        self._name = name
        self.frame_seconds = frame_seconds
        self._routes: list[_Route[Any]] = []
        self._after_frame: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.events = 0

    def on(
        self,
        topic: Topic[T],
        handler: Callable[[list[T]], None],
        on_lagged: Callable[[], None] | None = None,
    ) -> None:
        """Route ``topic`` batches to ``handler``; ``on_lagged`` resyncs from a snapshot.

        A retaining topic's held states come first (a feed that connected before the window
        was built still shows as connected)."""
        sub = self._bus.subscribe(topic, f"{self._name}:{topic.name}", replay=True)
        self._routes.append(_Route(sub, handler, on_lagged))

    def after_frame(self, present: Callable[[], None]) -> None:
        """Call ``present`` after every frame that delivered something (the window's paint)."""
        self._after_frame.append(present)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"ui-pump:{self._name}"
            )
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait([task])
        for route in self._routes:
            route.sub.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        waiting: dict[int, asyncio.Task[list[Any]]] = {}
        try:
            while True:
                for i, route in enumerate(self._routes):
                    if i not in waiting:
                        waiting[i] = loop.create_task(route.sub.next_batch())
                await asyncio.wait(waiting.values(), return_when=asyncio.FIRST_COMPLETED)
                started = time.perf_counter()
                delivered = False
                for i, route in enumerate(self._routes):
                    task = waiting[i]
                    lagged = False
                    batch: list[Any] = []
                    try:
                        if task.done():
                            del waiting[i]
                            batch = task.result()
                        else:  # arrived in the same frame: take it now, the waiter re-arms
                            batch = route.sub.drain()
                    except SubscriberLagged:
                        lagged = True
                    delivered = self._deliver(route, batch, lagged) or delivered
                if delivered:
                    self._present()
                self.frames += 1
                spent = time.perf_counter() - started
                await asyncio.sleep(max(0.004, self.frame_seconds - spent))
        finally:
            for task in waiting.values():
                task.cancel()

    def _deliver(self, route: _Route[Any], batch: list[Any], lagged: bool) -> bool:
        try:
            if lagged:
                if route.on_lagged is not None:
                    route.on_lagged()
                return True
            if batch:
                self.events += len(batch)
                route.handler(batch)
                return True
        except Exception:
            # A bug in one view must not freeze every other panel.
            log.exception("view handler for %s failed", route.sub.name)
            return True
        return False

    def _present(self) -> None:
        for present in self._after_frame:
            try:
                present()
            except Exception:
                log.exception("painting the %s frame failed", self._name)


_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str = "ui-action") -> asyncio.Task[Any]:
    """Run a coroutine started by a click on the app's loop and keep it alive until done.

    Clicks are delivered while the qasync loop runs, so there is normally a running loop; the
    fallback to the current loop serves code that drives widgets between loop runs (tests).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    task = loop.create_task(coro, name=name)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task
