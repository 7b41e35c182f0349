"""The terminal's main window: dockable panels around the chart, fed by one UI pump.

Panels are QDockWidgets so a trader can move, float and tab them; the arrangement is saved
with QSettings (the last layout on close, plus one named "saved layout" on demand). All live
data reaches the panels through ``UiPump``, never through per-widget bus subscriptions, so the
whole window repaints at most once per frame whatever the tick rate.

The kill switch (Ctrl+Shift+K) is an application-wide shortcut that asks nothing, because the
moment it is needed is the moment a confirmation dialog costs money; what it does (square off
or not) is chosen beforehand in the risk panel. With an ``UnlockGate`` the window also locks
itself after ``idle_timeout`` seconds without a key or mouse event and hides every number
until the profile is unlocked again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import QDialog, QDockWidget, QMainWindow, QMessageBox, QToolBar, QWidget

from models.signals import SIGNALS
from models.signals import Signal as ModelSignal
from services.alerts import ALERTS, AlertFired
from services.broker import BrokerError
from services.bus import BARS, CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, TICKS
from services.domain import Bar, Fill, OrderType, Side, Tick, Timeframe
from services.gtt import GTTS
from services.marketdata.service import HISTORY, HistoryLoaded
from services.risk import KillReport
from widgets.alerts_panel import AlertsPanel
from widgets.backtest_panel import BacktestPanel, BacktestPort
from widgets.basket import BasketPanel
from widgets.broker_menu import BrokerMenu
from widgets.chart import ChartWidget
from widgets.chart.multi import MultiChart
from widgets.depth import DepthPanel
from widgets.frame import FramePresenter
from widgets.funds_panel import FundsPanel
from widgets.gtt_panel import GttPanel
from widgets.holdings import HoldingsWidget
from widgets.lock_screen import IdleWatcher, LockOverlay
from widgets.models_panel import ModelsPanel, ModelsPort
from widgets.narrow import cap_height
from widgets.option_chain import OptionChainPanel
from widgets.order_book import OrderBookWidget
from widgets.order_ticket import OrderTicket
from widgets.ports import BrokerControls, TerminalFacade, UnlockGate
from widgets.positions import PositionsWidget
from widgets.risk_panel import STATE_COLOURS, RiskPanel
from widgets.signals_panel import SignalsPanel
from widgets.status_bar import TerminalStatusBar
from widgets.ui_pump import UiPump, spawn
from widgets.watchlist import WatchlistWidget
from widgets.watchlist_lists import WatchlistState, WatchlistStore

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1600, 900)
_LAYOUT_VERSION = 1
_LAST_STATE = "layout/last_state"
_LAST_GEOMETRY = "layout/last_geometry"
_SAVED_STATE = "layout/saved_state"
_KILL_SQUARE_OFF = "risk/kill_square_off"
KILL_SHORTCUT = "Ctrl+Shift+K"


def kill_summary(report: KillReport) -> str:
    closed = len(report.closed)
    return (
        f"Kill switch: trading {report.state.value} · {len(report.cancelled)} order"
        f"{'' if len(report.cancelled) == 1 else 's'} cancelled · {closed} position"
        f"{'' if closed == 1 else 's'} closed · {len(report.failed)} failed"
        f" ({report.elapsed_seconds * 1000:.0f} ms)"
    )


def kill_details(report: KillReport) -> str:
    lines = [f"Cancelled: {', '.join(report.cancelled) or 'none'}"]
    for c in report.closed:
        ids = ", ".join(o.order_id for o in c.orders)
        lines.append(f"Closed {c.key} {c.product} {c.quantity:+,} with {ids}")
    for f in report.failed:
        lines.append(f"FAILED {f.action} {f.target}: {f.reason}")
    return "\n".join(lines)


class MainWindow(QMainWindow):
    closed = Signal()
    firstTickPainted = Signal()

    def __init__(
        self,
        facade: TerminalFacade,
        watchlist: Iterable[str] | WatchlistState,
        layout_store: QSettings | None = None,
        *,
        watchlist_store: WatchlistStore | None = None,
        gate: UnlockGate | None = None,
        idle_timeout: float | None = None,
        session_note: str = "",
        session_warning: bool = False,
        models: ModelsPort | None = None,
        backtests: BacktestPort | None = None,
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
        self.charts = MultiChart(self.chart)  # 1 or 2x2; self.chart is always chart 0
        self.setCentralWidget(self.charts)
        self.watchlist = WatchlistWidget(facade, watchlist, store=watchlist_store)
        self.ticket = OrderTicket(facade)
        self.order_book = OrderBookWidget(facade)
        self.positions = PositionsWidget(facade)
        self.holdings = HoldingsWidget(facade)
        self.funds_panel = FundsPanel(facade.funds)
        self.risk_panel = RiskPanel(facade.risk)
        self.risk_panel.after_resume = self._spawn_resume_node
        self.models_panel = ModelsPanel(models)
        self.backtest_panel = BacktestPanel(backtests)
        self.signals_panel = SignalsPanel()
        self.depth_panel = DepthPanel(facade)
        self.alerts_panel = AlertsPanel(facade)
        self.option_chain = OptionChainPanel(facade)
        self.gtt_panel = GttPanel(facade)
        self.basket = BasketPanel(facade)
        self.status = TerminalStatusBar(lambda: facade.bus.published.get(TICKS.name, 0))
        self.setStatusBar(self.status)
        self.status.set_session(session_note, warning=session_warning)
        self.status.set_trading_state(facade.risk.state.value, STATE_COLOURS[facade.risk.state])
        self.risk_panel.stateShown.connect(self.status.set_trading_state)

        self.docks: dict[str, QDockWidget] = {}
        # The right column (ticket over risk) runs down to the status bar, so the kill switch
        # and the limits have room; the order book takes the width beside it.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Watchlist", self.watchlist, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Order ticket", self.ticket, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Order book", self.order_book, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Positions", self.positions, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Holdings", self.holdings, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Funds", self.funds_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Risk", self.risk_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Models", self.models_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Signals", self.signals_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Depth", self.depth_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Alerts", self.alerts_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Basket", self.basket, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Backtest", self.backtest_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # Depth shares the risk panel's place, so the chart keeps its width; risk stays in front.
        self.tabifyDockWidget(self.docks["Risk"], self.docks["Depth"])
        self.docks["Risk"].raise_()
        self.tabifyDockWidget(self.docks["Order book"], self.docks["Positions"])
        self.tabifyDockWidget(self.docks["Positions"], self.docks["Holdings"])
        self.tabifyDockWidget(self.docks["Positions"], self.docks["Models"])
        self.tabifyDockWidget(self.docks["Positions"], self.docks["Alerts"])
        self.tabifyDockWidget(self.docks["Depth"], self.docks["Basket"])
        # The basket opens when the chain sends it legs. The option chain's dock is made on
        # first use (View > Option chain, Ctrl+Shift+O): as a dock from the start, even a
        # hidden one, it widened the default window past a 1600-pixel screen.
        self.docks["Basket"].hide()
        self.tabifyDockWidget(self.docks["Positions"], self.docks["Backtest"])
        self.docks["Order book"].raise_()
        self.docks["Risk"].raise_()  # last: the kill switch is in front whatever joined its tabs
        self.resizeDocks(
            [self.docks["Watchlist"], self.docks["Order ticket"]],
            [340, 330],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks(
            [self.docks["Order ticket"], self.docks["Risk"]], [370, 440], Qt.Orientation.Vertical
        )
        self.resizeDocks([self.docks["Order book"]], [250], Qt.Orientation.Vertical)
        # Funds stay in view under the watchlist, where the column has room to spare; the
        # chart and the blotters keep their width.
        self.resizeDocks(
            [self.docks["Watchlist"], self.docks["Funds"]], [450, 140], Qt.Orientation.Vertical
        )

        self.kill_action = QAction("Kill switch: cancel all, halt", self)
        self.kill_action.setObjectName("killSwitchAction")
        self.kill_action.setShortcut(QKeySequence(KILL_SHORTCUT))
        # Application-wide: fires from any dock, floating panel or focused field.
        self.kill_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.kill_action.setToolTip(
            f"Cancel every open order, optionally square off, and HALT ({KILL_SHORTCUT})"
        )
        self.kill_action.triggered.connect(self.trigger_kill)
        self.addAction(self.kill_action)  # the shortcut works even with the toolbar hidden
        self.lock_action = QAction("Lock now", self)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setEnabled(gate is not None)
        self.lock_action.triggered.connect(self.lock_view)
        self.addAction(self.lock_action)
        self.toolbar = QToolBar("Trading", self)
        self.toolbar.setObjectName("toolbar:trading")
        self.toolbar.setMovable(False)
        self.toolbar.addAction(self.kill_action)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.lock_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.toolbar.widgetForAction(self.kill_action).setStyleSheet(
            "color: white; background-color: #8e1f1a; font-weight: bold; padding: 3px 10px;"
        )
        self.kill_message: QMessageBox | None = None
        self.last_kill_report: KillReport | None = None
        self.kills_running = 0
        if self._store is not None:
            checked = self._store.value(_KILL_SQUARE_OFF, True, type=bool)
            self.risk_panel.square_off.setChecked(bool(checked))
        self.risk_panel.square_off.toggled.connect(self._square_off_toggled)
        self.risk_panel.killRequested.connect(self.trigger_kill)

        self.locked = False
        self._hidden_while_locked: list[QWidget] = []
        self.lock_overlay: LockOverlay | None = None
        self.idle: IdleWatcher | None = None
        if gate is not None:
            self.lock_overlay = LockOverlay(gate, self)
            self.lock_overlay.unlocked.connect(self.unlock_view)
            if idle_timeout is not None and idle_timeout > 0:
                self.idle = IdleWatcher(idle_timeout, parent=self)
                self.idle.idle.connect(self.lock_view)

        # The first tabify activated the layout while the bottom docks still stood side by
        # side, and Qt kept that sum as the window's minimum width (2,000+ px with a dozen
        # docks): take the minimum the finished layout really needs.
        self.setMinimumSize(self.minimumSizeHint())
        self._default_state = self.saveState(_LAYOUT_VERSION)
        self._build_menus()

        for key, side in (("F1", Side.BUY), ("F2", Side.SELL)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(lambda side=side: self._focus_ticket(side))

        self.watchlist.instrumentSelected.connect(self.show_instrument)
        for chart in self.charts.charts:
            self._wire_chart(chart)
        self.charts.chartAdded.connect(self._wire_chart)
        self.charts.layoutChanged.connect(self._charts_shown)
        self.ticket.orderPlaced.connect(self.order_book.select_order)
        self.depth_panel.priceClicked.connect(self._price_from_depth)
        self.option_chain.tradeRequested.connect(self.ticket_for_contract)
        self.option_chain.basketRequested.connect(self._basket_from_chain)

        self.pump = UiPump(facade.bus, "main-window")
        self.pump.on(CONNECTION, self.status.apply_connections)
        self.pump.on(FUNDS, self.status.apply_funds)
        self.pump.on(FUNDS, self.funds_panel.apply_funds, on_lagged=self.funds_panel.resync)
        self.pump.on(ORDERS, self.order_book.apply_orders, on_lagged=self.order_book.resync)
        self.pump.on(ORDERS, self.ticket.apply_orders)  # its status line follows the order
        self.pump.on(POSITIONS, self.positions.apply_positions, on_lagged=self.positions.resync)
        self.pump.on(ORDERS, self.risk_panel.mark_dirty, on_lagged=self.risk_panel.mark_dirty)
        self.pump.on(POSITIONS, self.risk_panel.mark_dirty, on_lagged=self.risk_panel.mark_dirty)
        self.pump.on(FILLS, self._on_fills)
        self.pump.on(TICKS, self._on_ticks)
        self.pump.on(BARS, self._on_bars)
        self.pump.on(HISTORY, self._on_history)
        self.pump.on(SIGNALS, self._on_signals)
        self.pump.on(ALERTS, self._on_alerts, on_lagged=self.alerts_panel.refresh)
        self.pump.on(GTTS, self.gtt_panel.apply_gtts, on_lagged=self.gtt_panel.refresh)
        # The window paints once per frame, at its end, however many charts it shows.
        self.presenter = FramePresenter(
            self, lambda: [c.graphics_scene() for c in self.charts.visible_charts()]
        )
        self.pump.after_frame(self.presenter.present)
        self.restore_last_layout()
        # Before the first show the layout's minimum still holds the sum of the docks'
        # requested widths, which would push the window past a 1366-pixel screen.
        layout = self.layout()
        if layout is not None:
            layout.invalidate()
            layout.activate()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the UI pump on the running (qasync) loop and show the first instrument."""
        funds = self.facade.funds()
        if funds is not None:
            self.status.apply_funds([funds])
        self.order_book.resync()
        self.positions.resync()
        self.funds_panel.resync()
        self.holdings.start()
        keys = self.watchlist.keys()
        if keys and self.watchlist.selected_key() is None:
            tradable = [k for k in keys if (i := self.facade.instrument(k)) and i.tradable]
            self.watchlist.select_key(tradable[0] if tradable else keys[0])
        self.pump.start()
        self.models_panel.start()
        if self.idle is not None:
            self.idle.start()

    async def stop(self) -> None:
        if self.idle is not None:
            self.idle.stop()
        self.models_panel.stop()
        self.holdings.stop()
        await self.pump.stop()

    # -- kill switch -------------------------------------------------------------------------
    def trigger_kill(self) -> None:
        """Halt, cancel every open order and (if chosen) square off, without asking."""
        square_off = self.risk_panel.square_off.isChecked()
        what = "cancelling all orders and squaring off" if square_off else "cancelling all orders"
        self.status.showMessage(f"Kill switch: halting trading, {what}…")
        self.kills_running += 1
        spawn(self._kill(square_off), name="kill-switch")

    def _spawn_resume_node(self, reason: str) -> None:
        spawn(self._resume_node(reason), name="resume-node")

    async def _resume_node(self, reason: str) -> None:
        try:
            state = await self.facade.resume_node(reason)
        except BrokerError as e:
            self.status.showMessage(f"The order node did not resume: {e}", 60_000)
        else:
            if state is not None:
                self.status.showMessage(f"The order node resumed: {state}", 10_000)

    async def _kill(self, square_off: bool) -> None:
        try:
            report = await self.facade.kill(square_off=square_off, actor="user")
        except Exception as e:
            log.exception("kill switch failed")
            self.status.showMessage(f"Kill switch FAILED: {e}")
            self._show_kill_message(QMessageBox.Icon.Critical, f"Kill switch failed: {e}", "")
            return
        finally:
            self.kills_running -= 1
            self.risk_panel.refresh()
        self.last_kill_report = report
        summary = kill_summary(report)
        self.status.showMessage(summary, 60_000)
        icon = QMessageBox.Icon.Information if report.ok else QMessageBox.Icon.Warning
        self._show_kill_message(icon, summary, kill_details(report))

    def _show_kill_message(self, icon: QMessageBox.Icon, text: str, details: str) -> None:
        if self.kill_message is not None:
            self.kill_message.close()
        box = QMessageBox(icon, "Kill switch", text, QMessageBox.StandardButton.Close, self)
        box.setWindowModality(Qt.WindowModality.NonModal)  # the market keeps moving
        if details:
            box.setInformativeText(details)
        self.kill_message = box
        if not self.locked:
            box.show()

    def _square_off_toggled(self, checked: bool) -> None:
        if self._store is not None:
            self._store.setValue(_KILL_SQUARE_OFF, checked)

    # -- idle lock ---------------------------------------------------------------------------
    def lock_view(self) -> None:
        """Cover every number in the window until the profile is unlocked again."""
        if self.locked or self.lock_overlay is None:
            return
        self.locked = True
        if self.idle is not None:
            self.idle.lock_now()
        floating = [d for d in self.docks.values() if d.isFloating() and d.isVisible()]
        dialogs = [d for d in self.findChildren(QDialog) if d.isVisible()]
        self._hidden_while_locked = [*floating, *dialogs]
        for widget in self._hidden_while_locked:
            widget.hide()
        for widget in self._lockable():
            widget.setEnabled(False)
        self.lock_overlay.cover()

    def unlock_view(self) -> None:
        if not self.locked or self.lock_overlay is None:
            return
        self.locked = False
        if self.idle is not None:
            self.idle.unlocked()
        for widget in self._lockable():
            widget.setEnabled(True)
        for widget in self._hidden_while_locked:
            widget.show()
        self._hidden_while_locked = []
        self.lock_overlay.hide()

    def _lockable(self) -> list[QWidget]:
        return [self.charts, *self.docks.values(), self.menuBar(), self.toolbar, self.status]

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.lock_overlay is not None and self.lock_overlay.isVisible():
            self.lock_overlay.setGeometry(self.rect())

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

    def fit_to_screen(self) -> None:
        """Never larger than the screen's free area: 1600x900 by default, less on a laptop
        (the desktop runner calls it before the first show)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        width = min(self.width(), free.width())
        height = min(self.height(), free.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)

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
        dock.setWidget(cap_height(widget))  # a tall panel never sets the window's height
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _build_menus(self) -> None:
        trading = self.menuBar().addMenu("&Trading")
        trading.addAction(self.kill_action)
        trading.addAction(self.lock_action)
        self.broker_menu: BrokerMenu | None = None
        if isinstance(self.facade, BrokerControls):
            self.broker_menu = BrokerMenu(
                self.facade, lambda text: self.status.showMessage(text, 10_000), self
            )
            self.menuBar().addMenu(self.broker_menu)
        view = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        chain = view.addAction("Option chain")
        chain.setShortcut(QKeySequence("Ctrl+Shift+O"))
        chain.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        chain.triggered.connect(self.show_option_chain)
        gtt = view.addAction("GTT orders")
        gtt.setShortcut(QKeySequence("Ctrl+Shift+G"))
        gtt.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        gtt.triggered.connect(self.show_gtt)
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
        self.depth_panel.set_instrument(key)
        self.alerts_panel.set_symbol(key)
        for chart in self.charts.targets():
            self._load_chart(key, chart.timeframe, chart)

    def _wire_chart(self, chart: ChartWidget) -> None:
        chart.timeframeChanged.connect(
            lambda value, chart=chart: self._timeframe_changed(value, chart)
        )
        chart.studies.drawingsChanged.connect(self.facade.save_drawings)

    def _charts_shown(self, count: int) -> None:
        """Linked charts shown for the first time take the primary chart's instrument."""
        key = self.chart.key
        if count > 1 and key and self.charts.link.isChecked():
            for chart in self.charts.visible_charts():
                if not chart.key:
                    self._load_chart(key, chart.timeframe, chart)

    def _timeframe_changed(self, value: str, chart: ChartWidget | None = None) -> None:
        chart = chart or self.chart
        if chart.key:
            self._load_chart(chart.key, Timeframe(value), chart)

    def _load_chart(self, key: str, timeframe: Timeframe, chart: ChartWidget | None = None) -> None:
        chart = chart or self.chart
        chart.set_bars(key, timeframe, self.facade.history(key, timeframe))
        chart.studies.set_drawings(self.facade.drawings(key))

    def _price_from_depth(self, price: Decimal) -> None:
        """A price picked off the book means a priced order: a MARKET ticket becomes LIMIT."""
        if not OrderType(self.ticket.order_type.currentText()).needs_price:
            self.ticket.order_type.setCurrentText(OrderType.LIMIT.value)
        self.ticket.price.setText(f"{price:.2f}")

    def ticket_for_contract(self, key: str, side: Side) -> None:
        """A price clicked in the option chain: the ticket for that contract, one lot."""
        self.ticket.set_symbol(key)
        inst = self.facade.instrument(key)
        if inst is not None:
            self.ticket.quantity.setValue(inst.lot_size)
        self._focus_ticket(side)

    def show_gtt(self) -> None:
        """Open the GTT panel (made on first use, beside the ticket) for the ticket's symbol."""
        dock = self.docks.get("GTT")
        if dock is None:
            self._dock("GTT", self.gtt_panel, Qt.DockWidgetArea.RightDockWidgetArea)
            dock = self.docks["GTT"]
            self.tabifyDockWidget(self.docks["Depth"], dock)
        if self.ticket.key():
            self.gtt_panel.set_symbol(self.ticket.key())
        self.gtt_panel.refresh()
        dock.show()
        dock.raise_()

    def show_option_chain(self) -> None:
        """Open the chain on the selected instrument's underlying when it has options."""
        dock = self.docks.get("Option chain")
        if dock is None:
            self._dock("Option chain", self.option_chain, Qt.DockWidgetArea.BottomDockWidgetArea)
            dock = self.docks["Option chain"]
            self.tabifyDockWidget(self.docks["Positions"], dock)
        dock.show()
        dock.raise_()
        key = self.chart.key
        inst = self.facade.instrument(key) if key else None
        if inst is not None:
            self.option_chain.select(inst.underlying or inst.key)
        self.option_chain.table.setFocus()

    def _basket_from_chain(self, legs: list[tuple[str, Side]]) -> None:
        self.basket.set_legs(legs)
        dock = self.docks["Basket"]
        dock.show()
        dock.raise_()

    def _focus_ticket(self, side: Side) -> None:
        if self.locked:
            return
        dock = self.docks["Order ticket"]
        dock.show()
        dock.raise_()
        self.ticket.focus_for(side)

    def _on_ticks(self, ticks: list[Tick]) -> None:
        self.watchlist.apply_ticks(ticks)
        self.positions.apply_ticks(ticks)
        self.holdings.apply_ticks(ticks)
        self.ticket.update_quote(ticks)
        self.depth_panel.apply_ticks(ticks)
        for chart in self.charts.visible_charts():  # the change % is the day's, as in the
            shown = next((t for t in reversed(ticks) if t.key == chart.key), None)  # watchlist
            if shown is not None:
                chart.set_previous_close(shown.close)
        chain = self.docks.get("Option chain")
        if chain is not None and chain.isVisible():
            self.option_chain.apply_ticks(ticks)
        if not self._first_tick_reported and self.watchlist.model.ticks_applied:
            self._first_tick_reported = True
            self.watchlist.table.painted.connect(self._report_first_paint)

    def _report_first_paint(self) -> None:
        self.watchlist.table.painted.disconnect(self._report_first_paint)
        self.firstTickPainted.emit()

    def _on_bars(self, bars: list[Bar]) -> None:
        # One pass over the frame's bars (thousands at 5,000 ticks/s), not one per chart.
        charts = self.charts.visible_charts()
        wanted = {(c.key, c.timeframe) for c in charts}
        mine: dict[tuple[str, Timeframe], list[Bar]] = {}
        for b in bars:
            if (b.key, b.timeframe) in wanted:
                mine.setdefault((b.key, b.timeframe), []).append(b)
        for chart in charts:
            for bar in sorted(mine.get((chart.key, chart.timeframe), ()), key=lambda b: b.start):
                chart.update_bar(bar)

    def _on_history(self, loaded: list[HistoryLoaded]) -> None:
        """Real history for the chart arrived in the background: redraw it with that."""
        key, timeframe = self.chart.key, self.chart.timeframe
        if key and any(h.key == key and h.timeframe == timeframe for h in loaded):
            self._load_chart(key, timeframe)

    def _on_fills(self, fills: list[Fill]) -> None:
        markers = [
            (f.ts, f.price, "buy" if f.side is Side.BUY else "sell")
            for f in fills
            if f.key == self.chart.key
        ]
        if markers:
            self.chart.add_markers(markers)

    def _on_signals(self, signals: list[ModelSignal]) -> None:
        """Signals go to their panel; the chart marks the traded calls of its own symbol."""
        self.signals_panel.apply_signals(signals)
        markers = [
            (s.bar_start, s.close, "buy" if s.direction > 0 else "sell")
            for s in signals
            if s.key == self.chart.key and not s.shadow
        ]
        if markers:
            self.chart.add_markers(markers)

    def _on_alerts(self, events: list[AlertFired]) -> None:
        """A fired alert is a highlighted row and a status-bar line, never a modal box."""
        self.alerts_panel.apply_fired(events)
        more = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
        self.status.showMessage(events[-1].message() + more, 30_000)
