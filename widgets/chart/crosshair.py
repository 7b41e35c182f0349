"""The crosshair over the price pane and the OHLCV read-out it drives."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from services.clock import to_ist
from services.domain import Bar, Timeframe
from widgets.chart import style
from widgets.chart.legend import Group, Run


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


def day_reference(bars: Sequence[Bar], index: int, previous_close: Decimal | None) -> Decimal:
    """The price the day's change of ``bars[index]`` is measured from, as the watchlist does.

    The newest day's change is measured from the feed's previous close when it is known
    (the watchlist's Chg % uses exactly that). Otherwise: daily bars from the bar before,
    intraday bars from the last close of the session before their own, and with nothing
    before, from their day's first open.
    """
    bar = bars[index]
    newest = to_ist(bars[-1].start).date()
    if previous_close is not None and (
        index == len(bars) - 1 or (to_ist(bar.start).date() == newest
        and bar.timeframe is not Timeframe.D1)
    ):
        return previous_close
    if bar.timeframe is Timeframe.D1:
        return bars[index - 1].close if index > 0 else bar.open
    day = to_ist(bar.start).date()
    i = index
    while i > 0 and to_ist(bars[i - 1].start).date() == day:
        i -= 1
    return bars[i - 1].close if i > 0 else bars[i].open


def readout_groups(bar: Bar, reference: Decimal | None = None) -> tuple[Group, ...]:
    """The read-out as coloured runs: OHLC in the candle's colour with muted labels, the
    day's change (from ``reference``, see ``day_reference``, as in the watchlist), then the
    volume; a narrow chart drops groups from the end."""
    colour = style.UP if bar.close >= bar.open else style.DOWN
    ohlc: list[Run] = []
    for name, value in (
        ("O", bar.open),
        ("H", bar.high),
        ("L", bar.low),
        ("C", bar.close),
    ):
        ohlc += [(f"{' ' if ohlc else ''}{name} ", style.TEXT), (format_price(value), colour)]
    base = bar.open if reference is None else reference
    change = bar.close - base
    pct = change * 100 / base if base else Decimal(0)
    tone = style.UP if change >= 0 else style.DOWN
    return (
        tuple(ohlc),
        ((f"{change:+.2f} ({pct:+.2f}%)", tone),),
        (("V ", style.TEXT), (format_volume(bar.volume), colour)),
    )


class Crosshair:
    """Dashed lines through the cursor: vertical in every pane, horizontal in the price pane."""

    def __init__(self, price: pg.PlotItem, others: list[pg.PlotItem]) -> None:
        pen = QtGui.QPen(QtGui.QColor(style.CROSSHAIR))
        pen.setCosmetic(True)
        pen.setWidth(1)
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        # Price on the right axis, time on the bottom one, in badges like the last price's.
        badge = {"color": "#ffffff", "fill": style.CROSSHAIR_LABEL}
        self.h_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pen, label="",
            labelOpts={**badge, "position": 0.995, "anchors": [(1, 0.5), (1, 0.5)]},
        )  # fmt: skip
        self.v_lines = [pg.InfiniteLine(angle=90, movable=False, pen=pen) for _ in [price]]
        self.v_lines += [
            pg.InfiniteLine(
                angle=90, movable=False, pen=pen, label="",
                labelOpts={**badge, "position": 0.02, "anchors": [(0.5, 1), (0.5, 1)]},
            )
            for _ in others
        ]
        price.addItem(self.h_line, ignoreBounds=True)
        for plot, line in zip([price, *others], self.v_lines, strict=True):
            plot.addItem(line, ignoreBounds=True)
        self.set_visible(False)

    def move_to(self, x: float, y: float, *, price: str = "", time: str = "") -> None:
        self.h_line.setValue(y)
        _set_label(self.h_line, price)
        for line in self.v_lines:
            line.setValue(x)
            _set_label(line, time)
        self.set_visible(True)

    def labels(self) -> tuple[str, str]:
        """The texts on the axes now: (price, time)."""
        label = getattr(self.h_line, "label", None)
        price = label.format if label is not None else ""
        times = [v.label.format for v in self.v_lines if getattr(v, "label", None) is not None]
        return str(price), str(times[0] if times else "")

    def set_visible(self, visible: bool) -> None:
        self.h_line.setVisible(visible)
        for line in self.v_lines:
            line.setVisible(visible)


def _set_label(line: pg.InfiniteLine, text: str) -> None:
    label = getattr(line, "label", None)  # only lines made with a label have one
    if label is not None:
        label.setFormat(text)
