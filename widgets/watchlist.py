"""The watchlist: the instruments a trader follows, with live LTP, change and volume.

Typing in the search box completes from the instrument registry (through the facade) and
Enter adds the best match, so "REL" + Enter adds NSE:RELIANCE without touching the mouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from PySide6.QtCore import QModelIndex, QPoint, QStringListModel, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeyEvent, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.domain import Tick
from services.options.search import describe
from widgets import theme
from widgets.narrow import ColumnFitter
from widgets.ports import TerminalFacade
from widgets.table_model import RIGHT, Column, RowTableModel, fmt_int, fmt_price


@dataclass(frozen=True)
class WatchRow:
    key: str
    symbol: str
    tick: Tick | None = None


def _change_colour(row: WatchRow) -> QColor | None:
    return None if row.tick is None else theme.signed_colour(row.tick.change)


def _ltp(row: WatchRow) -> str:
    return "" if row.tick is None else fmt_price(row.tick.last_price)


def _chg(row: WatchRow) -> str:
    return "" if row.tick is None else f"{row.tick.change_percent:+.2f}%"


def _vol(row: WatchRow) -> str:
    return "" if row.tick is None or not row.tick.volume else fmt_int(row.tick.volume)


COLUMNS: list[Column[WatchRow]] = [
    Column("Symbol", lambda r: r.symbol),
    Column("LTP", _ltp, RIGHT, _change_colour),
    Column("Chg %", _chg, RIGHT, _change_colour),
    Column("Volume", _vol, RIGHT),
]


class WatchlistModel(RowTableModel[WatchRow]):
    def __init__(self) -> None:
        super().__init__(COLUMNS, key=lambda r: r.key)
        self.ticks_applied = 0

    def apply_ticks(self, ticks: Iterable[Tick]) -> None:
        changed: list[int] = []
        for tick in ticks:
            i = self.row_of(tick.key)
            if i is None:
                continue
            self.replace_row(i, replace(self.row_at(i), tick=tick))
            changed.append(i)
        self.ticks_applied += len(changed)
        self.emit_rows_changed(changed, 1, len(COLUMNS) - 1)


class WatchlistTable(QTableView):
    """A table view that says when it has painted and turns Delete into a removal request."""

    painted = Signal()
    deleteRequested = Signal()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        self.painted.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class WatchlistWidget(QWidget):
    instrumentSelected = Signal(str)

    def __init__(self, facade: TerminalFacade, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self._facade = facade
        self.model = WatchlistModel()

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search symbol and press Enter  (e.g. REL)")
        self.search.setClearButtonEnabled(True)
        self._suggestions = QStringListModel(self)
        self._suggested: dict[str, str] = {}  # completion text -> instrument key
        self.completer = QCompleter(self._suggestions, self)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.search.setCompleter(self.completer)
        self.search.textEdited.connect(self._refresh_suggestions)
        self.search.returnPressed.connect(self._add_from_search)
        self.completer.activated.connect(self._add_completion)

        self.message = QLabel()
        self.message.setObjectName("panelMessage")
        self.message.hide()

        self.table = WatchlistTable()
        self.table.setModel(self.model)
        self.model.follow_view(self.table)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # Narrow: volume goes first, then the change; the symbol and LTP stay whole.
        self.column_fit = ColumnFitter(self.table, [0, 1, 2, 3])
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.deleteRequested.connect(self.remove_selected)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        self.remove_action = QAction("Remove from watchlist", self)
        self.remove_action.triggered.connect(self.remove_selected)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.message)
        layout.addWidget(self.table)

        for key in keys:
            self.add_key(key, select=False)

    # -- contents -------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return [r.key for r in self.model.rows()]

    def add_key(self, key: str, *, select: bool = True) -> bool:
        """Add an instrument by key; return False (and say why) if it is unknown."""
        inst = self._facade.instrument(key)
        if inst is None:
            self._say(f"unknown symbol {key}")
            return False
        self._say("")
        if self.model.row_of(key) is None:
            self.model.upsert([WatchRow(key, inst.tradingsymbol, self._facade.last_tick(key))])
        if select:
            self.select_key(key)
        return True

    def add_symbol(self, text: str) -> str | None:
        """Resolve what the trader typed (key, symbol or prefix) and add it."""
        text = text.strip()
        if not text:
            return None
        key = self._suggested.get(text)
        if key is None and self._facade.instrument(text.upper()) is not None:
            key = text.upper()
        if key is None:
            matches = self._facade.search(text, 1)
            if not matches:
                self._say(f"no instrument matches {text!r}")
                return None
            key = matches[0].key
        return key if self.add_key(key) else None

    def remove_key(self, key: str) -> bool:
        return self.model.remove(key)

    def remove_selected(self) -> None:
        key = self.selected_key()
        if key is not None:
            row = self.model.row_of(key) or 0
            self.remove_key(key)
            if self.model.rowCount():
                self.table.selectRow(min(row, self.model.rowCount() - 1))

    def selected_key(self) -> str | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.row_at(index.row()).key

    def select_key(self, key: str) -> None:
        row = self.model.row_of(key)
        if row is not None:
            self.table.selectRow(row)

    def apply_ticks(self, ticks: list[Tick]) -> None:
        self.model.apply_ticks(ticks)

    # -- slots ---------------------------------------------------------------------------
    def _refresh_suggestions(self, text: str) -> None:
        found = self._facade.search(text, 12) if text.strip() else []
        self._suggested = {describe(i): i.key for i in found}
        self._suggestions.setStringList(list(self._suggested))

    def _add_from_search(self) -> None:
        if self.add_symbol(self.search.text()) is not None:
            self.search.clear()
            popup = self.completer.popup()
            if popup is not None:
                popup.hide()

    def _add_completion(self, text: str) -> None:
        if self.add_symbol(text) is not None:
            self.search.clear()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.instrumentSelected.emit(self.model.row_at(current.row()).key)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.selectRow(index.row())
        menu = QMenu(self)
        menu.addAction(self.remove_action)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
