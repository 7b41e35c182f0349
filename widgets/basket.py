"""The basket: several legs sent in order after one confirmation, with margin and payoff.

Legs arrive from the option chain (a contract, a straddle, a strangle) or are added by
hand; each has a side, lots and a limit price (blank for MARKET). Below the legs the panel
shows the margin estimate (``services.options.basket``: documented and conservative) and
the payoff at expiry with its breakevens. "Place basket" asks once, inside the panel, then
sends the legs in the order shown and stops at the first refusal.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.domain import Instrument, Product, Side, format_inr
from services.options.basket import (
    BasketLeg,
    BasketResult,
    Payoff,
    estimate_margin,
    expiry_payoff,
    place_basket,
)
from widgets import theme
from widgets.ports import TerminalFacade
from widgets.ui_pump import spawn

_COLUMNS = ["Contract", "Side", "Lots", "Price", "LTP"]
_basket_ids = itertools.count(1)


class BasketPanel(QWidget):
    basketPlaced = Signal(object)  # BasketResult

    def __init__(self, facade: TerminalFacade) -> None:
        super().__init__()
        self._facade = facade
        self.legs: list[BasketLeg] = []
        self.last_result: BasketResult | None = None
        self.payoff: Payoff | None = None

        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._item_changed)
        self.product = QComboBox()
        self.product.addItems([Product.NRML.value, Product.MIS.value])
        self.remove_button = QPushButton("Remove leg")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.margin = QLabel("")
        self.margin.setObjectName("basketMargin")
        self.margin.setWordWrap(True)
        self.margin.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(140)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLine(y=0, pen=pg.mkPen(theme.MUTED))
        self.curve = self.plot.plot(pen=pg.mkPen(theme.ACCENT))
        self.place_button = QPushButton("Place basket")
        self.place_button.setObjectName("placeButton")
        self.place_button.clicked.connect(self.ask)
        self.confirm_label = QLabel("")
        self.confirm_label.setWordWrap(True)
        self.confirm_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.confirm_button = QPushButton("Confirm")
        self.confirm_button.clicked.connect(self.confirm)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._hide_confirmation)
        self.message = QLabel("")
        self.message.setObjectName("ticketMessage")
        self.message.setWordWrap(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Product"))
        buttons.addWidget(self.product)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.clear_button)
        confirm = QHBoxLayout()
        confirm.addWidget(self.confirm_label, 1)
        confirm.addWidget(self.confirm_button)
        confirm.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.margin)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.place_button)
        layout.addLayout(confirm)
        layout.addWidget(self.message)
        self._hide_confirmation()
        self._refresh()

    def sizeHint(self) -> QSize:
        # The payoff plot and the legs table would ask for ~600 px; the basket shares the
        # ticket's column, so it asks for that column's width.
        return QSize(320, 480)

    # -- legs ----------------------------------------------------------------------------
    def add_leg(self, key: str, side: Side, lots: int = 1) -> bool:
        inst = self._facade.instrument(key)
        if inst is None or not inst.tradable:
            self.message.setText(f"cannot trade {key}")
            return False
        tick = self._facade.last_tick(key)
        price = tick.last_price if tick is not None else None
        self.legs.append(BasketLeg(inst, side, lots, price))
        self._refresh()
        return True

    def set_legs(self, legs: Sequence[tuple[str, Side]]) -> None:
        self.legs = []
        for key, side in legs:
            self.add_leg(key, side)

    def remove_selected(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.legs):
            del self.legs[row]
            self._refresh()

    def clear(self) -> None:
        self.legs = []
        self._refresh()

    def _item_changed(self, item: QTableWidgetItem) -> None:
        row, col = item.row(), item.column()
        if col != 3 or row >= len(self.legs):
            return
        text = item.text().strip().replace(",", "")
        try:
            price = Decimal(text) if text else None
        except InvalidOperation:
            self.message.setText(f"price must be a number, not {text!r}")
            return
        leg = self.legs[row]
        self.legs[row] = BasketLeg(leg.instrument, leg.side, leg.lots, price, leg.order_type)
        self._update_figures()

    def _lots_changed(self, row: int, lots: int) -> None:
        leg = self.legs[row]
        self.legs[row] = BasketLeg(leg.instrument, leg.side, lots, leg.price, leg.order_type)
        self._update_figures()

    def _side_changed(self, row: int, text: str) -> None:
        leg = self.legs[row]
        self.legs[row] = BasketLeg(leg.instrument, Side(text), leg.lots, leg.price, leg.order_type)
        self._update_figures()

    def _refresh(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.legs))
        for row, leg in enumerate(self.legs):
            self.table.setItem(row, 0, _readonly(leg.instrument.tradingsymbol))
            side = QComboBox()
            side.addItems([Side.BUY.value, Side.SELL.value])
            side.setCurrentText(leg.side.value)
            side.currentTextChanged.connect(lambda t, r=row: self._side_changed(r, t))
            self.table.setCellWidget(row, 1, side)
            lots = QSpinBox()
            lots.setRange(1, 10_000)
            lots.setValue(leg.lots)
            lots.valueChanged.connect(lambda v, r=row: self._lots_changed(r, v))
            self.table.setCellWidget(row, 2, lots)
            price = "" if leg.price is None else f"{leg.price}"
            self.table.setItem(row, 3, QTableWidgetItem(price))
            tick = self._facade.last_tick(leg.instrument.key)
            self.table.setItem(row, 4, _readonly("" if tick is None else f"{tick.last_price:,.2f}"))
        self.table.blockSignals(False)
        self.place_button.setText(f"Place basket ({len(self.legs)} legs)")
        self.place_button.setEnabled(bool(self.legs))
        self._update_figures()

    def _price_of(self, key: str) -> Decimal | None:
        tick = self._facade.last_tick(key)
        return None if tick is None else tick.last_price

    def _update_figures(self) -> None:
        if not self.legs:
            self.margin.setText("Add legs from the option chain (right-click a strike).")
            self.curve.setData([], [])
            self.payoff = None
            return
        m = estimate_margin(self.legs, self._price_of)
        centre = self._centre(self.legs[0].instrument)
        self.payoff = expiry_payoff(self.legs, self._price_of, centre) if centre else None
        parts = [
            f"Margin (estimate, see user guide): {format_inr(m.total)}",
            f"premium paid {format_inr(m.premium_paid)}",
            f"received {format_inr(m.premium_received)}",
        ]
        if self.payoff is not None:
            p = self.payoff
            parts.append(
                "breakevens "
                + (", ".join(f"{b:,.0f}" for b in p.breakevens) or "none in ±15%")
            )
            parts.append(f"max profit {_bound(p.max_profit)}")
            parts.append(f"max loss {_bound(p.max_loss)}")
            self.curve.setData(p.prices, p.pnl)
        self.margin.setText("   ".join(parts))

    def _centre(self, inst: Instrument) -> float | None:
        key = inst.underlying or inst.key
        price = self._price_of(key)
        if price is None and inst.strike is not None:
            return float(inst.strike)
        return None if price is None else float(price)

    # -- placing -------------------------------------------------------------------------
    def ask(self) -> None:
        """Show the one confirmation: every leg, in the order it will be sent."""
        if not self.legs:
            return
        lines = [
            f"{n + 1}. {leg.side.value} {leg.quantity} {leg.instrument.tradingsymbol} "
            + ("MARKET" if leg.price is None else f"@ {leg.price}")
            for n, leg in enumerate(self.legs)
        ]
        self.confirm_label.setText("Send in this order?  " + "   ".join(lines))
        for w in (self.confirm_label, self.confirm_button, self.cancel_button):
            w.show()
        self.confirm_button.setFocus()

    def confirm(self) -> None:
        self._hide_confirmation()
        legs = list(self.legs)
        product = Product(self.product.currentText())
        self.place_button.setEnabled(False)
        spawn(self._place(legs, product), name="basket")

    async def _place(self, legs: list[BasketLeg], product: Product) -> None:
        try:
            result = await place_basket(
                legs, self._facade.submit_order, product, f"bk{next(_basket_ids)}-"
            )
        finally:
            self.place_button.setEnabled(bool(self.legs))
        self.last_result = result
        self.message.setText(result.message)
        self.basketPlaced.emit(result)

    def _hide_confirmation(self) -> None:
        for w in (self.confirm_label, self.confirm_button, self.cancel_button):
            w.hide()


def _bound(value: float | None) -> str:
    return "unlimited" if value is None else format_inr(Decimal(round(value)))


def _readonly(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item
