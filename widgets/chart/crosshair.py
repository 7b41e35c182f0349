"""The crosshair over the price pane and the OHLCV read-out it drives."""

from __future__ import annotations

from decimal import Decimal

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from services.domain import Bar
from widgets.chart import style


def format_price(price: Decimal) -> str:
    """Two decimals for rupee prices; more only when the tick is finer (currency futures)."""
    exponent = price.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{price:.{places}f}"


def format_volume(volume: int) -> str:
    if volume >= 10_000_000:
        return f"{volume / 10_000_000:.2f}Cr"
    if volume >= 100_000:
        return f"{volume / 100_000:.2f}L"
    if volume >= 1_000:
        return f"{volume / 1_000:.1f}K"
    return str(volume)


def readout(bar: Bar) -> str:
    return (
        f"O {format_price(bar.open)} H {format_price(bar.high)} "
        f"L {format_price(bar.low)} C {format_price(bar.close)} V {format_volume(bar.volume)}"
    )


def readout_html(bar: Bar) -> str:
    """The same read-out with the values in the candle's colour, labels muted."""
    colour = style.UP if bar.close >= bar.open else style.DOWN
    parts = []
    for name, value in (
        ("O", format_price(bar.open)),
        ("H", format_price(bar.high)),
        ("L", format_price(bar.low)),
        ("C", format_price(bar.close)),
        ("V", format_volume(bar.volume)),
    ):
        parts.append(
            f'<span style="color:{style.TEXT}">{name}</span>&nbsp;'
            f'<span style="color:{colour}">{value}</span>'
        )
    change = bar.close - bar.open
    pct = change * 100 / bar.open if bar.open else Decimal(0)
    parts.append(f'<span style="color:{colour}">{change:+.2f} ({pct:+.2f}%)</span>')
    return "&nbsp;&nbsp;".join(parts)


class Crosshair:
    """Dashed lines through the cursor: vertical in every pane, horizontal in the price pane."""

    def __init__(self, price: pg.PlotItem, others: list[pg.PlotItem]) -> None:
        pen = QtGui.QPen(QtGui.QColor(style.CROSSHAIR))
        pen.setCosmetic(True)
        pen.setWidth(1)
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        self.v_lines = [pg.InfiniteLine(angle=90, movable=False, pen=pen) for _ in [price, *others]]
        price.addItem(self.h_line, ignoreBounds=True)
        for plot, line in zip([price, *others], self.v_lines, strict=True):
            plot.addItem(line, ignoreBounds=True)
        self.set_visible(False)

    def move_to(self, x: float, y: float) -> None:
        self.h_line.setValue(y)
        for line in self.v_lines:
            line.setValue(x)
        self.set_visible(True)

    def set_visible(self, visible: bool) -> None:
        self.h_line.setVisible(visible)
        for line in self.v_lines:
            line.setVisible(visible)
