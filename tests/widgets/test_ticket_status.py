"""The ticket's status line follows the order it placed: open, then filled (or cancelled),
instead of saying "open" after the fill."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings, Qt

from services.domain import OrderStatus, OrderType, round_to_tick
from tests.widgets.conftest import TEST_WATCHLIST
from widgets.main_window import MainWindow


@pytest.fixture
def window(qtbot, services, qloop, tmp_path):  # type: ignore[no-untyped-def]
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    win.start()
    qloop.until(lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST))
    yield win
    qloop.run(win.stop())


def test_status_line_follows_a_market_order_to_its_fill(qtbot, window, qloop) -> None:  # type: ignore[no-untyped-def]
    ticket = window.ticket
    ticket.set_symbol("NSE:INFY")
    ticket.order_type.setCurrentText(OrderType.MARKET.value)
    ticket.quantity.setValue(2)
    qtbot.mouseClick(ticket.place_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: ticket.last_order is not None, what="the order acknowledged")
    order_id = ticket.last_order.order_id
    qloop.until(lambda: "filled: 2 @" in ticket.status_text(), what="the fill on the ticket")
    assert ticket.status_text().startswith(f"order {order_id} filled: 2 @ ")
    assert ticket.last_order.status is OrderStatus.FILLED


def test_status_line_follows_a_resting_order_to_its_cancel(qtbot, window, services, qloop) -> None:  # type: ignore[no-untyped-def]
    ticket = window.ticket
    ticket.set_symbol("NSE:TCS")
    ticket.order_type.setCurrentText(OrderType.LIMIT.value)
    tick = services.last_tick("NSE:TCS")
    far = round_to_tick(tick.last_price * Decimal("0.95"), Decimal("0.05"))
    ticket.price.setText(f"{far:.2f}")
    qtbot.mouseClick(ticket.place_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: ticket.status_text().endswith(" open"), what="the order resting")
    qloop.run(services.cancel_order(ticket.last_order.order_id))
    qloop.until(lambda: " cancelled" in ticket.status_text(), what="the cancel on the ticket")
