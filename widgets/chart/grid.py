"""Grid lines at the axes' ticks, drawn as one batch of opaque 1 px lines.

pyqtgraph's own grid (``PlotItem.showGrid``) is drawn by the axis items through a translucent
pen and cost about 17 ms of a 20 ms frame in the offscreen benchmark; this item costs well
under a millisecond for the same lines.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from widgets.chart import style
from widgets.chart.axis import TimeAxis


class GridItem(pg.GraphicsObject):  # type: ignore[misc]
    def __init__(self, x_axis: pg.AxisItem | None, y_axis: pg.AxisItem | None) -> None:
        super().__init__()
        self._x_axis = x_axis
        self._y_axis = y_axis
        pen = QtGui.QPen(QtGui.QColor(style.GRID))
        pen.setCosmetic(True)
        pen.setWidth(1)
        self._pen = pen
        self.setZValue(-100)
        # The last answer per axis: a live bar repaints the pane without moving it, and
        # pyqtgraph's own tickValues (the price axis) is not cached; it was a third of a
        # live chart frame.
        self._ticks: dict[int, tuple[tuple[float, float, float], list[float]]] = {}

    def boundingRect(self) -> QtCore.QRectF:
        rect = self.viewRect()
        return QtCore.QRectF() if rect is None else rect

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def _major(self, axis: pg.AxisItem, lo: float, hi: float, px: float) -> list[float]:
        key = (lo, hi, px)
        cached = self._ticks.get(id(axis))
        if cached is not None and cached[0] == key and not isinstance(axis, TimeAxis):
            return cached[1]
        levels = axis.tickValues(lo, hi, px)  # TimeAxis caches its own, by bar count too
        major = list(levels[0][1]) if levels else []
        self._ticks[id(axis)] = (key, major)
        return major

    def paint(self, p: QtGui.QPainter, *args: Any) -> None:
        view = self.getViewBox()
        rect = self.viewRect()
        if view is None or rect is None:
            return
        lines = []
        if self._x_axis is not None:
            for x in self._major(self._x_axis, rect.left(), rect.right(), view.width()):
                lines.append(QtCore.QLineF(x, rect.top(), x, rect.bottom()))
        if self._y_axis is not None:
            for y in self._major(self._y_axis, rect.top(), rect.bottom(), view.height()):
                lines.append(QtCore.QLineF(rect.left(), y, rect.right(), y))
        if lines:
            p.setPen(self._pen)
            p.drawLines(lines)
