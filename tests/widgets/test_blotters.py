"""Order book cancel/modify and positions MTM, against the real paper broker."""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from services.bus import ORDERS, POSITIONS, TICKS
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side, round_to_tick
from widgets.order_book import OrderBookWidget
from widgets.positions import PositionsWidget
from widgets.ui_pump import UiPump

KEY = "NSE:INFY"
TICK = Decimal("0.05")


def _resting_buy(services, qloop, ticks_below: int = 40):
    last = services.last_tick(KEY).last_price
    price = round_to_tick(last, TICK) - TICK * ticks_below
    request = OrderRequest(KEY, Side.BUY, 5, OrderType.LIMIT, Product.MIS, price=price)
    return qloop.run(services.submit_order(request))


def _book(qtbot, services):
    book = OrderBookWidget(services)
    qtbot.addWidget(book)
    book.show()
    pump = UiPump(services.bus, "test-book", frame_seconds=0.01)
    pump.on(ORDERS, book.apply_orders, on_lagged=book.resync)
    pump.start()
    return book, pump


def test_cancel_button_cancels_the_selected_open_order(qtbot, running, qloop):
    book, pump = _book(qtbot, running)
    order = _resting_buy(running, qloop)
    qloop.until(lambda: book.model.get(order.order_id) is not None, what="order in book")
    assert book.model.text(order.order_id, "Status") == "OPEN"

    book.select_order(order.order_id)
    qtbot.mouseClick(book.cancel_button, Qt.MouseButton.LeftButton)

    qloop.until(
        lambda: book.model.get(order.order_id).status is OrderStatus.CANCELLED,
        what="order cancelled in the book",
    )
    assert running.orders.order(order.order_id).status is OrderStatus.CANCELLED
    qloop.run(pump.stop())


def test_cancelling_a_finished_order_says_so(qtbot, running, qloop):
    book, pump = _book(qtbot, running)
    order = _resting_buy(running, qloop)
    qloop.run(running.cancel_order(order.order_id))
    qloop.until(lambda: book.model.get(order.order_id).status is OrderStatus.CANCELLED)
    book.select_order(order.order_id)
    qtbot.keyClick(book.table, Qt.Key.Key_Delete)
    assert book.message.text() == f"order {order.order_id} is already cancelled"
    qloop.run(pump.stop())


def test_modify_dialog_changes_price_and_refuses_off_grid(qtbot, running, qloop):
    book, pump = _book(qtbot, running)
    order = _resting_buy(running, qloop)
    qloop.until(lambda: book.model.get(order.order_id) is not None)
    book.select_order(order.order_id)
    dialog = book.modify_selected()
    assert dialog is not None

    dialog.price.setText("100.02")
    qtbot.mouseClick(
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
    )
    assert dialog.isVisible()
    assert dialog.message.text() == "price 100.02 is not a multiple of tick size 0.05"

    new_price = order.request.price - TICK * 2
    dialog.price.setText(f"{new_price}")
    dialog.quantity.setValue(7)
    qtbot.mouseClick(
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
    )

    qloop.until(
        lambda: book.model.get(order.order_id).request.price == new_price,
        what="modified price in the book",
    )
    assert book.model.text(order.order_id, "Qty") == "7"
    qloop.run(pump.stop())


def test_positions_mark_to_market_with_ticks(qtbot, running, qloop):
    widget = PositionsWidget(running)
    qtbot.addWidget(widget)
    pump = UiPump(running.bus, "test-positions", frame_seconds=0.01)
    pump.on(POSITIONS, widget.apply_positions)
    pump.on(TICKS, widget.apply_ticks)
    pump.start()
    qloop.run(running.submit_order(OrderRequest(KEY, Side.BUY, 4, OrderType.MARKET, Product.MIS)))
    qloop.until(lambda: widget.model.get((KEY, Product.MIS)) is not None, what="position")

    position = widget.model.get((KEY, Product.MIS))
    assert position.quantity == 4
    first_ltp = position.last_price
    qloop.until(
        lambda: widget.model.get((KEY, Product.MIS)).last_price != first_ltp, what="a new LTP"
    )
    marked = widget.model.get((KEY, Product.MIS))
    expected = (marked.last_price - marked.average_price) * 4
    assert marked.unrealised_pnl == expected
    assert widget.model.text((KEY, Product.MIS), "Unrealised") == f"{expected:,.2f}"
    assert marked.charges > 0  # the paper fill paid its charges
    assert widget.model.text((KEY, Product.MIS), "Net P&L") == f"{marked.net_pnl:,.2f}"
    assert "Net P&amp;L" in widget.total.text()
    qloop.run(pump.stop())
