"""The latest model signals, newest first: what each production ensemble called on each bar.

Fed by the main window's UI pump (``apply_signals``), never by its own bus subscription. A
shadow challenger's call is listed too, marked as such, because it is scored in the A/B test
although it never trades.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from models.signals import Signal
from services.clock import IST

COLUMNS = ("Time", "Symbol", "Direction", "P(up)", "Confidence", "Models", "Arm")
MAX_ROWS = 200
UP = QColor("#26a69a")
DOWN = QColor("#ef5350")


def arm_text(signal: Signal) -> str:
    if not signal.ab:
        return ""
    test_id, arm = signal.ab[0]
    return f"{arm}{' (shadow)' if signal.shadow else ''} · {test_id}"


def models_text(signal: Signal) -> str:
    return ", ".join(f"{model_id} v{version}" for model_id, version in signal.models)


class SignalsPanel(QTableWidget):
    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setObjectName("signalsPanel")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.received = 0

    def apply_signals(self, signals: Sequence[Signal]) -> None:
        for signal in sorted(signals, key=lambda s: (s.bar_start, s.shadow)):
            self._insert(signal)
        while self.rowCount() > MAX_ROWS:
            self.removeRow(self.rowCount() - 1)

    def _insert(self, signal: Signal) -> None:
        self.received += 1
        self.insertRow(0)
        up = signal.direction > 0
        values = (
            signal.bar_start.astimezone(IST).strftime("%d %b %H:%M"),
            signal.key,
            ("▲ UP" if up else "▼ DOWN") + f" {signal.timeframe.value}",
            f"{signal.prob_up:.3f}",
            f"{signal.confidence:.2f}",
            models_text(signal),
            arm_text(signal),
        )
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col in (3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if col == 2:
                item.setForeground(UP if up else DOWN)
            if signal.shadow:
                item.setForeground(QColor("#8a8f98"))
            self.setItem(0, col, item)

    def text(self, row: int, column: str) -> str:
        item = self.item(row, COLUMNS.index(column))
        return item.text() if item is not None else ""
