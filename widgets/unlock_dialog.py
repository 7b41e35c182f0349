"""Unlocking a profile: the passphrase form, the start-up dialogs and an awaitable ``show``.

The form is shared by the start-up dialog and the idle lock screen, so both say the same
thing on a wrong passphrase ("wrong passphrase or key") and both count down a lockout with the
button disabled, reading the wait from the persisted lockout file each time rather than
trusting a timer of their own (restarting the app must not shorten it).

Dialogs are opened with ``open()`` and awaited, never ``exec()``: a nested Qt loop inside a
qasync coroutine would run asyncio callbacks with no loop marked running.
"""

from __future__ import annotations

import asyncio
import enum
import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.security.errors import LockedOutError, WrongKeyError
from widgets.ports import UnlockGate
from widgets.ui_pump import spawn

MIN_NEW_PASSPHRASE = 8


class Outcome(enum.StrEnum):
    UNLOCKED = "unlocked"
    PASSPHRASE = "passphrase"  # noqa: S105 - the trader chose to protect a new profile with a passphrase
    EPHEMERAL = "ephemeral"  # continue with an in-memory session, nothing kept
    QUIT = "quit"


class UnlockForm(QWidget):
    """Passphrase field(s), a message line and the unlock button, driving an ``UnlockGate``."""

    unlocked = Signal()

    def __init__(
        self, gate: UnlockGate, *, new_passphrase: bool = False, button_text: str = "Unlock"
    ) -> None:
        super().__init__()
        self.gate = gate
        self.new_passphrase = new_passphrase
        self.busy = False
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("new passphrase" if new_passphrase else "passphrase")
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm.setPlaceholderText("repeat the passphrase")
        self.message = QLabel("")
        self.message.setObjectName("unlockMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #ff6b6b;")
        self.button = QPushButton(button_text)
        self.button.setDefault(True)
        self.button.clicked.connect(self.submit)
        self.passphrase.returnPressed.connect(self.submit)
        self.confirm.returnPressed.connect(self.submit)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if gate.needs_passphrase:
            layout.addWidget(self.passphrase)
            if new_passphrase:
                layout.addWidget(self.confirm)
        layout.addWidget(self.message)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        layout.addLayout(row)

        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.refresh_lockout)
        self.refresh_lockout()

    def reset(self) -> None:
        self.passphrase.clear()
        self.confirm.clear()
        self.message.setText("")
        self.refresh_lockout()
        if self.gate.needs_passphrase:
            self.passphrase.setFocus()
        else:
            self.button.setFocus()

    def refresh_lockout(self) -> float:
        """Show the remaining lockout and keep the button off until it has passed."""
        wait = self.gate.retry_after()
        if wait > 0:
            self.button.setEnabled(False)
            self.message.setText(f"Too many failed attempts: try again in {math.ceil(wait)} s.")
            if not self._timer.isActive():
                self._timer.start()
        else:
            if self._timer.isActive():
                self._timer.stop()
                self.message.setText("")
            self.button.setEnabled(not self.busy)
        return wait

    def submit(self) -> None:
        if self.busy or not self.button.isEnabled():
            return
        text = self.passphrase.text()
        if self.gate.needs_passphrase:
            if not text:
                self.message.setText("Enter the passphrase.")
                return
            if self.new_passphrase:
                if len(text) < MIN_NEW_PASSPHRASE:
                    self.message.setText(
                        f"Use at least {MIN_NEW_PASSPHRASE} characters; a long phrase of "
                        "ordinary words is both strong and easy to type."
                    )
                    return
                if text != self.confirm.text():
                    self.message.setText("The two passphrases do not match.")
                    return
        self.busy = True
        self.button.setEnabled(False)
        self.message.setText("Unlocking…")
        spawn(self._attempt(text), name="unlock")

    async def _attempt(self, passphrase: str) -> None:
        try:
            await self.gate.unlock(passphrase)
        except (WrongKeyError, LockedOutError) as e:
            self._failed(str(e))
        except Exception as e:  # shown, not raised: an unlock must never end in a traceback
            self._failed(f"Could not unlock: {e}")
        else:
            self.busy = False
            self.passphrase.clear()
            self.confirm.clear()
            self.message.setText("")
            self.button.setEnabled(True)
            self.unlocked.emit()

    def _failed(self, text: str) -> None:
        self.busy = False
        self.passphrase.clear()
        self.confirm.clear()
        if self.refresh_lockout() <= 0:
            self.message.setText(text)
        self.passphrase.setFocus()


class _AwaitableDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcome = Outcome.QUIT

    def choose(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if outcome is Outcome.QUIT:
            self.reject()
        else:
            self.accept()

    async def show_and_wait(self) -> Outcome:
        """Open the dialog without a nested event loop and wait for the trader's choice."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def finished(_result: int) -> None:
            if not future.done():
                future.set_result(self.outcome)

        self.finished.connect(finished)
        self.open()
        self.raise_()
        self.activateWindow()
        return await future


class UnlockDialog(_AwaitableDialog):
    """Asks for the passphrase of a profile (or a new one), with a way out that keeps nothing."""

    def __init__(
        self,
        gate: UnlockGate,
        profile: str,
        *,
        new_passphrase: bool = False,
        explanation: str = "",
        allow_ephemeral: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("unlockDialog")
        verb = "Protect" if new_passphrase else "Unlock"
        self.setWindowTitle(f"Dalal Terminal — {verb} profile “{profile}”")
        self.setMinimumWidth(460)
        title = QLabel(
            f"Choose a passphrase for profile “{profile}”"
            if new_passphrase
            else f"Profile “{profile}” is protected by a passphrase"
        )
        title.setStyleSheet("font-size: 15px; font-weight: bold; color: #e6ebf2;")
        text = explanation or (
            "The passphrase encrypts this profile's orders, fills, market data and settings. "
            "There is no way to recover it: keep it somewhere safe."
            if new_passphrase
            else "Enter it to open the encrypted database."
        )
        self.explanation = QLabel(text)
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.PlainText)
        self.form = UnlockForm(
            gate,
            new_passphrase=new_passphrase,
            button_text="Protect and open" if new_passphrase else "Unlock",
        )
        self.form.unlocked.connect(lambda: self.choose(Outcome.UNLOCKED))
        self.ephemeral_button = QPushButton("Continue without saving")
        self.ephemeral_button.setToolTip(
            "Run this session in memory only: nothing is written to disk and nothing is kept"
        )
        self.ephemeral_button.setAutoDefault(False)
        self.ephemeral_button.clicked.connect(lambda: self.choose(Outcome.EPHEMERAL))
        self.ephemeral_button.setVisible(allow_ephemeral)
        self.quit_button = QPushButton("Quit")
        self.quit_button.setAutoDefault(False)
        self.quit_button.clicked.connect(lambda: self.choose(Outcome.QUIT))

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(title)
        layout.addWidget(self.explanation)
        layout.addWidget(self.form)
        row = QHBoxLayout()
        row.addWidget(self.ephemeral_button)
        row.addStretch(1)
        row.addWidget(self.quit_button)
        layout.addLayout(row)
        self.form.reset()


class KeyringProblemDialog(_AwaitableDialog):
    """Explains why the OS keyring cannot hold the key and offers the two ways to go on."""

    def __init__(
        self,
        profile: str,
        problem: str,
        *,
        allow_passphrase: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("keyringProblemDialog")
        self.setWindowTitle("Dalal Terminal — the OS keyring is not available")
        self.setMinimumWidth(560)
        title = QLabel("This profile's database key cannot be kept in the OS keyring")
        title.setStyleSheet("font-size: 15px; font-weight: bold; color: #e6ebf2;")
        intro = (
            f"Dalal Terminal keeps profile “{profile}” in an encrypted database whose key "
            "normally lives in the operating system's keyring. That keyring is unavailable "
            "or would not keep the key encrypted:"
        )
        then = (
            "You can protect the profile with a passphrase instead (asked at every start), "
            "or run this session in memory only: the terminal works normally but no orders, "
            "fills, market data or settings are kept after you close it."
            if allow_passphrase
            else "This profile already exists and its key is not reachable, so it cannot be "
            "opened now. You can run this session in memory only (nothing is kept), or quit "
            "and make the keyring available."
        )
        labels = [QLabel(intro), QLabel(problem), QLabel(then)]
        for label in labels:
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.PlainText)
        labels[1].setStyleSheet("color: #e3b341;")
        self.problem = labels[1]
        self.passphrase_button = QPushButton("Protect with a passphrase…")
        self.passphrase_button.clicked.connect(lambda: self.choose(Outcome.PASSPHRASE))
        self.passphrase_button.setVisible(allow_passphrase)
        self.ephemeral_button = QPushButton("Continue without saving (this run only)")
        self.ephemeral_button.clicked.connect(lambda: self.choose(Outcome.EPHEMERAL))
        self.quit_button = QPushButton("Quit")
        self.quit_button.clicked.connect(lambda: self.choose(Outcome.QUIT))
        for button in (self.passphrase_button, self.ephemeral_button, self.quit_button):
            button.setAutoDefault(False)
        (self.passphrase_button if allow_passphrase else self.ephemeral_button).setDefault(True)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(title)
        for label in labels:
            layout.addWidget(label)
        row = QHBoxLayout()
        row.addWidget(self.passphrase_button)
        row.addWidget(self.ephemeral_button)
        row.addStretch(1)
        row.addWidget(self.quit_button)
        layout.addLayout(row)
