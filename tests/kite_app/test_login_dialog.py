"""The re-login dialog runs the real browser login against the fake Kite (offscreen Qt)."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from app.wiring import build_services
from services.brokers.kite.session import CREDENTIALS, SESSION
from services.bus import CONNECTION
from services.clock import IST
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import MemorySecrets, kite_settings
from tests.kite_app.test_kite_login import follow, free_port
from tests.widgets.conftest import LoopRunner, qloop  # noqa: F401  (fixture)
from widgets.login_dialog import PROMPT, LoginDialog


def expired_session(fake: FakeKite, secret: str) -> MemorySecrets:
    past = datetime.now(IST) - timedelta(hours=1)
    return MemorySecrets(
        {
            CREDENTIALS: {"api_key": fake.api_key, "api_secret": secret},
            SESSION: {"access_token": "old", "expires_at": past.isoformat()},
        }
    )


def test_dialog_logs_in_again_and_resumes_the_session(
    fake: FakeKite,
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/kite/callback"
    fake.redirect_url = redirect
    store = expired_session(fake, fake.api_secret)
    services = build_services(kite_settings(fake, redirect_url=redirect), secrets=store)
    kite = services.live
    assert kite is not None and not kite.session_valid
    states = services.bus.subscribe(CONNECTION, "test")

    dialog = LoginDialog(lambda: kite.login(follow))
    qtbot.addWidget(dialog)
    assert dialog.prompt.text() == PROMPT
    dialog.show()
    with qtbot.waitSignal(dialog.loggedIn, timeout=10_000):
        qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert kite.session_valid
    token = store.entries[SESSION]["access_token"]
    assert token in fake.access_tokens and kite.access_token == token
    assert [s.detail for s in states.drain()] == ["logged in"]
    profile = qloop.run(kite.parts.execution.profile())  # type: ignore[union-attr]
    assert profile["user_id"] == "AB1234"


def test_failed_login_is_shown_and_can_be_retried(
    fake: FakeKite,
    qtbot: QtBot,
    qloop: LoopRunner,  # noqa: F811
) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/kite/callback"
    fake.redirect_url = redirect
    services = build_services(
        kite_settings(fake, redirect_url=redirect), secrets=expired_session(fake, "wrong")
    )
    kite = services.live
    assert kite is not None
    dialog = LoginDialog(lambda: kite.login(follow))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Login failed" in dialog.status.text(), timeout=10_000)
    assert "refused the login token" in dialog.status.text()
    assert dialog.login_button.isEnabled() and dialog.isVisible()
    assert not kite.session_valid
