"""The risk panel: trading state, every limit beside its usage, rejections by rule, kill switch.

It reads ``RiskEngine.status()`` (plain data, answered from memory) rather than listening to
its own events: the window marks it dirty on ORDERS/POSITIONS batches and a timer repaints it
at most four times a second, plus once a second regardless, because the order-rate window and
the day's loss move with time and ticks even when no order changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.clock import to_ist
from services.domain import format_inr
from services.risk import LimitUsage, TradingState
from services.risk.engine import RiskEngine
from widgets import theme
from widgets.narrow import yield_width

MIN_REFRESH_SECONDS = 0.25
IDLE_REFRESH_SECONDS = 1.0

STATE_COLOURS = {
    TradingState.ACTIVE: "#26c281",
    TradingState.REDUCING: "#e3b341",
    TradingState.HALTED: "#ff5f57",
}

# Rule id -> (label, how the limit is written).
_LIMITS: dict[str, tuple[str, str]] = {
    "max_open_orders": ("Open orders", "count"),
    "order_rate": ("Order rate (per s)", "count"),
    "daily_loss": ("Daily loss", "money"),
    "max_drawdown": ("Drawdown", "money"),
    "max_order_value": ("Order value", "money"),
    "max_order_quantity": ("Order quantity", "count"),
    "duplicate_order": ("Duplicate window", "seconds"),
    "margin": ("Margin check", "flag"),
    "price_band": ("Equity price band", "percent"),
}

_RULES = {
    "trading_state": "Trading state",
    "reduce_only": "Reduce only",
    "order_validation": "Order validation",
    "lot_size": "Lot size",
    "tick_size": "Tick size",
    "freeze_quantity": "Freeze quantity",
}


def rule_label(rule: str) -> str:
    if rule in _LIMITS:
        return _LIMITS[rule][0]
    return _RULES.get(rule, rule.replace("_", " ").capitalize())


def format_limit(rule: str, value: object) -> str:
    kind = _LIMITS.get(rule, ("", "count"))[1]
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if kind == "money" and isinstance(value, Decimal | int):
        return format_inr(Decimal(value))
    if kind == "seconds":
        return f"{value} s"
    if kind == "percent":
        return f"±{value} %"
    return f"{value:,}" if isinstance(value, int) else str(value)


def usage_ratio(usage: LimitUsage) -> float | None:
    limit, used = usage.limit, usage.used
    if used is None or limit is None or isinstance(limit, bool):
        return None
    if not limit:
        return None
    return float(used) / float(limit)


class RiskPanel(QWidget):
    killRequested = Signal()
    stateShown = Signal(str, str)  # state, colour: for the status bar

    def __init__(self, engine: RiskEngine) -> None:
        super().__init__()
        self.engine = engine
        # Called with the reason after a resume here (the window resumes the order node too).
        self.after_resume: Callable[[str], None] | None = None
        self.refreshes = 0
        self._dirty = True
        self._last_refresh = 0.0

        self.state_label = QLabel("")
        self.state_label.setObjectName("riskState")
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason_label = QLabel("")
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #8b95a5;")

        self.limits = QTableWidget(len(_LIMITS), 3)
        self.limits.setHorizontalHeaderLabels(["Limit", "Configured", "In use"])
        self._setup_table(self.limits)
        self._limit_cells: dict[str, tuple[QTableWidgetItem, QTableWidgetItem]] = {}
        for row, rule in enumerate(_LIMITS):
            configured, used = _right(""), _right("")
            self.limits.setItem(row, 0, QTableWidgetItem(rule_label(rule)))
            self.limits.setItem(row, 1, configured)
            self.limits.setItem(row, 2, used)
            self._limit_cells[rule] = (configured, used)
        self._rejection_rows: list[tuple[str, str]] = []

        self.rejections = QTableWidget(0, 2)
        self.rejections.setHorizontalHeaderLabels(["Rejected by rule", "Count"])
        self._setup_table(self.rejections)
        self.totals_label = QLabel("")
        self.totals_label.setStyleSheet("color: #8b95a5;")

        self.square_off = QCheckBox("Kill switch also squares off all positions")
        self.square_off.setChecked(True)
        self.square_off.setToolTip(
            "Checked: Ctrl+Shift+K cancels every open order, closes every position at market "
            "and halts trading. Unchecked: it cancels and halts but keeps positions."
        )
        self.kill_button = QPushButton("KILL SWITCH   Ctrl+Shift+K")
        self.kill_button.setObjectName("killButton")
        self.kill_button.setStyleSheet(
            "QPushButton#killButton { background-color: #8e1f1a; border: 1px solid #ff5f57;"
            " color: white; font-weight: bold; padding: 6px; }"
            "QPushButton#killButton:hover { background-color: #b3261e; }"
        )
        self.kill_button.clicked.connect(self.killRequested)
        self.resume_button = QPushButton("Resume trading…")
        self.resume_button.clicked.connect(self.ask_resume)
        self.message = QLabel("")
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.resume_dialog: QInputDialog | None = None

        # Stacked, not side by side: the resume button appearing must not widen the dock.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.state_label)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.resume_button)
        layout.addWidget(self.kill_button)
        layout.addWidget(self.square_off)
        layout.addWidget(self.message)
        layout.addWidget(self.limits, 3)
        layout.addWidget(self.rejections, 1)
        layout.addWidget(self.totals_label)
        # On a 720-pixel screen the tables shrink (and scroll) before the kill switch moves.
        self.limits.setMinimumHeight(48)
        self.rejections.setMinimumHeight(36)
        yield_width(self.reason_label, self.message, self.totals_label)

        self._timer = QTimer(self)
        self._timer.setInterval(int(MIN_REFRESH_SECONDS * 1000))
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.refresh()

    @staticmethod
    def _setup_table(table: QTableWidget) -> None:
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        table.verticalHeader().setDefaultSectionSize(20)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, table.columnCount()):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

    # -- refresh -----------------------------------------------------------------------------
    def mark_dirty(self, _batch: object = None) -> None:
        """Called with ORDERS/POSITIONS batches: repaint at the next timer tick."""
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty or time.monotonic() - self._last_refresh >= IDLE_REFRESH_SECONDS:
            self.refresh()

    def refresh(self) -> None:
        status = self.engine.status()
        self._dirty = False
        self._last_refresh = time.monotonic()
        self.refreshes += 1
        self._show_state(status)
        limits: Mapping[str, LimitUsage] = status["limits"]
        for rule, usage in limits.items():
            cells = self._limit_cells.get(rule)
            if cells is None:
                continue
            configured, used_item = cells
            configured.setText(format_limit(rule, usage.limit))
            used_item.setText("" if usage.used is None else format_limit(rule, usage.used))
            used_item.setForeground(_usage_colour(usage_ratio(usage)))
        rejections: Mapping[str, int] = status["rejections"]
        rows = sorted(((r, n) for r, n in rejections.items() if n), key=lambda x: -x[1])
        self.rejections.setRowCount(len(rows))
        self._rejection_rows = [(rule_label(rule), f"{count:,}") for rule, count in rows]
        for i, (rule, count) in enumerate(rows):
            self.rejections.setItem(i, 0, QTableWidgetItem(rule_label(rule)))
            item = _right(f"{count:,}")
            item.setForeground(theme.DOWN)
            self.rejections.setItem(i, 1, item)
        total = sum(rejections.values())
        self.totals_label.setText(f"{status['accepted']:,} orders passed · {total:,} rejected")

    def _show_state(self, status: Mapping[str, Any]) -> None:
        state = TradingState(status["state"])
        colour = STATE_COLOURS[state]
        if self.state_label.text() != state.value:
            self.stateShown.emit(state.value, colour)
        self.state_label.setText(state.value)
        self.state_label.setStyleSheet(
            f"QLabel#riskState {{ color: white; background-color: {colour}; font-size: 16px;"
            " font-weight: bold; padding: 6px; border-radius: 3px; }"
        )
        parts = []
        if status["reason"]:
            parts.append(str(status["reason"]))
        changed_at = status["changed_at"]
        if changed_at is not None:
            who = f" by {status['changed_by']}" if status["changed_by"] else ""
            when = to_ist(changed_at)
            today = to_ist(datetime.now(UTC)).date()
            since = f"{when:%H:%M:%S}" if when.date() == today else f"{when:%d %b %Y %H:%M:%S}"
            parts.append(f"since {since} IST{who}")
        self.reason_label.setText(" · ".join(parts))
        self.resume_button.setVisible(state is TradingState.HALTED)

    def state_text(self) -> str:
        return self.state_label.text()

    def limit_text(self, rule: str, column: int) -> str:
        """Column 1: the configured limit; column 2: its current use."""
        return self._limit_cells[rule][column - 1].text()

    def rejection_counts(self) -> dict[str, str]:
        return dict(self._rejection_rows)

    # -- resume ------------------------------------------------------------------------------
    def ask_resume(self) -> QInputDialog:
        """Ask why trading may resume (non-blocking); the answer goes to the audit log."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Resume trading")
        dialog.setLabelText(
            "Trading is HALTED. Why is it safe to resume? (recorded in the audit log)"
        )
        dialog.setOkButtonText("Resume")
        dialog.textValueSelected.connect(self.resume)
        self.resume_dialog = dialog
        dialog.open()
        return dialog

    def resume(self, reason: str) -> None:
        reason = reason.strip()
        if not reason:
            self.message.setText("Trading stays HALTED: resuming needs a reason.")
            return
        try:
            state = self.engine.resume(actor="user", reason=reason)
        except Exception as e:  # StateTransitionError, ValueError: say it, do not crash
            self.message.setText(f"Could not resume: {e}")
        else:
            if self.after_resume is not None:
                self.after_resume(reason)
            self.message.setText(
                ""
                if state is TradingState.ACTIVE
                else f"Resumed into {state.value}: a loss limit is still crossed, so only orders "
                "that reduce positions pass."
            )
        self.refresh()


def _right(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _usage_colour(ratio: float | None) -> QColor:
    if ratio is None:
        return theme.MUTED
    if ratio >= 1:
        return theme.DOWN
    if ratio >= 0.8:
        return QColor("#e3b341")
    return theme.NEUTRAL
