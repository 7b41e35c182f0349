"""A keyed table model shared by the watchlist and the blotters.

Rows are immutable records identified by a key (instrument, order id, position). Updates go
through ``upsert``, which emits ``dataChanged`` only for the rows that actually changed, merged
into contiguous spans: at a 5,000 ticks/s feed, a frame repaints the few visible rows that
moved instead of resetting the whole view. A model that ``follow_view``s its table announces
only the changed rows the table shows: with 3,000 instruments ticking, a frame sent Qt
hundreds of spans for rows nobody could see (the view reads those rows afresh when they
scroll into sight).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableView

from services.domain import Tick

T = TypeVar("T")

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
CENTER = Qt.AlignmentFlag.AlignCenter

AnyIndex = QModelIndex | QPersistentModelIndex
_DISPLAY_ROLE = Qt.ItemDataRole.DisplayRole.value
_ALIGNMENT_ROLE = Qt.ItemDataRole.TextAlignmentRole.value
_ROLES = frozenset(
    (_DISPLAY_ROLE, _ALIGNMENT_ROLE, Qt.ItemDataRole.ForegroundRole.value)
)


@dataclass(frozen=True)
class Column(Generic[T]):
    header: str
    text: Callable[[T], str]
    align: Qt.AlignmentFlag = LEFT
    colour: Callable[[T], QColor | None] | None = None


def fmt_price(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def fmt_int(value: int) -> str:
    return f"{value:,}"


class RowTableModel(QAbstractTableModel, Generic[T]):
    def __init__(
        self,
        columns: list[Column[T]],
        key: Callable[[T], Hashable],
        *,
        newest_first: bool = False,
    ) -> None:
        super().__init__()
        self.columns = columns
        self._key = key
        self._newest_first = newest_first
        self._rows: list[T] = []
        self._index: dict[Hashable, int] = {}
        self._view: QTableView | None = None
        self.rows_announced = 0  # rows named in dataChanged so far (tests and benches read it)

    # -- Qt model interface -------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # A repaint asks every visible cell for a dozen roles: those without an answer
        # return before the row and column are looked up.
        if role not in _ROLES or not index.isValid():
            return None
        col = self.columns[index.column()]
        if role == _ALIGNMENT_ROLE:
            return col.align
        if role == _DISPLAY_ROLE:
            return col.text(self._rows[index.row()])
        if col.colour is not None:  # the foreground
            return col.colour(self._rows[index.row()])
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.columns[section].header
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return self.columns[section].align
        return None

    # -- keyed access ---------------------------------------------------------------------
    def rows(self) -> list[T]:
        return list(self._rows)

    def row_at(self, row: int) -> T:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        return self._index.get(key)

    def get(self, key: Hashable) -> T | None:
        i = self._index.get(key)
        return None if i is None else self._rows[i]

    def keys(self) -> list[Hashable]:
        return [self._key(r) for r in self._rows]

    def text(self, key: Hashable, header: str) -> str:
        """Return the text a cell shows: what tests and the benchmark read."""
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        col = next(c for c in self.columns if c.header == header)
        return col.text(row)

    # -- updates ---------------------------------------------------------------------------
    def upsert(self, items: Iterable[T]) -> None:
        latest: dict[Hashable, T] = {}
        for item in items:
            latest[self._key(item)] = item
        changed: list[int] = []
        new: list[T] = []
        for k, item in latest.items():
            i = self._index.get(k)
            if i is None:
                new.append(item)
            elif self._rows[i] != item:
                self._rows[i] = item
                changed.append(i)
        self.emit_rows_changed(changed)
        if new:
            self._insert(new)

    def _insert(self, new: list[T]) -> None:
        if self._newest_first:
            self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
            self._rows[0:0] = list(reversed(new))
        else:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
        self._reindex()
        self.endInsertRows()

    def replace_row(self, row: int, item: T) -> None:
        """Swap a row in place without notifying; call ``emit_rows_changed`` once per batch."""
        self._rows[row] = item

    def remove(self, key: Hashable) -> bool:
        i = self._index.get(key)
        if i is None:
            return False
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        self._reindex()
        self.endRemoveRows()
        return True

    def reset(self, items: Iterable[T]) -> None:
        self.beginResetModel()
        self._rows = []
        self._index = {}
        latest: dict[Hashable, T] = {}
        for item in items:
            latest[self._key(item)] = item
        self._rows = list(latest.values())
        if self._newest_first:
            self._rows.reverse()
        self._reindex()
        self.endResetModel()

    def follow_view(self, view: QTableView) -> None:
        """Announce changes only for rows ``view`` shows (none while it is hidden), as one
        span per batch, and have the view fit its columns to the rows it shows.

        Each ``dataChanged`` made a column in ResizeToContents mode measure itself again,
        over up to 1,000 rows by default: with 3,000 instruments that was some 90,000
        ``data()`` calls and 300 ms a frame.
        """
        self._view = view
        view.horizontalHeader().setResizeContentsPrecision(0)

    def shown_rows(self) -> range:
        """Rows the followed view shows now; every row when no view is followed."""
        view = self._view
        n = len(self._rows)
        if view is None:
            return range(n)
        if not view.isVisible() or n == 0:
            return range(0)
        top = view.rowAt(0)
        bottom = view.rowAt(view.viewport().height() - 1)
        return range(max(top, 0), n if bottom < 0 else bottom + 1)

    def emit_rows_changed(
        self, rows: Iterable[int], first_col: int = 0, last_col: int = -1
    ) -> None:
        """Emit one ``dataChanged`` per run of adjacent changed rows; following a view, one
        span from the first to the last changed row it shows."""
        shown = self.shown_rows()
        ordered = sorted({r for r in rows if r in shown})
        if not ordered:
            return
        last_col = len(self.columns) - 1 if last_col < 0 else last_col
        if self._view is not None:
            self.rows_announced += ordered[-1] - ordered[0] + 1
            top, bottom = self.index(ordered[0], first_col), self.index(ordered[-1], last_col)
            self.dataChanged.emit(top, bottom)
            return
        self.rows_announced += len(ordered)
        start = prev = ordered[0]
        for r in [*ordered[1:], None]:
            if r is not None and r == prev + 1:
                prev = r
                continue
            self.dataChanged.emit(self.index(start, first_col), self.index(prev, last_col))
            if r is not None:
                start = prev = r

    def _reindex(self) -> None:
        self._index = {self._key(r): i for i, r in enumerate(self._rows)}


class _Priced(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def last_price(self) -> Decimal: ...


P = TypeVar("P", bound=_Priced)


class LivePriceModel(RowTableModel[P]):
    """Rows whose ``last_price`` follows the ticks (positions, holdings).

    The newest price of every instrument is remembered, so rows that arrive from a broker
    snapshot are marked to the market at once instead of showing the snapshot's stale price.
    """

    def __init__(
        self, columns: list[Column[P]], key: Callable[[P], Hashable], first_live_column: int
    ) -> None:
        super().__init__(columns, key=key)
        self._ltp: dict[str, Decimal] = {}
        self._first_live_column = first_live_column

    def marked(self, rows: Iterable[P]) -> list[P]:
        return [
            replace(r, last_price=self._ltp[r.key]) if r.key in self._ltp else r  # type: ignore[type-var]
            for r in rows
        ]

    def apply_ticks(self, ticks: Iterable[Tick]) -> None:
        prices = {t.key: t.last_price for t in ticks}
        self._ltp.update(prices)
        changed: list[int] = []
        for i, row in enumerate(self.rows()):
            price = prices.get(row.key)
            if price is not None and price != row.last_price:
                self.replace_row(i, replace(row, last_price=price))  # type: ignore[type-var]
                changed.append(i)
        self.emit_rows_changed(changed, self._first_live_column, len(self.columns) - 1)
