"""What blocked the loop: asyncio callbacks and Qt events over a threshold, and full GC passes.

``bench_window_ticks.py --trace-slow 8`` prints, after its figures, every asyncio handle
(a task's step, a callback) and every Qt event that took longer than 8 ms, grouped by name,
and the cyclic collector's generation-2 passes with their duration. A stall of the 10 ms
timer that nothing here explains was spent outside Python and Qt events (another process
had the core). Qt events nest (a timer event runs the asyncio callbacks; a window paint
sends the paints of its children): the depth is printed beside each.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any


class StallTrace:
    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000
        self.handles: dict[str, list[float]] = defaultdict(list)
        self.events: dict[tuple[int, str, str], list[float]] = defaultdict(list)
        self.full_collections: list[float] = []
        self._gc_started = 0.0
        self._depth = 0
        self._run: Callable[[asyncio.Handle], None] | None = None

    def install(self) -> None:
        run = asyncio.events.Handle._run
        self._run = run
        trace = self

        def timed_run(handle: asyncio.Handle) -> None:
            started = time.perf_counter()
            try:
                run(handle)
            finally:
                spent = time.perf_counter() - started
                if spent > trace.threshold:
                    trace.handles[_handle_name(handle)].append(spent * 1000)

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._run is not None:
            asyncio.events.Handle._run = self._run  # type: ignore[method-assign]
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.full_collections.append((time.perf_counter() - self._gc_started) * 1000)

    def event(self, deliver: Callable[[], bool], receiver: object, kind: int) -> bool:
        """Deliver one Qt event, timing it (called from ``QApplication.notify``)."""
        self._depth += 1
        started = time.perf_counter()
        try:
            return deliver()
        finally:
            self._depth -= 1
            spent = time.perf_counter() - started
            if spent > self.threshold:
                self.events[(self._depth, type(receiver).__name__, _event_name(kind))].append(
                    spent * 1000
                )

    def report(self) -> None:
        ms = self.threshold * 1000
        print(f"asyncio handles over {ms:.0f} ms (count, max, total ms):")
        for name, spans in sorted(self.handles.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {len(spans):5d}  {max(spans):7.1f}  {sum(spans):8.1f}  {name}")
        print(f"Qt events over {ms:.0f} ms (count, max, total ms, depth receiver event):")
        ranked = sorted(self.events.items(), key=lambda kv: -sum(kv[1]))
        for (depth, receiver, kind), spans in ranked[:20]:
            print(
                f"  {len(spans):5d}  {max(spans):7.1f}  {sum(spans):8.1f}  "
                f"{depth} {receiver} {kind}"
            )
        passes = ", ".join(f"{t:.0f}" for t in self.full_collections) or "none"
        print(f"full (generation 2) garbage collections, ms: {passes}")


def _handle_name(handle: asyncio.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {getattr(coro, '__qualname__', coro)}"
    return str(getattr(callback, "__qualname__", callback))


def _event_name(kind: int) -> str:
    from PySide6.QtCore import QEvent

    try:
        return QEvent.Type(kind).name
    except ValueError:
        return str(kind)
