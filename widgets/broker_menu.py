"""The Broker menu: per registered broker, log in, connect and disconnect.

Each broker is a submenu whose title says its state ("logged in, streaming", "session
expired", "not logged in"); the state is read again every time the menu opens. The verbs go
through the facade (``widgets.ports.BrokerControls``); what they did is shown in the status
bar. A broker that is not the one in use can still be logged in to (its token is kept for
when the settings choose it); connecting it needs the settings' ``feed`` and a restart, and
the menu says so instead of pretending.
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from widgets.ports import BrokerControls, BrokerRow
from widgets.ui_pump import spawn

SESSION_TEXT = {
    "valid": "logged in",
    "expired": "session expired",
    "not logged in": "not logged in",
}


def describe(row: BrokerRow) -> str:
    state = SESSION_TEXT.get(row.session, row.session)
    if row.in_use:
        state += ", streaming" if row.connected else ", disconnected"
    else:
        state += " (not in use)"
    return f"{row.title} — {state}"


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
        self.submenus: dict[str, QMenu] = {}
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        rows = self._controls.broker_rows()
        if [r.name for r in rows] != list(self.submenus):
            self.clear()
            self.submenus = {}
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
        for row in rows:
            sub = self.submenus[row.name]
            sub.setTitle(describe(row))
            for action in sub.actions():
                verb = action.objectName().rsplit(":", 1)[-1]
                if verb == "connect":
                    action.setEnabled(not row.in_use or not row.connected)
                elif verb == "disconnect":
                    action.setEnabled(row.in_use and row.connected)

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
            await self._controls.broker_login(self._open_browser, name)
        except Exception as exc:  # a refused or abandoned login is a message, not a crash
            self._say(f"login to {name} failed: {exc}")
        else:
            self._say(f"logged in to {name}")
        self.refresh()

    def _connect(self, name: str) -> None:
        self._say(self._controls.broker_connect(name))
        self.refresh()

    def _disconnect(self, name: str) -> None:
        self._say(self._controls.broker_disconnect(name))
        self.refresh()
