"""Choosing the order node from the desktop: a real ``dalal headless`` over TLS on loopback.

The dialog (pytest-qt) fetches the certificate, shows its fingerprint, pins it only after the
trader confirmed it, tries the key on the node and stores it in the profile's encrypted vault
(real SQLCipher), and selects the node as the execution venue. Unreachable nodes, wrong or
read-only keys and a certificate that changed since it was pinned are each refused in words.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMainWindow, QMenu

from app.desktop import add_node_menu
from app.headless.listen import certificate_fingerprint
from app.node_pairing import NodePairingStore
from app.settings import NodeSettings, Settings, load_settings, save_settings
from services.brokers.node.config import build_venue
from services.brokers.node.pairing import PairingError
from services.bus import EventBus
from services.clock import SystemClock
from services.security import CredentialStore, Vault
from services.storage import Database, ProfilePaths
from tests.api.test_tls_and_systemd import make_cert
from tests.keyrings import MemoryKeyring
from tests.node.node_process import NodeProcess, free_port
from tests.storage.conftest import FAST_ARGON2
from tests.widgets.conftest import LoopRunner, qloop  # noqa: F401 (fixture)
from widgets.node_dialog import NodeDialog

SHOTS_DIR = os.environ.get("DALAL_SCREENSHOTS")  # a folder: save the dialog's pictures there
SHOTS = Path(SHOTS_DIR) if SHOTS_DIR else None


@pytest.fixture
def tls_node(tmp_path: Path) -> Iterator[tuple[NodeProcess, str, str, Path]]:
    (tmp_path / "certs").mkdir()
    cert, key = make_cert(tmp_path / "certs")
    process = NodeProcess(tmp_path / "node", settings={"seed": 7}, tls=(cert, key))
    process.root.mkdir()
    trade = process.create_key("read,trade")
    read_only = process.create_key("read")
    process.start()
    try:
        yield process, trade, read_only, cert
    finally:
        process.stop()


@pytest.fixture
def vault_db(tmp_path: Path, memory_keyring: MemoryKeyring) -> Iterator[Database]:
    paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
    vault = Vault(paths, keyring_backend=memory_keyring, argon2=FAST_ARGON2)
    db = vault.unlock(vault.keyring_source())
    try:
        yield db
    finally:
        db.close()


def _wait(qloop: LoopRunner, dialog: NodeDialog, what: str) -> None:  # noqa: F811
    qloop.until(lambda: not dialog.busy, timeout=30, what=what)


def _shown_fingerprint(dialog: NodeDialog) -> str:
    return dialog.fingerprint.text().replace(":", "").replace("\n", "").lower()


@pytest.mark.timeout(240)
def test_the_desktop_pins_the_node_stores_its_key_and_selects_it(
    qtbot: Any,
    qloop: LoopRunner,  # noqa: F811
    tls_node: tuple[NodeProcess, str, str, Path],
    vault_db: Database,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    process, trade_key, read_key, cert = tls_node
    config = tmp_path / "settings.json"
    secrets = CredentialStore("test", vault_db, memory_keyring)
    store = NodePairingStore(config, secrets)
    dialog = NodeDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    assert "No node paired" in dialog.state.text()

    # Nobody listens there: said at once, nothing to confirm.
    dialog.url.setText(f"https://127.0.0.1:{free_port()}")
    dialog.fetch()
    _wait(qloop, dialog, "the unreachable node")
    assert "cannot reach the node" in dialog.message.text()
    assert not dialog.confirm.isEnabled() and not dialog.pair_button.isEnabled()

    # The real node: its fingerprint is the one `dalal headless` printed at start.
    dialog.url.setText(process.base)
    dialog.fetch()
    _wait(qloop, dialog, "the certificate")
    expected = certificate_fingerprint(cert).replace(":", "").lower()
    assert _shown_fingerprint(dialog) == expected
    assert dialog.warning.isHidden()
    dialog.key.setText(trade_key)
    assert not dialog.pair_button.isEnabled(), "a key is tried only after the confirmation"
    if SHOTS is not None:
        dialog.grab().save(str(SHOTS / "node-dialog.png"))

    # A key the node does not know, then a read-only one: refused, nothing stored.
    dialog.confirm.setChecked(True)
    dialog.key.setText("dk_" + "x" * 40)
    dialog.pair()
    _wait(qloop, dialog, "the wrong key")
    assert "refused this API key" in dialog.message.text()
    dialog.key.setText(read_key)
    dialog.pair()
    _wait(qloop, dialog, "the read-only key")
    assert "may not place orders" in dialog.message.text()
    assert "read" in dialog.message.text() and read_key not in dialog.message.text()
    assert secrets.get("node") is None and not config.exists()

    # The trade key: stored in the vault, the node pinned and selected.
    dialog.key.setText(trade_key)
    dialog.pair()
    _wait(qloop, dialog, "the pairing")
    assert "Paired with its certificate pinned" in dialog.message.text(), dialog.message.text()
    assert dialog.key.text() == ""
    assert secrets.get("node") == {"api_key": trade_key}
    saved = load_settings(config).node
    assert (saved.venue, saved.url, saved.fingerprint) == ("node", process.base, expected)
    assert trade_key not in config.read_text()

    # What was stored is what the terminal's node venue uses at its next start.
    venue = build_venue(saved.url, saved.fingerprint, secrets, EventBus(), SystemClock())
    try:
        assert qloop.run(venue.execution.orders(), timeout=30) == []
    finally:
        qloop.run(venue.execution.close())

    # The node now presents another certificate than the one pinned: red, not the same text.
    (tmp_path / "other").mkdir()
    other, _ = make_cert(tmp_path / "other")
    other_pin = certificate_fingerprint(other).replace(":", "").lower()
    save_settings(Settings(node=NodeSettings(venue="node", url=process.base,
                                             fingerprint=other_pin)), config)  # fmt: skip
    again = NodeDialog(store)
    qtbot.addWidget(again)
    again.show()
    assert f"Orders go through {process.base}" in again.state.text()
    again.fetch()
    _wait(qloop, again, "the changed certificate")
    assert again.warning.isVisible()
    assert "NOT the certificate you pinned" in again.warning.text()
    assert "changed" in again.message.text()
    assert not again.confirm.isChecked() and not again.pair_button.isEnabled()
    if SHOTS is not None:
        again.grab().save(str(SHOTS / "node-dialog-changed.png"))

    # Pairing through a pin the node no longer matches is refused by the TLS layer itself.
    with pytest.raises(PairingError, match="different TLS certificate"):
        qloop.run(store.pair(process.base, other_pin, trade_key), timeout=30)


def test_order_node_entry_opens_the_dialog(
    qtbot: Any, qloop: LoopRunner, tmp_path: Path  # noqa: F811
) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    broker, settings = QMenu("Broker", window), QMenu("Settings", window)
    add_node_menu(window, [broker, settings], tmp_path / "settings.json", None)
    entries = [a for m in (broker, settings) for a in m.actions()
               if a.objectName() == "node:choose"]  # fmt: skip
    assert len(entries) == 2
    entries[0].trigger()
    qtbot.waitUntil(lambda: window.findChild(NodeDialog) is not None, timeout=5000)
    dialog = window.findChild(NodeDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.url.setText("http://203.0.113.9:8443")  # plain http beyond this machine
    dialog.fetch()
    _wait(qloop, dialog, "the refusal")
    assert "needs https://" in dialog.message.text()


def test_an_in_memory_session_cannot_store_the_key(tmp_path: Path) -> None:
    store = NodePairingStore(tmp_path / "settings.json", None)
    with pytest.raises(PairingError, match="in-memory"):
        asyncio.run(store.pair("http://127.0.0.1:9", None, "dk_abc"))
