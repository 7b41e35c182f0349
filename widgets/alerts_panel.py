"""The "Alerts" dock: set price alerts, see which fired, remove them.

A fired alert never opens a dialog or a tray balloon: the market keeps moving and a modal box
would sit in front of the order ticket. Its row turns amber and the main window puts the
alert in the status bar; that is all the interruption a trader asked for.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.alerts import Alert, AlertCondition, AlertFired
from services.domain import Instrument
from widgets.ui_pump import spawn

log = logging.getLogger(__name__)

FIRED_COLOUR = QColor("#6b5200")
HEADERS = ["#", "Symbol", "Condition", "Level", "Status", "Note"]


@runtime_checkable
class AlertsPort(Protocol):
    """What the panel needs of the services (``app.wiring.AppServices`` has it)."""

    def instrument(self, key: str) -> Instrument | None: ...

    async def add_alert(
        self, key: str, condition: AlertCondition | str, level: Decimal, note: str = ""
    ) -> Alert: ...

    async def remove_alert(self, alert_id: int) -> bool: ...

    def alert_list(self) -> list[Alert]: ...


def parse_level(text: str, condition: AlertCondition) -> Decimal:
    """The level typed by the trader, or ValueError with a message fit to show them."""
    cleaned = text.replace(",", "").strip()
    try:
        level = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"Level must be a number, e.g. 2500.50 (got {text!r})") from None
    if not level.is_finite():
        raise ValueError("Level must be a finite number")
    if not condition.unit and level <= 0:
        raise ValueError("A price level must be above zero")
    return level


def status_text(alert: Alert) -> str:
    if alert.active:
        return "active"
    at = alert.triggered_at.strftime("%H:%M:%S") if alert.triggered_at else ""
    if alert.triggered_price is None:
        return f"triggered {at}"
    return f"triggered at {alert.triggered_price} · {at}"


class AlertsPanel(QWidget):
    alertAdded = Signal(int)

    def __init__(self, port: AlertsPort | None) -> None:
        super().__init__()
        self._port = port
        self._fresh: set[int] = set()  # fired in this session: highlighted
        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("NSE:RELIANCE")
        self.condition = QComboBox()
        for condition in AlertCondition:
            self.condition.addItem(condition.label, condition)
        self.level = QLineEdit()
        self.level.setPlaceholderText("level")
        self.level.returnPressed.connect(self.submit)
        self.add_button = QPushButton("Add alert")
        self.add_button.clicked.connect(self.submit)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.message = QLabel("")
        self.message.setObjectName("alertsMessage")
        self.message.setWordWrap(True)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            len(HEADERS) - 1, QHeaderView.ResizeMode.Stretch
        )
        form = QHBoxLayout()
        form.addWidget(self.symbol, 2)
        form.addWidget(self.condition, 2)
        form.addWidget(self.level, 1)
        form.addWidget(self.add_button)
        form.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.table)
        if port is None:
            self.setEnabled(False)
            self.message.setText("Alerts are not available in this session.")
        else:
            self.refresh()

    # Modest hints: the panel shares a tab with the blotters, and its one-line form's natural
    # width made the main window grow past a 1600-pixel screen (measured: 1625).
    def sizeHint(self) -> QSize:
        return QSize(420, 200)

    def minimumSizeHint(self) -> QSize:
        return QSize(300, 120)

    # -- input ---------------------------------------------------------------------------------

    def set_symbol(self, key: str) -> None:
        """Follow the selected instrument (the trader can still type another)."""
        self.symbol.setText(key)

    def selected_condition(self) -> AlertCondition:
        return AlertCondition(self.condition.currentData())

    def submit(self) -> None:
        if self._port is None:
            return
        condition = self.selected_condition()
        key = self.symbol.text().strip().upper()
        if key and ":" not in key:
            key = f"NSE:{key}"
        if not key or self._port.instrument(key) is None:
            self._say(f"Unknown symbol {key or '(empty)'}", error=True)
            return
        try:
            level = parse_level(self.level.text(), condition)
        except ValueError as e:
            self._say(str(e), error=True)
            return
        self.add_button.setEnabled(False)
        spawn(self._add(key, condition, level), name="add-alert")

    async def _add(self, key: str, condition: AlertCondition, level: Decimal) -> None:
        assert self._port is not None
        try:
            alert = await self._port.add_alert(key, condition, level)
        except Exception as e:
            log.exception("alert not added")
            self._say(f"Alert not added: {e}", error=True)
            return
        finally:
            self.add_button.setEnabled(True)
        self.level.clear()
        self._say(f"Alert set: {alert.describe()}")
        self.refresh()
        self.alertAdded.emit(alert.alert_id)

    def remove_selected(self) -> None:
        alert_id = self.selected_id()
        if self._port is None or alert_id is None:
            self._say("Select an alert to remove", error=True)
            return
        spawn(self._remove(alert_id), name="remove-alert")

    async def _remove(self, alert_id: int) -> None:
        assert self._port is not None
        try:
            await self._port.remove_alert(alert_id)
        except Exception as e:
            log.exception("alert not removed")
            self._say(f"Alert not removed: {e}", error=True)
            return
        self._fresh.discard(alert_id)
        self._say(f"Alert #{alert_id} removed")
        self.refresh()

    # -- view ----------------------------------------------------------------------------------
    def apply_fired(self, events: list[AlertFired]) -> None:
        self._fresh.update(e.alert.alert_id for e in events)
        self.refresh()

    def refresh(self) -> None:
        if self._port is None:
            return
        selected = self.selected_id()
        alerts = self._port.alert_list()
        self.table.setRowCount(len(alerts))
        for row, alert in enumerate(alerts):
            cells = [
                str(alert.alert_id),
                alert.key.split(":", 1)[-1],
                alert.condition.label,
                f"{alert.level}{alert.condition.unit}",
                status_text(alert),
                alert.note,
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, alert.alert_id)
                if alert.alert_id in self._fresh:
                    item.setBackground(FIRED_COLOUR)
                self.table.setItem(row, column, item)
            if alert.alert_id == selected:
                self.table.selectRow(row)

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def row_of(self, alert_id: int) -> int | None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == alert_id:
                return row
        return None

    def is_highlighted(self, alert_id: int) -> bool:
        return alert_id in self._fresh

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ff5f57;" if error else "")
