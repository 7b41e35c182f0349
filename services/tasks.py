"""Stopping background tasks: cancel, then wait until each has really finished.

Waiting matters: a task cancelled but not awaited may still be closing a socket or flushing a
batch when the caller closes the database under it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel every task given (``None`` is skipped), then await them all."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
