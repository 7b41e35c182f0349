"""The desktop's Broker menu: every registered broker, with log in / connect / disconnect,
the one in use and the others alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app.settings import UpstoxSettings
from app.wiring import build_services
from services.brokers import registry
from services.bus import CONNECTION
from services.domain import ConnectionState, ConnectionStatus
from tests.brokers.upstox.test_upstox_session_stream import Store
from tests.fakes.kite_server import FakeKite
from tests.fakes.upstox import FakeUpstox
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_login import follow, free_port
from tests.kite_app.test_login_dialog import expired_session
from tests.widgets.conftest import LoopRunner, make_settings, qloop  # noqa: F401
from tests.widgets.test_upstox_desktop import browser
from widgets.broker_menu import BrokerMenu, TextQuestion
from widgets.main_window import MainWindow

INFY = "NSE_EQ|INE009A01021"


def test_the_window_lists_every_registered_broker(
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    services = build_services(make_settings())
    window = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(window)
    menu = window.broker_menu
    assert menu is not None and menu in [a.menu() for a in window.menuBar().actions()]
    assert list(menu.submenus) == registry.names(registry.Role.SESSION)
    kite = menu.submenus["kite"]
    assert kite.title() == "Zerodha Kite — not logged in (not in use)"
    assert [a.text() for a in kite.actions()] == ["Log in…", "Connect", "Disconnect"]
    assert not menu.action("kite", "disconnect").isEnabled()
    # No keyring in this session: connecting says why, in one line, and nothing breaks.
    menu.action("kite", "connect").trigger()
    qtbot.waitUntil(lambda: "cannot connect" in window.status.currentMessage(), timeout=10_000)
    assert "Zerodha Kite cannot connect: no Kite API key" in window.status.currentMessage()
    qloop.run(menu.reread())
    assert kite.title() == "Zerodha Kite — no credentials stored (not in use)"


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


@pytest.fixture
def upstox() -> Iterator[FakeUpstox]:
    with FakeUpstox(access_token=None) as server:
        stop = threading.Event()

        def tick() -> None:  # the exchange: every subscribed instrument ticks every 0.1 s
            while not stop.wait(0.1):
                for key in server.subscribed():
                    server.push(key)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        yield server
        stop.set()
        thread.join(5)


def test_a_broker_not_in_use_is_logged_in_connected_and_disconnected(
    upstox: FakeUpstox,
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    """Paper trading on simulated prices; Upstox beside it, from the menu: its login keeps
    the token, its feed connects and streams on a bus of its own (its prices never reach
    the views), its state reaches the status bar's topic, and it disconnects."""
    secrets = Store()
    secrets.set("upstox", {"api_key": upstox.client_id, "api_secret": upstox.client_secret})
    section = UpstoxSettings(
        base_url=upstox.base_url, redirect_url=f"http://127.0.0.1:{free_port()}/cb/upstox"
    )
    settings = make_settings().model_copy(update={"upstox": section})
    services = build_services(settings, secrets=secrets)
    states = services.bus.subscribe(CONNECTION, "test", lossless=True)
    qloop.run(services.start(), timeout=30)
    said: list[str] = []
    menu = BrokerMenu(services, said.append, open_browser=browser)
    qtbot.addWidget(menu)
    try:
        qloop.run(menu.reread())
        assert menu.submenus["upstox"].title() == "Upstox — not logged in (not in use)"
        menu.action("upstox", "log in").trigger()
        qtbot.waitUntil(lambda: said[-1:] == ["logged in to upstox"], timeout=20_000)
        assert secrets.entries["upstox-session"]["access_token"] in upstox.access_tokens
        assert menu.submenus["upstox"].title() == "Upstox — logged in (not in use)"

        upstox.set_price(INFY, "9999.95")  # far from the simulator's INFY
        menu.action("upstox", "connect").trigger()
        qloop.until(lambda: said[-1].startswith("connecting to Upstox ("), timeout=20)
        standby = services.standby.get("upstox")
        qloop.until(lambda: standby.connected, timeout=20, what="the Upstox feed connected")
        feed = standby.live.feed if standby.live is not None else None
        assert feed is not None
        qloop.until(lambda: feed.status().silent_for is not None, what="an Upstox tick")
        menu.refresh()
        assert menu.submenus["upstox"].title() == "Upstox — logged in, connected (not in use)"
        assert menu.action("upstox", "disconnect").isEnabled()
        assert not menu.action("upstox", "connect").isEnabled()
        seen = [s for s in states.drain() if isinstance(s, ConnectionState)]
        assert any(
            s.component == "feed:upstox" and s.status is ConnectionStatus.CONNECTED for s in seen
        )
        # The views' prices are the simulator's; Upstox's never reach the terminal's bus.
        assert str(services.quotes.last_price("NSE:INFY")) != "9999.95"
        assert services.feed_name == "simulator"

        menu.action("upstox", "disconnect").trigger()
        qloop.until(lambda: said[-1] == "disconnected from Upstox", timeout=10)
        assert not standby.connected and standby.live is None
        assert menu.submenus["upstox"].title() == "Upstox — logged in (not in use)"
        seen = [s for s in states.drain() if isinstance(s, ConnectionState)]
        assert any(
            s.component == "feed:upstox" and s.status is ConnectionStatus.DISCONNECTED
            for s in seen
        )
    finally:
        qloop.run(services.stop(), timeout=20)


def test_a_login_question_is_asked_in_a_dialog(
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    """What a login needs typed (Angel One's TOTP code) is asked in a window-modal dialog,
    hidden while typed; cancelling answers nothing."""
    ask = TextQuestion(None)
    answer = qloop.loop.create_task(ask("Angel One TOTP code (6 digits)", True))
    qtbot.waitUntil(lambda: ask.dialog is not None and ask.dialog.isVisible(), timeout=5_000)
    dialog = ask.dialog
    assert dialog is not None
    assert dialog.labelText() == "Angel One TOTP code (6 digits)"
    assert dialog.textEchoMode() is QLineEdit.EchoMode.Password
    dialog.setTextValue("123456")
    dialog.accept()
    qtbot.waitUntil(answer.done, timeout=5_000)
    assert answer.result() == "123456"
    cancelled = qloop.loop.create_task(ask("Angel One TOTP code (6 digits)", True))
    qtbot.waitUntil(lambda: ask.dialog is not None, timeout=5_000)
    assert ask.dialog is not None
    ask.dialog.reject()
    qtbot.waitUntil(cancelled.done, timeout=5_000)
    assert cancelled.result() == ""
