"""GTT orders: place a single or OCO good-till-triggered order and follow or cancel them.

The symbol follows the selected instrument (as the ticket does). Single: one trigger and the
order it sends (limit, or market where the broker's GTT takes only that: Upstox). OCO: a
stop trigger below the price and a target above, each with its limit price, both closing
the same quantity; the first reached fires and voids the other.

Where the GTTs live decides what the trader can rely on, so the panel says it: at the broker
(Kite, Upstox: they fire with the terminal closed) or in this terminal (paper: only while it
runs). Every call is a coroutine (a broker's is a round trip), run off the UI thread's
handler; the list is read again after each place and cancel, and every 30 seconds while the
panel shows a broker's GTTs (they fire there, with no event reaching the terminal).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal, InvalidOperation
from typing import Protocol

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
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

from services.broker import BrokerError
from services.domain import Instrument, OrderRequest, OrderType, Product, Side
from services.gtt import Gtt, GttError, GttKind, GttStatus, LegChange
from widgets.ui_pump import spawn

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_COLUMNS = ["#", "Symbol", "Kind", "Triggers", "Status", "Order / message"]
_ID = Qt.ItemDataRole.UserRole
BROKER_REFRESH_MS = 30_000
TERMINAL_HOME = "Held by this terminal: they fire only while it runs"


def home_text(held_at: str | None) -> str:
    if held_at is None:
        return TERMINAL_HOME
    return f"Held at {held_at}: they fire even while this terminal is closed"


class GttPort(Protocol):
    def instrument(self, key: str) -> Instrument | None: ...

    def gtt_held_at(self) -> str | None: ...

    def gtt_offers_oco(self) -> bool: ...

    async def place_gtt_single(self, trigger: Decimal, order: OrderRequest) -> Gtt: ...

    async def place_gtt_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt: ...

    async def modify_gtt(self, gtt_id: int | str, changes: list[LegChange]) -> Gtt: ...

    async def cancel_gtt(self, gtt_id: int | str) -> Gtt: ...

    async def gtt_list(self) -> list[Gtt]: ...


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
        self.home = QLabel(home_text(port.gtt_held_at()))
        self.home.setObjectName("gttHome")
        self.home.setWordWrap(True)
        self.symbol = QLineEdit()
        self.symbol.setPlaceholderText("NSE:SYMBOL")
        self.kind = QComboBox()
        self.kind.addItems(["Single", "OCO"])
        self.side = QComboBox()
        self.side.addItems([Side.SELL.value, Side.BUY.value])
        self.product = QComboBox()
        self.product.addItems([p.value for p in Product])
        self.order_type = QComboBox()
        self.order_type.addItems([OrderType.LIMIT.value, OrderType.MARKET.value])
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
        self.modify_button = QPushButton("Modify selected…")
        self.modify_button.setToolTip("move the triggers (and limit prices) of an active GTT")
        self.modify_button.clicked.connect(self.modify_selected)
        self.modify_dialog: GttModifyDialog | None = None
        self._shown: dict[str, Gtt] = {}  # the listed GTTs by id, for the selection
        self.message = QLabel("")
        self.message.setObjectName("ticketMessage")
        self.message.setWordWrap(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.busy = False  # a place or cancel is on its way
        self._loading: asyncio.Task[None] | None = None
        self._reload_again = False
        self.loads = 0  # lists read and shown, for tests
        self.timer = QTimer(self)
        self.timer.setInterval(BROKER_REFRESH_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

        form = QFormLayout()
        form.addRow("Symbol", self.symbol)
        row = QHBoxLayout()
        for w in (self.kind, self.side, self.product, self.order_type, self.quantity):
            row.addWidget(w)
        form.addRow("Order", row)
        form.addRow("Trigger / price", _pair(self.trigger, self.price))
        form.addRow("Target (OCO)", _pair(self.target_trigger, self.target_price))
        buttons = QHBoxLayout()
        buttons.addWidget(self.place_button)
        buttons.addWidget(self.modify_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.home)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self.order_type.currentTextChanged.connect(self._kind_changed)
        self._kind_changed(self.kind.currentText())
        self._show_home()

    def _show_home(self) -> None:
        """Where the GTTs live, and whether that place takes an OCO (Upstox's does not)."""
        self.home.setText(home_text(self._port.gtt_held_at()))
        oco = self._port.gtt_offers_oco()
        model = self.kind.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(1)
            if item is not None:
                item.setEnabled(oco)
                item.setToolTip("" if oco else "this broker's GTT has no OCO")

    def set_symbol(self, key: str) -> None:
        self.symbol.setText(key)
        inst = self._port.instrument(key)
        if inst is not None:
            self.quantity.setSingleStep(inst.lot_size)
            if self.quantity.value() % inst.lot_size:
                self.quantity.setValue(inst.lot_size)

    def _kind_changed(self, _text: str) -> None:
        oco = self.kind.currentText() == "OCO"
        limit = self.order_type.currentText() == OrderType.LIMIT.value
        self.price.setEnabled(limit)
        self.target_trigger.setEnabled(oco)
        self.target_price.setEnabled(oco and limit)

    def _order(self, price: Decimal | None) -> OrderRequest:
        return OrderRequest(
            key=self.symbol.text().strip().upper(),
            side=Side(self.side.currentText()),
            quantity=self.quantity.value(),
            order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
            product=Product(self.product.currentText()),
            price=price,
            source="gtt",
        )

    def place(self) -> asyncio.Task[Gtt | None] | None:
        """Check the form and send the GTT; None (and the reason shown) when the form is bad."""
        limit = self.order_type.currentText() == OrderType.LIMIT.value
        try:
            key = self.symbol.text().strip().upper()
            if self._port.instrument(key) is None:
                raise GttError(f"unknown symbol {key or '(empty)'}")
            trigger = _price(self.trigger, "trigger")
            price = _price(self.price, "limit price") if limit else None
            if self.kind.currentText() == "OCO":
                target = _price(self.target_trigger, "target trigger")
                target_price = _price(self.target_price, "target limit price") if limit else None
                sent = self._port.place_gtt_oco(
                    trigger, self._order(price), target, self._order(target_price)
                )
            else:
                sent = self._port.place_gtt_single(trigger, self._order(price))
        except GttError as e:
            self.message.setText(str(e))
            return None
        self.busy = True
        self.place_button.setEnabled(False)
        self.message.setText("Placing the GTT…")
        task: asyncio.Task[Gtt | None] = spawn(self._placed(sent), name="gtt-place")
        return task

    async def _placed(self, sent: Awaitable[Gtt]) -> Gtt | None:
        try:
            gtt = await sent
        except (GttError, BrokerError) as e:
            self.message.setText(str(e))
            return None
        finally:
            self.busy = False
            self.place_button.setEnabled(True)
        self.message.setText(f"GTT {gtt.gtt_id} placed ({gtt.kind.value})")
        self.refresh()
        return gtt

    def _selected(self) -> Gtt | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return None if item is None else self._shown.get(str(item.data(_ID)))

    def cancel_selected(self) -> None:
        gtt = self._selected()
        if gtt is None:
            return
        self.busy = True
        spawn(self._cancel(gtt.gtt_id), name="gtt-cancel")

    def modify_selected(self) -> GttModifyDialog | None:
        """Open the move dialog for the selected GTT; None (and why) when it cannot move."""
        gtt = self._selected()
        if gtt is None:
            self.message.setText("Select a GTT to modify")
            return None
        if gtt.status is not GttStatus.ACTIVE:
            self.message.setText(f"GTT {gtt.gtt_id} is {gtt.status.value}: only an active "
                                 "GTT can be modified")  # fmt: skip
            return None
        dialog = GttModifyDialog(gtt, self)
        dialog.accepted.connect(lambda: self._send_modify(gtt, dialog))
        self.modify_dialog = dialog
        dialog.open()
        return dialog

    def _send_modify(self, gtt: Gtt, dialog: GttModifyDialog) -> None:
        try:
            changes = dialog.changes()
        except GttError as e:
            self.message.setText(str(e))
            return
        self.busy = True
        self.message.setText(f"Modifying GTT {gtt.gtt_id}…")
        spawn(self._modify(gtt.gtt_id, changes), name="gtt-modify")

    async def _modify(self, gtt_id: int | str, changes: list[LegChange]) -> None:
        try:
            gtt = await self._port.modify_gtt(gtt_id, changes)
        except (GttError, BrokerError) as e:
            self.message.setText(str(e))
        else:
            triggers = " / ".join(str(leg.trigger) for leg in gtt.legs)
            self.message.setText(f"GTT {gtt.gtt_id} now triggers at {triggers}")
        finally:
            self.busy = False
        self.refresh()

    async def _cancel(self, gtt_id: int | str) -> None:
        try:
            gtt = await self._port.cancel_gtt(gtt_id)
        except (GttError, BrokerError) as e:
            self.message.setText(str(e))
        else:
            self.message.setText(f"GTT {gtt.gtt_id} {gtt.status.value.lower()}")
        finally:
            self.busy = False
        self.refresh()

    def apply_gtts(self, _gtts: list[Gtt]) -> None:
        self.refresh()

    def _tick(self) -> None:
        if self.isVisible() and self._port.gtt_held_at() is not None:
            self.refresh()

    def refresh(self) -> None:
        """Read the list again (one load at a time; a refresh asked meanwhile follows it)."""
        if self._loading is not None and not self._loading.done():
            self._reload_again = True
            return
        self._loading = spawn(self._load(), name="gtt-list")

    async def _load(self) -> None:
        while True:
            self._reload_again = False
            self._show_home()
            try:
                gtts = await self._port.gtt_list()
            except (GttError, BrokerError) as e:
                self.message.setText(f"GTTs could not be read: {e}")
            else:
                self._show(gtts)
            if not self._reload_again:
                return

    def _show(self, gtts: list[Gtt]) -> None:
        self._shown = {str(g.gtt_id): g for g in gtts}
        rows = list(reversed(gtts))
        self.table.setRowCount(len(rows))
        for row, gtt in enumerate(rows):
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
                if col == 0:
                    item.setData(_ID, gtt.gtt_id)
                self.table.setItem(row, col, item)
        self.loads += 1


class GttModifyDialog(QDialog):
    """Each leg's trigger and limit price, filled with today's values: a trailing stop moves
    both; a MARKET leg (Upstox) has only its trigger."""

    def __init__(self, gtt: Gtt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Modify GTT {gtt.gtt_id}")
        self.gtt = gtt
        self.triggers: list[QLineEdit] = []
        self.prices: list[QLineEdit] = []
        form = QFormLayout()
        names = ["Stop", "Target"] if gtt.kind is GttKind.OCO else ["Trigger"]
        for name, leg in zip(names, gtt.legs, strict=True):
            trigger = QLineEdit(str(leg.trigger))
            price = QLineEdit("" if leg.order.price is None else str(leg.order.price))
            price.setEnabled(leg.order.order_type is OrderType.LIMIT)
            price.setPlaceholderText("market order")
            self.triggers.append(trigger)
            self.prices.append(price)
            form.addRow(f"{name} trigger / limit", _pair(trigger, price))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{gtt.key}: {gtt.legs[0].order.side.value} "
                                f"{gtt.legs[0].order.quantity}"))  # fmt: skip
        layout.addLayout(form)
        layout.addWidget(buttons)

    def changes(self) -> list[LegChange]:
        out = []
        for trigger, price in zip(self.triggers, self.prices, strict=True):
            out.append(LegChange(
                _price(trigger, "trigger"),
                _price(price, "limit price") if price.isEnabled() else None,
            ))  # fmt: skip
        return out


def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(a)
    row.addWidget(b)
    return row
