"""The market depth dock on the real simulated market, inside the real window.

To compare the panel with "the last tick" exactly, the simulator task is cancelled (the feed
pauses, everything else keeps running) and the panel must settle on the quote book's last tick.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings, Qt

from services.domain import OrderType
from tests.widgets.conftest import TEST_WATCHLIST
from widgets.depth import ASK_PRICE, ASK_QTY, BID_PRICE, BID_QTY, INDEX_MESSAGE
from widgets.main_window import MainWindow
from widgets.table_model import fmt_int, fmt_price


@pytest.fixture
def window(qtbot, services, qloop, tmp_path):
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    win.docks["Depth"].raise_()
    yield win
    qloop.run(win.stop())


@pytest.fixture
def running(window, services, qloop):
    qloop.until(lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST))
    return services


def pause_feed(services, qloop) -> None:
    simulator = next(t for t in services._tasks if t.get_name() == "dalal:simulator")
    simulator.cancel()
    qloop.until(simulator.done, what="the simulator to stop")


def settle(panel, services, qloop, key: str) -> None:
    qloop.until(
        lambda: panel.model.depth == services.last_tick(key).depth,
        what=f"the panel to show the last tick of {key}",
    )


def cell(panel, row: int, column: int) -> str:
    return panel.model.index(row, column).data()


def test_panel_shows_five_levels_a_side_of_the_selected_symbols_last_tick(running, window, qloop):
    w, key = window, "NSE:RELIANCE"
    w.watchlist.select_key(key)
    qloop.until(lambda: not w.depth_panel.showing_empty(), what="a book")
    pause_feed(running, qloop)
    settle(w.depth_panel, running, qloop, key)

    tick = running.last_tick(key)
    depth = tick.depth
    assert len(w.depth_panel.bid_levels()) == 5 and len(w.depth_panel.ask_levels()) == 5
    assert w.depth_panel.bid_levels() == depth.bids and w.depth_panel.ask_levels() == depth.asks
    for row in range(5):
        bid, ask = depth.bids[row], depth.asks[row]
        assert cell(w.depth_panel, row, 0) == fmt_int(bid.orders)
        assert cell(w.depth_panel, row, BID_QTY) == fmt_int(bid.quantity)
        assert cell(w.depth_panel, row, BID_PRICE) == f"{bid.price:.2f}"
        assert cell(w.depth_panel, row, ASK_PRICE) == f"{ask.price:.2f}"
        assert cell(w.depth_panel, row, ASK_QTY) == fmt_int(ask.quantity)
        assert cell(w.depth_panel, row, 5) == fmt_int(ask.orders)
    # Best first: bids fall and asks rise away from the touch.
    assert [lv.price for lv in depth.bids] == sorted((lv.price for lv in depth.bids), reverse=True)
    assert [lv.price for lv in depth.asks] == sorted(lv.price for lv in depth.asks)

    header = w.depth_panel.header.text()
    spread = depth.best_ask.price - depth.best_bid.price
    assert "RELIANCE" in header and f"LTP {fmt_price(tick.last_price)}" in header
    assert f"spread {fmt_price(spread)}" in header
    totals = w.depth_panel.totals.text()
    assert fmt_int(sum(lv.quantity for lv in depth.bids)) in totals
    assert fmt_int(sum(lv.quantity for lv in depth.asks)) in totals


def test_switching_symbol_switches_the_book(running, window, qloop):
    w = window
    w.watchlist.select_key("NSE:RELIANCE")
    qloop.until(lambda: not w.depth_panel.showing_empty(), what="a book")
    w.watchlist.select_key("NSE:INFY")
    # At once from the quote book, without waiting for INFY's next tick.
    assert w.depth_panel.model.depth == running.last_tick("NSE:INFY").depth
    assert "INFY" in w.depth_panel.header.text()
    qloop.for_seconds(0.3)  # RELIANCE keeps ticking; the panel must ignore it
    pause_feed(running, qloop)
    settle(w.depth_panel, running, qloop, "NSE:INFY")
    assert w.depth_panel.model.depth != running.last_tick("NSE:RELIANCE").depth
    assert "INFY" in w.depth_panel.header.text() and "RELIANCE" not in w.depth_panel.header.text()


def test_an_index_shows_the_empty_state(running, window, qloop):
    w = window
    w.watchlist.select_key("NSE:RELIANCE")
    qloop.until(lambda: not w.depth_panel.showing_empty(), what="a book")
    w.watchlist.select_key("NSE:NIFTY 50")
    assert w.depth_panel.showing_empty() and w.depth_panel.empty.text() == INDEX_MESSAGE
    assert w.depth_panel.model.depth is None and w.depth_panel.totals.text() == ""
    nifty_before = running.last_tick("NSE:NIFTY 50")
    qloop.until(lambda: running.last_tick("NSE:NIFTY 50") != nifty_before, what="index ticks")
    qloop.for_seconds(0.1)
    assert w.depth_panel.showing_empty() and w.depth_panel.empty.text() == INDEX_MESSAGE
    w.watchlist.select_key("NSE:TCS")
    assert not w.depth_panel.showing_empty()


def test_clicking_an_ask_row_sets_the_ticket_price(qtbot, running, window, qloop):
    w, key = window, "NSE:TCS"
    w.watchlist.select_key(key)
    pause_feed(running, qloop)
    settle(w.depth_panel, running, qloop, key)
    asks = running.last_tick(key).depth.asks
    bids = running.last_tick(key).depth.bids
    w.ticket.order_type.setCurrentText(OrderType.MARKET.value)
    assert not w.ticket.price.isEnabled()

    table = w.depth_panel.table
    clicked: list[Decimal] = []
    w.depth_panel.priceClicked.connect(clicked.append)
    pos = table.visualRect(table.model().index(2, ASK_PRICE)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert clicked == [asks[2].price]
    # A price off the book makes the MARKET ticket a LIMIT order at that price.
    assert w.ticket.order_type.currentText() == OrderType.LIMIT.value
    assert w.ticket.price.text() == f"{asks[2].price:.2f}"
    assert w.ticket.key() == key

    # Anywhere on the ask side of a row is that ask; the bid side gives the bid.
    pos = table.visualRect(table.model().index(0, 5)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert w.ticket.price.text() == f"{asks[0].price:.2f}"
    pos = table.visualRect(table.model().index(1, 0)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert w.ticket.price.text() == f"{bids[1].price:.2f}"
