"""The Broker menu: per registered broker, log in, connect and disconnect.

Each broker is a submenu whose title says its state ("logged in, streaming", "session
expired", "not logged in"). The titles show what is known at once when the menu opens, and
are updated when the stored sessions have been read again (off the loop, through the
facade). The verbs go through the facade (``widgets.ports.BrokerControls``) for every
registered broker, the one in use or not: a broker that is not in use keeps its token for
when the settings choose it, and connecting it runs its feed beside the one in use (its
prices do not reach the views). What a verb did is shown in the status bar. A login that
needs something typed (Angel One's TOTP code without a stored seed) asks in a dialog.

"Send orders to" switches the order venue (the paper or live broker the settings name, or
the order node) while the terminal runs (``widgets.ports.VenueControls``); a switch the
services refuse (an order in flight, the node down) is said in the status bar, and the
check mark stays where orders really go.
"""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Awaitable, Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMenu, QWidget

from widgets.ports import BrokerControls, BrokerRow, VenueControls
from widgets.ui_pump import spawn

SESSION_TEXT = {
    "valid": "logged in",
    "expired": "session expired",
    "not logged in": "not logged in",
    "not set up": "no credentials stored",
}


def describe(row: BrokerRow) -> str:
    state = SESSION_TEXT.get(row.session, row.session)
    if row.in_use:
        state += ", streaming" if row.connected else ", disconnected"
    else:
        state += ", connected (not in use)" if row.connected else " (not in use)"
    return f"{row.title} — {state}"


class TextQuestion:
    """One question in a window-modal dialog, answered on the loop (no nested event loop)."""

    def __init__(self, parent: QWidget | None) -> None:
        self._parent = parent
        self.dialog: QInputDialog | None = None  # the open question (tests answer it)

    async def __call__(self, label: str, secret: bool) -> str:
        dialog = QInputDialog(self._parent)
        dialog.setWindowTitle("Broker login")
        dialog.setLabelText(label)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password if secret else QLineEdit.EchoMode.Normal)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def finished(result: int) -> None:
            if not answer.done():
                accepted = result == QInputDialog.DialogCode.Accepted.value
                answer.set_result(dialog.textValue() if accepted else "")

        dialog.finished.connect(finished)
        self.dialog = dialog
        dialog.open()
        try:
            return await answer
        finally:
            self.dialog = None
            dialog.deleteLater()


class BrokerMenu(QMenu):
    def __init__(
        self,
        controls: BrokerControls,
        say: Callable[[str], None],
        parent: QWidget | None = None,
        *,
        open_browser: Callable[[str], object] = webbrowser.open,
    ) -> None:
        super().__init__("&Broker", parent)
        self._controls = controls
        self._say = say
        self._open_browser = open_browser
        self.ask: Callable[[str, bool], Awaitable[str]] = TextQuestion(parent)
        self.submenus: dict[str, QMenu] = {}
        self._venues = controls if isinstance(controls, VenueControls) else None
        self.venue_menu: QMenu | None = None
        self.aboutToShow.connect(self._opening)
        self.refresh()

    def _opening(self) -> None:
        self.refresh()
        spawn(self.reread(), name="broker-menu:refresh")

    async def reread(self) -> None:
        """Read the stored sessions again, then show them (a login elsewhere counts)."""
        try:
            await self._controls.refresh_brokers()
        finally:
            self.refresh()

    def refresh(self) -> None:
        rows = self._controls.broker_rows()
        if [r.name for r in rows] != list(self.submenus):
            self.clear()
            self.submenus = {}
            self.venue_menu = None
            for row in rows:
                sub = self.addMenu(describe(row))
                for text, slot in (
                    ("Log in…", self._login),
                    ("Connect", self._connect),
                    ("Disconnect", self._disconnect),
                ):
                    action = QAction(text, sub)
                    action.setObjectName(f"broker:{row.name}:{text.rstrip('…').lower()}")
                    action.triggered.connect(lambda _=False, n=row.name, f=slot: f(n))
                    sub.addAction(action)
                self.submenus[row.name] = sub
        self._refresh_venues()
        for row in rows:
            sub = self.submenus[row.name]
            sub.setTitle(describe(row))
            for action in sub.actions():
                verb = action.objectName().rsplit(":", 1)[-1]
                if verb == "connect":
                    action.setEnabled(not row.connected)
                elif verb == "disconnect":
                    action.setEnabled(row.connected)

    def _refresh_venues(self) -> None:
        if self._venues is None:
            return
        if self.venue_menu is None:
            self.addSeparator()
            self.venue_menu = self.addMenu("Send orders to")
            self.venue_menu.setObjectName("venues")
        self.venue_menu.clear()
        for name, title, in_use in self._venues.venues():
            action = QAction(title, self.venue_menu)
            action.setObjectName(f"venue:{name}")
            action.setCheckable(True)
            action.setChecked(in_use)
            action.triggered.connect(lambda _=False, n=name: self._switch(n))
            self.venue_menu.addAction(action)

    def venue_action(self, name: str) -> QAction:
        assert self.venue_menu is not None
        for action in self.venue_menu.actions():
            if action.objectName() == f"venue:{name}":
                return action
        raise KeyError(name)

    def _switch(self, name: str) -> None:
        assert self._venues is not None
        self._say(f"switching orders to {name}…")
        spawn(self._run(self._venues.switch_venue(name)), name=f"venue:{name}")

    def action(self, name: str, verb: str) -> QAction:
        for action in self.submenus[name].actions():
            if action.objectName() == f"broker:{name}:{verb}":
                return action
        raise KeyError(f"{name}:{verb}")

    def _login(self, name: str) -> None:
        self._say(f"logging in to {name}: finish the login in your browser")
        spawn(self._run_login(name), name=f"broker-login:{name}")

    async def _run_login(self, name: str) -> None:
        try:
            await self._controls.broker_login(self._open_browser, name, self.ask)
        except Exception as exc:  # a refused or abandoned login is a message, not a crash
            self._say(f"login to {name} failed: {exc}")
        else:
            self._say(f"logged in to {name}")
        self.refresh()

    def _connect(self, name: str) -> None:
        self._say(f"connecting to {name}…")
        spawn(self._run(self._controls.broker_connect(name)), name=f"broker-connect:{name}")

    def _disconnect(self, name: str) -> None:
        spawn(self._run(self._controls.broker_disconnect(name)), name=f"broker-disconnect:{name}")

    async def _run(self, verb: Awaitable[str]) -> None:
        try:
            self._say(await verb)
        except Exception as exc:  # a broker that fails to connect is a message, not a crash
            self._say(f"broker: {exc}")
        self.refresh()
