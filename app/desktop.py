"""The desktop runner: unlock the profile, then Qt and asyncio on one loop (qasync).

Qt is imported inside ``run_desktop`` so that ``dalal --help`` and the headless runner never
pay for it. ``DALAL_EXIT_AFTER_FIRST_PAINT=1`` makes the app print how long it took to paint
its first live tick and exit: that is how ``bench/bench_cold_start.py`` measures cold start.

Opening the profile comes first, because the services write to its database from their first
tick. The default (keyring) path shows nothing and runs no KDF: the random key comes from the
OS keyring and opens SQLCipher as a raw key. When the keyring is missing or refused as
insecure (a headless Linux box without a Secret Service), the trader chooses between a
passphrase-protected profile and an in-memory session that keeps nothing; the terminal never
refuses to start over it. ``DALAL_EPHEMERAL=1`` (tests, benchmarks, CI) takes the in-memory
session without asking.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.settings import Settings

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend
    from PySide6.QtWidgets import QMainWindow, QMenu

    from app.settings import NodeSettings
    from app.wiring import AppServices
    from services.brokers.ports import SecretStore
    from services.security import Argon2Params, Vault
    from services.storage import Database, ProfilePaths
    from widgets.unlock_dialog import KeyringProblemDialog, UnlockDialog

log = logging.getLogger(__name__)

# Taken when this module is first imported, i.e. before Qt, pyqtgraph and the services load.
IMPORTED_AT = time.perf_counter()

EXIT_AFTER_FIRST_PAINT_ENV = "DALAL_EXIT_AFTER_FIRST_PAINT"
EPHEMERAL_ENV = "DALAL_EPHEMERAL"
IDLE_LOCK_ENV = "DALAL_IDLE_LOCK_SECONDS"


# -- unlock gates: what the lock screen calls to let the trader back in ----------------------
class EphemeralGate:
    """An in-memory session has no secret: the lock screen only hides the data."""

    needs_passphrase = False
    description = "In-memory session: nothing is saved. Click Unlock to show the terminal again."

    def retry_after(self) -> float:
        return 0.0

    async def unlock(self, passphrase: str) -> None:
        return None


class VaultGate:
    """Unlocks a profile through its vault, off the event loop (Argon2id takes ~0.3 s).

    The first successful unlock keeps the database; later ones (after an idle lock) only
    prove the passphrase or keyring again, through the same lockout and audit log, and close
    the extra connection.
    """

    def __init__(self, vault: Vault, *, passphrase: bool) -> None:
        self.vault = vault
        self.needs_passphrase = passphrase
        self.database: Database | None = None
        self.description = (
            "Enter the profile's passphrase to unlock."
            if passphrase
            else "The profile's key is in the OS keyring. Click Unlock to show the terminal again."
        )

    def retry_after(self) -> float:
        return self.vault.lockout.retry_after()

    async def unlock(self, passphrase: str) -> None:
        vault = self.vault
        source = (
            vault.passphrase_source(passphrase) if self.needs_passphrase else vault.keyring_source()
        )
        db = await asyncio.to_thread(vault.unlock, source, "user")
        if self.database is None:
            self.database = db
        else:
            await asyncio.to_thread(db.close)


@dataclass
class ProfileSession:
    """What the opener produced: an unlocked database (or none), and how to unlock again."""

    gate: EphemeralGate | VaultGate
    note: str
    database: Database | None = None
    paths: ProfilePaths | None = None
    warning: bool = False

    @property
    def state_dir(self) -> Path | None:
        return self.paths.directory if self.database is not None and self.paths else None


def ephemeral_session(why: str) -> ProfileSession:
    # Short enough for a 1280 px status bar beside funds and the clock; the reason is logged.
    log.info("in-memory session (%s): nothing is saved", why)
    return ProfileSession(EphemeralGate(), "⚠ In-memory session: nothing is saved", warning=True)


@dataclass
class ProfileOpener:
    """Opens the profile's encrypted database before the services are built.

    ``dialog`` is the dialog currently shown (tests drive it with qtbot).
    """

    profile: str
    data_dir: Path | None = None
    cache_dir: Path | None = None
    keyring_backend: KeyringBackend | None = None
    argon2: Argon2Params | None = None
    dialog: UnlockDialog | KeyringProblemDialog | None = field(default=None, init=False)

    async def open(self) -> ProfileSession | None:
        """Return the session to run, or None when the trader chose to quit."""
        if os.environ.get(EPHEMERAL_ENV) == "1":
            return ephemeral_session(f"{EPHEMERAL_ENV}=1")

        from services.security import InsecureKeyringError, KeyUnavailableError, Vault
        from services.security.keys import MODE_KEYRING, MODE_PASSPHRASE
        from services.storage import ProfilePaths

        paths = ProfilePaths.for_profile(self.profile, self.data_dir, self.cache_dir)
        vault = Vault(paths, keyring_backend=self.keyring_backend, argon2=self.argon2)
        mode = vault.mode
        if mode == MODE_PASSPHRASE:
            return await self._ask_passphrase(vault, paths, new=False)
        if mode != MODE_KEYRING:
            return await self._keyring_problem(
                vault,
                paths,
                f"This profile's key is handed to the terminal ({mode} mode, for headless "
                "use); the desktop cannot open it.",
                allow_passphrase=False,
            )
        gate = VaultGate(vault, passphrase=False)
        try:
            await gate.unlock("")
        except (InsecureKeyringError, KeyUnavailableError) as e:
            log.warning("keyring unusable for profile %s: %s", self.profile, e)
            return await self._keyring_problem(
                vault, paths, str(e), allow_passphrase=not vault.exists
            )
        except Exception as e:  # wrong key, schema too new, damaged file: say it, never crash
            log.error("cannot open profile %s: %s", self.profile, e)
            return await self._keyring_problem(
                vault, paths, f"The profile could not be opened: {e}", allow_passphrase=False
            )
        return ProfileSession(
            gate, f"Profile {self.profile} · encrypted (keyring)", gate.database, paths
        )

    async def _keyring_problem(
        self, vault: Vault, paths: ProfilePaths, problem: str, *, allow_passphrase: bool
    ) -> ProfileSession | None:
        from widgets.unlock_dialog import KeyringProblemDialog, Outcome

        dialog = KeyringProblemDialog(self.profile, problem, allow_passphrase=allow_passphrase)
        self.dialog = dialog
        outcome = await dialog.show_and_wait()
        self.dialog = None
        if outcome is Outcome.PASSPHRASE:
            return await self._ask_passphrase(vault, paths, new=True)
        if outcome is Outcome.EPHEMERAL:
            return ephemeral_session("chosen at start")
        return None

    async def _ask_passphrase(
        self, vault: Vault, paths: ProfilePaths, *, new: bool
    ) -> ProfileSession | None:
        from widgets.unlock_dialog import Outcome, UnlockDialog

        gate = VaultGate(vault, passphrase=True)
        dialog = UnlockDialog(gate, self.profile, new_passphrase=new and not vault.exists)
        self.dialog = dialog
        outcome = await dialog.show_and_wait()
        self.dialog = None
        if outcome is Outcome.UNLOCKED and gate.database is not None:
            return ProfileSession(
                gate, f"Profile {self.profile} · encrypted (passphrase)", gate.database, paths
            )
        if outcome is Outcome.EPHEMERAL:
            return ephemeral_session("chosen at start")
        return None


def idle_lock_seconds(settings: Settings) -> float:
    """The idle time before the window locks: the setting, or the environment for tests."""
    raw = os.environ.get(IDLE_LOCK_ENV)
    try:
        return float(raw) if raw else settings.idle_lock_seconds
    except ValueError:
        return settings.idle_lock_seconds


def add_settings_menu(window: QMainWindow, config_path: Path | None) -> QMenu:
    """Settings… (Ctrl+,): the dialog edits the settings file this terminal started from."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeySequence

    from app.settings import FileSettingsStore
    from widgets.settings_dialog import SettingsDialog

    store = FileSettingsStore(config_path)
    menu = window.menuBar().addMenu("&Settings")
    action = menu.addAction("Settings…")
    action.setShortcut(QKeySequence("Ctrl+,"))

    def open_dialog() -> None:
        dialog = SettingsDialog(store, window)  # owned by the window, deleted when closed
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    action.triggered.connect(open_dialog)
    return menu


def add_node_menu(
    window: QMainWindow,
    menus: list[QMenu],
    config_path: Path | None,
    secrets: SecretStore | None,
    on_paired: Callable[[str], None] | None = None,
) -> None:
    """Order node… in the given menus (Broker, Settings): pair the desktop with its node."""
    from PySide6.QtCore import Qt

    from app.node_pairing import NodePairingStore
    from widgets.node_dialog import NodeDialog

    pairing = NodePairingStore(config_path, secrets)

    def open_dialog() -> None:
        dialog = NodeDialog(pairing, window, on_paired=on_paired)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    for menu in menus:
        menu.addSeparator()
        action = menu.addAction("Order node (static IP)…")
        action.setObjectName("node:choose")
        action.triggered.connect(open_dialog)


def follow_venue_setting(services: AppServices, config_path: Path | None) -> None:
    """The venue switch reads the node's address and pin from the settings file (pairing
    writes them there) and keeps the trader's choice there for the next start."""
    from app.settings import SettingsError, load_settings, save_settings

    def node_settings() -> NodeSettings:
        try:
            return load_settings(config_path).node
        except SettingsError:
            return services.settings.node

    def write(venue: Literal["broker", "node"]) -> None:
        try:
            settings = load_settings(config_path)
            node = settings.node.model_copy(update={"venue": venue})
            save_settings(settings.model_copy(update={"node": node}), config_path)
        except (SettingsError, OSError) as e:
            log.warning("the venue choice was not saved for the next start: %s", e)

    def keep(venue: Literal["broker", "node"]) -> None:  # a file write: off the loop
        asyncio.get_running_loop().run_in_executor(None, write, venue)

    services.node_settings = node_settings
    services.on_venue_switched = keep


async def _say_switch(window: QMainWindow, switch: Awaitable[str]) -> None:
    try:
        text = await switch
    except Exception as e:  # refused: an order in flight, the node down; nothing changed
        text = f"Orders were not switched to the order node: {e}"
    window.statusBar().showMessage(text, 15_000)


def run_desktop(
    settings: Settings,
    *,
    started_at: float | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    config_path: Path | None = None,
) -> int:
    """Run the terminal until its window is closed; return the process exit code.

    ``config_path`` is the settings file the Settings dialog writes (default: the user's).
    """
    t0 = IMPORTED_AT if started_at is None else started_at
    exit_after_paint = os.environ.get(EXIT_AFTER_FIRST_PAINT_ENV) == "1"

    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.settings import APP_NAME
    from app.watchlist_store import FileWatchlistStore, state_of
    from app.wiring import build_services
    from widgets import ui_thread_gc
    from widgets.broker_menu import TextQuestion
    from widgets.login_dialog import LoginDialog
    from widgets.main_window import MainWindow
    from widgets.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("dalal")
    app.setQuitOnLastWindowClosed(False)  # the window's `closed` ends the coroutine below
    if settings.theme == "dark":
        apply_dark_theme(app)
    ui_thread_gc.install()  # Qt objects must not be freed on a worker thread

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    exit_code = 0

    async def main() -> None:
        nonlocal exit_code
        opener = ProfileOpener(settings.profile, data_dir, cache_dir)
        session = await opener.open()
        if session is None:
            exit_code = 1
            return
        services = build_services(settings, database=session.database, state_dir=session.state_dir)
        layouts = None if exit_after_paint else QSettings("dalal", APP_NAME)
        lists = None if exit_after_paint else FileWatchlistStore(config_path)
        window = MainWindow(
            services,
            state_of(settings.watchlists),
            layouts,
            watchlist_store=lists,
            gate=session.gate,
            idle_timeout=None if exit_after_paint else idle_lock_seconds(settings),
            session_note=session.note,
            session_warning=session.warning,
            models=services.models,
            backtests=services.backtests,
        )
        closed = asyncio.Event()
        window.closed.connect(closed.set)
        login_dialogs: list[LoginDialog] = []

        def session_expired() -> None:
            """The broker refused our token: ask for a new login instead of failing orders."""
            if any(d.isVisible() for d in login_dialogs):
                return
            # A login that needs a code typed (Angel One without a stored seed) asks for it.
            ask = TextQuestion(window)
            dialog = LoginDialog(
                lambda: services.broker_login(webbrowser.open, None, ask), window
            )
            login_dialogs[:] = [dialog]
            dialog.show()

        services.on_session_expired(session_expired)
        if exit_after_paint:

            def first_paint() -> None:
                print(f"first-paint {time.perf_counter() - t0:.3f}s", flush=True)
                window.close()

            window.firstTickPainted.connect(first_paint)
        await services.start()
        from app.heap import freeze_startup_heap, pace_collector

        freeze_startup_heap()  # full GC passes then skip start-up's objects (app.heap)
        pace_collector()  # and come seldom: the feed's short-lived objects stay young
        settings_menu = add_settings_menu(window, config_path)
        secrets = services.secrets
        if secrets is None and session.database is not None:
            from services.security import CredentialStore

            secrets = CredentialStore(settings.profile, session.database, actor="terminal")
        broker_menu = getattr(window, "broker_menu", None)
        follow_venue_setting(services, config_path)

        def paired(_text: str) -> None:  # the node becomes the venue now, not at a restart
            from widgets.ui_pump import spawn

            spawn(_say_switch(window, services.switch_venue("node")), name="venue:node")

        add_node_menu(window, [m for m in (broker_menu, settings_menu) if m is not None],
                      config_path, secrets, paired)  # fmt: skip
        window.fit_to_screen()
        window.show()
        window.start()
        try:
            await closed.wait()
        finally:
            await window.stop()
            if lists is not None:
                await asyncio.to_thread(lists.close)
            await services.stop()
            if session.database is not None:
                await asyncio.to_thread(session.database.close)

    try:
        with loop:
            loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
        ui_thread_gc.uninstall()
    return exit_code
