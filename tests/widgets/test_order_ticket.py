"""The order ticket refuses malformed orders in place, naming the field and the rule."""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt

from app.wiring import AppServices
from services.domain import InstrumentKind, OrderStatus, OrderType, Side
from widgets.order_ticket import OrderTicket


def _ticket(qtbot, services: AppServices) -> OrderTicket:
    ticket = OrderTicket(services)
    qtbot.addWidget(ticket)
    ticket.show()
    return ticket


def test_price_off_the_tick_grid_is_refused_with_the_rule(qtbot, services):
    ticket = _ticket(qtbot, services)
    ticket.set_symbol("NSE:RELIANCE")
    ticket.order_type.setCurrentText(OrderType.LIMIT.value)
    ticket.quantity.setValue(1)
    ticket.price.setText("101.03")

    qtbot.mouseClick(ticket.place_button, Qt.MouseButton.LeftButton)

    assert ticket.message.text() == "price 101.03 is not a multiple of tick size 0.05"
    assert ticket.invalid_fields() == ["price"]
    assert services.order_list() == []


def test_nifty_future_quantity_must_be_a_multiple_of_the_lot(qtbot, services):
    future = next(i for i in services.search("NIFTY", 50) if i.kind is InstrumentKind.FUTURE)
    assert future.lot_size == 65
    ticket = _ticket(qtbot, services)
    ticket.set_symbol(future.key)
    assert ticket.quantity.singleStep() == 65  # the spin box steps by whole lots
    ticket.quantity.setValue(10)
    ticket.price.setText("26000")

    assert ticket.place() is None
    assert ticket.message.text() == "quantity 10 is not a multiple of lot size 65"
    assert ticket.invalid_fields() == ["quantity"]


def test_unknown_symbol_is_refused(qtbot, services):
    ticket = _ticket(qtbot, services)
    ticket.set_symbol("NSE:NOSUCHCO")
    ticket.price.setText("100")
    assert ticket.place() is None
    assert ticket.message.text() == "unknown symbol NSE:NOSUCHCO"
    assert ticket.invalid_fields() == ["symbol"]


def test_price_typed_as_text_is_exact_and_garbage_is_named(qtbot, services):
    ticket = _ticket(qtbot, services)
    ticket.set_symbol("NSE:RELIANCE")
    ticket.price.setText("1,234.15")
    request = ticket.build_request()
    assert request.price == Decimal("1234.15")
    assert request.source == "ticket"

    ticket.price.setText("12x")
    assert ticket.place() is None
    assert ticket.message.text() == "price '12x' is not a number"


def test_stop_loss_trigger_on_the_wrong_side_is_refused(qtbot, running, qloop):
    ticket = _ticket(qtbot, running)
    ticket.set_symbol("NSE:RELIANCE")
    last = running.last_tick("NSE:RELIANCE").last_price
    ticket.set_side(Side.BUY)
    ticket.order_type.setCurrentText(OrderType.SL_M.value)
    assert not ticket.price.isEnabled() and ticket.trigger.isEnabled()
    ticket.trigger.setText(f"{last - 50:.2f}")  # a stop-loss buy must trigger above the market

    assert ticket.place() is None
    assert "must be above the last price" in ticket.message.text()
    assert ticket.invalid_fields() == ["trigger_price"]


def test_risk_refusal_is_shown_in_the_ticket(qtbot, running, qloop):
    ticket = _ticket(qtbot, running)
    ticket.set_symbol("NSE:RELIANCE")
    ticket.product.setCurrentText("CNC")
    ticket.quantity.setValue(5_000)  # about 75 lakh of stock against a 10 lakh balance
    ticket.order_type.setCurrentText(OrderType.MARKET.value)

    assert ticket.place() is not None  # well-formed: it goes to the order manager
    qloop.until(lambda: ticket.message.property("kind") == "error", what="refusal shown")
    # Well-formed, so validation passes; the pre-trade risk check refuses it, and says why here.
    assert ticket.message.text().startswith("max_order_value: order value ₹74,")
    assert "exceeds the limit" in ticket.message.text()
    assert all(o.status is not OrderStatus.OPEN for o in running.order_list())


def test_enter_places_and_f_keys_pick_the_side(qtbot, running, qloop):
    ticket = _ticket(qtbot, running)
    ticket.set_symbol("NSE:INFY")
    ticket.focus_for(Side.SELL)
    assert ticket.side is Side.SELL and ticket.place_button.text() == "Place SELL order"
    ticket.focus_for(Side.BUY)
    ticket.order_type.setCurrentText(OrderType.MARKET.value)
    ticket.quantity.setValue(3)

    qtbot.keyClick(ticket.quantity, Qt.Key.Key_Return)

    qloop.until(lambda: ticket.last_order is not None, what="order acknowledged")
    assert ticket.last_order.request.quantity == 3
    assert ticket.last_order.request.side is Side.BUY


def test_an_after_market_order_is_placed_from_the_ticket_and_waits(qtbot, running, qloop):
    ticket = _ticket(qtbot, running)
    ticket.set_symbol("NSE:INFY")
    ticket.set_side(Side.BUY)
    ticket.amo.setChecked(True)
    assert ticket.place_button.text() == "Place BUY AMO"
    ticket.order_type.setCurrentText(OrderType.MARKET.value)
    ticket.quantity.setValue(2)

    assert ticket.place() is not None
    qloop.until(lambda: ticket.last_order is not None, what="AMO acknowledged")
    placed = ticket.last_order
    assert placed.request.amo and placed.status is OrderStatus.OPEN
    assert "after-market" in ticket.message.text()
    (booked,) = [o for o in running.order_list() if o.order_id == placed.order_id]
    assert booked.request.amo and "goes to the exchange at 09:15" in booked.status_message
    # The next order is a regular one unless the trader asks again.
    assert not ticket.amo.isChecked() and ticket.place_button.text() == "Place BUY order"
