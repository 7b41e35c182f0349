"""One chart or four (2x2), with linked or independent symbols.

Linked, picking an instrument loads it into every visible chart, each at its own timeframe
(1m, 5m, 15m and 1d by default, the usual multi-timeframe view). Independent, it goes to
the active chart only: the one last clicked, outlined in the accent colour. The primary
chart (the single-chart view) is always chart 0.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Signal

from services.domain import Timeframe
from widgets.chart import style
from widgets.chart.widget import ChartWidget

_ACCENT = "#2962ff"
DEFAULT_TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.D1)


class MultiChart(QtWidgets.QWidget):
    layoutChanged = Signal(int)  # 1 or 4 charts
    chartAdded = Signal(object)  # a ChartWidget made on the first 2x2 view

    def __init__(self, primary: ChartWidget) -> None:
        super().__init__()
        # Charts 1-3 are made when the 2x2 view is first asked for: each costs about 0.15 s
        # of start-up (four plots and their axes), which the single-chart default never uses.
        self.charts: list[ChartWidget] = [primary]
        self._set_timeframe(primary, DEFAULT_TIMEFRAMES[0])
        self.active = 0
        self.single_button = QtWidgets.QToolButton()
        self.single_button.setText("1 chart")
        self.grid_button = QtWidgets.QToolButton()
        self.grid_button.setText("2×2")
        for button in (self.single_button, self.grid_button):
            button.setCheckable(True)
            button.setAutoRaise(True)
        group = QtWidgets.QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.single_button)
        group.addButton(self.grid_button)
        self.single_button.clicked.connect(lambda: self.set_count(1))
        self.grid_button.clicked.connect(lambda: self.set_count(4))
        self.link = QtWidgets.QCheckBox("Link symbols")
        self.link.setChecked(True)
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 2)
        bar.addWidget(self.single_button)
        bar.addWidget(self.grid_button)
        bar.addWidget(self.link)
        bar.addStretch(1)
        grid = QtWidgets.QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        self._grid = grid
        self._frames: list[QtWidgets.QFrame] = []
        self._add_frame(primary)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addLayout(grid, 1)
        self.set_count(1)

    @staticmethod
    def _set_timeframe(chart: ChartWidget, timeframe: Timeframe) -> None:
        chart.timeframe = timeframe
        chart.timeframe_buttons[timeframe.value].setChecked(True)

    def _add_frame(self, chart: ChartWidget) -> None:
        i = len(self._frames)
        frame = QtWidgets.QFrame()
        frame.setObjectName("chartFrame")
        inner = QtWidgets.QVBoxLayout(frame)
        inner.setContentsMargins(1, 1, 1, 1)
        inner.addWidget(chart)
        self._grid.addWidget(frame, i // 2, i % 2)
        self._frames.append(frame)
        chart._graphics.viewport().installEventFilter(self)

    def _ensure_four(self) -> None:
        while len(self.charts) < 4:
            chart = ChartWidget()
            self._set_timeframe(chart, DEFAULT_TIMEFRAMES[len(self.charts)])
            self.charts.append(chart)
            self._add_frame(chart)
            self.chartAdded.emit(chart)

    @property
    def count(self) -> int:
        return sum(1 for f in self._frames if not f.isHidden())

    def set_count(self, count: int) -> None:
        if count not in (1, 4):
            raise ValueError("a chart layout has 1 or 4 charts")
        if count == 4:
            self._ensure_four()
        for i, frame in enumerate(self._frames):
            frame.setVisible(i < count)
        (self.single_button if count == 1 else self.grid_button).setChecked(True)
        if self.active >= count:
            self.set_active(0)
        self._outline()
        self.layoutChanged.emit(count)

    def visible_charts(self) -> list[ChartWidget]:
        return [c for c, f in zip(self.charts, self._frames, strict=True) if not f.isHidden()]

    def targets(self) -> list[ChartWidget]:
        """The charts a newly picked instrument goes to."""
        if self.link.isChecked():
            return self.visible_charts()
        return [self.charts[self.active]]

    def set_active(self, index: int) -> None:
        self.active = index
        self._outline()

    def _outline(self) -> None:
        many = self.count > 1
        for i, frame in enumerate(self._frames):
            colour = _ACCENT if many and i == self.active else style.BACKGROUND
            frame.setStyleSheet(f"#chartFrame {{ border: 1px solid {colour}; }}")

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.MouseButtonPress:
            for i, chart in enumerate(self.charts):
                if watched is chart._graphics.viewport():
                    self.set_active(i)
        return super().eventFilter(watched, event)
