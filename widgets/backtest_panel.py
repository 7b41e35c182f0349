"""The Backtest panel: run a strategy over history, see its equity, drawdown, trades and
figures beside buy-and-hold, and export the report.

The run happens on the backtest service's own thread (``BacktestPort``); the panel only
collects the request, shows progress and draws the result it gets back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pyqtgraph as pg
from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from services.backtest.report import drawdown_series, figures_table, write_csv, write_html
from services.backtest.service import BacktestRequest
from services.backtest.store import StoredRun
from services.domain import LIVE_TIMEFRAMES, Timeframe
from widgets.ui_pump import spawn

log = logging.getLogger(__name__)

STRATEGIES = {"sma_cross": "fast=10 slow=30", "orb": "minutes=15"}
TRADE_COLUMNS = ("Time", "Symbol", "Side", "Qty", "Price", "Product", "Tag")


class BacktestPort(Protocol):
    async def run(
        self, request: BacktestRequest, progress: Callable[[int, int], None] | None = None
    ) -> StoredRun: ...

    async def runs(self) -> list[StoredRun]: ...

    @property
    def keeps_runs(self) -> bool:
        """True when finished runs are kept in the profile."""
        ...


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


class BacktestPanel(QWidget):
    def __init__(self, port: BacktestPort | None, today: date | None = None) -> None:
        super().__init__()
        self._port = port
        self.run_result: StoredRun | None = None
        today = today or date.today()  # noqa: DTZ011 - a default for a date picker

        self.strategy = QComboBox()
        self.strategy.addItems(list(STRATEGIES))
        self.params = QLineEdit(STRATEGIES["sma_cross"])
        self.strategy.currentTextChanged.connect(lambda s: self.params.setText(STRATEGIES[s]))
        self.symbols = QLineEdit("NSE:INFY")
        self.first = QDateEdit(_qdate(today - timedelta(days=30)))
        self.last = QDateEdit(_qdate(today - timedelta(days=1)))
        for edit in (self.first, self.last):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.interval = QComboBox()
        self.interval.addItems([t.value for t in LIVE_TIMEFRAMES if t is not Timeframe.D1])
        self.interval.setCurrentText("5m")
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 1_000_000)
        self.quantity.setValue(10)
        self.product = QComboBox()
        self.product.addItems(["MIS", "CNC", "NRML"])
        self.source = QComboBox()
        self.source.addItems(["simulator", "stored"])
        self.run_button = QPushButton("Run backtest")
        self.run_button.clicked.connect(self.start)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setFormat("idle")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.export_html = QPushButton("Export HTML…")
        self.export_csv = QPushButton("Export trades CSV…")
        for button in (self.export_html, self.export_csv):
            button.setEnabled(False)
        self.export_html.clicked.connect(lambda: self._export("html"))
        self.export_csv.clicked.connect(lambda: self._export("csv"))
        if port is None:
            self.run_button.setEnabled(False)
            self.message.setText("Backtests need the terminal's services (not available here).")

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.strategy)
        row.addWidget(self.params, 1)
        form.addRow("Strategy", row)
        form.addRow("Symbols", self.symbols)
        dates = QHBoxLayout()
        dates.addWidget(self.first)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.last)
        dates.addWidget(self.interval)
        form.addRow("From", dates)
        sizing = QHBoxLayout()
        sizing.addWidget(self.quantity)
        sizing.addWidget(self.product)
        sizing.addWidget(self.source)
        form.addRow("Qty", sizing)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_html)
        buttons.addWidget(self.export_csv)

        self.figures = QTableWidget(0, 3)
        self.figures.setHorizontalHeaderLabels(["Figure", "Strategy", "Buy and hold"])
        self.figures.verticalHeader().setVisible(False)
        self.figures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.trades = QTableWidget(0, len(TRADE_COLUMNS))
        self.trades.setHorizontalHeaderLabels(list(TRADE_COLUMNS))
        self.trades.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.trades.verticalHeader().setVisible(False)
        self.equity_plot = pg.PlotWidget(
            title="Equity (₹)", axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}
        )
        self.drawdown_plot = pg.PlotWidget(
            title="Drawdown (%)", axisItems={"bottom": pg.DateAxisItem(orientation="bottom")}
        )
        self.drawdown_plot.setXLink(self.equity_plot)
        for plot in (self.equity_plot, self.drawdown_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").setWidth(80)  # room for "10,00,000"-sized labels
        self.equity_curve = self.equity_plot.plot(pen=pg.mkPen("#4fc3f7", width=1))
        self.drawdown_curve = self.drawdown_plot.plot(pen=pg.mkPen("#ef5350", width=1))
        charts = QSplitter()
        charts.setOrientation(pg.QtCore.Qt.Orientation.Vertical)
        charts.addWidget(self.equity_plot)
        charts.addWidget(self.drawdown_plot)
        tabs = QTabWidget()
        tabs.addTab(charts, "Equity")
        tabs.addTab(self.figures, "Figures")
        tabs.addTab(self.trades, "Trades")

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(tabs, 1)

    # -- actions ------------------------------------------------------------------------------
    def request(self) -> BacktestRequest:
        """The request the form describes; ``ValueError`` with a message when it is wrong."""
        params: dict[str, str] = {}
        for word in self.params.text().split():
            name, sep, value = word.partition("=")
            if not sep or not name:
                raise ValueError(f"parameters are NAME=VALUE, not {word!r}")
            params[name] = value
        symbols = tuple(s.strip() for s in self.symbols.text().split(",") if s.strip())
        if not symbols:
            raise ValueError("give at least one symbol, e.g. NSE:INFY")
        first = self.first.date().toPython()
        last = self.last.date().toPython()
        assert isinstance(first, date) and isinstance(last, date)
        if last < first:
            raise ValueError("the last day is before the first")
        return BacktestRequest(
            strategy=self.strategy.currentText(),
            symbols=symbols,
            first=first,
            last=last,
            timeframe=Timeframe(self.interval.currentText()),
            params=params,
            quantity=self.quantity.value(),
            product=self.product.currentText(),
            source=self.source.currentText(),
        )

    def start(self) -> None:
        try:
            request = self.request()
        except ValueError as e:
            self.message.setText(str(e))
            return
        spawn(self._run(request), name="backtest")

    async def _run(self, request: BacktestRequest) -> None:
        assert self._port is not None
        self.run_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("loading bars…")
        self.message.setText("")
        try:
            run = await self._port.run(request, self._progress)
        except ValueError as e:
            self.message.setText(str(e))
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("failed")
            return
        except Exception as e:
            log.exception("backtest failed")
            self.message.setText(f"the backtest failed: {e}")
            self.progress.setRange(0, 1)
            self.progress.setFormat("failed")
            return
        finally:
            self.run_button.setEnabled(True)
        self.show_run(run)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")

    def _progress(self, done: int, total: int) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{done:,} / {total:,} bars")

    def show_run(self, run: StoredRun) -> None:
        self.run_result = run
        equity = [float(v) for _, v in run.equity]
        xs = [datetime.fromisoformat(t).timestamp() for t, _ in run.equity]
        self.equity_curve.setData(xs, equity)
        self.drawdown_curve.setData(xs, drawdown_series(equity))
        rows = figures_table(run)
        self.figures.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                self.figures.setItem(r, c, QTableWidgetItem(text))
        self.trades.setRowCount(len(run.trades))
        for r, t in enumerate(run.trades):
            trade = (t["time"][:19].replace("T", " "), t["symbol"], t["side"], t["quantity"],
                     t["price"], t["product"], t["tag"])
            for c, text in enumerate(trade):
                self.trades.setItem(r, c, QTableWidgetItem(text))
        fills = len(run.trades)
        self.message.setText(
            f"{run.strategy} on {', '.join(run.symbols)}: {fills} fills"
            + (f"; kept as {run.run_id}" if self._port is not None and self._port.keeps_runs
               else "; not kept (no profile open)")
        )
        for button in (self.export_html, self.export_csv):
            button.setEnabled(True)

    def _export(self, kind: str) -> None:
        if self.run_result is None:
            return
        suffix = "html" if kind == "html" else "csv"
        name, _ = QFileDialog.getSaveFileName(
            self, "Export", f"{self.run_result.run_id}.{suffix}", f"*.{suffix}"
        )
        if name:
            self.export_to(Path(name), kind)

    def export_to(self, path: Path, kind: str) -> None:
        assert self.run_result is not None
        try:
            (write_html if kind == "html" else write_csv)(self.run_result, path)
        except OSError as e:
            self.message.setText(f"could not write {path}: {e.strerror or e}")
            return
        self.message.setText(f"written to {path}")
