"""Stopping background tasks: cancel, then wait until each has really finished.

Waiting matters: a task cancelled but not awaited may still be closing a socket or flushing a
batch when the caller closes the database under it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel every task given (``None`` is skipped), then await them all."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BackgroundTask:
    """One named task on the running loop: started again only once it has ended, stopped by
    cancelling it. The lifecycle every stream connection (feeds, order streams) shares."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Start the task unless it is running; say whether it was started."""
        if self.running:
            return False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return True

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def stopped(self) -> None:
        """``stop`` and wait until the task has unwound (its sockets closed)."""
        task = self._task
        self.stop()
        await cancel_and_wait([task])

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
