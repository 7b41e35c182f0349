"""The steps every live-broker desktop test takes: a window on started services, a limit buy
placed from the ticket until it rests OPEN, and its cancel from the order book."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from app.wiring import AppServices
from services.domain import OrderType, Product
from tests.widgets.conftest import LoopRunner
from widgets.main_window import MainWindow


def open_window(qtbot: QtBot, services: AppServices, watch: list[str], tmp: Path) -> MainWindow:
    store = QSettings(str(tmp / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(services, watch, store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.start()
    return window


def place_limit_buy(
    w: MainWindow, qtbot: QtBot, qloop: LoopRunner, key: str, quantity: int, price: str,
    *, timeout: float = 10.0,
) -> str:
    """F1 on ``key``, a CNC limit buy from the ticket; the id once the book shows it OPEN."""
    w.watchlist.select_key(key)
    qtbot.keyClick(w, Qt.Key.Key_F1)
    w.ticket.order_type.setCurrentText(OrderType.LIMIT.value)
    w.ticket.product.setCurrentText(Product.CNC.value)
    w.ticket.quantity.setValue(quantity)
    w.ticket.price.setText(price)
    qtbot.mouseClick(w.ticket.place_button, Qt.MouseButton.LeftButton)
    try:
        qloop.until(lambda: w.order_book.model.rowCount() == 1, timeout, "order in the book")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the ticket says {w.ticket.message.text()!r}") from exc
    order_id: str = w.order_book.model.row_at(0).order_id
    qloop.until(lambda: w.order_book.model.text(order_id, "Status") == "OPEN", timeout, "OPEN")
    return order_id


def cancel_in_book(w: MainWindow, qloop: LoopRunner, order_id: str, timeout: float = 10.0) -> None:
    w.order_book.select_order(order_id)
    w.order_book.cancel_selected()
    qloop.until(
        lambda: w.order_book.model.text(order_id, "Status") == "CANCELLED", timeout, "CANCELLED"
    )
