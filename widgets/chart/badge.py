"""The last price: a dotted line across the price pane ending in a filled badge.

pyqtgraph's InfiniteLine label is a QGraphicsTextItem: every new price laid its text
document out again and walked the line's end points to place it, the largest part of a
chart's live update, and moving the line repainted the whole pane. This item paints the
line, a rectangle and one line of text in screen pixels (``ItemIgnoresTransformations``)
at (right edge of the view, price): a new price moves it and changes a string, and only the
strip it left and the strip it took are repainted.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from widgets.chart import style

_PAD_X, _PAD_Y = 4.0, 2.0


class PriceBadge(QtWidgets.QGraphicsObject):
    """A plain QGraphicsObject: pyqtgraph's GraphicsObject tells the view its bounds changed
    on every move, and the view answers by repainting the whole pane."""

    def __init__(self, view_box: pg.ViewBox) -> None:
        super().__init__()
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(1_000)  # over the candles and the lines
        self._view_box = view_box
        self.font = QtGui.QFont()
        self.font.setPointSize(style.FONT_PT)
        self._metrics = QtGui.QFontMetricsF(self.font)
        self._text = ""
        self._fill = QtGui.QColor(style.UP)
        self._rect = QtCore.QRectF()  # the badge; the line runs left of it
        self._bounds = QtCore.QRectF()
        self._price = 0.0
        self._line_pen = QtGui.QPen(self._fill)
        self._line_pen.setCosmetic(True)
        self._line_pen.setWidth(1)
        self._line_pen.setStyle(QtCore.Qt.PenStyle.DotLine)
        view_box.sigXRangeChanged.connect(self._follow_view)
        view_box.sigResized.connect(self._resized)

    @property
    def text(self) -> str:
        return self._text

    def set_price(self, price: float, text: str, fill: str) -> None:
        if text != self._text:
            width = self._metrics.horizontalAdvance(text) + 2 * _PAD_X
            height = self._metrics.height() + 2 * _PAD_Y
            rect = QtCore.QRectF(-width, -height / 2, width, height)
            if rect != self._rect:
                self._rect = rect
                self._resized()
            self._text = text
            self.update()
        if fill != self._fill.name():
            self._fill = QtGui.QColor(fill)
            self._line_pen.setColor(self._fill)
            self.update()
        self._price = price
        self.setPos(self._right(), price)

    def _right(self) -> float:
        return float(self._view_box.viewRange()[0][1])

    def _follow_view(self, *_args: Any) -> None:
        self.setPos(self._right(), self._price)

    def _resized(self, *_args: Any) -> None:
        width = float(self._view_box.width())
        bounds = self._rect.united(QtCore.QRectF(-width, -1.0, width, 2.0))
        if bounds != self._bounds:
            self.prepareGeometryChange()
            self._bounds = bounds

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._bounds)

    def paint(self, p: QtGui.QPainter, *args: Any) -> None:
        if not self._text:
            return
        p.setPen(self._line_pen)
        p.drawLine(QtCore.QPointF(self._bounds.left(), 0.0), QtCore.QPointF(self._rect.left(), 0.0))
        p.fillRect(self._rect, self._fill)
        p.setFont(self.font)
        p.setPen(QtGui.QColor("#ffffff"))
        p.drawText(self._rect, QtCore.Qt.AlignmentFlag.AlignCenter, self._text)
