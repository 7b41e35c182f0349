"""The watchlists as data: named lists of instrument keys, the one on screen, and the extra
columns chosen. Qt-free, so the app can load and save it without a widget.

The watchlist widget owns the live copy and hands a ``WatchlistState`` to its store after
every change; ``app/watchlist_store.py`` writes it into the settings file, where the single
watchlist of older profiles lived (it becomes the list named "Default").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_LIST = "Default"
MAX_NAME = 40

# Extra columns a trader may show, in the order they appear after the fixed ones.
OPTIONAL_COLUMNS: tuple[str, ...] = ("bid", "ask", "open", "high", "low", "close", "oi")
COLUMN_TITLES: dict[str, str] = {
    "bid": "Bid",
    "ask": "Ask",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Prev close",
    "oi": "OI",
}


@dataclass(frozen=True)
class NamedList:
    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class WatchlistState:
    lists: tuple[NamedList, ...]
    current: str
    columns: tuple[str, ...] = ()

    @classmethod
    def single(cls, keys: Iterable[str]) -> WatchlistState:
        """One list named "Default": what a profile from before named lists holds."""
        return cls((NamedList(DEFAULT_LIST, tuple(keys)),), DEFAULT_LIST)

    def normalised(self) -> WatchlistState:
        """At least one list, ``current`` naming one of them, known columns in canonical order."""
        lists = self.lists or (NamedList(DEFAULT_LIST, ()),)
        names = [entry.name for entry in lists]
        current = self.current if self.current in names else names[0]
        columns = tuple(c for c in OPTIONAL_COLUMNS if c in self.columns)
        return WatchlistState(lists, current, columns)


class WatchlistStore(Protocol):
    """Where the watchlists are kept between runs (the settings file, in the app)."""

    def save(self, state: WatchlistState) -> None: ...


def name_problem(name: str, existing: Sequence[str], *, renaming: str | None = None) -> str | None:
    """Why ``name`` cannot name a list (``None`` when it can). Names are compared without
    regard to case, so "Swing" and "swing" never both appear as tabs."""
    if not name:
        return "a list needs a name"
    if len(name) > MAX_NAME:
        return f"a list name has at most {MAX_NAME} characters"
    taken = {n.casefold() for n in existing if n != renaming}
    if name.casefold() in taken:
        return f"there is already a list named {name!r}"
    return None
