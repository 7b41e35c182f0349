"""Candles and volume bars that paint only the bars inside the view.

A pyqtgraph item per candle, or one QPicture of the whole history, costs time in proportion
to the history on every live update. These items hold references to the ``BarSeries`` columns
and, in ``paint``, slice the visible index range and hand it to QPainter as two packed arrays
(one per colour) of lines and rects, so a paint costs in proportion to what is on screen.
Pens are cosmetic and 1 px wide: wider pens make Qt's line drawing an order of magnitude slower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6 import QtCore, QtGui

from widgets.chart import style
from widgets.chart.indicators import FloatArray
from widgets.chart.series import BarSeries


def _pen(colour: QtGui.QColor) -> QtGui.QPen:
    pen = QtGui.QPen(colour)
    pen.setWidth(1)
    pen.setCosmetic(True)
    return pen


class _SeriesItem(pg.GraphicsObject):  # type: ignore[misc]
    """Shared bookkeeping: bounds over the whole series, visible slice, paint counters."""

    def __init__(self, series: BarSeries) -> None:
        super().__init__()
        self.series = series
        self.paint_count = 0
        self.painted_bars = 0  # bars drawn by the last paint: lets tests prove clipping
        self._rect = QtCore.QRectF()
        # The y range of every row but the last, and what it was computed over: a live
        # update changes the last row only, so it costs one row, not the whole history.
        self._head_key: tuple[object, ...] = ()
        self._head: tuple[float, float] | None = None
        self._last_row = QtCore.QRectF()  # the last bar as last drawn
        self._told_view: tuple[float, float] | None = None  # y range in sight the view knows
        self._lines = internals.PrimitiveArray(QtCore.QLineF, 4)
        self._rects = internals.PrimitiveArray(QtCore.QRectF, 4)
        up, down = QtGui.QColor(style.UP), QtGui.QColor(style.DOWN)
        self._colours = (up, down)

    # -- bounds ------------------------------------------------------------------------------
    def _y_range(self, rows: slice) -> tuple[float, float] | None:
        raise NotImplementedError

    def _bounds_key(self) -> tuple[object, ...]:
        """What else the y range is taken over; a change makes the cached range stale."""
        return ()

    def _full_y_range(self, n: int) -> tuple[float, float] | None:
        if n == 0:
            return None
        key = (n, self.series.generation, *self._bounds_key())
        if key != self._head_key:
            self._head = self._y_range(slice(0, n - 1))
            self._head_key = key
        last = self._y_range(slice(n - 1, n))
        if self._head is None or last is None:
            return last or self._head
        return (min(self._head[0], last[0]), max(self._head[1], last[1]))

    def _row_rect(self, row: int) -> QtCore.QRectF:
        """Where one bar is drawn, in view coordinates."""
        raise NotImplementedError

    def data_changed(self, last_row_only: bool = False) -> None:
        """Call after the series changed: refreshes bounds only when they grew or shrank.

        ``last_row_only``: only the last bar changed (a live update of it). Unless the bounds
        moved, only where that bar was and is drawn is repainted, not the whole pane.
        """
        n = len(self.series)
        yr = self._full_y_range(n)
        if yr is None:
            rect = QtCore.QRectF()
        else:
            rect = QtCore.QRectF(-0.5, yr[0], float(n), yr[1] - yr[0])
        last_row = self._row_rect(n - 1) if n else QtCore.QRectF()
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
            self.update()
        elif last_row_only and n:
            self.update(last_row.united(self._last_row) if self._last_row.isValid() else last_row)
        else:
            self.update()
        self._last_row = last_row
        # The view re-fits its y range to the bars in sight, and being told repaints the whole
        # pane: tell it only when what it fits to moved.
        in_view = self._in_view_y_range()
        if not last_row_only or in_view != self._told_view:
            self._told_view = in_view
            self.informViewBoundsChanged()

    def _in_view_y_range(self) -> tuple[float, float] | None:
        vb = self.getViewBox()
        if vb is None:
            return None
        left, right = vb.viewRange()[0]
        return self._y_range(self.series.visible_slice(left, right))

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: Any = None
    ) -> tuple[float, float] | None:
        """Bounds for auto-range; y over the bars in ``orthoRange`` so the view fits them."""
        n = len(self.series)
        if n == 0:
            return None
        if ax == 0:
            return (-0.5, n - 0.5)
        rows = slice(0, n)
        if orthoRange is not None:
            rows = self.series.visible_slice(orthoRange[0], orthoRange[1])
        return self._y_range(rows)

    def pixelPadding(self) -> int:
        return 0

    def _visible(self) -> slice:
        view = self.viewRect()
        n = len(self.series)
        if view is None:
            return slice(0, n)
        return self.series.visible_slice(view.left(), view.right())

    # -- painting ----------------------------------------------------------------------------
    def paint(self, p: QtGui.QPainter, *args: Any) -> None:
        self.paint_count += 1
        rows = self._visible()
        self.painted_bars = rows.stop - rows.start
        if self.painted_bars <= 0:
            return
        o = self.series.column("open")[rows]
        c = self.series.column("close")[rows]
        x = self.series.column("x")[rows]
        up = c >= o
        for mask, colour in ((up, self._colours[0]), (~up, self._colours[1])):
            if mask.any():
                self._paint_group(p, rows, mask, x[mask], colour)

    def _paint_group(
        self,
        p: QtGui.QPainter,
        rows: slice,
        mask: np.ndarray[Any, np.dtype[np.bool_]],
        x: np.ndarray[Any, np.dtype[np.float64]],
        colour: QtGui.QColor,
    ) -> None:
        raise NotImplementedError

    def _draw_rects(
        self,
        p: QtGui.QPainter,
        x: np.ndarray[Any, np.dtype[np.float64]],
        y0: np.ndarray[Any, np.dtype[np.float64]],
        y1: np.ndarray[Any, np.dtype[np.float64]],
    ) -> None:
        half = style.BODY_WIDTH / 2
        self._rects.resize(len(x))
        r = self._rects.ndarray()
        r[:, 0] = x - half
        r[:, 1] = y0
        r[:, 2] = style.BODY_WIDTH
        r[:, 3] = y1 - y0
        p.drawRects(*self._rects.drawargs())


class CandleItem(_SeriesItem):
    """Candles; their y bounds also cover the lines drawn over them (``overlays``).

    The price pane auto-ranges on this item alone: the overlay curves are added with
    ``ignoreBounds``, because pyqtgraph asked each curve for its bounds several times per
    pan frame (a third of the frame), while a min and max over the visible slice of each
    overlay's values costs microseconds.
    """

    def __init__(self, series: BarSeries) -> None:
        super().__init__(series)
        self.overlays: Callable[[], Iterable[FloatArray]] = tuple

    def _bounds_key(self) -> tuple[object, ...]:
        # Overlay and study arrays are replaced, never rewritten, when recomputed whole.
        return tuple(id(values) for values in self.overlays())

    def _y_range(self, rows: slice) -> tuple[float, float] | None:
        if rows.stop <= rows.start:
            return None
        lo = float(self.series.column("low")[rows].min())
        hi = float(self.series.column("high")[rows].max())
        for values in self.overlays():
            part = values[rows]
            if part.size:
                # fmin/fmax skip NaN (a warm-up period) without the all-NaN warning.
                low, high = float(np.fmin.reduce(part)), float(np.fmax.reduce(part))
                if low == low:  # not NaN: some value in view
                    lo, hi = min(lo, low), max(hi, high)
        return (lo, hi)

    def _row_rect(self, row: int) -> QtCore.QRectF:
        s = self.series
        low, high = float(s.column("low")[row]), float(s.column("high")[row])
        return QtCore.QRectF(row - 0.5, low, 1.0, high - low)

    def _paint_group(self, p, rows, mask, x, colour):  # type: ignore[no-untyped-def]
        s = self.series
        o, c = s.column("open")[rows][mask], s.column("close")[rows][mask]
        lo, hi = s.column("low")[rows][mask], s.column("high")[rows][mask]
        p.setPen(_pen(colour))
        p.setBrush(QtGui.QBrush(colour))
        self._lines.resize(len(x))
        ln = self._lines.ndarray()
        ln[:, 0] = x
        ln[:, 1] = lo
        ln[:, 2] = x
        ln[:, 3] = hi
        p.drawLines(*self._lines.drawargs())
        self._draw_rects(p, x, np.minimum(o, c), np.maximum(o, c))


class VolumeItem(_SeriesItem):
    def __init__(self, series: BarSeries) -> None:
        super().__init__(series)
        # Opaque colours blended into the background, not translucent ones: the outline and
        # the fill would otherwise add up to a darker rim.
        bg = QtGui.QColor(style.BACKGROUND)
        a = style.VOLUME_ALPHA / 255

        def fade(c: QtGui.QColor) -> QtGui.QColor:
            return QtGui.QColor(
                round(c.red() * a + bg.red() * (1 - a)),
                round(c.green() * a + bg.green() * (1 - a)),
                round(c.blue() * a + bg.blue() * (1 - a)),
            )

        self._colours = (fade(self._colours[0]), fade(self._colours[1]))

    def _y_range(self, rows: slice) -> tuple[float, float] | None:
        if rows.stop <= rows.start:
            return None
        return (0.0, float(self.series.column("volume")[rows].max()) or 1.0)

    def _row_rect(self, row: int) -> QtCore.QRectF:
        return QtCore.QRectF(row - 0.5, 0.0, 1.0, float(self.series.column("volume")[row]))

    def _paint_group(self, p, rows, mask, x, colour):  # type: ignore[no-untyped-def]
        vol = self.series.column("volume")[rows][mask]
        # A pen as well as the fill, so that zoomed far out each bar still covers a pixel.
        p.setPen(_pen(colour))
        p.setBrush(QtGui.QBrush(colour))
        self._draw_rects(p, x, np.zeros_like(vol), vol)


__all__ = ["CandleItem", "VolumeItem"]
