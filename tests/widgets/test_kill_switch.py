"""Ctrl+Shift+K on the real window, against the real paper broker and risk engine."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLineEdit

from services.broker import OrderRejected
from services.domain import OrderRequest, OrderType, Product, Side, round_to_tick
from services.risk import TradingState
from tests.widgets.conftest import TEST_WATCHLIST
from widgets.main_window import MainWindow

TICK = Decimal("0.05")
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def window(qtbot, services, qloop, tmp_path):
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    qloop.until(lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST))
    yield win
    if win.kill_message is not None:
        win.kill_message.close()
    qloop.run(win.stop())


def _resting_buy(services, key: str, ticks_below: int, qty: int) -> OrderRequest:
    bid = services.last_tick(key).depth.best_bid.price
    price = round_to_tick(bid, TICK) - TICK * ticks_below
    return OrderRequest(
        key=key,
        side=Side.BUY,
        quantity=qty,
        order_type=OrderType.LIMIT,
        product=Product.MIS,
        price=price,
    )


def _shown_qty(w: MainWindow, pos_key: tuple[str, Product]) -> str | None:
    model = w.positions.model
    return model.text(pos_key, "Qty") if model.get(pos_key) is not None else None


def _shown_status(w: MainWindow, order_id: str) -> str | None:
    model = w.order_book.model
    return model.text(order_id, "Status") if model.get(order_id) is not None else None


def _place_book(services, qloop) -> tuple[list[str], tuple[str, Product]]:
    """Three resting limit orders and one filled market buy (an open position)."""
    open_ids = []
    for i, key in enumerate(["NSE:RELIANCE", "NSE:INFY", "NSE:TCS"]):
        order = qloop.run(services.submit_order(_resting_buy(services, key, 60 + i, 5 + i)))
        open_ids.append(order.order_id)
    buy = OrderRequest(
        key="NSE:INFY", side=Side.BUY, quantity=7, order_type=OrderType.MARKET, product=Product.MIS
    )
    qloop.run(services.submit_order(buy))
    pos_key = ("NSE:INFY", Product.MIS)
    qloop.until(
        lambda: any(
            (p.key, p.product) == pos_key and p.quantity == 7 for p in services.position_list()
        ),
        what="the market buy to fill into a position",
    )
    return open_ids, pos_key


def test_ctrl_shift_k_cancels_everything_squares_off_and_halts(qtbot, window, services, qloop):
    w = window
    open_ids, pos_key = _place_book(services, qloop)
    qloop.until(
        lambda: all(_shown_status(w, i) == "OPEN" for i in open_ids),
        what="resting orders shown OPEN",
    )
    qloop.until(lambda: _shown_qty(w, pos_key) == "7", what="position shown")
    assert w.risk_panel.state_text() == "ACTIVE"
    assert w.risk_panel.square_off.isChecked()  # the default: cancel all and square off

    # Focus is deep inside a dock: the shortcut still fires, application-wide.
    w.ticket.quantity.setFocus()
    qtbot.keyClick(w.ticket.quantity, Qt.Key.Key_K, CTRL_SHIFT)

    qloop.until(lambda: w.last_kill_report is not None, what="the kill report")
    report = w.last_kill_report
    assert sorted(report.cancelled) == sorted(open_ids)
    assert [(c.key, c.quantity) for c in report.closed] == [("NSE:INFY", 7)]
    assert report.failed == ()
    assert services.risk.state is TradingState.HALTED

    # The order book shows the cancellations, the position goes flat, the panel says HALTED.
    qloop.until(
        lambda: all(_shown_status(w, i) == "CANCELLED" for i in open_ids),
        what="cancellations in the order book",
    )
    qloop.until(
        lambda: not any(o.status.is_working for o in services.order_list()),
        what="no working order left (the square-off order fills)",
    )
    qloop.until(
        lambda: all(p.quantity == 0 for p in services.position_list()), what="flat positions"
    )
    qloop.until(lambda: _shown_qty(w, pos_key) == "0", what="flat in the view")
    assert w.risk_panel.state_text() == "HALTED"
    assert "kill switch" in w.risk_panel.reason_label.text()
    assert w.risk_panel.resume_button.isVisibleTo(w.risk_panel)
    assert w.status.trading_label.text() == "Trading HALTED"
    # Report shown without blocking: a non-modal box and the status bar.
    assert w.kill_message is not None and w.kill_message.isVisible()
    assert w.kill_message.windowModality() == Qt.WindowModality.NonModal
    assert "3 orders cancelled · 1 position closed · 0 failed" in w.kill_message.text()
    assert "3 orders cancelled" in w.status.currentMessage()

    # HALTED means new orders are refused, by rule.
    with pytest.raises(OrderRejected) as rejected:
        qloop.run(services.submit_order(_resting_buy(services, "NSE:TCS", 80, 1)))
    assert rejected.value.rule == "trading_state"
    w.risk_panel.refresh()
    assert w.risk_panel.rejection_counts() == {"Trading state": "1"}


def test_kill_without_square_off_keeps_positions_and_resume_needs_a_reason(
    qtbot, window, services, qloop
):
    w = window
    open_ids, _ = _place_book(services, qloop)
    qtbot.mouseClick(w.risk_panel.square_off, Qt.MouseButton.LeftButton)
    assert not w.risk_panel.square_off.isChecked()
    w.kill_action.trigger()  # the toolbar / menu action
    qloop.until(lambda: w.last_kill_report is not None, what="the kill report")
    assert sorted(w.last_kill_report.cancelled) == sorted(open_ids)
    assert w.last_kill_report.closed == ()
    assert any(p.quantity == 7 for p in services.position_list())
    w.risk_panel.refresh()
    assert w.risk_panel.state_text() == "HALTED"

    # Resume: an empty reason keeps trading halted; a real one resumes (audited by the engine).
    dialog = w.risk_panel.ask_resume()
    dialog.setTextValue("   ")
    dialog.accept()
    assert services.risk.state is TradingState.HALTED
    assert "needs a reason" in w.risk_panel.message.text()
    dialog = w.risk_panel.ask_resume()
    edit = dialog.findChild(QLineEdit)
    qtbot.keyClicks(edit, "checked the feed, flat now")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert services.risk.state is TradingState.ACTIVE
    assert w.risk_panel.state_text() == "ACTIVE"
    assert not w.risk_panel.resume_button.isVisibleTo(w.risk_panel)
    assert services.risk.status()["changed_by"] == "user"
