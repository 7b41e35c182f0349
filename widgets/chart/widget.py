"""The live candlestick chart: a price pane over a volume pane, fed bars by a controller.

The widget is a view: it never subscribes to the bus or calls a service. A controller calls
``set_bars`` with history and ``update_bar`` with live bars at its own frame rate (many ticks
coalesced into one call per frame); ``update_bar`` touches one row of numpy columns and
schedules a repaint, and the candle items paint only the bars in view, so a frame costs the
same with 500 bars of history as with 50,000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from services.clock import to_ist
from services.domain import LIVE_TIMEFRAMES, Bar, Timeframe
from widgets.chart import style
from widgets.chart.axis import TimeAxis
from widgets.chart.badge import PriceBadge
from widgets.chart.candles import CandleItem, VolumeItem
from widgets.chart.crosshair import (
    Crosshair,
    day_reference,
    format_price,
    readout,
    readout_groups,
)
from widgets.chart.grid import GridItem
from widgets.chart.indicators import FloatArray, ema, ema_at, sma, sma_at
from widgets.chart.legend import Group, ReadoutStrip
from widgets.chart.series import BarSeries, Change
from widgets.chart.study_layer import StudyLayer, position_of


@dataclass
class _Overlay:
    kind: str  # "SMA" | "EMA"
    period: int
    item: pg.PlotDataItem
    values: FloatArray
    colour: str
    drawn: tuple[int, float] = (0, math.nan)  # bars and last value the curve was given

    def recompute(self, closes: FloatArray, capacity: int) -> None:
        full = sma(closes, self.period) if self.kind == "SMA" else ema(closes, self.period)
        self.values = np.full(max(capacity, 16), np.nan)
        self.values[: len(full)] = full

    def update_last(self, closes: FloatArray) -> None:
        i = len(closes) - 1
        if i >= len(self.values):
            grown = np.full(2 * len(self.values), np.nan)
            grown[: len(self.values)] = self.values
            self.values = grown
        if self.kind == "SMA":
            self.values[i] = sma_at(closes, i, self.period)
        else:
            self.values[i] = ema_at(closes, self.values, i, self.period)


def _pen(colour: str, style_: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(colour))
    pen.setWidth(1)
    pen.setCosmetic(True)
    pen.setStyle(style_)
    return pen


class ChartWidget(QtWidgets.QWidget):
    timeframeChanged = Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = ""
        self.timeframe = Timeframe.M1
        self._series = BarSeries()
        self._overlays: list[_Overlay] = []
        self._markers: list[tuple[datetime, Decimal, str]] = []
        self._hover_index: int | None = None
        self._readout = ""
        self._previous_close: Decimal | None = None
        self._readout_shown: tuple[str, Decimal] | None = None
        self._readout_groups: tuple[Group, ...] = ()

        self.setObjectName("ChartWidget")
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QtGui.QPalette.ColorRole.Window, QtGui.QColor(style.BACKGROUND))
        self.setPalette(palette)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setBackground(style.BACKGROUND)
        self._graphics.ci.layout.setSpacing(0)
        self._graphics.ci.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics, 1)
        self._build_plots()
        self.set_overlays()
        self.studies = StudyLayer(self)
        self._graphics.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self._graphics.customContextMenuRequested.connect(self._context_menu)
        self._graphics.scene().sigMouseClicked.connect(self._scene_clicked)

        self._graphics.scene().sigMouseMoved.connect(self.on_scene_mouse_moved)
        self._graphics.viewport().installEventFilter(self)

    # -- construction ------------------------------------------------------------------------
    def _build_header(self) -> QtWidgets.QWidget:
        header = QtWidgets.QWidget()
        header.setObjectName("ChartHeader")
        header.setStyleSheet(
            f"#ChartHeader {{ background: {style.BACKGROUND};"
            f" border-bottom: 1px solid {style.AXIS}; }}"
            f"#ChartHeader QLabel {{ color: {style.TEXT_BRIGHT}; }}"
            f"#ChartHeader QToolButton {{ color: {style.TEXT}; background: transparent;"
            f" border: none; padding: 2px 6px; border-radius: 3px; }}"
            f"#ChartHeader QToolButton:hover {{ background: {style.PANEL}; }}"
            f"#ChartHeader QToolButton:checked {{ color: #2962ff; background: {style.PANEL}; }}"
        )
        rows = QtWidgets.QVBoxLayout(header)
        rows.setContentsMargins(8, 4, 8, 2)
        rows.setSpacing(0)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        rows.addLayout(row)
        self._symbol_label = QtWidgets.QLabel("")
        font = self._symbol_label.font()
        font.setBold(True)
        self._symbol_label.setFont(font)
        row.addWidget(self._symbol_label)
        row.addSpacing(8)
        self._tf_group = QtWidgets.QButtonGroup(header)
        self._tf_group.setExclusive(True)
        self.timeframe_buttons: dict[str, QtWidgets.QToolButton] = {}
        for tf in LIVE_TIMEFRAMES:
            button = QtWidgets.QToolButton()
            button.setText(tf.value)
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
            self._tf_group.addButton(button)
            self.timeframe_buttons[tf.value] = button
            row.addWidget(button)
            # clicked fires only for the user: set_bars checking a button must not echo back.
            button.clicked.connect(
                lambda _=False, value=tf.value: self.timeframeChanged.emit(value)
            )
        self.timeframe_buttons[self.timeframe.value].setChecked(True)
        row.addStretch(1)
        self.indicators_button = QtWidgets.QToolButton()
        self.indicators_button.setText("Indicators")
        self.indicators_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.indicators_button.setMenu(QtWidgets.QMenu(self.indicators_button))
        self.indicators_button.menu().aboutToShow.connect(self._fill_indicators_menu)
        row.addWidget(self.indicators_button)
        # Its own row, the chart's full width: beside the timeframes a laptop's chart had
        # room for "O 1499.25 H 1499.35 L 1" and nothing more. It never widens the window.
        self._readout_strip = ReadoutStrip()
        self._readout_strip.setObjectName("chartReadout")
        rows.addWidget(self._readout_strip)
        return header

    def _build_plots(self) -> None:
        font = QtGui.QFont()
        font.setPointSize(style.FONT_PT)
        axis_pen = _pen(style.AXIS)

        def dress(plot: pg.PlotItem) -> None:
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.showAxis("right")
            plot.hideAxis("left")
            for name in ("right", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(axis_pen)
                axis.setTextPen(style.TEXT)
                axis.setStyle(tickFont=font, tickLength=-4, autoExpandTextSpace=False)
                # The axes carry no label, so no SI prefix to find; left on, every range
                # change re-rendered the (hidden) label's HTML, on each axis, each pan frame.
                axis.enableAutoSIPrefix(False)
            plot.getAxis("right").setWidth(70)
            vb = plot.getViewBox()
            vb.setMouseEnabled(x=True, y=False)
            vb.enableAutoRange(axis="x", enable=False)
            vb.enableAutoRange(axis="y", enable=True)
            vb.setAutoVisible(y=True)
            vb.setDefaultPadding(0.06)

        self.price_plot: pg.PlotItem = self._graphics.addPlot(row=0, col=0)
        self._time_axis = TimeAxis(self._series)
        self.volume_plot: pg.PlotItem = self._graphics.addPlot(
            row=1, col=0, axisItems={"bottom": self._time_axis}
        )
        for plot in (self.price_plot, self.volume_plot):
            dress(plot)
        # The price pane's bottom axis stays as a bare line: the separator above the volume pane.
        # It and the volume pane's right axis (kept for the width that lines the panes up)
        # show no ticks, so they get none to compute: each pan frame worked them out anew.
        self.price_plot.getAxis("bottom").setStyle(showValues=False, tickLength=0)
        self.price_plot.getAxis("bottom").setHeight(1)
        self.price_plot.getAxis("bottom").setTicks([])
        self.volume_plot.setXLink(self.price_plot)
        self.volume_plot.getAxis("right").setStyle(showValues=False, tickLength=0)
        self.volume_plot.getAxis("right").setTicks([])
        self._graphics.ci.layout.setRowStretchFactor(0, 4)
        self._graphics.ci.layout.setRowStretchFactor(1, 1)

        self.price_plot.addItem(
            GridItem(self._time_axis, self.price_plot.getAxis("right")), ignoreBounds=True
        )
        self.volume_plot.addItem(GridItem(self._time_axis, None), ignoreBounds=True)

        self._candles = CandleItem(self._series)
        self._candles.overlays = self._price_pane_lines
        self._volume = VolumeItem(self._series)
        self.price_plot.addItem(self._candles)
        self.volume_plot.addItem(self._volume)

        self.last_badge = PriceBadge(self.price_plot.getViewBox())
        self.last_badge.setVisible(False)
        self.price_plot.addItem(self.last_badge, ignoreBounds=True)

        self._markers_item = pg.ScatterPlotItem(pxMode=True, size=11)
        self.price_plot.addItem(self._markers_item, ignoreBounds=True)
        self._crosshair = Crosshair(self.price_plot, [self.volume_plot])
        self._dress_pane = dress  # oscillator panes (study_layer) look like the volume pane

    # -- public API --------------------------------------------------------------------------
    @property
    def paint_count(self) -> int:
        """Paints of the candle item so far: benchmarks and tests use it to see a frame land."""
        return int(self._candles.paint_count)

    def graphics_scene(self) -> QtWidgets.QGraphicsScene:
        """The scene of every pane: the window paints once after it processed the frame."""
        scene: QtWidgets.QGraphicsScene = self._graphics.scene()
        return scene

    @property
    def candles(self) -> CandleItem:
        return self._candles

    @property
    def series(self) -> BarSeries:
        return self._series

    def set_bars(self, key: str, timeframe: Timeframe, bars: Sequence[Bar]) -> None:
        """Replace the history and show its last ~120 bars."""
        if key != self.key:
            self._markers = []
        self.key = key
        self.timeframe = Timeframe(timeframe)
        self._time_axis.timeframe = self.timeframe
        self._symbol_label.setText(key)
        self.timeframe_buttons[self.timeframe.value].setChecked(True)
        self._series.replace(bars)
        self._time_axis.invalidate()
        self._recompute_overlays()
        self._candles.data_changed()
        self._volume.data_changed()
        self._refresh_markers()
        self._refresh_last()
        self.show_last_bars(style.DEFAULT_VISIBLE_BARS)
        self.studies.recompute()

    def update_bar(self, bar: Bar) -> bool:
        """Apply one live bar; return False when it was not for this chart or was stale."""
        if bar.key != self.key or bar.timeframe != self.timeframe:
            return False
        n = len(self._series)
        follow = n > 0 and self._at_right_edge()
        change = self._series.upsert(bar)
        if change is Change.IGNORED:
            return False
        closes = self._series.column("close")
        for overlay in self._overlays:
            overlay.update_last(closes)
            self._push_overlay(overlay, live=change is Change.REPLACED)
        self._candles.data_changed(last_row_only=change is Change.REPLACED)
        self._volume.data_changed(last_row_only=change is Change.REPLACED)
        if change is Change.APPENDED:
            if self._markers:
                self._refresh_markers()
            if follow:
                left, right = self.price_plot.getViewBox().viewRange()[0]
                self.price_plot.setXRange(left + 1, right + 1, padding=0)
        self._refresh_last()
        self.studies.live()
        return True

    def set_overlays(self, sma: Sequence[int] = (20,), ema: Sequence[int] = (50,)) -> None:
        for overlay in self._overlays:
            self.price_plot.removeItem(overlay.item)
        self._overlays = []
        specs = [("SMA", n) for n in sma] + [("EMA", n) for n in ema]
        for i, (kind, period) in enumerate(specs):
            colour = style.OVERLAY_COLOURS[i % len(style.OVERLAY_COLOURS)]
            item = pg.PlotDataItem(pen=_pen(colour))
            self.price_plot.addItem(item, ignoreBounds=True)  # the candles' bounds cover it
            # After addItem: PlotItem.addItem applies the plot's own (off) clip-to-view and
            # downsampling to the item, which made every frame draw all 100,000 points.
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            self._overlays.append(_Overlay(kind, period, item, np.full(16, np.nan), colour))
        self._recompute_overlays()

    def overlay_values(self) -> dict[str, FloatArray]:
        """Current indicator values by name ("SMA 20"), one per bar."""
        n = len(self._series)
        return {f"{o.kind} {o.period}": o.values[:n] for o in self._overlays}

    def add_markers(self, markers: Sequence[tuple[datetime, Decimal, str]]) -> None:
        """Mark signals on the candles: ``(time, price, "buy" | "sell")``."""
        for when, price, side in markers:
            if side not in ("buy", "sell"):
                raise ValueError(f"marker side must be 'buy' or 'sell', got {side!r}")
            if when.tzinfo is None:
                raise ValueError("marker times must be timezone-aware")
            self._markers.append((when, price, side))
        self._refresh_markers()

    def marker_points(self) -> list[tuple[float, float, str]]:
        """The markers as drawn: (bar index, price, side)."""
        return list(self._marker_points)

    def readout_text(self) -> str:
        return self._readout

    def readout_line(self) -> str:
        """The read-out line as shown: OHLC, the day's change, volume, overlay values."""
        return self._readout_strip.text()

    def set_previous_close(self, price: Decimal | None) -> None:
        """The feed's previous close of the shown instrument: today's change is measured
        from it, exactly as the watchlist's Chg %."""
        if price != self._previous_close:
            self._previous_close = price if price else None
            index = self._hover_index
            self._set_readout(len(self._series) - 1 if index is None else index)

    def crosshair_labels(self) -> tuple[str, str]:
        return self._crosshair.labels()

    def show_last_bars(self, count: int) -> None:
        n = len(self._series)
        right = n - 1 + style.RIGHT_MARGIN_BARS
        self.price_plot.setXRange(right - count - style.RIGHT_MARGIN_BARS, right, padding=0)

    # -- studies and drawings (widgets/chart/study_layer.py) ----------------------------------
    def _fill_indicators_menu(self) -> None:
        menu = self.indicators_button.menu()
        menu.clear()
        for action in self.studies.indicators_menu(menu).actions():
            menu.addAction(action)

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        at = position_of(self, pos)
        if at is None:
            return
        self.studies.context_menu(*at).popup(self._graphics.mapToGlobal(pos))

    def _scene_clicked(self, event: Any) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        vb = self.price_plot.getViewBox()
        scene_pos = event.scenePos()
        if vb.sceneBoundingRect().contains(scene_pos):
            point = vb.mapSceneToView(scene_pos)
            if self.studies.click(point.x(), point.y()):
                event.accept()

    # -- crosshair ---------------------------------------------------------------------------
    def on_scene_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        """Move the crosshair to a scene position; off the plots it reverts to the last bar."""
        vb = self.price_plot.getViewBox()
        over_price = vb.sceneBoundingRect().contains(scene_pos)
        over_volume = self.volume_plot.getViewBox().sceneBoundingRect().contains(scene_pos)
        n = len(self._series)
        if n == 0 or not (over_price or over_volume):
            self._leave()
            return
        point = vb.mapSceneToView(scene_pos)
        index = min(max(round(point.x()), 0), n - 1)
        bar = self._series.bars[index]
        when = to_ist(bar.start)
        time_text = (f"{when:%a %d %b %Y}" if bar.timeframe is Timeframe.D1
                     else f"{when:%a %d %b %H:%M}")  # fmt: skip
        self._crosshair.move_to(
            float(index), point.y(), price=f"{point.y():.2f}" if over_price else "",
            time=time_text,
        )  # fmt: skip
        self._crosshair.h_line.setVisible(over_price)
        self._hover_index = index
        self._set_readout(index)

    def _leave(self) -> None:
        self._crosshair.set_visible(False)
        self._hover_index = None
        self._set_readout(len(self._series) - 1)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.Leave:
            self._leave()
        return super().eventFilter(watched, event)

    # -- internals ---------------------------------------------------------------------------
    def _at_right_edge(self) -> bool:
        right = float(self.price_plot.getViewBox().viewRange()[0][1])
        return right >= len(self._series) - 1

    def _price_pane_lines(self) -> list[FloatArray]:
        """Values of every line on the price pane, by bar index: the y range covers them."""
        lines = [o.values for o in self._overlays]
        studies = getattr(self, "studies", None)  # None while __init__ builds the plots
        if studies is not None:
            lines += studies.price_pane_values()
        return lines

    def _recompute_overlays(self) -> None:
        closes = self._series.column("close")
        for overlay in self._overlays:
            overlay.recompute(closes, len(closes) * 2)
            self._push_overlay(overlay)

    def _push_overlay(self, overlay: _Overlay, live: bool = False) -> None:
        """Hand the curve its values; a live change of the last value by less than half a
        pixel is left out: rebuilding the curve cost more than the rest of a chart's
        update (the read-out shows the exact value either way)."""
        n = len(self._series)
        if n == 0:
            overlay.item.setData([], [])
            overlay.drawn = (0, math.nan)
            return
        last = float(overlay.values[n - 1])
        if live and overlay.drawn[0] == n and abs(last - overlay.drawn[1]) < self._half_pixel():
            return
        overlay.item.setData(self._series.column("x"), overlay.values[:n])
        overlay.drawn = (n, last)

    def _half_pixel(self) -> float:
        """Half a screen pixel of the price pane, in price (0 before the pane has a size)."""
        vb = self.price_plot.getViewBox()
        low, high = vb.viewRange()[1]
        height = vb.height()
        return 0.5 * (high - low) / height if height > 0 else 0.0

    def _refresh_last(self) -> None:
        n = len(self._series)
        if n == 0:
            self.last_badge.setVisible(False)
            self._set_readout(None)
            return
        last = self._series.bars[-1]
        colour = style.UP if last.close >= last.open else style.DOWN
        self.last_badge.setVisible(True)
        self.last_badge.set_price(float(last.close), format_price(last.close), colour)
        if self._hover_index is None or self._hover_index == n - 1:
            self._set_readout(n - 1)

    def _set_readout(self, index: int | None) -> None:
        if index is None or not 0 <= index < len(self._series):
            self._readout = ""
            self._readout_shown = None
            self._readout_groups = ()
            self._readout_strip.set_groups(())
            return
        bars = self._series.bars
        bar = bars[index]
        reference = day_reference(bars, index, self._previous_close)
        text = readout(bar)
        if (text, reference) != self._readout_shown:
            self._readout = text
            self._readout_shown = (text, reference)
            self._readout_groups = readout_groups(bar, reference)
        overlays: list[Group] = []
        for overlay in self._overlays:
            value = overlay.values[index] if index < len(overlay.values) else math.nan
            shown = "—" if math.isnan(value) else f"{value:.2f}"
            overlays.append(((f"{overlay.kind} {overlay.period} {shown}", overlay.colour),))
        self._readout_strip.set_groups((*self._readout_groups, *overlays))

    def _refresh_markers(self) -> None:
        points: list[tuple[float, float, str]] = []
        for when, price, side in self._markers:
            index = self._series.index_at(when.timestamp())
            if index is not None:
                points.append((float(index), float(price), side))
        self._marker_points = points
        if not points:
            self._markers_item.setData([])
            return
        self._markers_item.setData(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            symbol=["t1" if p[2] == "buy" else "t" for p in points],
            brush=[pg.mkBrush(style.UP if p[2] == "buy" else style.DOWN) for p in points],
            pen=[pg.mkPen("#ffffff", width=1) for _ in points],
        )
