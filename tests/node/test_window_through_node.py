"""The desktop window (pytest-qt) trading through a real node process, and losing it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from app.settings import NodeSettings, Settings
from app.wiring import build_services
from services.domain import OrderType, round_to_tick
from services.risk.limits import RiskLimits
from tests.kite_app.conftest import MemorySecrets
from tests.node.node_process import NodeProcess
from tests.widgets.conftest import TEST_WATCHLIST, LoopRunner, qloop  # noqa: F401 (fixture)
from widgets.main_window import MainWindow

OPEN_LIMITS = {"max_orders_per_second": None, "duplicate_window_seconds": None}


@pytest.fixture
def node(tmp_path: Path) -> Any:
    process = NodeProcess(tmp_path / "node", settings={"risk": OPEN_LIMITS, "seed": 7})
    process.root.mkdir()
    token = process.create_key()
    process.start()
    try:
        yield process, token
    finally:
        process.stop()


@pytest.mark.timeout(300)
def test_ticket_orders_go_through_the_node_and_stop_clearly_without_it(
    qtbot: Any, qloop: LoopRunner, node: tuple[NodeProcess, str], tmp_path: Path  # noqa: F811
) -> None:
    process, token = node
    settings = Settings(seed=7, ticks_per_second=50, watchlist=TEST_WATCHLIST,
                        models_enabled=False, risk=RiskLimits(**OPEN_LIMITS),  # type: ignore[arg-type]
                        node=NodeSettings(venue="node", url=process.base))  # fmt: skip
    services = build_services(settings, secrets=MemorySecrets({"node": {"api_key": token}}))
    win = MainWindow(services, settings.watchlist, QSettings(str(tmp_path / "l.ini"),
                                                             QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    try:
        assert services.node is not None
        stream = services.node.stream
        qloop.until(lambda: stream.connected, timeout=45, what="the node stream")
        qloop.until(lambda: services.last_tick("NSE:INFY") is not None, what="a tick")
        tick = services.last_tick("NSE:INFY")
        inst = services.instrument("NSE:INFY")
        assert tick is not None and inst is not None
        price = round_to_tick(tick.last_price * Decimal("0.95"), inst.tick_size)

        ticket = win.ticket
        ticket.set_symbol("NSE:INFY")
        ticket.order_type.setCurrentText(OrderType.LIMIT.value)
        ticket.quantity.setValue(1)
        ticket.price.setText(str(price))
        assert ticket.place() is not None
        qloop.until(lambda: ticket.last_order is not None, timeout=45, what="the node's ack")
        assert ticket.last_order is not None and ticket.last_order.status.value == "OPEN"
        assert "open" in ticket.message.text()

        process.kill()
        qloop.until(lambda: "orders unavailable" in win.status.connection_text("broker:node"),
                    timeout=45, what="the status bar to say orders are unavailable")
        ticket.price.setText(str(price - inst.tick_size))
        assert ticket.place() is not None
        qloop.until(lambda: "orders unavailable" in ticket.message.text(), timeout=45,
                    what="the ticket to refuse the order")  # fmt: skip
        before = services.last_tick("NSE:INFY")
        qloop.until(lambda: services.last_tick("NSE:INFY") is not before,
                    what="market data to keep streaming")  # fmt: skip
    finally:
        qloop.run(win.stop())
        qloop.run(services.stop())
