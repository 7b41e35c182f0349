"""The desktop's GTT panel on Kite: GTTs go to Zerodha (through the real kiteconnect SDK to
the fake's ``/gtt/triggers``), the panel says they are held there, lists Kite's own records,
shows one fire at Zerodha on its periodic re-read, and cancels another there.

The feed is not started (KiteTicker's Twisted reactor is one per process): the trigger's
reference price is the fake's quote read through the SDK, as the feed would have brought it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from app.wiring import build_services
from services.clock import ManualClock
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_wiring import NOW, secrets_for
from tests.widgets.conftest import LoopRunner, qloop  # noqa: F401
from widgets.gtt_panel import GttPanel
from widgets.main_window import MainWindow

KEY = "NSE:INFY"  # 1573.70 at the fake


def _row(panel: GttPanel, gtt_id: int) -> int:
    for row in range(panel.table.rowCount()):
        item = panel.table.item(row, 0)
        if item is not None and item.text() == str(gtt_id):
            return row
    return -1


def _status(panel: GttPanel, gtt_id: int) -> Callable[[], str]:
    def read() -> str:
        row = _row(panel, gtt_id)
        item = panel.table.item(row, 4) if row >= 0 else None
        return "" if item is None else item.text()

    return read


def test_gtts_placed_from_the_panel_rest_at_zerodha(
    fake: FakeKite,
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    services = build_services(kite_settings(fake), ManualClock(NOW), secrets=secrets_for(fake))
    assert services.live is not None
    qloop.run(services.live.load_instruments(), timeout=20)
    quote = qloop.run(services.broker.quote([KEY]))  # type: ignore[union-attr]
    services.quotes.update(quote[KEY])
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    win.show()
    win.ticket.set_symbol(KEY)
    win.show_gtt()
    panel = win.gtt_panel
    assert panel.home.text() == "Held at Zerodha: they fire even while this terminal is closed"
    assert panel.kind.model().item(1).isEnabled()  # Kite takes an OCO
    qloop.until(lambda: panel.loads >= 1, what="the first read of Kite's GTTs")
    assert panel.table.rowCount() == 0

    # A Kite GTT carries a limit order: a market one is refused before anything is sent.
    panel.order_type.setCurrentText("MARKET")
    panel.trigger.setText("1700")
    panel.place()
    qloop.until(lambda: "LIMIT order" in panel.message.text(), what="the refusal")
    assert not fake.gtts and fake.journal.count("POST", "/gtt/triggers") == 0

    # An OCO bracketing a holding: stop below, target above.
    panel.order_type.setCurrentText("LIMIT")
    panel.kind.setCurrentText("OCO")
    panel.side.setCurrentText("SELL")
    panel.product.setCurrentText("CNC")
    panel.quantity.setValue(2)
    panel.trigger.setText("1520")
    panel.price.setText("1519")
    panel.target_trigger.setText("1650")
    panel.target_price.setText("1651")
    qtbot.mouseClick(panel.place_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: "placed (oco)" in panel.message.text(), what="the OCO placed")
    (oco_id,) = fake.gtts
    record = fake.gtts[oco_id]
    assert record["type"] == "two-leg" and record["condition"]["trigger_values"] == [1520, 1650]
    assert record["condition"]["last_price"] == 1573.7  # the quote the feed would have brought
    assert [o["quantity"] for o in record["orders"]] == [2, 2]
    qloop.until(lambda: _status(panel, oco_id)() == "ACTIVE", what="the OCO listed")

    # A single GTT to sell higher.
    panel.kind.setCurrentText("Single")
    panel.trigger.setText("1700")
    panel.price.setText("1699")
    qtbot.mouseClick(panel.place_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: "placed (single)" in panel.message.text(), what="the single placed")
    single_id = max(fake.gtts)
    qloop.until(lambda: panel.table.rowCount() == 2, what="both GTTs listed")
    assert panel.table.item(_row(panel, oco_id), 2).text() == "OCO"
    assert panel.table.item(_row(panel, oco_id), 3).text() == "1520 / 1650"

    # The price reaches the target at Zerodha, with no event reaching the terminal: the
    # panel's periodic re-read shows it fired and the order Kite placed.
    fake.set_price(KEY, "1655.0")
    loads = panel.loads
    assert panel.timer.isActive() and panel.timer.interval() == 30_000
    panel.timer.timeout.emit()
    qloop.until(lambda: panel.loads > loads, what="the periodic re-read")
    assert _status(panel, oco_id)() == "TRIGGERED"
    order_id = panel.table.item(_row(panel, oco_id), 5).text()
    assert order_id in fake.orders and fake.orders[order_id]["price"] == 1651

    # Cancel the single from the panel: deleted at Zerodha.
    panel.table.selectRow(_row(panel, single_id))
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: _status(panel, single_id)() == "CANCELLED", what="the cancel shown")
    assert fake.gtts[single_id]["status"] == "deleted"
    assert services.gtt is not None and services.gtt.gtts() == []  # nothing in the book
