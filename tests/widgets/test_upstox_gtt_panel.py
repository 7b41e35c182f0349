"""The desktop's GTT panel on Upstox: a single GTT (a market order when it fires, as Upstox's
GTT carries) is placed at Upstox through the real upstox-python-sdk and the fake, listed
with Upstox's id and cancelled there; an OCO is refused with the reason, nothing sent.

The feed is not started: the trigger's reference price is one tick at the fake's price, as
the feed would have brought it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from app.settings import Settings, UpstoxSettings
from app.wiring import build_services
from services.clock import IST
from services.domain import Tick
from tests.brokers.upstox.test_upstox_session_stream import Store, free_port
from tests.fakes.upstox import FakeUpstox
from tests.widgets.conftest import LoopRunner

KEY = "NSE:INFY"
PRICE = Decimal("1573.70")


def test_a_single_gtt_rests_at_upstox_and_an_oco_is_refused(
    qtbot: QtBot, qloop: LoopRunner, tmp_path: Path
) -> None:
    from widgets.main_window import MainWindow

    with FakeUpstox() as fake:
        secrets = Store()
        secrets.set("upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret})
        upstox = UpstoxSettings(
            base_url=fake.base_url, redirect_url=f"http://127.0.0.1:{free_port()}/cb/upstox"
        )
        settings = Settings(broker="upstox", watchlist=[KEY], upstox=upstox)
        services = build_services(settings, secrets=secrets, access_token="fake-access-token")
        assert services.live is not None
        qloop.run(services.live.load_instruments(), timeout=20)
        now = datetime.now(IST)
        services.quotes.update(Tick(KEY, now, PRICE, 0, 0, PRICE, PRICE, PRICE, PRICE))
        store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
        win = MainWindow(services, settings.watchlist, store)
        qtbot.addWidget(win)
        win.show()
        win.ticket.set_symbol(KEY)
        win.show_gtt()
        panel = win.gtt_panel
        assert panel.home.text().startswith("Held at Upstox")
        assert not panel.kind.model().item(1).isEnabled()  # no OCO to choose at Upstox
        panel.side.setCurrentText("SELL")
        panel.product.setCurrentText("CNC")
        panel.quantity.setValue(4)

        panel.kind.setCurrentText("OCO")
        panel.order_type.setCurrentText("MARKET")
        panel.trigger.setText("1450")
        panel.target_trigger.setText("1650")
        panel.place()
        qloop.until(lambda: "no OCO" in panel.message.text(), what="the OCO refused")
        assert fake.gtt_requests == []

        panel.kind.setCurrentText("Single")
        panel.order_type.setCurrentText("LIMIT")
        panel.price.setText("1449")
        panel.place()
        qloop.until(lambda: "market order" in panel.message.text(), what="the limit refused")
        assert fake.gtt_requests == []

        panel.order_type.setCurrentText("MARKET")
        qtbot.mouseClick(panel.place_button, Qt.MouseButton.LeftButton)
        qloop.until(lambda: "placed (single)" in panel.message.text(), what="the GTT placed")
        kind, body = fake.gtt_requests[0]
        assert kind == "place" and body["rules"][0]["trigger_type"] == "BELOW"
        assert body["quantity"] == 4 and body["transaction_type"] == "SELL"
        qloop.until(lambda: panel.table.rowCount() == 1, what="Upstox's GTT listed")
        gtt_id = panel.table.item(0, 0).text()
        assert not gtt_id.isdigit()  # Upstox's own id
        assert panel.table.item(0, 4).text() == "ACTIVE"
        panel.table.selectRow(0)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        qloop.until(lambda: panel.table.item(0, 4).text() == "CANCELLED", what="cancelled")
        assert fake.gtt_requests[-1][0] == "cancel"
