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


def test_a_lazy_books_stored_text_is_its_built_books_without_building_it() -> None:
    from decimal import Decimal

    from services.simulator.depth import _scale, _text
    from services.storage.codec import tick_row

    def _depth_json(book: Depth) -> str:  # the stored text of a tick carrying the book
        return tick_row(Tick("NSE:X", OPEN, Decimal(1), 1, 1, *(Decimal(1),) * 4, book))

    ticks = run_steps(make_sim(seed=11), OPEN + timedelta(minutes=3), 30, 0.05, 40)
    books = [b for b in _books(ticks) if isinstance(b, LazyDepth)]
    assert len(books) > 100
    texts = [_depth_json(b) for b in books]
    assert all(b._book is None for b in books)  # the recorder's read built nothing
    assert texts == [_depth_json(Depth(b.bids, b.asks)) for b in books]
    assert [b.level_texts() for b in books] == [Depth(b.bids, b.asks).level_texts() for b in books]
    # Any tick size: the text is str() of the Decimal price, never scientific notation.
    for tick in ("0.05", "0.0025", "0.01", "0.1", "1", "5", "0.000001"):
        step = Decimal(tick)
        for n in (1, 2, 9, 10, 99, 100, 101, 12345, 10**7 + 3):
            coefficient, exponent = _scale(step)
            assert _text(coefficient * n, exponent) == str(step * n), (tick, n)
