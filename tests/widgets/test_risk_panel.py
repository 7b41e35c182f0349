"""The risk panel against the real risk engine of a running session."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import Qt

from services.broker import OrderRejected
from services.domain import OrderRequest, OrderType, Product, Side, round_to_tick
from services.risk import TradingState
from widgets.main_window import MainWindow
from widgets.risk_panel import STATE_COLOURS, RiskPanel

TICK = Decimal("0.05")


def _limit_buy(services, key: str, ticks_below: int, qty: int) -> OrderRequest:
    bid = services.last_tick(key).depth.best_bid.price
    return OrderRequest(
        key=key,
        side=Side.BUY,
        quantity=qty,
        order_type=OrderType.LIMIT,
        product=Product.MIS,
        price=round_to_tick(bid, TICK) - TICK * ticks_below,
    )


@pytest.fixture
def panel(qtbot, running):
    widget = RiskPanel(running.risk)
    qtbot.addWidget(widget)
    return widget


def test_limits_show_configured_value_and_usage(panel, running, qloop):
    limits = running.risk.limits
    assert panel.limit_text("max_open_orders", 1) == f"{limits.max_open_orders:,}"
    assert panel.limit_text("max_open_orders", 2) == "0"
    assert panel.limit_text("max_order_value", 1) == "₹10,00,000.00"  # lakh grouping
    assert panel.limit_text("max_order_value", 2) == ""  # per-order limit: no running usage
    assert panel.limit_text("daily_loss", 1) == "₹25,000.00"
    qloop.run(running.submit_order(_limit_buy(running, "NSE:RELIANCE", 70, 3)))
    qloop.run(running.submit_order(_limit_buy(running, "NSE:INFY", 70, 2)))
    qloop.until(lambda: panel.limit_text("max_open_orders", 2) == "2", what="two open orders")
    assert panel.limit_text("order_rate", 2) in {"1", "2", "0"}  # a one-second window


def test_rejections_are_listed_by_rule(panel, running, qloop):
    too_big = _limit_buy(running, "NSE:INFY", 70, running.risk.limits.max_order_quantity + 1)
    for _ in range(2):
        with pytest.raises(OrderRejected):
            qloop.run(running.submit_order(too_big))
    panel.refresh()
    assert panel.rejection_counts() == {"Order quantity": "2"}
    assert "2 rejected" in panel.totals_label.text()


def test_state_colour_reason_and_resume_button(panel, running):
    assert panel.state_text() == "ACTIVE"
    assert STATE_COLOURS[TradingState.ACTIVE] in panel.state_label.styleSheet()
    assert not panel.resume_button.isVisibleTo(panel)
    running.risk.set_state(TradingState.REDUCING, "user", "end of day")
    panel.refresh()
    assert panel.state_text() == "REDUCING" and "end of day" in panel.reason_label.text()
    running.risk.halt("user", "feed looks wrong")
    panel.refresh()
    assert panel.state_text() == "HALTED"
    assert STATE_COLOURS[TradingState.HALTED] in panel.state_label.styleSheet()
    assert "feed looks wrong" in panel.reason_label.text()
    assert panel.resume_button.isVisibleTo(panel)


def test_refresh_is_rate_limited_however_busy_the_orders(qtbot, services, qloop):
    win = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    win.start()
    try:
        qloop.until(lambda: services.last_tick("NSE:RELIANCE") is not None)
        start = win.risk_panel.refreshes
        for i in range(6):  # a burst of order events
            qloop.run(services.submit_order(_limit_buy(services, "NSE:RELIANCE", 60 + i, 1 + i)))
        qloop.for_seconds(1.0)
        done = win.risk_panel.refreshes - start
        assert 1 <= done <= 6, done  # at most four a second, plus the idle refresh
        assert win.risk_panel.limit_text("max_open_orders", 2) == "6"
        qtbot.mouseClick(win.risk_panel.kill_button, Qt.MouseButton.LeftButton)
        qloop.until(lambda: win.last_kill_report is not None, what="kill from the panel button")
        assert len(win.last_kill_report.cancelled) == 6
    finally:
        if win.kill_message is not None:
            win.kill_message.close()
        qloop.run(win.stop())


def test_a_halt_says_why_and_since_when(qtbot, tmp_path):
    """A halt carried over from an earlier day says its date; today's, just the time."""
    from datetime import datetime

    from services.clock import IST, ManualClock
    from services.risk import CallbackContext, JsonFileStateStore, RiskEngine, RiskLimits
    from services.risk.state import PersistedRiskState

    store = JsonFileStateStore(tmp_path / "risk_state.json")
    store.save(PersistedRiskState(TradingState.HALTED, "kill switch: flat before results",
                                  datetime(2026, 1, 5, 14, 2, 9, tzinfo=IST), "user"))  # fmt: skip
    clock = ManualClock(datetime(2026, 1, 6, 10, 0, tzinfo=IST))
    context = CallbackContext(clock=clock, last_price_of=lambda key: None)
    engine = RiskEngine(RiskLimits(), context, store=store)
    widget = RiskPanel(engine)
    qtbot.addWidget(widget)
    text = widget.reason_label.text()
    assert "kill switch: flat before results" in text
    assert "since 05 Jan 2026 14:02:09 IST by user" in text
