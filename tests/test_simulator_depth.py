"""The simulator's depth is drawn per tick and built on first read: it must not matter who
reads which book, or whether anyone does."""

from __future__ import annotations

import pickle
from datetime import timedelta

from services.domain import Depth, Tick
from services.simulator.depth import LazyDepth
from tests.test_simulator import OPEN, make_sim, run_steps


def _books(ticks: list[Tick]) -> list[Depth]:
    return [t.depth for t in ticks if t.depth is not None]


def test_books_do_not_depend_on_who_reads_them_or_when() -> None:
    first = run_steps(make_sim(seed=5), OPEN + timedelta(minutes=1), 20, 0.05, 40)
    read_as_made = [(b.bids, b.asks) for b in _books(first)]  # every book read at once
    second = run_steps(make_sim(seed=5), OPEN + timedelta(minutes=1), 20, 0.05, 40)
    books = _books(second)
    assert books and all(isinstance(b, LazyDepth) for b in books)
    # Read back to front, after the whole run: the same books, and the same ticks.
    assert [(b.bids, b.asks) for b in reversed(books)] == list(reversed(read_as_made))
    assert second == first


def test_a_lazy_book_is_a_depth_to_everyone_else() -> None:
    ticks = run_steps(make_sim(seed=9), OPEN + timedelta(minutes=2), 5, 0.05, 20)
    lazy = _books(ticks)[0]
    plain = Depth(lazy.bids, lazy.asks)
    assert plain == lazy and lazy == plain and hash(plain) == hash(lazy)
    assert lazy != Depth(lazy.bids[1:], lazy.asks)
    restored = pickle.loads(pickle.dumps(lazy))
    assert type(restored) is Depth and restored == plain
    assert lazy.best_bid == lazy.bids[0] and lazy.best_ask == lazy.asks[0]
