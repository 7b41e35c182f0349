"""Funds and margins: what the account started with, what is free, what is blocked, the P&L.

The paper broker republishes funds on every tick that moves a position, many times a frame
at a busy feed; nobody reads a number that changes sixty times a second. The panel keeps
only the newest snapshot and paints it on a slow timer, a few times a second at most.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from services.domain import Funds, format_inr
from widgets import theme

REPAINT_MS = 250
WAITING_TEXT = "Waiting for the broker's funds…"

FIELDS: list[tuple[str, Callable[[Funds], Decimal], bool]] = [
    ("Opening balance", lambda f: f.opening_balance, False),
    ("Available cash", lambda f: f.available_cash, False),
    ("Margin used", lambda f: f.margin_used, False),
    ("Realised P&L", lambda f: f.realised_pnl, True),
    ("Unrealised P&L", lambda f: f.unrealised_pnl, True),
    ("Charges", lambda f: f.charges, False),
    ("Net P&L", lambda f: f.net_pnl, True),
]


def rupees(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{format_inr(abs(amount))}"


class FundsPanel(QWidget):
    def __init__(self, funds: Callable[[], Funds | None], repaint_ms: int = REPAINT_MS) -> None:
        super().__init__()
        self._read = funds
        self._latest: Funds | None = funds()
        self._shown: Funds | None = None
        self.repaints = 0
        self.status = QLabel(WAITING_TEXT)
        self.status.setStyleSheet(f"color: {theme.MUTED.name()};")
        self.values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(3)
        for row, (name, _value, _signed) in enumerate(FIELDS):
            if row == 3:
                rule = QFrame()
                rule.setFrameShape(QFrame.Shape.HLine)
                rule.setStyleSheet(f"color: {theme.PANEL.lighter(160).name()};")
                grid.addWidget(rule, 2 * row - 1, 0, 1, 2)
            title = QLabel(name)
            title.setStyleSheet(f"color: {theme.MUTED.name()};")
            value = QLabel("—")
            value.setObjectName(f"funds:{name}")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(title, 2 * row, 0)
            grid.addWidget(value, 2 * row, 1)
            self.values[name] = value
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(grid)
        layout.addStretch(1)
        layout.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setInterval(repaint_ms)
        self._timer.timeout.connect(self._paint)
        self._timer.start()
        self._paint()

    def apply_funds(self, funds: list[Funds]) -> None:
        """Keep the newest snapshot; the timer paints it."""
        if funds:
            self._latest = funds[-1]

    def resync(self) -> None:
        self._latest = self._read()
        self._paint()

    def value_text(self, name: str) -> str:
        return self.values[name].text()

    def _paint(self) -> None:
        funds = self._latest
        if funds is None or funds == self._shown:
            return
        self._shown = funds
        self.repaints += 1
        for name, value_of, signed in FIELDS:
            amount = value_of(funds)
            label = self.values[name]
            label.setText(rupees(amount))
            colour = theme.signed_colour(amount) if signed else theme.NEUTRAL
            label.setStyleSheet(f"color: {colour.name()}; font-weight: bold;")
        self.status.setText("")
        self.status.hide()
