"""The desktop's node dialog wired to the real checks, the vault and the settings file.

The same steps as ``dalal node pair``: the checks are ``services.brokers.node.pairing``; this
only stores what they accepted (the key in the profile's credential store, off the event
loop; the address and pin in the settings file, written atomically) and selects the node as
the execution venue: the desktop then switches its orders to it at once
(``app.venue_switch``); ``dalal node pair`` takes effect at the terminal's next start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.settings import SettingsError, load_settings, save_settings
from services.brokers.node.config import NAME, SECRET_FIELD
from services.brokers.node.pairing import PairingError, check_url, fetch_pin, verify_key
from services.brokers.ports import SecretStore


class NodePairingStore:
    """Satisfies ``widgets.node_dialog.NodePairing``."""

    def __init__(self, settings_path: Path | None, secrets: SecretStore | None) -> None:
        self._path = settings_path
        self._secrets = secrets

    def current(self) -> tuple[str | None, str | None, bool]:
        try:
            node = load_settings(self._path).node
        except SettingsError:
            return None, None, False
        return node.url, node.fingerprint, node.venue == "node"

    async def fetch_fingerprint(self, url: str) -> str | None:
        return await fetch_pin(url)

    async def pair(self, url: str, fingerprint: str | None, api_key: str) -> str:
        url = check_url(url)
        if self._secrets is None:
            raise PairingError("this session keeps nothing (in-memory profile): open an "
                               "encrypted profile to store the node's key")  # fmt: skip
        try:
            settings = load_settings(self._path)
        except SettingsError as e:
            raise PairingError(f"the settings file cannot be read, nothing stored: {e}") from None
        name = await verify_key(url, fingerprint, api_key)
        await asyncio.to_thread(self._secrets.set, NAME, {SECRET_FIELD: api_key.strip()})
        node = settings.node.model_copy(update={"venue": "node", "url": url,
                                                "fingerprint": fingerprint})  # fmt: skip
        await asyncio.to_thread(save_settings, settings.model_copy(update={"node": node}),
                                self._path)  # fmt: skip
        pinned = " with its certificate pinned" if fingerprint else ""
        return f"Paired{pinned} (key {name!r}) with the order node at {url}."
