"""The holdings and funds panels in the real window, on the real services.

Holdings come from the broker: the paper broker has none (the panel says why), and a paper
broker whose demat account holds shares stands in for a real broker's snapshot.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import Qt

from services.domain import Funds, Holding, OrderRequest, OrderType, Product, Side
from services.paper import PaperBroker
from tests.widgets.conftest import TEST_WATCHLIST
from widgets import theme
from widgets.funds_panel import WAITING_TEXT, FundsPanel, rupees
from widgets.holdings import COLUMNS, EMPTY_TEXT
from widgets.main_window import MainWindow
from widgets.table_model import fmt_price

HELD = [
    Holding("NSE:INFY", 10, Decimal("100.00"), Decimal("1.00")),  # far below the market: a gain
    Holding("NSE:TCS", 5, Decimal("90000.00"), Decimal("1.00")),  # far above it: a loss
]


class DematPaperBroker(PaperBroker):
    """The paper broker with delivery holdings already settled, as a real broker reports."""

    async def holdings(self) -> list[Holding]:
        return list(HELD)


def _column(header: str) -> int:
    return next(i for i, c in enumerate(COLUMNS) if c.header == header)


def _open_window(qtbot, services, qloop) -> MainWindow:
    win = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(qtbot, services, qloop):
    win = _open_window(qtbot, services, qloop)
    win.start()
    qloop.until(lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST))
    yield win
    qloop.run(win.stop())


@pytest.fixture
def demat_window(qtbot, qloop):
    from app.wiring import build_services
    from services.brokers.registry import BrokerParts, Brokers
    from tests.widgets.conftest import make_settings

    def demat(context):  # the registry's paper venue, with holdings in its demat account
        venue = DematPaperBroker(context.instruments, context.bus, context.clock)
        return BrokerParts("paper", execution=venue)

    services = build_services(make_settings(), brokers=Brokers({"paper": demat}))
    assert isinstance(services.broker, DematPaperBroker)
    win = _open_window(qtbot, services, qloop)
    qloop.until(lambda: services.holding_list() == HELD, what="the broker's holdings")
    win.start()
    yield win, services
    qloop.run(win.stop())
    qloop.run(services.stop())


def test_paper_broker_holdings_show_why_they_are_empty(window):
    holdings = window.holdings
    assert window.docks["Holdings"].widget() is holdings
    # Tabbed with the order book and positions.
    tabbed = window.tabifiedDockWidgets(window.docks["Positions"])
    assert window.docks["Holdings"] in tabbed and window.docks["Order book"] in tabbed
    assert holdings.is_empty and holdings.model.rowCount() == 0
    assert holdings.empty.text() == EMPTY_TEXT
    window.docks["Holdings"].raise_()
    assert holdings.empty.isVisible() and not holdings.table.isVisible()
    assert holdings.total.text() == ""


def test_holdings_marked_live_with_coloured_pnl_and_totals(qtbot, demat_window, qloop):
    win, _services = demat_window
    holdings = win.holdings
    win.docks["Holdings"].raise_()
    assert not holdings.is_empty and holdings.table.isVisible()
    model = holdings.model
    assert model.keys() == ["NSE:INFY", "NSE:TCS"]
    assert model.text("NSE:INFY", "Qty") == "10" and model.text("NSE:INFY", "Avg") == "100.00"
    # The snapshot's stale price (1.00) is replaced by the market's.
    qloop.until(lambda: model.text("NSE:INFY", "LTP") != "1.00", what="a live LTP")
    infy = model.get("NSE:INFY")
    assert infy is not None and infy.last_price > 1000
    assert model.text("NSE:INFY", "Current") == fmt_price(infy.last_price * 10)
    assert model.text("NSE:INFY", "P&L") == fmt_price((infy.last_price - 100) * 10)
    percent = (infy.last_price - 100) * 100 / 100
    assert model.text("NSE:INFY", "P&L %") == f"{percent:+,.2f}%"
    pnl, pct = _column("P&L"), _column("P&L %")
    role = Qt.ItemDataRole.ForegroundRole
    for key, colour in (("NSE:INFY", theme.UP), ("NSE:TCS", theme.DOWN)):
        row = model.row_of(key)
        assert model.data(model.index(row, pnl), role) == colour
        assert model.data(model.index(row, pct), role) == colour
    # Prices keep moving with ticks, and the footer adds the rows up.
    first = model.text("NSE:TCS", "LTP")
    qloop.until(lambda: model.text("NSE:TCS", "LTP") != first, what="TCS ticking")
    invested = Decimal(10 * 100 + 5 * 90000)
    total = holdings.total.text()
    assert f"Invested <b>{fmt_price(invested)}</b>" in total
    assert theme.DOWN.name() in total  # 5 TCS bought at 90,000 lose more than INFY gains
    # An unchanged snapshot is not reloaded (the poll is cheap).
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))
    holdings.refresh()
    assert resets == []


def test_funds_panel_follows_fills_at_a_few_repaints_a_second(qtbot, window, services, qloop):
    running = services
    panel = window.funds_panel
    assert window.docks["Funds"].widget() is panel and panel.isVisible()
    assert panel.value_text("Margin used") in ("—", rupees(Decimal(0)))
    if running.funds() is None:
        assert panel.status.text() == WAITING_TEXT
    qloop.run(
        running.submit_order(OrderRequest("NSE:INFY", Side.BUY, 25, OrderType.MARKET, Product.MIS))
    )
    qloop.until(
        lambda: running.funds() is not None and running.funds().margin_used > 0,
        what="margin blocked at the paper broker",
    )
    qloop.until(
        lambda: panel.value_text("Margin used") == rupees(running.funds().margin_used),
        what="the panel showing the order manager's funds",
    )
    assert panel.value_text("Opening balance") == rupees(Decimal(running.settings.opening_balance))
    assert not panel.status.isVisible()
    # A held position is marked with every tick batch that moves its price and funds are
    # republished with it; the panel repaints at most four times a second however often
    # they arrive (2.5 s: at most 11 repaints, for more publications than that).
    published = running.bus.published.get("funds", 0)
    repaints = panel.repaints
    qloop.for_seconds(2.5)
    assert running.bus.published.get("funds", 0) - published > 15
    assert panel.repaints - repaints <= 11


def test_funds_panel_colours_pnl_by_sign(qtbot):
    panel = FundsPanel(lambda: None, repaint_ms=10)
    qtbot.addWidget(panel)
    assert panel.status.text() == WAITING_TEXT and panel.value_text("Available cash") == "—"
    panel.apply_funds(
        [
            Funds(Decimal("1000"), Decimal("900"), Decimal("100")),
            Funds(
                Decimal("100000"),
                Decimal("95000.5"),
                Decimal("4999.5"),
                realised_pnl=Decimal("-1234.5"),
                unrealised_pnl=Decimal("250"),
            ),
        ]
    )
    qtbot.waitUntil(lambda: panel.repaints == 1)
    assert panel.value_text("Available cash") == "₹95,000.50"
    assert panel.value_text("Realised P&L") == "-₹1,234.50"
    assert panel.value_text("Unrealised P&L") == "₹250.00"
    assert theme.DOWN.name() in panel.values["Realised P&L"].styleSheet()
    assert theme.UP.name() in panel.values["Unrealised P&L"].styleSheet()
    assert theme.NEUTRAL.name() in panel.values["Margin used"].styleSheet()
