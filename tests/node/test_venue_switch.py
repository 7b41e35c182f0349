"""Switching the order venue between paper and a real node process while the window runs.

The Broker menu's "Send orders to" moves the order path to the node: the ticket's next order
is placed there, the book is the node's; a switch while an order is in flight is refused with
a message and changes nothing; back on paper the paper book returns.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from app.settings import NodeSettings, Settings
from app.venue_switch import VenueSwitchRefused
from app.wiring import build_services
from services.domain import OrderType, round_to_tick
from services.paper import PaperBroker
from services.risk.limits import RiskLimits
from services.storage import Database
from tests.kite_app.conftest import MemorySecrets
from tests.node.node_process import NodeProcess
from tests.node.test_desktop_through_node import _node_orders
from tests.widgets.conftest import TEST_WATCHLIST, LoopRunner, qloop  # noqa: F401 (fixture)
from widgets.main_window import MainWindow

OPEN_LIMITS = {"max_orders_per_second": None, "duplicate_window_seconds": None}


@pytest.fixture
def node(tmp_path: Path) -> Any:
    # One order a second on the node (SEBI's gate, waiting): a second order sent at once
    # stays in flight for up to a second, long enough to try a switch meanwhile.
    process = NodeProcess(tmp_path / "node", settings={
        "risk": OPEN_LIMITS, "seed": 7, "node": {"order_rate_per_second": 1}})  # fmt: skip
    process.root.mkdir()
    token = process.create_key()
    process.start()
    try:
        yield process, token
    finally:
        process.stop()


def test_an_unpaired_node_is_refused_and_nothing_changes() -> None:
    services = build_services(Settings(models_enabled=False))
    with pytest.raises(VenueSwitchRefused, match="needs the node's address"):
        asyncio.run(services.switch_venue("node"))
    assert services.node is None and services.orders.venue is services.home_venue


def test_a_paper_account_not_opened_at_the_start_is_not_switched_to(tmp_path: Path) -> None:
    settings = Settings(models_enabled=False,
                        node=NodeSettings(venue="node", url="http://127.0.0.1:9"))  # fmt: skip
    with Database.open(tmp_path / "p.db", os.urandom(32), create=True) as db:
        services = build_services(settings, database=db,
                                  secrets=MemorySecrets({"node": {"api_key": "dk_x"}}))  # fmt: skip
        assert services.node is not None and isinstance(services.home_venue, PaperBroker)
        with pytest.raises(VenueSwitchRefused, match="restart the terminal to trade there"):
            asyncio.run(services.switch_venue("paper"))
        assert services.orders.venue is services.node.execution


@pytest.mark.timeout(300)
def test_the_broker_menu_switches_paper_to_the_node_and_back_without_a_restart(
    qtbot: Any, qloop: LoopRunner, node: tuple[NodeProcess, str], tmp_path: Path  # noqa: F811
) -> None:
    process, token = node
    settings = Settings(seed=7, ticks_per_second=50, watchlist=TEST_WATCHLIST,
                        models_enabled=False, risk=RiskLimits(**OPEN_LIMITS),  # type: ignore[arg-type]
                        node=NodeSettings(venue="broker", url=process.base))  # fmt: skip
    services = build_services(settings, secrets=MemorySecrets({"node": {"api_key": token}}))
    win = MainWindow(services, settings.watchlist, QSettings(str(tmp_path / "l.ini"),
                                                             QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    try:
        menu = win.broker_menu
        assert menu is not None and services.node is None
        qloop.until(lambda: services.last_tick("NSE:INFY") is not None, what="a tick")
        tick, inst = services.last_tick("NSE:INFY"), services.instrument("NSE:INFY")
        assert tick is not None and inst is not None
        price = round_to_tick(tick.last_price * Decimal("0.95"), inst.tick_size)
        ticket = win.ticket
        ticket.set_symbol("NSE:INFY")
        ticket.order_type.setCurrentText(OrderType.LIMIT.value)
        ticket.quantity.setValue(1)

        def place(at: Decimal) -> None:
            ticket.last_order = None
            ticket.price.setText(str(at))
            assert ticket.place() is not None

        place(price)  # on paper
        qloop.until(lambda: ticket.last_order is not None, what="the paper ack")
        assert ticket.last_order is not None
        paper_tag = ticket.last_order.request.tag
        assert menu.venue_action("paper").isChecked()

        menu.venue_action("node").trigger()
        qloop.until(lambda: "order node" in win.status.currentMessage()
                    and services.node is not None, timeout=45, what="the switch to the node")
        assert "Orders now go through the order node" in win.status.currentMessage()
        menu.refresh()
        assert menu.venue_action("node").isChecked()
        assert not menu.venue_action("paper").isChecked()
        # The book is the node's now: the paper order is not in it.
        assert all(o.request.tag != paper_tag for o in services.order_list())
        assert services.node is not None
        stream = services.node.stream
        qloop.until(lambda: stream.connected, timeout=45, what="the node stream")

        place(price - inst.tick_size)
        qloop.until(lambda: ticket.last_order is not None, timeout=45, what="the node's ack")
        first = ticket.last_order
        assert first is not None and first.status.value == "OPEN"
        assert first.order_id in _node_orders(process, token)  # placed at the node

        place(price - 2 * inst.tick_size)  # held by the node's 1/s gate: in flight
        qloop.until(lambda: bool(services.orders.in_flight()), what="an order in flight")
        menu.venue_action("paper").trigger()
        qloop.until(lambda: "waiting for their answer" in win.status.currentMessage(),
                    what="the refusal")  # fmt: skip
        assert services.node is not None and services.orders.venue is services.node.execution
        qloop.until(lambda: ticket.last_order is not None, timeout=45, what="the second ack")
        assert ticket.last_order is not None
        assert ticket.last_order.order_id in _node_orders(process, token)

        menu.venue_action("paper").trigger()
        qloop.until(lambda: services.node is None, timeout=45, what="the switch back")
        assert "paper" in win.status.currentMessage()
        qloop.until(lambda: "not in use" in win.status.connection_text("broker:node"),
                    what="the node shown as not in use (not as unavailable)")  # fmt: skip
        assert any(o.request.tag == paper_tag for o in services.order_list())
        place(price - 3 * inst.tick_size)
        qloop.until(lambda: ticket.last_order is not None, what="a paper ack again")
        assert ticket.last_order is not None and ticket.last_order.status.value == "OPEN"
        assert len(_node_orders(process, token)) == 2  # not sent to the node
    finally:
        qloop.run(win.stop())
        qloop.run(services.stop())
