"""The order book: every order of the session, newest first, with cancel and modify.

The broker is the source of truth: this view only shows what ``ORDERS`` events say and asks
the facade to cancel or modify; it never changes a row itself.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.broker import BrokerError, OrderChange
from services.clock import to_ist
from services.domain import Order, OrderStatus, Side
from services.validation import OrderValidationError, check_price_on_grid
from widgets import theme
from widgets.blotter_view import BlotterView
from widgets.order_ticket import parse_price
from widgets.ports import TerminalFacade
from widgets.table_model import CENTER, RIGHT, Column, RowTableModel, fmt_int, fmt_price
from widgets.ui_pump import spawn

_STATUS_COLOURS = {
    OrderStatus.FILLED: theme.UP,
    OrderStatus.REJECTED: theme.DOWN,
    OrderStatus.CANCELLED: theme.MUTED,
    OrderStatus.OPEN: QColor("#e3b341"),
    OrderStatus.PARTIALLY_FILLED: QColor("#e3b341"),
    OrderStatus.TRIGGER_PENDING: QColor("#58a6ff"),
}


def _side_colour(o: Order) -> QColor:
    return theme.UP if o.side is Side.BUY else theme.DOWN


def _symbol(key: str) -> str:
    return key.split(":", 1)[-1]


COLUMNS: list[Column[Order]] = [
    Column("Time", lambda o: f"{to_ist(o.placed_at):%H:%M:%S}"),
    Column("Id", lambda o: o.order_id),
    Column("Symbol", lambda o: _symbol(o.key)),
    Column("Side", lambda o: o.side.value, CENTER, _side_colour),
    Column("Type", lambda o: o.request.order_type.value, CENTER),
    Column("Product", lambda o: o.request.product.value, CENTER),
    Column("Qty", lambda o: fmt_int(o.quantity), RIGHT),
    Column("Filled", lambda o: fmt_int(o.filled_quantity), RIGHT),
    Column("Price", lambda o: fmt_price(o.request.price), RIGHT),
    Column("Trigger", lambda o: fmt_price(o.request.trigger_price), RIGHT),
    Column("Avg price", lambda o: fmt_price(o.average_price) if o.filled_quantity else "", RIGHT),
    Column("Status", lambda o: o.status.value, CENTER, lambda o: _STATUS_COLOURS.get(o.status)),
    Column("Message", lambda o: o.status_message),
]


class OrderBookModel(RowTableModel[Order]):
    def __init__(self) -> None:
        super().__init__(COLUMNS, key=lambda o: o.order_id, newest_first=True)


class ModifyDialog(QDialog):
    """Change quantity, price or trigger of a working order; refuses off-grid prices."""

    def __init__(
        self, order: Order, tick_size: Decimal | None, lot_size: int, parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Modify order {order.order_id}")
        self.order = order
        self._tick = tick_size
        req = order.request
        self.quantity = QSpinBox()
        self.quantity.setRange(lot_size, 10_000_000)
        self.quantity.setSingleStep(lot_size)
        self.quantity.setValue(req.quantity)
        self.price = QLineEdit("" if req.price is None else f"{req.price}")
        self.price.setEnabled(req.order_type.needs_price)
        self.trigger = QLineEdit("" if req.trigger_price is None else f"{req.trigger_price}")
        self.trigger.setEnabled(req.order_type.needs_trigger)
        self.message = QLabel("")
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(f"{req.side} {req.key}  {req.order_type} {req.product}"))
        form.addRow("Quantity", self.quantity)
        form.addRow("Price", self.price)
        form.addRow("Trigger", self.trigger)
        form.addRow(self.message)
        form.addRow(self.buttons)
        self.change: OrderChange | None = None

    def build_change(self) -> OrderChange:
        tick = self._tick or Decimal("0.05")
        price = parse_price("price", self.price.text()) if self.price.isEnabled() else None
        trigger = (
            parse_price("trigger_price", self.trigger.text()) if self.trigger.isEnabled() else None
        )
        if price is not None:
            check_price_on_grid("price", price, tick)
        if trigger is not None:
            check_price_on_grid("trigger_price", trigger, tick)
        req = self.order.request
        qty = self.quantity.value()
        return OrderChange(
            quantity=qty if qty != req.quantity else None,
            price=price if price != req.price else None,
            trigger_price=trigger if trigger != req.trigger_price else None,
        )

    def accept(self) -> None:
        try:
            self.change = self.build_change()
        except OrderValidationError as e:
            self.message.setText(e.message)
            return
        super().accept()


class OrderBookWidget(QWidget):
    def __init__(self, facade: TerminalFacade) -> None:
        super().__init__()
        self._facade = facade
        self.model = OrderBookModel()
        self.table = BlotterView()
        self.table.setModel(self.model)
        widths = {"Time": 70, "Id": 90, "Symbol": 110, "Side": 50, "Qty": 64, "Filled": 64}
        for i, col in enumerate(COLUMNS):
            self.table.setColumnWidth(i, widths.get(col.header, 80))
        self.table.deleteRequested.connect(self.cancel_selected)
        self.table.doubleClicked.connect(lambda _index: self.modify_selected())

        self.cancel_button = QPushButton("Cancel order")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.modify_button = QPushButton("Modify…")
        self.modify_button.clicked.connect(self.modify_selected)
        self.message = QLabel("")
        self.message.setObjectName("panelMessage")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.modify_button)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self.dialog: ModifyDialog | None = None
        self.resync()

    def apply_orders(self, orders: list[Order]) -> None:
        self.model.upsert(orders)

    def resync(self) -> None:
        """Rebuild from the order manager's snapshot (start-up, or after the view lagged)."""
        orders = sorted(self._facade.order_list(), key=lambda o: o.placed_at)
        self.model.reset(orders)

    def select_order(self, order_id: str) -> None:
        row = self.model.row_of(order_id)
        if row is not None:
            self.table.selectRow(row)

    def selected_order(self) -> Order | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.row_at(index.row())

    def cancel_selected(self) -> None:
        order = self.selected_order()
        if order is None:
            self._say("select an order to cancel")
            return
        if order.status.is_terminal:
            self._say(f"order {order.order_id} is already {order.status.value.lower()}")
            return
        self._say("")
        spawn(self._cancel(order.order_id), name="orderbook-cancel")

    async def _cancel(self, order_id: str) -> None:
        try:
            await self._facade.cancel_order(order_id)
        except BrokerError as e:
            self._say(f"cancel {order_id}: {e}")

    def modify_selected(self) -> ModifyDialog | None:
        order = self.selected_order()
        if order is None or order.status.is_terminal:
            self._say("select a working order to modify")
            return None
        inst = self._facade.instrument(order.key)
        dialog = ModifyDialog(
            order,
            inst.tick_size if inst else None,
            inst.lot_size if inst else 1,
            self,
        )
        dialog.accepted.connect(lambda: self._modify_accepted(dialog))
        self.dialog = dialog
        dialog.open()  # window-modal but not blocking: the market keeps ticking meanwhile
        return dialog

    def _modify_accepted(self, dialog: ModifyDialog) -> None:
        if dialog.change is not None:
            spawn(self._modify(dialog.order.order_id, dialog.change), name="orderbook-modify")

    async def _modify(self, order_id: str, change: OrderChange) -> None:
        try:
            await self._facade.modify_order(order_id, change)
        except (BrokerError, OrderValidationError) as e:
            self._say(f"modify {order_id}: {e}")
        else:
            self._say("")

    def _say(self, text: str) -> None:
        self.message.setText(text)
