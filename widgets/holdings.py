"""Delivery holdings: the demat portfolio, marked to the live market.

The broker's holdings snapshot changes only with settlement and corporate actions, so the
facade refreshes it rarely (every minute, or daily with Kite) and this view only compares it
with the last one it saw on a slow timer. The prices in that snapshot are as old as the
snapshot, so each row is marked to the newest tick of its symbol instead; asking the facade
for a symbol's last tick also makes a live broker stream it.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Protocol

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.domain import ZERO, Holding, Tick
from widgets import theme
from widgets.blotter_view import BlotterView
from widgets.table_model import RIGHT, Column, LivePriceModel, fmt_int, fmt_price

EMPTY_TEXT = (
    "No delivery holdings. CNC buys settle into holdings on T+1 at a real broker; "
    "the paper broker keeps them as positions."
)
SNAPSHOT_POLL_MS = 5_000


class HoldingsSource(Protocol):
    def holding_list(self) -> list[Holding]: ...

    def last_tick(self, key: str) -> Tick | None: ...


def invested(h: Holding) -> Decimal:
    return h.average_price * h.quantity


def current_value(h: Holding) -> Decimal:
    return h.last_price * h.quantity


def pnl_percent(h: Holding) -> Decimal | None:
    cost = invested(h)
    return None if cost == 0 else h.pnl * 100 / cost


def fmt_percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value:+,.2f}%"


def _colour(h: Holding) -> QColor:
    return theme.signed_colour(h.pnl)


COLUMNS: list[Column[Holding]] = [
    Column("Symbol", lambda h: h.key.split(":", 1)[-1]),
    Column("Qty", lambda h: fmt_int(h.quantity), RIGHT),
    Column("Avg", lambda h: fmt_price(h.average_price), RIGHT),
    Column("LTP", lambda h: fmt_price(h.last_price), RIGHT),
    Column("Invested", lambda h: fmt_price(invested(h)), RIGHT),
    Column("Current", lambda h: fmt_price(current_value(h)), RIGHT),
    Column("P&L", lambda h: fmt_price(h.pnl), RIGHT, _colour),
    Column("P&L %", lambda h: fmt_percent(pnl_percent(h)), RIGHT, _colour),
]


class HoldingsModel(LivePriceModel[Holding]):
    def __init__(self) -> None:
        super().__init__(COLUMNS, key=lambda h: h.key, first_live_column=3)

    def set_holdings(self, holdings: list[Holding]) -> None:
        """Replace the rows with a new broker snapshot, keeping the live prices seen so far."""
        self.reset(self.marked(holdings))

    def totals(self) -> tuple[Decimal, Decimal, Decimal]:
        """Invested, current value and P&L of the whole portfolio."""
        rows = self.rows()
        cost = sum((invested(h) for h in rows), ZERO)
        value = sum((current_value(h) for h in rows), ZERO)
        return cost, value, value - cost


class HoldingsWidget(QWidget):
    def __init__(self, facade: HoldingsSource, poll_ms: int = SNAPSHOT_POLL_MS) -> None:
        super().__init__()
        self._facade = facade
        self._snapshot: list[Holding] | None = None
        self.model = HoldingsModel()
        self.table = BlotterView()
        self.table.setModel(self.model)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setDefaultSectionSize(110)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("holdingsEmpty")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet(f"color: {theme.MUTED.name()}; padding: 16px;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)
        self.total = QLabel("")
        self.total.setObjectName("holdingsTotal")
        footer = QHBoxLayout()
        footer.addStretch(1)
        footer.addWidget(self.total)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.stack)
        layout.addLayout(footer)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)
        self.refresh()

    @property
    def is_empty(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def start(self) -> None:
        self.refresh()
        self._timer.start()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already deleted with its window
            self._timer.stop()

    def refresh(self) -> None:
        """Take the facade's snapshot if it changed since the last look (cheap otherwise)."""
        holdings = self._facade.holding_list()
        if holdings == self._snapshot:
            return
        self._snapshot = holdings
        ticks = [t for h in holdings if (t := self._facade.last_tick(h.key)) is not None]
        self.model.set_holdings(holdings)
        if ticks:
            self.model.apply_ticks(ticks)
        self.stack.setCurrentWidget(self.table if holdings else self.empty)
        self._update_total()

    def apply_ticks(self, ticks: list[Tick]) -> None:
        if self.model.rowCount():
            self.model.apply_ticks(ticks)
            self._update_total()

    def _update_total(self) -> None:
        if not self.model.rowCount():
            self.total.setText("")
            return
        cost, value, pnl = self.model.totals()
        colour = theme.signed_colour(pnl).name()
        percent = fmt_percent(None if cost == 0 else pnl * 100 / cost)
        self.total.setText(
            f"Invested <b>{fmt_price(cost)}</b> &nbsp; Current <b>{fmt_price(value)}</b>"
            f" &nbsp; P&amp;L <b style='color:{colour}'>{fmt_price(pnl)} ({percent})</b>"
        )
