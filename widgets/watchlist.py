"""The watchlists: named lists of the instruments a trader follows, with live LTP, change and
volume, and optional bid / ask / OHLC / OI columns.

Typing in the search box completes from the instrument registry (through the facade) and
Enter adds the best match, so "REL" + Enter adds NSE:RELIANCE without touching the mouse.
Lists are tabs; creating, renaming, deleting and switching them all work from the keyboard
(Ctrl+T, Ctrl+E, Ctrl+W, Ctrl+PgDown / Ctrl+PgUp) through an inline prompt rather than a
modal dialog. The extra columns come from the header's right-click menu. Every change is handed
to the ``WatchlistStore`` at once, so a crash loses nothing the trader did.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from PySide6.QtCore import QModelIndex, QPoint, QStringListModel, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeyEvent, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTabBar,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from services.domain import Tick
from services.options.search import describe
from widgets import theme
from widgets.narrow import ColumnFitter
from widgets.ports import TerminalFacade
from widgets.table_model import RIGHT, Column, RowTableModel, fmt_int, fmt_price
from widgets.watchlist_lists import (
    COLUMN_TITLES,
    OPTIONAL_COLUMNS,
    NamedList,
    WatchlistState,
    WatchlistStore,
    name_problem,
)


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


def _bid(row: WatchRow) -> str:
    depth = None if row.tick is None else row.tick.depth
    level = None if depth is None else depth.best_bid
    return "" if level is None else fmt_price(level.price)


def _ask(row: WatchRow) -> str:
    depth = None if row.tick is None else row.tick.depth
    level = None if depth is None else depth.best_ask
    return "" if level is None else fmt_price(level.price)


def _open(row: WatchRow) -> str:
    return "" if row.tick is None else fmt_price(row.tick.open)


def _high(row: WatchRow) -> str:
    return "" if row.tick is None else fmt_price(row.tick.high)


def _low(row: WatchRow) -> str:
    return "" if row.tick is None else fmt_price(row.tick.low)


def _close(row: WatchRow) -> str:
    return "" if row.tick is None else fmt_price(row.tick.close)


def _oi(row: WatchRow) -> str:
    return "" if row.tick is None or not row.tick.oi else fmt_int(row.tick.oi)


COLUMNS: list[Column[WatchRow]] = [
    Column("Symbol", lambda r: r.symbol),
    Column("LTP", _ltp, RIGHT, _change_colour),
    Column("Chg %", _chg, RIGHT, _change_colour),
    Column("Volume", _vol, RIGHT),
]

OPTIONAL: dict[str, Column[WatchRow]] = {
    "bid": Column(COLUMN_TITLES["bid"], _bid, RIGHT),
    "ask": Column(COLUMN_TITLES["ask"], _ask, RIGHT),
    "open": Column(COLUMN_TITLES["open"], _open, RIGHT),
    "high": Column(COLUMN_TITLES["high"], _high, RIGHT),
    "low": Column(COLUMN_TITLES["low"], _low, RIGHT),
    "close": Column(COLUMN_TITLES["close"], _close, RIGHT),
    "oi": Column(COLUMN_TITLES["oi"], _oi, RIGHT),
}


class WatchlistModel(RowTableModel[WatchRow]):
    def __init__(self) -> None:
        super().__init__(list(COLUMNS), key=lambda r: r.key)
        self.ticks_applied = 0

    def set_optional(self, names: Iterable[str]) -> None:
        """Show the fixed columns plus ``names`` (in ``OPTIONAL_COLUMNS`` order)."""
        chosen = [OPTIONAL[n] for n in OPTIONAL_COLUMNS if n in set(names)]
        self.beginResetModel()
        self.columns = [*COLUMNS, *chosen]
        self.endResetModel()

    def apply_ticks(self, ticks: Iterable[Tick]) -> None:
        changed: list[int] = []
        for tick in ticks:
            i = self.row_of(tick.key)
            if i is None:
                continue
            self.replace_row(i, replace(self.row_at(i), tick=tick))
            changed.append(i)
        self.ticks_applied += len(changed)
        self.emit_rows_changed(changed, 1, len(self.columns) - 1)


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


class _Prompt(QLineEdit):
    """The inline question under the tabs: Enter answers it, Esc drops it."""

    cancelled = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class PromptMode(enum.Enum):
    NONE = "none"
    NEW = "new"
    RENAME = "rename"
    DELETE = "delete"


class WatchlistWidget(QWidget):
    instrumentSelected = Signal(str)
    listsChanged = Signal()

    def __init__(
        self,
        facade: TerminalFacade,
        keys: Iterable[str] | WatchlistState = (),
        *,
        store: WatchlistStore | None = None,
    ) -> None:
        super().__init__()
        self._facade = facade
        self._store = store
        state = (keys if isinstance(keys, WatchlistState) else WatchlistState.single(keys))
        state = state.normalised()
        # Every list's keys, in tab order; the current one is also the model's rows.
        self._lists = {e.name: list(dict.fromkeys(e.keys)) for e in state.lists}
        self._current = state.current
        self._columns: tuple[str, ...] = state.columns
        self.model = WatchlistModel()
        self.model.set_optional(self._columns)

        self.tabs = QTabBar()
        self.tabs.setObjectName("watchlistTabs")
        self.tabs.setExpanding(False)
        self.tabs.setDocumentMode(True)
        self.tabs.setUsesScrollButtons(True)
        self.tabs.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tabs.customContextMenuRequested.connect(self._tabs_menu)
        self.tabs.tabBarDoubleClicked.connect(self._rename_tab)

        self.new_list_action = self._action("New list…", "Ctrl+T", self.begin_new_list)
        self.rename_list_action = self._action("Rename list…", "Ctrl+E", self.begin_rename)
        self.delete_list_action = self._action("Delete list…", "Ctrl+W", self.begin_delete)
        self.next_list_action = self._action("Next list", "Ctrl+PgDown", lambda: self._step(1))
        self.previous_list_action = self._action(
            "Previous list", "Ctrl+PgUp", lambda: self._step(-1)
        )
        self.column_actions: dict[str, QAction] = {}
        self.column_menu = QMenu("Columns", self)
        for name in OPTIONAL_COLUMNS:
            action = QAction(COLUMN_TITLES[name], self)
            action.setCheckable(True)
            action.setChecked(name in self._columns)
            action.toggled.connect(lambda on, name=name: self.set_column_visible(name, on))
            self.column_actions[name] = action
            self.column_menu.addAction(action)
        self.lists_menu = QMenu("Lists", self)
        for action in (self.new_list_action, self.rename_list_action, self.delete_list_action):
            self.lists_menu.addAction(action)
        self.lists_menu.addSeparator()
        self.lists_menu.addAction(self.next_list_action)
        self.lists_menu.addAction(self.previous_list_action)
        self.lists_menu.addSeparator()
        self.lists_menu.addMenu(self.column_menu)
        self.menu_button = QToolButton()
        self.menu_button.setText("☰")
        self.menu_button.setToolTip("Lists and columns")
        self.menu_button.setAutoRaise(True)
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_button.setMenu(self.lists_menu)
        self.add_list_button = QToolButton()
        self.add_list_button.setText("+")
        self.add_list_button.setToolTip("New list (Ctrl+T)")
        self.add_list_button.setAutoRaise(True)
        self.add_list_button.clicked.connect(self.begin_new_list)

        self.prompt = _Prompt()
        self.prompt.setObjectName("watchlistPrompt")
        self.prompt.returnPressed.connect(self._answer_prompt)
        self.prompt.cancelled.connect(self.cancel_prompt)
        self.prompt.hide()
        self.prompt_mode = PromptMode.NONE

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
        self.message.setWordWrap(True)
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
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        # Narrow: volume goes first, then the chosen extras, then the change; the symbol and
        # LTP stay whole.
        self.column_fit = ColumnFitter(self.table, [0, 1, 2, 3])
        self._fit_columns()
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.deleteRequested.connect(self.remove_selected)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        self.remove_action = QAction("Remove from watchlist", self)
        self.remove_action.triggered.connect(self.remove_selected)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(2)
        top.addWidget(self.tabs, 1)
        top.addWidget(self.add_list_button)
        top.addWidget(self.menu_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.prompt)
        layout.addWidget(self.search)
        layout.addWidget(self.message)
        layout.addWidget(self.table)

        self._fill_tabs()
        self.tabs.currentChanged.connect(self._tab_changed)
        self._show_current()

    def _action(self, text: str, shortcut: str, slot: object) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        # Only while the watchlist has focus: Ctrl+W elsewhere is not "delete a list".
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # -- lists ----------------------------------------------------------------------------
    def list_names(self) -> list[str]:
        return list(self._lists)

    def current_list(self) -> str:
        return self._current

    def list_keys(self, name: str) -> list[str]:
        return list(self._lists[name])

    def optional_columns(self) -> tuple[str, ...]:
        return self._columns

    def state(self) -> WatchlistState:
        lists = tuple(NamedList(name, tuple(keys)) for name, keys in self._lists.items())
        return WatchlistState(lists, self._current, self._columns)

    def switch_to(self, name: str) -> bool:
        if name not in self._lists:
            self._say(f"no list named {name!r}")
            return False
        if name != self._current:
            self._current = name
            self._show_current()
            self._changed()
        return True

    def create_list(self, name: str) -> bool:
        """Add an empty list and show it; refuse (and say why) a bad or taken name."""
        name = name.strip()
        problem = name_problem(name, self.list_names())
        if problem is not None:
            self._say(problem)
            return False
        self._lists[name] = []
        self._current = name
        self._fill_tabs()
        self._show_current()
        self._changed()
        return True

    def rename_list(self, old: str, new: str) -> bool:
        new = new.strip()
        if old not in self._lists:
            self._say(f"no list named {old!r}")
            return False
        problem = name_problem(new, self.list_names(), renaming=old)
        if problem is not None:
            self._say(problem)
            return False
        self._lists = {(new if n == old else n): keys for n, keys in self._lists.items()}
        if self._current == old:
            self._current = new
        self._fill_tabs()
        self._say("")
        self._changed()
        return True

    def delete_list(self, name: str) -> bool:
        """Delete a list; the last one stays (a watchlist always has a list to add to)."""
        if name not in self._lists:
            self._say(f"no list named {name!r}")
            return False
        if len(self._lists) == 1:
            self._say("the last list cannot be deleted; rename it instead")
            return False
        names = self.list_names()
        position = names.index(name)
        del self._lists[name]
        if self._current == name:
            remaining = self.list_names()
            self._current = remaining[min(position, len(remaining) - 1)]
        self._fill_tabs()
        self._show_current()
        self._say("")
        self._changed()
        return True

    def set_column_visible(self, name: str, visible: bool) -> None:
        if name not in OPTIONAL_COLUMNS:
            raise ValueError(f"unknown watchlist column {name!r}")
        chosen = set(self._columns)
        if (name in chosen) == visible:
            return
        chosen ^= {name}
        self._columns = tuple(c for c in OPTIONAL_COLUMNS if c in chosen)
        selected = self.selected_key()
        self.model.set_optional(self._columns)
        self._fit_columns()
        if selected is not None:
            self.select_key(selected)
        action = self.column_actions[name]
        if action.isChecked() != visible:
            action.setChecked(visible)
        self._changed()

    # -- prompts (the keyboard way to name and delete lists) -----------------------------
    def begin_new_list(self) -> None:
        self._ask(PromptMode.NEW, "", "Name of the new list — Enter creates, Esc cancels")

    def begin_rename(self) -> None:
        self._ask(
            PromptMode.RENAME, self._current, f"New name for {self._current!r} — Enter renames"
        )

    def begin_delete(self) -> None:
        count = len(self._lists[self._current])
        text = f"Delete list {self._current!r} ({count} instruments)? Enter deletes, Esc keeps"
        self._ask(PromptMode.DELETE, text, "")
        self.prompt.setReadOnly(True)

    def cancel_prompt(self) -> None:
        self.prompt_mode = PromptMode.NONE
        self.prompt.clear()
        self.prompt.setReadOnly(False)
        self.prompt.hide()
        self.table.setFocus()

    def _ask(self, mode: PromptMode, text: str, placeholder: str) -> None:
        self.prompt_mode = mode
        self.prompt.setReadOnly(False)
        self.prompt.setText(text)
        self.prompt.setPlaceholderText(placeholder)
        self.prompt.selectAll()
        self.prompt.show()
        self.prompt.setFocus()

    def _answer_prompt(self) -> None:
        mode = self.prompt_mode
        text = self.prompt.text()
        if mode is PromptMode.NEW:
            done = self.create_list(text)
        elif mode is PromptMode.RENAME:
            done = self.rename_list(self._current, text)
        elif mode is PromptMode.DELETE:
            self.delete_list(self._current)
            done = True  # refused or not, the question is answered (the reason is shown)
        else:
            done = True
        if done:
            self.cancel_prompt()

    # -- contents of the current list -------------------------------------------------------
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
            self._lists[self._current].append(key)
            self._changed()
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
        if not self.model.remove(key):
            return False
        keys = self._lists[self._current]
        if key in keys:
            keys.remove(key)
        self._changed()
        return True

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

    # -- internals -----------------------------------------------------------------------
    def _row(self, key: str) -> WatchRow:
        # A key the registry no longer knows (an expired contract) keeps its row, unpriced,
        # so a restored list never silently loses what the trader put in it.
        inst = self._facade.instrument(key)
        symbol = key if inst is None else inst.tradingsymbol
        return WatchRow(key, symbol, self._facade.last_tick(key))

    def _show_current(self) -> None:
        self.model.reset(self._row(k) for k in self._lists[self._current])
        index = self.list_names().index(self._current)
        if self.tabs.currentIndex() != index:
            self.tabs.blockSignals(True)
            self.tabs.setCurrentIndex(index)
            self.tabs.blockSignals(False)

    def _fill_tabs(self) -> None:
        self.tabs.blockSignals(True)
        while self.tabs.count():
            self.tabs.removeTab(0)
        for name in self._lists:
            self.tabs.addTab(name.replace("&", "&&"))  # "F&O" is a name, not a mnemonic
        self.tabs.setCurrentIndex(self.list_names().index(self._current))
        self.tabs.blockSignals(False)
        self.delete_list_action.setEnabled(len(self._lists) > 1)

    def _fit_columns(self) -> None:
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(self.model.columns)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        extras = list(range(len(COLUMNS), len(self.model.columns)))
        self.column_fit.priority = [0, 1, 2, *extras, 3]
        self.column_fit.refit()

    def _changed(self) -> None:
        self.listsChanged.emit()
        if self._store is not None:
            self._store.save(self.state())

    def _step(self, delta: int) -> None:
        names = self.list_names()
        self.switch_to(names[(names.index(self._current) + delta) % len(names)])

    # -- slots ---------------------------------------------------------------------------
    def _tab_changed(self, index: int) -> None:
        if 0 <= index < len(self._lists):
            self.switch_to(self.list_names()[index])

    def _rename_tab(self, index: int) -> None:
        if 0 <= index < len(self._lists):
            self.switch_to(self.list_names()[index])
            self.begin_rename()

    def _tabs_menu(self, pos: QPoint) -> None:
        index = self.tabs.tabAt(pos)
        if index >= 0:
            self.switch_to(self.list_names()[index])
        self.lists_menu.popup(self.tabs.mapToGlobal(pos))

    def _header_menu(self, pos: QPoint) -> None:
        self.column_menu.popup(self.table.horizontalHeader().mapToGlobal(pos))

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
