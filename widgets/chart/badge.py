"""The last price on a filled badge at the right edge of the price pane.

pyqtgraph's InfiniteLine label is a QGraphicsTextItem: every new price laid its text
document out again and walked the line's end points to place it, the largest part of a
chart's live update. This item paints a rectangle and one line of text in screen pixels
(``ItemIgnoresTransformations``) at (right edge of the view, price): a new price moves it
and changes a string.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from widgets.chart import style

_PAD_X, _PAD_Y = 4.0, 2.0


class PriceBadge(pg.GraphicsObject):  # type: ignore[misc]
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
        self._rect = QtCore.QRectF()
        self._price = 0.0
        view_box.sigXRangeChanged.connect(self._follow_view)

    @property
    def text(self) -> str:
        return self._text

    def set_price(self, price: float, text: str, fill: str) -> None:
        if text != self._text:
            width = self._metrics.horizontalAdvance(text) + 2 * _PAD_X
            height = self._metrics.height() + 2 * _PAD_Y
            rect = QtCore.QRectF(-width, -height / 2, width, height)
            if rect != self._rect:
                self.prepareGeometryChange()
                self._rect = rect
            self._text = text
            self.update()
        if fill != self._fill.name():
            self._fill = QtGui.QColor(fill)
            self.update()
        self._price = price
        self.setPos(self._right(), price)

    def _right(self) -> float:
        return float(self._view_box.viewRange()[0][1])

    def _follow_view(self, *_args: Any) -> None:
        self.setPos(self._right(), self._price)

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def paint(self, p: QtGui.QPainter, *args: Any) -> None:
        if not self._text:
            return
        p.fillRect(self._rect, self._fill)
        p.setFont(self.font)
        p.setPen(QtGui.QColor("#ffffff"))
        p.drawText(self._rect, QtCore.Qt.AlignmentFlag.AlignCenter, self._text)
