"""Keep the cyclic garbage collector's full passes off the order path.

A process that has started holds most of what it will ever hold: modules, the instrument
master, settings, the simulator's universe, caches. CPython's full (generation 2) collection
walks all of it, and on this code base that pause is tens of milliseconds on the event loop:
enough to be the p99 of an order that happens to meet it (bench_node_order_path). Frozen
objects are left out of every later pass, so a full collection costs what the session has
allocated since, not what start-up did. They are still freed by reference counting; only
cycles among them stay until exit, which start-up does not make in any number.
"""

from __future__ import annotations

import gc


def freeze_startup_heap(*, collect: bool = False) -> int:
    """Move every object alive now out of the collector's passes; return how many.

    ``collect`` first collects what start-up left behind, so it is not frozen with the rest
    (a pause, for a server before it takes requests; the desktop skips it, its first paint
    waits).
    """
    if collect:
        gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


# Young collections every 20,000 net allocations instead of CPython's 700. At 5,000 ticks/s
# the default ran one every few milliseconds, and each promoted whatever was in flight at
# that moment (a tick in the bus, a batch in the UI pump, the newest quote of a contract
# that seldom trades) towards generation 2, which then filled in seconds and was collected
# in one pass of 40-200 ms on the UI loop (bench_window_ticks --trace-slow: five such passes
# in a 7-second run). A young pass walks only the young objects still alive, so it stays
# cheap at the higher threshold; full passes become as rare as real growth makes them.
YOUNG_COLLECTION_THRESHOLD = 20_000


def pace_collector() -> None:
    """Collect young objects less often, so fewer short-lived ones reach the full passes."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
