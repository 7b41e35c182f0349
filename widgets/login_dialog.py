"""The "log in again" dialog shown when the broker says the session has expired.

It runs the same browser login as ``dalal login kite`` (the app hands it the coroutine
function, so the view never touches a broker or the keyring) and reports the outcome in
place. While the login waits for the browser the button is disabled; closing the dialog
cancels the wait and stops the listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from widgets.ui_pump import spawn

TITLE = "Zerodha session expired"
PROMPT = "Zerodha session expired — Log in again"
LoginFn = Callable[[], Awaitable[object]]


class LoginDialog(QDialog):
    loggedIn = Signal()

    def __init__(self, login: LoginFn, parent: QWidget | None = None, broker: str = "Zerodha"):
        super().__init__(parent)
        self._login = login
        self._task: asyncio.Task[object] | None = None
        self.setWindowTitle(TITLE if broker == "Zerodha" else f"{broker} session expired")
        self.setModal(True)
        self.prompt = QLabel(PROMPT if broker == "Zerodha" else f"{broker} session expired")
        self.prompt.setObjectName("loginPrompt")
        self.status = QLabel(
            "Orders and live prices are paused until you log in. Your browser will open "
            "Kite's login page."
        )
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.login_button = QPushButton("Log in again")
        self.login_button.setDefault(True)
        self.close_button = QPushButton("Later")
        self.login_button.clicked.connect(self.start_login)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.login_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def start_login(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self.login_button.setEnabled(False)
        self.status.setText("Waiting for the login in your browser…")
        self._task = spawn(self._run(), name="broker-login")

    async def _run(self) -> object:
        try:
            result = await self._login()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is shown, the dialog stays usable
            self.status.setText(f"Login failed: {exc}")
            self.login_button.setEnabled(True)
            self.login_button.setText("Try again")
            return None
        self.status.setText("Logged in.")
        self.loggedIn.emit()
        self.accept()
        return result

    def done(self, result: int) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        super().done(result)
