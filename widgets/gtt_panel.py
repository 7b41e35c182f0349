"""GTT orders: place a single or OCO good-till-triggered order and follow or cancel them.

The symbol follows the selected instrument (as the ticket does). Single: one trigger and the
limit order it sends. OCO: a stop trigger below the price and a target above, each with its
limit price, both closing the same quantity; the first reached fires and voids the other.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.domain import Instrument, OrderRequest, OrderType, Product, Side
from services.gtt import Gtt, GttError, GttKind

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_COLUMNS = ["#", "Symbol", "Kind", "Triggers", "Status", "Order / message"]


class GttPort(Protocol):
    def instrument(self, key: str) -> Instrument | None: ...

    def place_gtt_single(self, trigger: Decimal, order: OrderRequest) -> Gtt: ...

    def place_gtt_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt: ...

    def cancel_gtt(self, gtt_id: int) -> Gtt: ...

    def gtt_list(self) -> list[Gtt]: ...


def _price(field: QLineEdit, name: str) -> Decimal:
    text = field.text().strip().replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise GttError(f"{name} must be a number, not {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise GttError(f"{name} must be a positive price")
    return value


class GttPanel(QWidget):
    def __init__(self, port: GttPort) -> None:
        super().__init__()
        self._port = port
        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("NSE:SYMBOL")
        self.kind = QComboBox()
        self.kind.addItems(["Single", "OCO"])
        self.side = QComboBox()
        self.side.addItems([Side.SELL.value, Side.BUY.value])
        self.product = QComboBox()
        self.product.addItems([p.value for p in Product])
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 10_000_000)
        self.trigger = QLineEdit()
        self.price = QLineEdit()
        self.target_trigger = QLineEdit()
        self.target_price = QLineEdit()
        for field, hint in (
            (self.trigger, "trigger (stop for OCO)"),
            (self.price, "limit price"),
            (self.target_trigger, "target trigger (OCO)"),
            (self.target_price, "target limit price (OCO)"),
        ):
            field.setPlaceholderText(hint)
        self.place_button = QPushButton("Place GTT")
        self.place_button.clicked.connect(self.place)
        self.cancel_button = QPushButton("Cancel selected")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.message = QLabel("")
        self.message.setObjectName("ticketMessage")
        self.message.setWordWrap(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)

        form = QFormLayout()
        form.addRow("Symbol", self.symbol)
        row = QHBoxLayout()
        for w in (self.kind, self.side, self.product, self.quantity):
            row.addWidget(w)
        form.addRow("Order", row)
        form.addRow("Trigger / price", _pair(self.trigger, self.price))
        form.addRow("Target (OCO)", _pair(self.target_trigger, self.target_price))
        buttons = QHBoxLayout()
        buttons.addWidget(self.place_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self._kind_changed(self.kind.currentText())

    def set_symbol(self, key: str) -> None:
        self.symbol.setText(key)
        inst = self._port.instrument(key)
        if inst is not None:
            self.quantity.setSingleStep(inst.lot_size)
            if self.quantity.value() % inst.lot_size:
                self.quantity.setValue(inst.lot_size)

    def _kind_changed(self, text: str) -> None:
        oco = text == "OCO"
        self.target_trigger.setEnabled(oco)
        self.target_price.setEnabled(oco)

    def _order(self, price: Decimal) -> OrderRequest:
        return OrderRequest(
            key=self.symbol.text().strip().upper(),
            side=Side(self.side.currentText()),
            quantity=self.quantity.value(),
            order_type=OrderType.LIMIT,
            product=Product(self.product.currentText()),
            price=price,
            source="gtt",
        )

    def place(self) -> Gtt | None:
        try:
            key = self.symbol.text().strip().upper()
            if self._port.instrument(key) is None:
                raise GttError(f"unknown symbol {key or '(empty)'}")
            trigger = _price(self.trigger, "trigger")
            price = _price(self.price, "limit price")
            if self.kind.currentText() == "OCO":
                target = _price(self.target_trigger, "target trigger")
                target_price = _price(self.target_price, "target limit price")
                gtt = self._port.place_gtt_oco(
                    trigger, self._order(price), target, self._order(target_price)
                )
            else:
                gtt = self._port.place_gtt_single(trigger, self._order(price))
        except GttError as e:
            self.message.setText(str(e))
            return None
        self.message.setText(f"GTT {gtt.gtt_id} placed ({gtt.kind.value})")
        self.refresh()
        return gtt

    def cancel_selected(self) -> None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is None:
            return
        try:
            self._port.cancel_gtt(int(item.text()))
        except GttError as e:
            self.message.setText(str(e))
        self.refresh()

    def apply_gtts(self, _gtts: list[Gtt]) -> None:
        self.refresh()

    def refresh(self) -> None:
        gtts = list(reversed(self._port.gtt_list()))
        self.table.setRowCount(len(gtts))
        for row, gtt in enumerate(gtts):
            triggers = " / ".join(f"{leg.trigger}" for leg in gtt.legs)
            kind = "OCO" if gtt.kind is GttKind.OCO else "single"
            cells = [
                str(gtt.gtt_id), gtt.key, kind, triggers, gtt.status.value,
                gtt.order_id or gtt.message,
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (0, 3):
                    item.setTextAlignment(_RIGHT)
                self.table.setItem(row, col, item)


def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(a)
    row.addWidget(b)
    return row
