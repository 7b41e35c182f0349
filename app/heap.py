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
