"""Opening the profile at start and the idle lock, on real SQLCipher files under tmp_path.

The keyring is an in-memory backend (never the user's real one); the "insecure" keyring is
keyring's own fail backend, which is what a headless Linux box without a Secret Service gets.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog

from app.desktop import EPHEMERAL_ENV, EphemeralGate, ProfileOpener, VaultGate
from services.security import Lockout, Vault
from services.security.keys import MODE_KEYRING, MODE_PASSPHRASE, VaultHeader
from services.storage import ProfilePaths
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2
from widgets.main_window import MainWindow
from widgets.unlock_dialog import KeyringProblemDialog, UnlockDialog

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _not_ephemeral(monkeypatch):
    monkeypatch.delenv(EPHEMERAL_ENV, raising=False)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data", tmp_path / "cache"


@pytest.fixture
def paths(dirs) -> ProfilePaths:
    return ProfilePaths.for_profile("test", *dirs)


def _opener(dirs, backend) -> ProfileOpener:
    return ProfileOpener("test", dirs[0], dirs[1], keyring_backend=backend, argon2=FAST_ARGON2)


def _visible_dialogs() -> list[QDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def _start(qloop, opener):
    return qloop.loop.create_task(opener.open())


@pytest.fixture
def cleanup_dialogs():
    yield
    for dialog in _visible_dialogs():
        dialog.reject()


def _make_passphrase_profile(paths: ProfilePaths) -> None:
    vault = Vault(paths, keyring_backend=MemoryKeyring(), argon2=FAST_ARGON2)
    db = vault.unlock(vault.passphrase_source(PASSPHRASE))
    db.close()


def test_keyring_mode_opens_silently_and_creates_the_profile(qloop, dirs, paths):
    backend = MemoryKeyring()
    session = qloop.run(_opener(dirs, backend).open())
    assert session is not None and session.database is not None
    assert _visible_dialogs() == []
    assert paths.database.exists()
    assert VaultHeader.load(paths.header).mode == MODE_KEYRING
    assert session.state_dir == paths.directory
    assert "encrypted (keyring)" in session.note and not session.warning
    session.database.close()

    # Second start: the same file, the same key, still no dialog.
    again = qloop.run(_opener(dirs, backend).open())
    assert again.database is not None and again.database.path == paths.database
    assert _visible_dialogs() == []
    again.database.close()


def test_ephemeral_env_skips_the_profile(qloop, dirs, paths, monkeypatch):
    monkeypatch.setenv(EPHEMERAL_ENV, "1")
    session = qloop.run(_opener(dirs, FailKeyring()).open())
    assert session.database is None and session.state_dir is None
    assert isinstance(session.gate, EphemeralGate)
    assert "nothing is saved" in session.note and session.warning
    assert not paths.directory.exists()


def test_insecure_keyring_offers_a_passphrase(qtbot, qloop, dirs, paths, cleanup_dialogs):
    opener = _opener(dirs, FailKeyring())
    task = _start(qloop, opener)
    qloop.until(lambda: isinstance(opener.dialog, KeyringProblemDialog), what="choice dialog")
    choice = opener.dialog
    qtbot.waitExposed(choice)
    assert "refusing keyring backend" in choice.problem.text()
    assert choice.passphrase_button.isVisible() and choice.ephemeral_button.isVisible()
    qtbot.mouseClick(choice.passphrase_button, Qt.MouseButton.LeftButton)

    qloop.until(lambda: isinstance(opener.dialog, UnlockDialog), what="new passphrase dialog")
    form = opener.dialog.form
    assert form.new_passphrase and form.confirm.isVisible()
    qtbot.keyClicks(form.passphrase, "short")
    qtbot.keyClicks(form.confirm, "short")
    qtbot.mouseClick(form.button, Qt.MouseButton.LeftButton)
    assert "at least 8 characters" in form.message.text()
    form.passphrase.setText(PASSPHRASE)
    form.confirm.setText(PASSPHRASE + "!")
    qtbot.mouseClick(form.button, Qt.MouseButton.LeftButton)
    assert "do not match" in form.message.text()
    assert not paths.database.exists()
    form.confirm.setText(PASSPHRASE)
    qtbot.keyClick(form.confirm, Qt.Key.Key_Return)

    qloop.until(task.done, what="the profile to be created")
    session = task.result()
    assert session.database is not None
    assert VaultHeader.load(paths.header).mode == MODE_PASSPHRASE
    assert "encrypted (passphrase)" in session.note
    session.database.close()
    # The new profile really is passphrase-protected: the vault opens it with the passphrase.
    vault = Vault(paths, keyring_backend=MemoryKeyring(), argon2=FAST_ARGON2)
    vault.unlock(vault.passphrase_source(PASSPHRASE)).close()


def test_unavailable_keyring_can_continue_in_memory(qtbot, qloop, dirs, paths, cleanup_dialogs):
    opener = _opener(dirs, FailKeyring())
    task = _start(qloop, opener)
    qloop.until(lambda: isinstance(opener.dialog, KeyringProblemDialog), what="choice dialog")
    qtbot.mouseClick(opener.dialog.ephemeral_button, Qt.MouseButton.LeftButton)
    qloop.until(task.done)
    session = task.result()
    assert session.database is None and session.warning
    assert "nothing is saved" in session.note
    assert not paths.database.exists()


def test_existing_keyring_profile_without_its_key_is_never_replaced(
    qtbot, qloop, dirs, paths, cleanup_dialogs
):
    created = qloop.run(_opener(dirs, MemoryKeyring()).open())  # key lands in a keyring...
    created.database.close()
    before = paths.database.read_bytes()
    opener = _opener(dirs, MemoryKeyring())  # ...that is gone on the next start
    task = _start(qloop, opener)
    qloop.until(lambda: isinstance(opener.dialog, KeyringProblemDialog), what="choice dialog")
    assert not opener.dialog.passphrase_button.isVisibleTo(opener.dialog)
    assert "no database key" in opener.dialog.problem.text()
    qtbot.mouseClick(opener.dialog.quit_button, Qt.MouseButton.LeftButton)
    qloop.until(task.done)
    assert task.result() is None
    assert paths.database.read_bytes() == before


def test_passphrase_mode_wrong_then_right(qtbot, qloop, dirs, paths, cleanup_dialogs):
    _make_passphrase_profile(paths)
    before = paths.database.read_bytes()
    opener = _opener(dirs, MemoryKeyring())
    task = _start(qloop, opener)
    qloop.until(lambda: isinstance(opener.dialog, UnlockDialog), what="unlock dialog")
    dialog = opener.dialog
    qtbot.waitExposed(dialog)
    form = dialog.form
    assert not form.new_passphrase and not form.confirm.isVisible()

    qtbot.keyClicks(form.passphrase, "not the passphrase")
    qtbot.keyClick(form.passphrase, Qt.Key.Key_Return)
    qloop.until(lambda: not form.busy, what="the wrong attempt to finish")
    assert form.message.text() == "wrong passphrase or key"
    assert form.passphrase.text() == ""
    assert dialog.isVisible() and not task.done()
    assert Lockout(paths.lockout).failures == 1
    assert paths.database.read_bytes() == before  # no new empty database in its place

    qtbot.keyClicks(form.passphrase, PASSPHRASE)
    qtbot.mouseClick(form.button, Qt.MouseButton.LeftButton)
    qloop.until(task.done, what="the unlock")
    session = task.result()
    assert session.database is not None and not dialog.isVisible()
    assert Lockout(paths.lockout).failures == 0
    session.database.close()


def test_lockout_disables_the_button_and_counts_down(qtbot, qloop, dirs, paths, cleanup_dialogs):
    _make_passphrase_profile(paths)
    lockout = Lockout(paths.lockout)
    for _ in range(6):  # threshold 5: the sixth failure means a 2 s wait
        lockout.record_failure()
    opener = _opener(dirs, MemoryKeyring())
    task = _start(qloop, opener)
    qloop.until(lambda: isinstance(opener.dialog, UnlockDialog), what="unlock dialog")
    form = opener.dialog.form
    assert not form.button.isEnabled()
    assert "Too many failed attempts: try again in 2 s" in form.message.text()
    form.passphrase.setText(PASSPHRASE)
    form.submit()  # Return during the lockout does nothing
    assert not form.busy
    started = time.monotonic()
    qloop.until(form.button.isEnabled, timeout=5, what="the lockout to pass")
    assert time.monotonic() - started > 1.0
    assert form.message.text() == ""
    form.passphrase.setText(PASSPHRASE)
    qtbot.mouseClick(form.button, Qt.MouseButton.LeftButton)
    qloop.until(task.done, what="the unlock")
    task.result().database.close()


# -- idle lock -------------------------------------------------------------------------------
def _window(qtbot, qloop, services, gate, timeout):
    win = MainWindow(services, services.settings.watchlist, None, gate=gate, idle_timeout=timeout)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    return win


def test_idle_lock_hides_data_until_the_passphrase_is_given(qtbot, qloop, services, paths):
    _make_passphrase_profile(paths)
    gate = VaultGate(
        Vault(paths, keyring_backend=MemoryKeyring(), argon2=FAST_ARGON2), passphrase=True
    )
    # A timeout long enough that a loaded machine's late timers do not count as idleness.
    w = _window(qtbot, qloop, services, gate, timeout=2.0)
    try:
        # Activity keeps it open: keys every 0.3 s for longer than the timeout.
        for _ in range(10):
            qtbot.keyClick(w.watchlist.search, Qt.Key.Key_Shift)
            qloop.for_seconds(0.3)
        assert not w.locked
        qloop.until(lambda: w.locked, timeout=10, what="the idle lock")
        overlay = w.lock_overlay
        assert overlay.isVisible() and overlay.geometry() == w.rect()
        assert all(not d.isEnabled() for d in w.docks.values())
        assert not w.status.isEnabled() and not w.menuBar().isEnabled()
        qtbot.keyClick(w, Qt.Key.Key_F1)  # hotkeys do not reach the hidden ticket
        assert not w.ticket.hasFocus() and w.locked

        form = overlay.form
        qtbot.keyClicks(form.passphrase, "guess")
        qtbot.keyClick(form.passphrase, Qt.Key.Key_Return)
        qloop.until(lambda: not form.busy)
        assert form.message.text() == "wrong passphrase or key" and w.locked
        qtbot.keyClicks(form.passphrase, PASSPHRASE)
        qtbot.keyClick(form.passphrase, Qt.Key.Key_Return)
        qloop.until(lambda: not w.locked, what="unlocked")
        assert not overlay.isVisible()
        assert all(d.isEnabled() for d in w.docks.values())
    finally:
        qloop.run(w.stop())


def test_keyring_relock_needs_only_a_confirm(qtbot, qloop, services, paths):
    vault = Vault(paths, keyring_backend=MemoryKeyring(), argon2=FAST_ARGON2)
    vault.unlock(vault.keyring_source()).close()
    gate = VaultGate(vault, passphrase=False)
    w = _window(qtbot, qloop, services, gate, timeout=300)
    try:
        w.lock_action.trigger()  # Ctrl+L
        assert w.locked and w.lock_overlay.isVisible()
        form = w.lock_overlay.form
        assert not form.passphrase.isVisibleTo(form)
        qtbot.mouseClick(form.button, Qt.MouseButton.LeftButton)
        qloop.until(lambda: not w.locked, what="unlocked through the keyring")
    finally:
        qloop.run(w.stop())
