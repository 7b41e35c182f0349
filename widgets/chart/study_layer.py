"""Studies and drawings on a ``ChartWidget``: the indicators menu, oscillator panes, lines.

Overlays (SMA, EMA, VWAP, Bollinger, Supertrend) draw on the price pane; oscillators (RSI,
MACD) get a pane of their own under the volume pane, x-linked to the price pane. Every curve
clips to the view and downsamples (set after ``addItem``, which resets both), so a 100,000
bar chart still draws only what is visible. Studies recompute in full on new history and at
most once a second for live bars.

Drawings are horizontal lines and trend lines, anchored to bar *times* (not indices) so they
stay put when history reloads. ``drawingsChanged`` carries the symbol and a JSON-able list
each time they change; the window stores them per symbol through the facade and hands them
back with ``set_drawings``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from widgets.chart import style
from widgets.chart.indicators import FloatArray, ema, sma
from widgets.chart.studies import bollinger, macd, rsi, supertrend, vwap

if TYPE_CHECKING:
    from widgets.chart.widget import ChartWidget

LIVE_RECOMPUTE_SECONDS = 1.0
Drawing = dict[str, Any]


@dataclass(frozen=True)
class StudyKind:
    name: str
    defaults: tuple[float, ...]
    labels: tuple[str, ...]
    pane: bool  # an oscillator in a pane of its own


KINDS: dict[str, StudyKind] = {
    k.name: k
    for k in (
        StudyKind("SMA", (20,), ("period",), False),
        StudyKind("EMA", (50,), ("period",), False),
        StudyKind("VWAP", (), (), False),
        StudyKind("Bollinger", (20, 2.0), ("period", "std devs"), False),
        StudyKind("Supertrend", (10, 3.0), ("ATR period", "multiplier"), False),
        StudyKind("RSI", (14,), ("period",), True),
        StudyKind("MACD", (12, 26, 9), ("fast", "slow", "signal"), True),
    )
}
_COLOURS = ("#f0b90b", "#e040fb", "#29b6f6", "#ff7043", "#66bb6a", "#ab47bc", "#26a69a")


@dataclass
class Study:
    kind: StudyKind
    params: tuple[float, ...]
    items: list[pg.PlotDataItem] = field(default_factory=list)
    pane: pg.PlotItem | None = None
    shown: list[FloatArray] = field(default_factory=list)  # the values the items draw

    @property
    def label(self) -> str:
        args = ", ".join(f"{p:g}" for p in self.params)
        return f"{self.kind.name} ({args})" if args else self.kind.name

    def values(self, cols: dict[str, FloatArray]) -> list[FloatArray]:
        c, p = cols["close"], self.params
        name = self.kind.name
        if name == "SMA":
            return [sma(c, int(p[0]))]
        if name == "EMA":
            return [ema(c, int(p[0]))]
        if name == "VWAP":
            return [vwap(cols["high"], cols["low"], c, cols["volume"], cols["start"])]
        if name == "Bollinger":
            return list(bollinger(c, int(p[0]), float(p[1])))
        if name == "Supertrend":
            return [supertrend(cols["high"], cols["low"], c, int(p[0]), float(p[1]))[0]]
        if name == "RSI":
            return [rsi(c, int(p[0]))]
        line, signal, hist = macd(c, int(p[0]), int(p[1]), int(p[2]))
        return [line, signal, hist]


def _curve(
    plot: pg.PlotItem, colour: str, width: float = 1.0, *, in_bounds: bool = True
) -> pg.PlotDataItem:
    pen = pg.mkPen(colour, width=width)
    pen.setCosmetic(True)
    item = pg.PlotDataItem(pen=pen)
    # A price-pane line stays out of pyqtgraph's bounds: the candles' bounds cover it
    # (``CandleItem.overlays``, from ``price_pane_values``), at a fraction of the cost.
    plot.addItem(item, ignoreBounds=not in_bounds)
    item.setDownsampling(auto=True, method="peak")  # after addItem, which resets both
    item.setClipToView(True)
    return item


class StudyLayer(QtCore.QObject):
    drawingsChanged = QtCore.Signal(str, list)

    def __init__(self, chart: ChartWidget) -> None:
        super().__init__(chart)
        self._chart = chart
        self.studies: list[Study] = []
        self._last_live = 0.0
        self._drawings: list[tuple[Drawing, pg.GraphicsObject]] = []
        self._pending_trend: tuple[float, float] | None = None
        self.ask_params: Callable[[StudyKind], tuple[float, ...] | None] = self._dialog

    # -- studies ---------------------------------------------------------------------------
    def add(self, name: str, params: Sequence[float] | None = None) -> Study:
        kind = KINDS[name]
        values = tuple(params) if params is not None else kind.defaults
        if len(values) != len(kind.defaults) or any(v <= 0 for v in values):
            raise ValueError(f"{name} takes {len(kind.defaults)} positive parameters")
        study = Study(kind, values)
        colour = _COLOURS[len(self.studies) % len(_COLOURS)]
        chart = self._chart
        if kind.pane:
            pane = chart._graphics.addPlot(row=2 + self._pane_count(), col=0)
            chart._dress_pane(pane)
            # The time axis is the volume pane's; a pane's own would show bar indices and
            # cost a second axis repaint on every pan frame.
            pane.hideAxis("bottom")
            pane.setXLink(chart.price_plot)
            study.pane = pane
            chart._graphics.ci.layout.setRowStretchFactor(2 + self._pane_count(), 1)
            target = pane
        else:
            target = chart.price_plot
        n = 3 if kind.name in ("Bollinger", "MACD") else 1
        study.items = [
            _curve(target, colour if i == 0 else style.TEXT, in_bounds=kind.pane)
            for i in range(n)
        ]
        if kind.name == "RSI" and study.pane is not None:
            for level in (30, 70):
                study.pane.addItem(
                    pg.InfiniteLine(level, angle=0, pen=pg.mkPen(style.AXIS)), ignoreBounds=True
                )
        self.studies.append(study)
        self._push(study, self._columns())
        chart.candles.data_changed()  # the price pane's y range covers a new overlay
        return study

    def remove(self, study: Study) -> None:
        chart = self._chart
        if study.pane is not None:
            chart._graphics.removeItem(study.pane)
        else:
            for item in study.items:
                chart.price_plot.removeItem(item)
        self.studies.remove(study)
        chart.candles.data_changed()

    def price_pane_values(self) -> list[FloatArray]:
        """Values of the studies drawn over the candles, for the price pane's y range."""
        return [v for s in self.studies if s.pane is None for v in s.shown]

    def _pane_count(self) -> int:
        return sum(1 for s in self.studies if s.pane is not None)

    def _columns(self) -> dict[str, FloatArray]:
        series = self._chart.series
        names = ("x", "high", "low", "close", "volume", "start")
        return {name: series.column(name) for name in names}

    def _push(self, study: Study, cols: dict[str, FloatArray]) -> None:
        x = cols["x"]
        if x.size == 0:
            study.shown = []
            for item in study.items:
                item.setData([], [])
            return
        study.shown = study.values(cols)
        for item, values in zip(study.items, study.shown, strict=True):
            item.setData(x, values, connect="finite")

    def recompute(self) -> None:
        cols = self._columns()
        for study in self.studies:
            self._push(study, cols)
        if self.studies:
            self._chart.candles.data_changed()
        self._last_live = time.monotonic()
        self._place_drawings()

    def live(self) -> None:
        """A live bar arrived: recompute studies at most once a second."""
        if self.studies and time.monotonic() - self._last_live >= LIVE_RECOMPUTE_SECONDS:
            self.recompute()

    def _dialog(self, kind: StudyKind) -> tuple[float, ...] | None:
        if not kind.defaults:
            return ()
        dialog = QtWidgets.QDialog(self._chart)
        dialog.setWindowTitle(f"{kind.name} parameters")
        form = QtWidgets.QFormLayout(dialog)
        boxes: list[QtWidgets.QDoubleSpinBox] = []
        for label, value in zip(kind.labels, kind.defaults, strict=True):
            box = QtWidgets.QDoubleSpinBox()
            box.setRange(0.1, 1000)
            box.setDecimals(0 if float(value).is_integer() else 1)
            box.setValue(value)
            form.addRow(label, box)
            boxes.append(box)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return None
        return tuple(b.value() for b in boxes)

    def indicators_menu(self, parent: QtWidgets.QWidget) -> QtWidgets.QMenu:
        menu = QtWidgets.QMenu("Indicators", parent)
        for name in KINDS:
            action = menu.addAction(f"Add {name}…")
            action.triggered.connect(lambda _c=False, n=name: self._ask_and_add(n))
        if self.studies:
            menu.addSeparator()
            for study in list(self.studies):
                action = menu.addAction(f"Remove {study.label}")
                action.triggered.connect(lambda _c=False, s=study: self.remove(s))
        return menu

    def _ask_and_add(self, name: str) -> None:
        params = self.ask_params(KINDS[name])
        if params is not None:
            self.add(name, params)

    # -- drawings --------------------------------------------------------------------------
    def drawings(self) -> list[Drawing]:
        return [dict(d) for d, _ in self._drawings]

    def set_drawings(self, drawings: Sequence[Drawing]) -> None:
        """Show ``drawings`` (from the store) in place of the current ones."""
        for _, item in self._drawings:
            self._chart.price_plot.removeItem(item)
        self._drawings = []
        for d in drawings:
            if d.get("type") in ("hline", "trend"):
                self._add_drawing(dict(d), notify=False)

    def add_hline(self, price: float) -> None:
        self._add_drawing({"type": "hline", "price": float(price)})

    def add_trend(self, t1: float, p1: float, t2: float, p2: float) -> None:
        self._add_drawing({"type": "trend", "t1": t1, "p1": p1, "t2": t2, "p2": p2})

    def start_trend(self) -> None:
        """The next two clicks on the price pane are the trend line's ends."""
        self._pending_trend = (-1.0, -1.0)

    def click(self, index: float, price: float) -> bool:
        """A left click on the price pane; True when it was part of drawing a trend line."""
        if self._pending_trend is None:
            return False
        t = self._time_at(index)
        if self._pending_trend[0] < 0:
            self._pending_trend = (t, price)
            return True
        t1, p1 = self._pending_trend
        self._pending_trend = None
        self.add_trend(t1, p1, t, price)
        return True

    def clear_drawings(self) -> None:
        self.set_drawings([])
        self.drawingsChanged.emit(self._chart.key, [])

    def _time_at(self, index: float) -> float:
        starts = self._chart.series.column("start")
        if starts.size == 0:
            return 0.0
        i = int(min(max(round(index), 0), starts.size - 1))
        return float(starts[i])

    def _index_of(self, t: float) -> float:
        starts = self._chart.series.column("start")
        return float(np.searchsorted(starts, t)) if starts.size else 0.0

    def _add_drawing(self, d: Drawing, *, notify: bool = True) -> None:
        pen = pg.mkPen("#2962ff", width=1)
        if d["type"] == "hline":
            item: pg.GraphicsObject = pg.InfiniteLine(
                d["price"], angle=0, movable=True, pen=pen, label="{value:.2f}",
                labelOpts={"position": 0.05, "color": "#2962ff"},
            )
            item.sigPositionChangeFinished.connect(lambda line, d=d: self._moved(d, line))
        else:
            item = pg.PlotCurveItem(pen=pen)
        self._chart.price_plot.addItem(item, ignoreBounds=True)
        self._drawings.append((d, item))
        self._place_drawings()
        if notify:
            self.drawingsChanged.emit(self._chart.key, self.drawings())

    def _moved(self, d: Drawing, line: pg.InfiniteLine) -> None:
        d["price"] = float(line.value())
        self.drawingsChanged.emit(self._chart.key, self.drawings())

    def _place_drawings(self) -> None:
        for d, item in self._drawings:
            if d["type"] == "trend" and isinstance(item, pg.PlotCurveItem):
                x1, x2 = self._index_of(d["t1"]), self._index_of(d["t2"])
                item.setData([x1, x2], [d["p1"], d["p2"]])

    def context_menu(self, index: float, price: float) -> QtWidgets.QMenu:
        """The chart's right-click menu at a point of the price pane."""
        chart = self._chart
        menu = QtWidgets.QMenu(chart)
        menu.addMenu(self.indicators_menu(menu))
        menu.addSeparator()
        hline = menu.addAction(f"Horizontal line at {price:,.2f}")
        hline.triggered.connect(lambda: self.add_hline(price))
        trend = menu.addAction("Trend line (click two points)")
        trend.triggered.connect(self.start_trend)
        clear = menu.addAction("Remove drawings")
        clear.setEnabled(bool(self._drawings))
        clear.triggered.connect(self.clear_drawings)
        menu.addSeparator()
        reset = menu.addAction("Reset zoom")
        reset.triggered.connect(lambda: chart.show_last_bars(style.DEFAULT_VISIBLE_BARS))
        return menu


def position_of(chart: ChartWidget, pos: QtCore.QPoint) -> tuple[float, float] | None:
    """(bar index, price) under a viewport point, or None off the price pane."""
    scene = chart._graphics.mapToScene(pos)
    vb = chart.price_plot.getViewBox()
    if not vb.sceneBoundingRect().contains(scene):
        return None
    point = vb.mapSceneToView(scene)
    return float(point.x()), float(point.y())
