"""The terminal's main window: dockable panels around the chart, fed by one UI pump.

Panels are QDockWidgets so a trader can move, float and tab them; the arrangement is saved
with QSettings (the last layout on close, plus one named "saved layout" on demand). All live
data reaches the panels through ``UiPump``, never through per-widget bus subscriptions, so the
whole window repaints at most once per frame whatever the tick rate.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from services.bus import BARS, CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, TICKS
from services.domain import Bar, Fill, Side, Tick, Timeframe
from widgets.chart import ChartWidget
from widgets.order_book import OrderBookWidget
from widgets.order_ticket import OrderTicket
from widgets.ports import TerminalFacade
from widgets.positions import PositionsWidget
from widgets.status_bar import TerminalStatusBar
from widgets.ui_pump import UiPump
from widgets.watchlist import WatchlistWidget

DEFAULT_SIZE = (1600, 900)
_LAYOUT_VERSION = 1
_LAST_STATE = "layout/last_state"
_LAST_GEOMETRY = "layout/last_geometry"
_SAVED_STATE = "layout/saved_state"


class MainWindow(QMainWindow):
    closed = Signal()
    firstTickPainted = Signal()

    def __init__(
        self,
        facade: TerminalFacade,
        watchlist: Iterable[str],
        layout_store: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Dalal Terminal — simulated NSE · paper trading")
        self.setObjectName("MainWindow")
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks
            | QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
        )
        self.resize(*DEFAULT_SIZE)
        self.facade = facade
        self._store = layout_store
        self._first_tick_reported = False

        self.chart = ChartWidget()
        self.setCentralWidget(self.chart)
        self.watchlist = WatchlistWidget(facade, watchlist)
        self.ticket = OrderTicket(facade)
        self.order_book = OrderBookWidget(facade)
        self.positions = PositionsWidget(facade)
        self.status = TerminalStatusBar(lambda: facade.bus.published.get(TICKS.name, 0))
        self.setStatusBar(self.status)

        self.docks: dict[str, QDockWidget] = {}
        self._dock("Watchlist", self.watchlist, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Order ticket", self.ticket, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Order book", self.order_book, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Positions", self.positions, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["Order book"], self.docks["Positions"])
        self.docks["Order book"].raise_()
        self.resizeDocks(
            [self.docks["Watchlist"], self.docks["Order ticket"]],
            [340, 300],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks([self.docks["Order book"]], [250], Qt.Orientation.Vertical)
        self._default_state = self.saveState(_LAYOUT_VERSION)
        self._build_menus()

        for key, side in (("F1", Side.BUY), ("F2", Side.SELL)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(lambda side=side: self._focus_ticket(side))

        self.watchlist.instrumentSelected.connect(self.show_instrument)
        self.chart.timeframeChanged.connect(self._timeframe_changed)
        self.ticket.orderPlaced.connect(self.order_book.select_order)

        self.pump = UiPump(facade.bus, "main-window")
        self.pump.on(CONNECTION, self.status.apply_connections)
        self.pump.on(FUNDS, self.status.apply_funds)
        self.pump.on(ORDERS, self.order_book.apply_orders, on_lagged=self.order_book.resync)
        self.pump.on(POSITIONS, self.positions.apply_positions, on_lagged=self.positions.resync)
        self.pump.on(FILLS, self._on_fills)
        self.pump.on(TICKS, self._on_ticks)
        self.pump.on(BARS, self._on_bars)
        self.restore_last_layout()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the UI pump on the running (qasync) loop and show the first instrument."""
        funds = self.facade.funds()
        if funds is not None:
            self.status.apply_funds([funds])
        self.order_book.resync()
        self.positions.resync()
        keys = self.watchlist.keys()
        if keys and self.watchlist.selected_key() is None:
            tradable = [k for k in keys if (i := self.facade.instrument(k)) and i.tradable]
            self.watchlist.select_key(tradable[0] if tradable else keys[0])
        self.pump.start()

    async def stop(self) -> None:
        await self.pump.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._store is not None:
            self._store.setValue(_LAST_STATE, self.saveState(_LAYOUT_VERSION))
            self._store.setValue(_LAST_GEOMETRY, self.saveGeometry())
            self._store.sync()
        super().closeEvent(event)
        self.closed.emit()

    # -- layouts ---------------------------------------------------------------------------
    def save_layout(self) -> None:
        if self._store is not None:
            self._store.setValue(_SAVED_STATE, self.saveState(_LAYOUT_VERSION))
            self._store.sync()
            self.status.showMessage("Layout saved", 3000)

    def restore_saved_layout(self) -> bool:
        return self._restore(_SAVED_STATE)

    def restore_last_layout(self) -> bool:
        if self._store is not None:
            geometry = self._store.value(_LAST_GEOMETRY)
            if isinstance(geometry, QByteArray):
                self.restoreGeometry(geometry)
        return self._restore(_LAST_STATE)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, _LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    def _restore(self, name: str) -> bool:
        if self._store is None:
            return False
        state = self._store.value(name)
        return isinstance(state, QByteArray) and self.restoreState(state, _LAYOUT_VERSION)

    # -- construction ------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock:{title}")  # saveState keys docks by object name
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _build_menus(self) -> None:
        view = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        layout = self.menuBar().addMenu("&Layout")
        for text, shortcut, slot in (
            ("Save layout", "Ctrl+Shift+S", self.save_layout),
            ("Restore saved layout", "Ctrl+Shift+R", self.restore_saved_layout),
            ("Reset to default layout", "", self.reset_layout),
        ):
            action = QAction(text, self)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(slot)
            layout.addAction(action)

    # -- view logic ----------------------------------------------------------------------------
    def show_instrument(self, key: str) -> None:
        self.ticket.set_symbol(key)
        self._load_chart(key, self.chart.timeframe)

    def _timeframe_changed(self, value: str) -> None:
        if self.chart.key:
            self._load_chart(self.chart.key, Timeframe(value))

    def _load_chart(self, key: str, timeframe: Timeframe) -> None:
        self.chart.set_bars(key, timeframe, self.facade.history(key, timeframe))

    def _focus_ticket(self, side: Side) -> None:
        dock = self.docks["Order ticket"]
        dock.show()
        dock.raise_()
        self.ticket.focus_for(side)

    def _on_ticks(self, ticks: list[Tick]) -> None:
        self.watchlist.apply_ticks(ticks)
        self.positions.apply_ticks(ticks)
        self.ticket.update_quote(ticks)
        if not self._first_tick_reported and self.watchlist.model.ticks_applied:
            self._first_tick_reported = True
            self.watchlist.table.painted.connect(self._report_first_paint)

    def _report_first_paint(self) -> None:
        self.watchlist.table.painted.disconnect(self._report_first_paint)
        self.firstTickPainted.emit()

    def _on_bars(self, bars: list[Bar]) -> None:
        key, timeframe = self.chart.key, self.chart.timeframe
        mine = [b for b in bars if b.key == key and b.timeframe == timeframe]
        for bar in sorted(mine, key=lambda b: b.start):
            self.chart.update_bar(bar)

    def _on_fills(self, fills: list[Fill]) -> None:
        markers = [
            (f.ts, f.price, "buy" if f.side is Side.BUY else "sell")
            for f in fills
            if f.key == self.chart.key
        ]
        if markers:
            self.chart.add_markers(markers)
