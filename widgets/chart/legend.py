"""The chart's read-out line: OHLC, volume, the day's change and the overlays' values.

It changes on every live frame, so it is painted here as runs of coloured text instead of
rich-text QLabels: a QLabel's ``setText`` lays its HTML out again and asks the header's
layout for room, and that layout request climbed through the chart frame to the main
window, which re-laid out and repainted its docks every frame. This strip has a fixed
height and takes the width its row gives it; new text only repaints it. Groups that do not
fit are left out whole, from the end, so a narrow chart (a 2x2 grid on a laptop) shows
whole figures rather than "L 1" cut in half; the full line is the strip's tooltip.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

Run = tuple[str, str]  # text, colour ("#rrggbb")
Group = tuple[Run, ...]  # shown whole or not at all

GAP = "   "


class ReadoutStrip(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._groups: tuple[Group, ...] = ()
        self._colours: dict[str, QtGui.QColor] = {}
        self.shown_groups = 0  # groups the last paint had room for (tests read it)
        metrics = self.fontMetrics()
        self.setFixedHeight(metrics.height() + 4)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(0, self.height())

    def set_groups(self, groups: tuple[Group, ...]) -> None:
        if groups != self._groups:
            self._groups = groups
            self.setToolTip(self.text())
            self.update()

    def text(self) -> str:
        return GAP.join("".join(text for text, _ in group) for group in self._groups)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        metrics = painter.fontMetrics()
        baseline = (self.height() + metrics.ascent() - metrics.descent()) // 2
        gap = metrics.horizontalAdvance(GAP)
        x = 0
        self.shown_groups = 0
        for group in self._groups:
            widths = [metrics.horizontalAdvance(text) for text, _ in group]
            if x + sum(widths) > self.width():
                break
            for (text, colour), width in zip(group, widths, strict=True):
                painter.setPen(self._colour(colour))
                painter.drawText(x, baseline, text)
                x += width
            x += gap
            self.shown_groups += 1
        painter.end()

    def _colour(self, name: str) -> QtGui.QColor:
        colour = self._colours.get(name)
        if colour is None:
            colour = self._colours[name] = QtGui.QColor(name)
        return colour
