"""GTT single and OCO on the paper broker, through the real order path."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side, Tick
from services.gtt import GttError, GttStatus

KEY = "NSE:INFY"


def _tick(running, price: Decimal) -> Tick:
    last = running.last_tick(KEY)
    assert last is not None
    return replace(last, last_price=price, ts=running.clock.now())


def _limit(side: Side, price: Decimal) -> OrderRequest:
    return OrderRequest(KEY, side, 10, OrderType.LIMIT, Product.MIS, price=price)


def test_single_gtt_fires_once_when_the_price_reaches_it(running, qloop) -> None:
    ltp = running.last_tick(KEY).last_price
    trigger = ltp - 5
    gtt = qloop.run(running.place_gtt_single(trigger, _limit(Side.BUY, trigger)))
    assert gtt.status is GttStatus.ACTIVE and gtt.legs[0].rising is False
    book = running.gtt
    assert book is not None
    book.on_tick(_tick(running, trigger + Decimal("0.05")))  # not there yet
    assert qloop.run(running.gtt_list())[0].status is GttStatus.ACTIVE
    before = len(running.order_list())
    book.on_tick(_tick(running, trigger - Decimal("0.05")))
    qloop.until(lambda: book.gtts()[0].order_id is not None, what="the GTT's order")
    fired = qloop.run(running.gtt_list())[0]
    assert fired.status is GttStatus.TRIGGERED and fired.fired_leg == 0
    orders = running.order_list()
    assert len(orders) == before + 1
    order = next(o for o in orders if o.order_id == fired.order_id)
    assert order.side is Side.BUY and order.request.price == trigger
    assert order.status is not OrderStatus.REJECTED
    book.on_tick(_tick(running, trigger - 1))  # fired GTTs stay fired
    assert len(running.order_list()) == before + 1


def test_oco_first_leg_wins_and_voids_the_other(running, qloop) -> None:
    ltp = running.last_tick(KEY).last_price
    stop, target = ltp - 20, ltp + 20
    gtt = qloop.run(
        running.place_gtt_oco(stop, _limit(Side.SELL, stop), target, _limit(Side.SELL, target))
    )
    book = running.gtt
    assert book is not None
    book.on_tick(_tick(running, target))
    qloop.until(lambda: book.gtts()[-1].order_id is not None, what="the target's order")
    done = book.gtts()[-1]
    assert done.gtt_id == gtt.gtt_id and done.fired_leg == 1
    count = len(running.order_list())
    book.on_tick(_tick(running, stop - 1))  # the stop is void now
    assert len(running.order_list()) == count


def test_bad_gtts_are_refused_with_a_reason_and_can_be_cancelled(running, qloop) -> None:
    def at_price(place):  # the book's own price, read with no loop turn before the place
        async def go():
            ltp = running.quotes.last_price(KEY)
            assert ltp is not None
            return await place(ltp)

        return qloop.run(go())

    qloop.until(lambda: running.quotes.last_price(KEY) is not None, what="a quote")

    with pytest.raises(GttError, match="stop below and its target above"):
        at_price(lambda ltp: running.place_gtt_oco(
            ltp + 1, _limit(Side.SELL, ltp), ltp + 2, _limit(Side.SELL, ltp)))
    with pytest.raises(GttError, match="equals the last price"):
        at_price(lambda ltp: running.place_gtt_single(ltp, _limit(Side.BUY, ltp)))
    with pytest.raises(GttError, match="no last price"):
        qloop.run(running.place_gtt_single(Decimal(1), OrderRequest(
            "NFO:NOSUCH", Side.BUY, 1, OrderType.LIMIT, Product.MIS, price=Decimal(1))))
    gtt = at_price(lambda ltp: running.place_gtt_single(ltp + 50, _limit(Side.SELL, ltp + 50)))
    assert qloop.run(running.cancel_gtt(gtt.gtt_id)).status is GttStatus.CANCELLED
    with pytest.raises(GttError, match="not active"):
        qloop.run(running.cancel_gtt(gtt.gtt_id))


def test_gtt_panel_places_an_oco_and_shows_it_fire(qtbot, services, qloop, tmp_path) -> None:
    from PySide6.QtCore import QSettings, Qt

    from widgets.main_window import MainWindow

    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    win.start()
    try:
        qloop.until(lambda: services.last_tick(KEY) is not None)
        # The GTT book compares with the quote book's price, which the bus feeds (not the
        # simulator's own last tick that last_tick falls back to): on a loaded machine it can
        # come later.
        qloop.until(lambda: services.quotes.last_price(KEY) is not None, what="a quote")
        win.ticket.set_symbol(KEY)
        win.show_gtt()
        panel = win.gtt_panel
        assert win.docks["GTT"].isVisible() and panel.symbol.text() == KEY
        panel.kind.setCurrentText("OCO")
        # An intraday OCO: a CNC sell (the panel's default, for holdings) would be refused by
        # the paper broker with no holding, and the GTT would end FAILED, not TRIGGERED.
        panel.product.setCurrentText("MIS")
        ltp = services.last_tick(KEY).last_price
        panel.trigger.setText("abc")
        assert panel.place() is None and "trigger must be a number" in panel.message.text()
        panel.trigger.setText(f"{ltp - 30}")
        panel.price.setText(f"{ltp - 30}")
        panel.target_trigger.setText(f"{ltp + 30}")
        panel.target_price.setText(f"{ltp + 30}")
        assert panel.home.text().startswith("Held by this terminal")
        qtbot.mouseClick(panel.place_button, Qt.MouseButton.LeftButton)
        qloop.until(lambda: "placed (oco)" in panel.message.text(), what="the GTT placed")
        qloop.until(lambda: panel.table.rowCount() == 1, what="the GTT listed")
        assert panel.table.item(0, 4).text() == "ACTIVE"
        # Trail the stop: the dialog shows each leg's trigger and limit, the move keeps the id.
        panel.table.selectRow(0)
        qtbot.mouseClick(panel.modify_button, Qt.MouseButton.LeftButton)
        dialog = panel.modify_dialog
        assert dialog is not None and dialog.isVisible()
        assert [t.text() for t in dialog.triggers] == [f"{ltp - 30}", f"{ltp + 30}"]
        dialog.triggers[0].setText(f"{ltp - 20}")
        dialog.prices[0].setText(f"{ltp - Decimal('20.5')}")
        dialog.accept()
        qloop.until(lambda: "now triggers at" in panel.message.text(), what="the GTT moved")
        qloop.until(lambda: panel.table.item(0, 3).text() == f"{ltp - 20} / {ltp + 30}",
                    what="the moved triggers listed")  # fmt: skip
        (moved,) = services.gtt.gtts()
        assert moved.legs[0].order.price == ltp - Decimal("20.5")
        panel.table.selectRow(0)
        dialog = panel.modify_dialog = panel.modify_selected()
        assert dialog is not None
        dialog.triggers[0].setText(f"{ltp + 40}")  # above the target: refused, said why
        dialog.accept()
        qloop.until(lambda: "stop below and its target above" in panel.message.text())
        services.gtt.on_tick(_tick(services, ltp - 21))
        qloop.until(lambda: panel.table.item(0, 4).text() == "TRIGGERED", what="panel update")
        qloop.until(lambda: services.gtt.gtts()[0].order_id is not None)
        panel.table.selectRow(0)
        assert panel.modify_selected() is None and "only an active" in panel.message.text()
    finally:
        qloop.run(win.stop())
