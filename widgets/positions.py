"""Positions with live mark-to-market.

The broker publishes a position when a fill changes it; between fills the unrealised P&L moves
with every tick, so this view marks each row to the newest tick it has seen itself instead of
waiting for the broker to republish.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QVBoxLayout, QWidget

from services.domain import ZERO, Position, Tick
from widgets import theme
from widgets.blotter_view import BlotterView
from widgets.narrow import ColumnFitter
from widgets.ports import TerminalFacade
from widgets.table_model import CENTER, RIGHT, Column, LivePriceModel, fmt_int, fmt_price


def _pnl_colour(value: Decimal) -> QColor:
    return theme.signed_colour(value)


COLUMNS: list[Column[Position]] = [
    Column("Symbol", lambda p: p.key.split(":", 1)[-1]),
    Column("Product", lambda p: p.product.value, CENTER),
    Column("Qty", lambda p: fmt_int(p.quantity), RIGHT, lambda p: _pnl_colour(Decimal(p.quantity))),
    Column("Avg", lambda p: fmt_price(p.average_price) if p.quantity else "", RIGHT),
    Column("LTP", lambda p: fmt_price(p.last_price), RIGHT),
    Column(
        "Realised",
        lambda p: fmt_price(p.realised_pnl),
        RIGHT,
        lambda p: _pnl_colour(p.realised_pnl),
    ),
    Column(
        "Unrealised",
        lambda p: fmt_price(p.unrealised_pnl),
        RIGHT,
        lambda p: _pnl_colour(p.unrealised_pnl),
    ),
    Column("P&L", lambda p: fmt_price(p.pnl), RIGHT, lambda p: _pnl_colour(p.pnl)),
    Column("Charges", lambda p: fmt_price(p.charges), RIGHT),
    Column("Net P&L", lambda p: fmt_price(p.net_pnl), RIGHT, lambda p: _pnl_colour(p.net_pnl)),
]


class PositionsModel(LivePriceModel[Position]):
    def __init__(self) -> None:
        super().__init__(COLUMNS, key=lambda p: (p.key, p.product), first_live_column=4)

    def apply_positions(self, positions: list[Position]) -> None:
        self.upsert(self.marked(positions))

    def total_pnl(self) -> Decimal:
        return sum((p.pnl for p in self.rows()), ZERO)

    def total_charges(self) -> Decimal:
        return sum((p.charges for p in self.rows()), ZERO)


class PositionsWidget(QWidget):
    def __init__(self, facade: TerminalFacade) -> None:
        super().__init__()
        self._facade = facade
        self.model = PositionsModel()
        self.table = BlotterView()
        self.table.setModel(self.model)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setDefaultSectionSize(110)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # numbers stay together
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # Narrow: the symbol, P&L and quantity stay; charges and the product go first.
        self.column_fit = ColumnFitter(self.table, [0, 7, 2, 9, 4, 3, 6, 5, 1, 8])
        self.total = QLabel("")
        self.total.setObjectName("positionsTotal")
        footer = QHBoxLayout()
        footer.addStretch(1)
        footer.addWidget(self.total)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        layout.addLayout(footer)
        self.resync()

    def resync(self) -> None:
        self.model.reset(self._facade.position_list())
        self._update_total()

    def apply_positions(self, positions: list[Position]) -> None:
        self.model.apply_positions(positions)
        self._update_total()

    def apply_ticks(self, ticks: list[Tick]) -> None:
        if self.model.rowCount():
            self.model.apply_ticks(ticks)
            self._update_total()

    def _update_total(self) -> None:
        gross = self.model.total_pnl()
        charges = self.model.total_charges()
        net = gross - charges
        colour = theme.signed_colour(net).name()
        self.total.setText(
            f"Net P&amp;L <b style='color:{colour}'>{fmt_price(net)}</b>"
            f" &nbsp; gross {fmt_price(gross)}, charges {fmt_price(charges)}"
            if self.model.rowCount()
            else ""
        )
