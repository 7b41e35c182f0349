"""Idle auto-lock: an application-wide activity filter, the idle timer and the lock overlay.

Activity is any key or mouse event anywhere in the application (an event filter on the
QApplication sees them before any widget), so typing in a floating dock counts too. The
``IdleLock`` state is pure (services/security/idle.py); this module only feeds it the clock
and draws the overlay. While locked the overlay covers the whole window (menus, docks, chart,
status bar: all of them show positions or money) and floating docks are hidden.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QVBoxLayout, QWidget

from services.security.idle import IdleLock
from widgets.ports import UnlockGate
from widgets.unlock_dialog import UnlockForm

_ACTIVITY = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
    }
)


class ActivityFilter(QObject):
    """Touches the idle timer on every key or mouse event the application receives."""

    def __init__(self, idle: IdleLock, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._idle = idle
        self._clock = clock

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY:
            self._idle.touch(self._clock())
        return False


class IdleWatcher(QObject):
    """Polls the idle state a few times per timeout and emits ``idle`` once when it expires."""

    idle = Signal()

    def __init__(
        self,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self.state = IdleLock(clock(), timeout)
        self.filter = ActivityFilter(self.state, clock)
        self._timer = QTimer(self)
        self._timer.setInterval(int(max(0.05, min(1.0, timeout / 4)) * 1000))
        self._timer.timeout.connect(self._poll)
        self._installed = False

    def start(self) -> None:
        app = QApplication.instance()
        if app is not None and not self._installed:
            app.installEventFilter(self.filter)
            self._installed = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        app = QApplication.instance()
        if app is not None and self._installed:
            app.removeEventFilter(self.filter)
            self._installed = False

    def lock_now(self) -> None:
        if not self.state.locked:
            self.state.lock()
            self.idle.emit()

    def unlocked(self) -> None:
        self.state.unlocked(self._clock())

    def _poll(self) -> None:
        if not self.state.locked and self.state.is_locked(self._clock()):
            self.idle.emit()


class LockOverlay(QFrame):
    """Opaque cover over the main window with the unlock form in the middle."""

    unlocked = Signal()

    def __init__(self, gate: UnlockGate, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("lockOverlay")
        self.setAutoFillBackground(True)
        self.setStyleSheet(
            "QFrame#lockOverlay { background-color: #0b0e12; }"
            "QFrame#lockCard { background-color: #161b22; border: 1px solid #2a3340;"
            " border-radius: 6px; }"
            "QFrame#lockCard QWidget { background: transparent; }"
            "QFrame#lockCard QLineEdit { background-color: #0f1318; }"
            "QFrame#lockCard QPushButton { background-color: #1c2330; }"
        )
        card = self.card = QFrame()
        card.setObjectName("lockCard")
        card.setFixedWidth(420)
        title = QLabel("Dalal Terminal is locked")
        title.setStyleSheet("font-size: 16px; font-weight: bold; color: #e6ebf2;")
        hint = QLabel(gate.description)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8b95a5;")
        self.form = UnlockForm(gate, button_text="Unlock")
        self.form.unlocked.connect(self.unlocked)
        inner = QVBoxLayout(card)
        inner.setContentsMargins(20, 18, 20, 18)
        inner.setSpacing(10)
        inner.addWidget(title)
        inner.addWidget(hint)
        inner.addWidget(self.form)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        self.hide()

    def cover(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        # The word-wrapped rows make the card height-for-width, and the centred layout then
        # squeezes it to its minimum: pin it to its full hint (with room for a message line).
        self.card.setFixedHeight(self.card.sizeHint().height() + 16)
        self.show()
        self.raise_()
        self.form.reset()
