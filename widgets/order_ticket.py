"""The order ticket: builds an ``OrderRequest`` and refuses a malformed one on the spot.

Validation runs here, before any broker sees the order, with the same ``validate_order`` the
order manager uses; the refusal is shown in the ticket next to the highlighted field, because a
trader fixing a price should not have to look for the reason in a log or a dialog. Prices are
read from text straight into ``Decimal``: a spin box would round them through a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.broker import BrokerError
from services.domain import (
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Tick,
    Validity,
)
from services.validation import OrderValidationError, validate_order
from widgets.fence import fence
from widgets.narrow import yield_width
from widgets.ports import TerminalFacade
from widgets.table_model import fmt_price
from widgets.ui_pump import spawn

TICKET_VALIDITIES = (Validity.DAY, Validity.IOC)


def parse_price(field: str, text: str) -> Decimal | None:
    """Return the typed price as an exact Decimal, ``None`` when blank."""
    cleaned = text.replace(",", "").strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise OrderValidationError(
            field, f"{field.replace('_', ' ')} {cleaned!r} is not a number"
        ) from None
    if not value.is_finite():
        raise OrderValidationError(field, f"{field.replace('_', ' ')} must be a finite number")
    return value


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


TICKET_SOURCE = "ticket"


class OrderTicket(QFrame):
    orderPlaced = Signal(str)

    def __init__(self, facade: TerminalFacade) -> None:
        super().__init__()
        self.setObjectName("orderTicket")
        self._facade = facade
        self.side = Side.BUY
        self.last_order: Order | None = None
        self._updates: dict[str, Order] = {}  # recent updates of ticket orders, by id

        self.buy_button = QPushButton("BUY  (F1)")
        self.buy_button.setObjectName("buyToggle")
        self.sell_button = QPushButton("SELL  (F2)")
        self.sell_button.setObjectName("sellToggle")
        self._side_group = QButtonGroup(self)
        for button in (self.buy_button, self.sell_button):
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self._side_group.addButton(button)
        self.buy_button.clicked.connect(lambda: self.set_side(Side.BUY))
        self.sell_button.clicked.connect(lambda: self.set_side(Side.SELL))

        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("NSE:SYMBOL")
        self.symbol.editingFinished.connect(self._symbol_edited)
        self.quote = QLabel("")
        self.quote.setObjectName("ticketQuote")
        self.quantity = QSpinBox()
        self.quantity.setRange(0, 10_000_000)
        self.quantity.setValue(1)
        self.quantity.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.lot_label = QLabel("lot 1")
        self.lot_label.setObjectName("ticketQuote")
        self.order_type = QComboBox()
        self.order_type.addItems([t.value for t in OrderType])
        self.order_type.setCurrentText(OrderType.LIMIT.value)
        self.order_type.currentTextChanged.connect(self._order_type_changed)
        self.product = QComboBox()
        self.product.addItems([p.value for p in Product])
        self.product.setCurrentText(Product.MIS.value)
        self.validity = QComboBox()
        self.validity.addItems([v.value for v in TICKET_VALIDITIES])
        self.amo = QCheckBox("AMO")
        self.amo.setToolTip(
            "After-market order: it waits at the broker and goes to the exchange when the "
            "next session opens"
        )
        self.amo.toggled.connect(lambda _on: self._label_button())
        self.price = QLineEdit()
        self.price.setPlaceholderText("price")
        self.price.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("trigger")
        self.trigger.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.message = QLabel("")
        self.message.setObjectName("ticketMessage")
        self.message.setWordWrap(True)
        self.place_button = QPushButton("Place BUY order")
        self.place_button.setObjectName("placeButton")
        self.place_button.setMinimumHeight(32)
        self.place_button.clicked.connect(self.place)

        self._fields: dict[str, QWidget] = {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "price": self.price,
            "trigger_price": self.trigger,
            "validity": self.validity,
            "order_type": self.order_type,
            "product": self.product,
        }

        sides = QHBoxLayout()
        sides.setSpacing(6)
        sides.addWidget(self.buy_button)
        sides.addWidget(self.sell_button)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        rows: list[tuple[str, QWidget, QWidget | None]] = [
            ("Symbol", self.symbol, None),
            ("Qty", self.quantity, self.lot_label),
            ("Type", self.order_type, None),
            ("Product", self.product, None),
            ("Validity", self.validity, self.amo),
            ("Price", self.price, None),
            ("Trigger", self.trigger, None),
        ]
        for r, (label, widget, extra) in enumerate(rows):
            grid.addWidget(QLabel(label), r, 0)
            grid.addWidget(widget, r, 1, 1, 1 if extra else 2)
            if extra is not None:
                grid.addWidget(extra, r, 2)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(6)
        layout.addLayout(sides)
        layout.addWidget(fence(self.quote))  # a new price every tick: see widgets/fence.py
        layout.addLayout(grid)
        layout.addWidget(self.message)
        layout.addStretch(1)
        layout.addWidget(self.place_button)

        yield_width(self.quote, self.message, self.symbol)

        self.set_side(Side.BUY)
        self._order_type_changed(self.order_type.currentText())

    # -- state ---------------------------------------------------------------------------
    def set_side(self, side: Side) -> None:
        self.side = side
        (self.buy_button if side is Side.BUY else self.sell_button).setChecked(True)
        self._label_button()
        for widget in (self, self.place_button):
            widget.setProperty("side", side.value)
            _repolish(widget)

    def _label_button(self) -> None:
        kind = "AMO" if self.amo.isChecked() else "order"
        self.place_button.setText(f"Place {self.side.value} {kind}")

    def focus_for(self, side: Side) -> None:
        """F1/F2: pick the side and put the cursor where the trader types next."""
        self.set_side(side)
        self.quantity.setFocus()
        self.quantity.selectAll()

    def set_symbol(self, key: str) -> None:
        self.symbol.setText(key)
        self._symbol_edited()

    def key(self) -> str:
        text = self.symbol.text().strip().upper()
        if text and ":" not in text and self._facade.instrument(f"NSE:{text}") is not None:
            return f"NSE:{text}"
        return text

    def update_quote(self, ticks: list[Tick]) -> None:
        key = self.key()
        for tick in ticks:
            if tick.key == key:
                self._show_quote(tick)
                if self.price.isEnabled() and not self.price.text():
                    self.price.setText(f"{tick.last_price:.2f}")

    def _show_quote(self, tick: Tick | None) -> None:
        if tick is None:
            self.quote.setText("")
            return
        text = f"LTP {fmt_price(tick.last_price)}"
        if tick.depth is not None and tick.depth.best_bid and tick.depth.best_ask:
            text += (
                f"   Bid {fmt_price(tick.depth.best_bid.price)}"
                f"   Ask {fmt_price(tick.depth.best_ask.price)}"
            )
        self.quote.setText(text)

    # -- placing -------------------------------------------------------------------------
    def build_request(self) -> OrderRequest:
        """Read the form into a request; raise ``OrderValidationError`` for unreadable input."""
        order_type = OrderType(self.order_type.currentText())
        price = parse_price("price", self.price.text()) if order_type.needs_price else None
        trigger = (
            parse_price("trigger_price", self.trigger.text()) if order_type.needs_trigger else None
        )
        key = self.key()
        if not key:
            raise OrderValidationError("symbol", "choose a symbol")
        return OrderRequest(
            key=key,
            side=self.side,
            quantity=self.quantity.value(),
            order_type=order_type,
            product=Product(self.product.currentText()),
            validity=Validity(self.validity.currentText()),
            price=price,
            trigger_price=trigger,
            source=TICKET_SOURCE,
            amo=self.amo.isChecked(),
        )

    def place(self) -> OrderRequest | None:
        """Validate and send the order; return the request sent, or None if it was refused."""
        self._clear_errors()
        try:
            request = self.build_request()
            tick = self._facade.last_tick(request.key)
            validate_order(
                request,
                self._facade.instrument(request.key),
                tick.last_price if tick else None,
            )
        except OrderValidationError as e:
            self._show_error(e.message, e.field)
            return None
        self._say(f"sending {request.side} {request.quantity} {request.key}…", "ok")
        spawn(self._submit(request), name="ticket-submit")
        return request

    async def _submit(self, request: OrderRequest) -> None:
        try:
            order = await self._facade.submit_order(request)
        except OrderValidationError as e:
            self._show_error(e.message, e.field)
            return
        except BrokerError as e:  # OrderRejected included: risk or broker refused it
            self._show_error(str(e), None)
            return
        seen = self._updates.get(order.order_id)  # its fill may have come before the ack
        if seen is not None and seen.updated_at >= order.updated_at:
            order = seen
        self.last_order = order
        self._say_status(order)
        self.amo.setChecked(False)  # one AMO at a time: the next order is a regular one
        self.orderPlaced.emit(order.order_id)

    def apply_orders(self, orders: list[Order]) -> None:
        """Order updates (the UI pump's ORDERS batches): the status line follows the last
        order placed here until it is filled, cancelled or rejected."""
        mine = self.last_order
        for order in orders:
            if order.request.source != TICKET_SOURCE:
                continue
            self._updates[order.order_id] = order
            mine_now = mine is not None and order.order_id == mine.order_id
            if mine_now and mine is not None and order.updated_at >= mine.updated_at:
                mine = order
        while len(self._updates) > 64:  # only the latest few matter
            self._updates.pop(next(iter(self._updates)))
        if mine is not None and mine is not self.last_order:
            self.last_order = mine
            self._say_status(mine)

    def status_text(self) -> str:
        return self.message.text()

    def _say_status(self, order: Order) -> None:
        status = order.status
        if status is OrderStatus.REJECTED:
            self._show_error(f"order {order.order_id} rejected: {order.status_message}", None)
            return
        text = f"order {order.order_id} {status.value.lower().replace('_', ' ')}"
        if status is OrderStatus.FILLED:
            text = (f"order {order.order_id} filled: {order.filled_quantity} "
                    f"@ {fmt_price(order.average_price)}")  # fmt: skip
        elif status is OrderStatus.PARTIALLY_FILLED:
            text += (f": {order.filled_quantity} of {order.request.quantity} "
                     f"@ {fmt_price(order.average_price)}")  # fmt: skip
        elif status is OrderStatus.CANCELLED and order.status_message:
            text += f": {order.status_message}"
        elif order.request.amo and status.is_working:
            text += " (after-market: it goes to the exchange when the next session opens)"
        self._say(text, "ok")

    # -- feedback ------------------------------------------------------------------------
    def invalid_fields(self) -> list[str]:
        return [name for name, w in self._fields.items() if w.property("invalid")]

    def _show_error(self, text: str, field: str | None) -> None:
        self._say(text, "error")
        widget = self._fields.get(field or "")
        if widget is not None:
            widget.setProperty("invalid", True)
            _repolish(widget)
            widget.setFocus()

    def _clear_errors(self) -> None:
        for widget in self._fields.values():
            if widget.property("invalid"):
                widget.setProperty("invalid", False)
                _repolish(widget)

    def _say(self, text: str, kind: str) -> None:
        self.message.setText(text)
        self.message.setProperty("kind", kind)
        _repolish(self.message)

    # -- slots ---------------------------------------------------------------------------
    def _symbol_edited(self) -> None:
        key = self.key()
        inst = self._facade.instrument(key)
        if inst is None:
            self.lot_label.setText("")
            self._show_quote(None)
            return
        self.quantity.setSingleStep(inst.lot_size)
        self.lot_label.setText(f"lot {inst.lot_size}")
        if self.quantity.value() % inst.lot_size:
            self.quantity.setValue(inst.lot_size)
        tick = self._facade.last_tick(key)
        self._show_quote(tick)
        if tick is not None and self.price.isEnabled():
            self.price.setText(f"{tick.last_price:.2f}")

    def _order_type_changed(self, text: str) -> None:
        order_type = OrderType(text)
        self.price.setEnabled(order_type.needs_price)
        self.trigger.setEnabled(order_type.needs_trigger)
        if not order_type.needs_price:
            self.price.clear()
        if not order_type.needs_trigger:
            self.trigger.clear()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.place()
            event.accept()
            return
        super().keyPressEvent(event)
