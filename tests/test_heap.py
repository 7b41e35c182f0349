"""The desktop's collector pacing: objects that live for a moment never reach generation 2."""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterator

import pytest

from app.heap import pace_collector


class Tick:  # a stand-in for a feed's short-lived record: tracked by the collector
    __slots__ = ("n", "peer")

    def __init__(self, n: int) -> None:
        self.n = n
        self.peer: object = None


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.collect()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _promoted_while_streaming(count: int = 200_000, in_flight: int = 2_000) -> int:
    """Stream ``count`` records, each alive while the next ``in_flight`` are made (a bus
    ring, a frame's batch), while the session keeps one object in ten (bars, history);
    return how many of the records a collection moved to generation 2."""
    promoted: set[int] = set()

    def after_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] >= 1:  # its survivors went to generation 2
            promoted.update(id(o) for o in ring)

    ring: deque[Tick] = deque(maxlen=in_flight)
    kept: list[Tick] = []
    gc.callbacks.append(after_collection)
    try:
        for n in range(count):
            ring.append(Tick(n))
            if n % 10 == 0:
                kept.append(Tick(n))
    finally:
        gc.callbacks.remove(after_collection)
    return len(promoted)


def test_paced_collector_keeps_in_flight_records_young(thresholds: None) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    promoted_by_default = _promoted_while_streaming()
    gc.collect()
    pace_collector()
    promoted_paced = _promoted_while_streaming()
    assert promoted_by_default > 500  # what filled generation 2 at 5,000 ticks/s
    assert promoted_paced < promoted_by_default / 10
