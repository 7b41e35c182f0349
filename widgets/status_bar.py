"""The status bar: connection state, session (encrypted or in memory), trading state, funds,
feed rate and the IST clock.

The clock and the ticks/s figure change once a second, so a one-second QTimer drives just those
two labels; everything else arrives through the UI pump like any other view update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from services.clock import IST
from services.domain import ConnectionState, ConnectionStatus, Funds, format_inr
from widgets.fence import fence

_DOT = "●"


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class TerminalStatusBar(QStatusBar):
    def __init__(self, ticks_published: Callable[[], int]) -> None:
        super().__init__()
        self.setSizeGripEnabled(False)
        self._ticks_published = ticks_published
        self._last_count = ticks_published()
        self._last_time = time.monotonic()
        self.connections: dict[str, QLabel] = {}
        self.funds_label = QLabel("Funds —")
        self.rate_label = QLabel("0 ticks/s")
        self.clock_label = QLabel("")
        self.session_label = QLabel("")
        self.trading_label = QLabel("")
        self.ticks_per_second = 0.0
        for label in (
            self.session_label,
            self.trading_label,
            self.funds_label,
            self.rate_label,
            self.clock_label,
        ):
            self.addPermanentWidget(fence(label))  # clock and rate change every second
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.refresh_clock)
        self._timer.start()
        self.refresh_clock()

    def apply_connections(self, states: list[ConnectionState]) -> None:
        for state in states:
            label = self.connections.get(state.component)
            if label is None:
                label = QLabel()
                self.connections[state.component] = label
                self.addWidget(label)
            kind, _, name = state.component.partition(":")
            text = f"{_DOT} {kind} {name} {state.status.value.lower()}"
            if state.detail and state.status is not ConnectionStatus.CONNECTED:
                text += f" ({state.detail})"
            label.setText(text)
            label.setToolTip(state.detail)
            label.setProperty("state", state.status.value)
            _repolish(label)

    def connection_text(self, component: str) -> str:
        label = self.connections.get(component)
        return "" if label is None else label.text()

    def set_session(self, text: str, *, warning: bool = False) -> None:
        """Say where this session's data goes (an encrypted profile, or nowhere)."""
        self.session_label.setText(text)
        self.session_label.setStyleSheet("color: #e3b341;" if warning else "")

    def set_trading_state(self, state: str, colour: str) -> None:
        self.trading_label.setText(f"Trading {state}")
        self.trading_label.setStyleSheet(f"color: {colour}; font-weight: bold;")

    def apply_funds(self, funds: list[Funds]) -> None:
        if funds:
            f = funds[-1]
            self.funds_label.setText(
                f"Available {format_inr(f.available_cash)}"
                f"   Margin used {format_inr(f.margin_used)}"
            )

    def refresh_clock(self) -> None:
        now = time.monotonic()
        count = self._ticks_published()
        elapsed = now - self._last_time
        if elapsed > 0.2:
            self.ticks_per_second = (count - self._last_count) / elapsed
            self._last_count, self._last_time = count, now
            self.rate_label.setText(f"{self.ticks_per_second:,.0f} ticks/s")
        # Short, so that it is not the one cut off at 1366 px; the date is in the tooltip.
        ist = datetime.now(IST)
        self.clock_label.setText(f"{ist:%a %H:%M:%S} IST")
        self.clock_label.setToolTip(f"{ist:%A %d %B %Y}, India Standard Time")
