"""The option chain and basket panels on the real simulated market and paper broker."""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt

from services.domain import OrderStatus, Side
from services.options.chain import option_expiries
from widgets.basket import BasketPanel
from widgets.option_chain import (
    CALL_LTP_COLUMN,
    DASH,
    PUT_LTP_COLUMN,
    STRIKE_COLUMN,
    OptionChainPanel,
)

NIFTY = "NSE:NIFTY 50"


def _live_panel(qtbot, running, qloop) -> OptionChainPanel:
    panel = OptionChainPanel(running, strikes_around_atm=6)
    qtbot.addWidget(panel)
    panel.resize(1400, 500)
    panel.show()
    expiries = option_expiries(running.instruments, NIFTY)
    assert panel.select(NIFTY, expiries[-1])  # next month: every strike trades often

    def solved() -> bool:
        panel.refresh()
        snap = panel.snapshot
        if snap is None or snap.atm_strike is None:
            return False
        i = snap.index_of(snap.atm_strike)
        return i is not None and all(
            q is not None and q.iv is not None
            for q in (snap.quote(i, call=True), snap.quote(i, call=False))
        )

    qloop.until(solved, timeout=20, what="IVs at the money")
    return panel


def test_chain_shows_atm_highlighted_greeks_pcr_and_never_nan(qtbot, running, qloop, tmp_path):
    panel = _live_panel(qtbot, running, qloop)
    model = panel.model
    snap = panel.snapshot
    assert snap is not None and model.rowCount() == 13
    atm_rows = [
        r for r in range(model.rowCount())
        if model.data(model.index(r, STRIKE_COLUMN)) == f"{snap.atm_strike.normalize():f}"
    ]
    assert len(atm_rows) == 1
    atm = atm_rows[0]
    background = model.data(model.index(atm, 0), Qt.ItemDataRole.BackgroundRole)
    other = model.data(model.index((atm + 3) % 13, STRIKE_COLUMN), Qt.ItemDataRole.BackgroundRole)
    assert background is not None and background != other
    texts = [
        str(model.data(model.index(r, c)))
        for r in range(model.rowCount())
        for c in range(model.columnCount())
    ]
    assert not any("nan" in t.lower() for t in texts)
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    for name in ("IV %", "Delta", "Gamma", "Theta", "Vega", "OI (lots)", "ΔOI", "Volume"):
        assert f"CE {name}" in headers and f"PE {name}" in headers
    delta = model.data(model.index(atm, headers.index("CE Delta")))
    assert delta != DASH and 0.3 < float(delta) < 0.7
    summary = panel.summary.text()
    assert "PCR" in summary and "Max\u00a0pain\u00a0" in summary and "lot\u00a0" in summary
    assert "r\u00a06.50%" in summary  # a figure never wraps inside itself
    panel.grab().save(str(tmp_path / "chain.png"))


def test_clicking_a_price_asks_for_a_ticket_for_that_contract(qtbot, running, qloop):
    panel = _live_panel(qtbot, running, qloop)
    snap = panel.snapshot
    assert snap is not None
    row = panel.model.rowCount() // 2
    rect = panel.table.visualRect(panel.model.index(row, CALL_LTP_COLUMN))
    with qtbot.waitSignal(panel.tradeRequested) as call:
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    key, side = call.args
    assert key == snap.quote(panel.model.first + row, call=True).key and side is Side.BUY
    rect = panel.table.visualRect(panel.model.index(row, PUT_LTP_COLUMN))
    with qtbot.waitSignal(panel.tradeRequested) as put:
        qtbot.mouseClick(
            panel.table.viewport(), Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.ShiftModifier, rect.center(),
        )
    assert put.args[0].endswith("PE") and put.args[1] is Side.SELL


def test_straddle_from_the_chain_goes_out_as_one_confirmed_basket(qtbot, running, qloop):
    panel = _live_panel(qtbot, running, qloop)
    basket = BasketPanel(running)
    qtbot.addWidget(basket)
    basket.show()
    panel.basketRequested.connect(basket.set_legs)
    row = panel.model.rowCount() // 2
    panel.basketRequested.emit(panel.straddle(row, Side.BUY))
    assert [leg.instrument.kind.value for leg in basket.legs] == ["CE", "PE"]
    assert "Margin (estimate" in basket.margin.text() and "breakevens" in basket.margin.text()
    assert basket.payoff is not None and len(basket.payoff.breakevens) == 2
    before = len(running.order_list())
    qtbot.mouseClick(basket.place_button, Qt.MouseButton.LeftButton)
    assert basket.confirm_button.isVisible() and "1. BUY" in basket.confirm_label.text()
    assert len(running.order_list()) == before  # nothing sent before the confirmation
    with qtbot.waitSignal(basket.basketPlaced, timeout=10_000):
        qtbot.mouseClick(basket.confirm_button, Qt.MouseButton.LeftButton)
    result = basket.last_result
    assert result is not None and result.complete, result.message
    sent = [o.key for o in result.orders]
    assert sent == [leg.instrument.key for leg in basket.legs]  # legs in order
    assert all(o.status is not OrderStatus.REJECTED for o in result.orders)
    lots = [leg.instrument.lot_size for leg in basket.legs]
    assert [o.quantity for o in result.orders] == lots


def test_a_bad_basket_price_is_refused_with_a_message(qtbot, running, qloop):
    basket = BasketPanel(running)
    qtbot.addWidget(basket)
    key = next(i.key for i in running.instruments if i.name == "NIFTY" and i.strike)
    assert basket.add_leg(key, Side.BUY)
    basket.table.item(0, 3).setText("abc")
    assert "price must be a number" in basket.message.text()
    basket.table.item(0, 3).setText("12.5")
    assert basket.legs[0].price == Decimal("12.5")
    assert not basket.add_leg("NSE:NIFTY 50", Side.BUY)  # an index has no order book


def test_main_window_chain_click_prefills_the_ticket_with_contract_and_lot(
    qtbot, services, qloop, tmp_path
):
    from PySide6.QtCore import QSettings

    from widgets.main_window import MainWindow

    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    win.start()
    try:
        win.show_option_chain()  # what View > Option chain and Ctrl+Shift+O do
        assert win.docks["Option chain"].isVisible()
        chain = win.option_chain
        assert chain.select(NIFTY, option_expiries(services.instruments, NIFTY)[-1])
        qloop.until(lambda: chain.refreshes > 1 and chain.model.rowCount() > 0, timeout=20)
        row = chain.model.rowCount() // 2
        quote = chain.model.quote_at(row, PUT_LTP_COLUMN)
        assert quote is not None
        chain.tradeRequested.emit(quote.key, Side.SELL)
        assert win.ticket.key() == quote.key
        assert win.ticket.quantity.value() == quote.instrument.lot_size == 65
        assert win.ticket.side is Side.SELL
        chain.basketRequested.emit(chain.strangle(row, 2, Side.SELL))
        assert win.docks["Basket"].isVisible() and len(win.basket.legs) == 2
    finally:
        qloop.run(win.stop())


def test_a_refresh_announces_exactly_the_cells_that_read_differently(qtbot, services):
    """The chain formats a snapshot once and tells Qt only about the cells that changed:
    nothing when no tick arrived, and every changed cell (never a stale one) when some did."""
    from datetime import datetime, timedelta

    from services.clock import IST

    panel = OptionChainPanel(services, strikes_around_atm=6)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.select(NIFTY, option_expiries(services.instruments, NIFTY)[-1])
    sim = services.simulator
    now = datetime.now(IST).replace(hour=11, minute=0, second=0, microsecond=0)
    for n in range(400):  # not started: the test makes the ticks itself
        sim.step(now + timedelta(milliseconds=15 * n), 200)
    model = panel.model

    roles = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
             Qt.ItemDataRole.BackgroundRole)  # fmt: skip

    def grid() -> list[list[str]]:
        return [
            [
                "|".join(str(model.data(model.index(r, c), role)) for role in roles)
                for c in range(model.columnCount())
            ]
            for r in range(model.rowCount())
        ]

    announced: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, _roles=(): announced.append((a.row(), a.column(), b.row(), b.column()))
    )
    panel.refresh()
    announced.clear()
    before = grid()
    panel.refresh()  # the same ticks: the same text everywhere
    assert announced == [] and model.cells_changed == 0 and grid() == before

    for n in range(40):
        sim.step(now + timedelta(seconds=7, milliseconds=15 * n), 200)
    first = model.first
    panel.refresh()
    assert model.first == first  # the ATM did not move: the same window, updated in place
    after = grid()
    changed = {
        (r, c) for r, row in enumerate(after) for c, text in enumerate(row) if text != before[r][c]
    }
    assert changed, "forty steps of the market moved nothing in the chain"
    covered = {
        (r, c) for r0, c0, r1, c1 in announced for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)
    }
    assert changed <= covered  # no cell left showing a stale figure
    rows = {r for r, _ in changed}
    assert {r for r, _ in covered} == rows  # rows that did not change are not repainted
    assert len(covered) < model.rowCount() * model.columnCount()


def test_columns_fit_their_longest_text_and_a_moved_window_is_updated_in_place(
    qtbot, services
):
    """Columns are fitted from the longest texts (Qt's per-cell measure agrees), and a
    window of the same size a strike further along is an update, not a model reset."""
    from datetime import datetime, timedelta

    from services.clock import IST

    panel = OptionChainPanel(services, strikes_around_atm=6)
    qtbot.addWidget(panel)
    panel.resize(1400, 500)
    panel.show()
    assert panel.select(NIFTY, option_expiries(services.instruments, NIFTY)[-1])
    sim = services.simulator
    now = datetime.now(IST).replace(hour=11, minute=0, second=0, microsecond=0)
    for n in range(400):
        sim.step(now + timedelta(milliseconds=15 * n), 200)
    panel.refresh()
    table, model = panel.table, panel.model
    for column in range(model.columnCount()):
        assert table.columnWidth(column) >= table.sizeHintForColumn(column), column
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    snap = panel.snapshot
    assert snap is not None
    first = model.first
    model.set_snapshot(snap, first + 1, model.count)  # the ATM moved a strike up
    assert resets == [] and model.first == first + 1
    assert model.data(model.index(0, STRIKE_COLUMN)) == f"{snap.strikes[first + 1].normalize():f}"
