"""The desktop's Broker menu: every registered broker, with log in / connect / disconnect."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.wiring import build_services
from services.brokers import registry
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_login import follow, free_port
from tests.kite_app.test_login_dialog import expired_session
from tests.widgets.conftest import LoopRunner, make_settings, qloop  # noqa: F401  (fixture)
from widgets.broker_menu import BrokerMenu
from widgets.main_window import MainWindow


def test_the_window_lists_every_registered_broker(qtbot: QtBot) -> None:
    services = build_services(make_settings())
    window = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(window)
    menu = window.broker_menu
    assert menu is not None and menu in [a.menu() for a in window.menuBar().actions()]
    assert list(menu.submenus) == registry.names(live_only=True)
    kite = menu.submenus["kite"]
    assert kite.title() == "Zerodha Kite — not logged in (not in use)"
    assert [a.text() for a in kite.actions()] == ["Log in…", "Connect", "Disconnect"]
    assert not menu.action("kite", "disconnect").isEnabled()
    menu.action("kite", "connect").trigger()  # paper trading: Kite is not in use
    assert 'set "feed": "kite"' in window.status.currentMessage()


def test_log_in_from_the_menu_resumes_the_session(
    fake: FakeKite,
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/kite/callback"
    fake.redirect_url = redirect
    services = build_services(
        kite_settings(fake, redirect_url=redirect), secrets=expired_session(fake, fake.api_secret)
    )
    live = services.live
    assert live is not None and not live.session_valid
    said: list[str] = []
    menu = BrokerMenu(services, said.append, open_browser=follow)
    qtbot.addWidget(menu)
    # Yesterday's token is past its expiry: not logged in today.
    assert menu.submenus["kite"].title() == "Zerodha Kite — not logged in, disconnected"
    menu.action("kite", "log in").trigger()
    qtbot.waitUntil(lambda: said[-1:] == ["logged in to kite"], timeout=10_000)
    assert live.session_valid and live.access_token in fake.access_tokens
    menu.refresh()
    assert menu.submenus["kite"].title() == "Zerodha Kite — logged in, disconnected"
    assert menu.action("kite", "connect").isEnabled()
    assert not menu.action("kite", "disconnect").isEnabled()  # the feed is not started
