"""Choose the order node: its address, its certificate (trust on first use) and its API key.

Orders must leave from the static IP the trader registered with the broker, so the desktop
sends them through ``dalal headless`` on a VPS. A VPS certificate is usually self-signed:
there is no authority to ask, so the dialog shows the SHA-256 fingerprint the node presents
and the trader compares it with the one the node printed when it started. Only a confirmed
fingerprint is pinned; a node that presents another certificate than the one pinned for the
same address is shown in red and needs a fresh confirmation. The key is tried on the node
before it is stored. The dialog holds no logic of its own beyond that order of steps: the
checks, the vault and the settings are behind ``NodePairing``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from widgets.ui_pump import spawn

MUTED = "color: #8b95a5;"
ERROR = "color: #ff5f57;"
GOOD = "color: #28c840;"


class NodePairing(Protocol):
    """What the dialog needs; ``app.node_pairing.NodePairingStore`` is the real one.

    Every method raises an exception whose message is meant for the trader (no secret in it).
    """

    def current(self) -> tuple[str | None, str | None, bool]:
        """The paired node's address, its pinned fingerprint and whether orders use it."""
        ...

    async def fetch_fingerprint(self, url: str) -> str | None:
        """The SHA-256 (hex) of the certificate the node presents; None for loopback http."""
        ...

    async def pair(self, url: str, fingerprint: str | None, api_key: str) -> str:
        """Check the key through the pin, store it and select the node; say what changed."""
        ...


def pretty(fingerprint: str) -> str:
    text = fingerprint.upper()
    pairs = [text[i : i + 2] for i in range(0, len(text), 2)]
    half = len(pairs) // 2
    return ":".join(pairs[:half]) + "\n" + ":".join(pairs[half:])


class NodeDialog(QDialog):
    def __init__(
        self,
        pairing: NodePairing,
        parent: QWidget | None = None,
        *,
        on_paired: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Order node")
        self.setObjectName("nodeDialog")
        self.setMinimumWidth(560)
        self._pairing = pairing
        self._on_paired = on_paired
        self._seen: str | None = None  # the fingerprint fetched for the address shown
        self._fetched_url: str | None = None
        self._busy = False
        url, self._pinned, in_use = pairing.current()
        self._pinned_url = url

        intro = QLabel(
            "Since April 2026 brokers accept API orders only from your registered static IP. "
            "Orders go through your order node (<code>dalal headless</code> on that machine); "
            "data and charts stay here."
        )
        intro.setWordWrap(True)
        state = (f"Orders go through {url} now." if in_use and url else
                 f"Paired with {url}, not in use." if url else "No node paired yet.")  # fmt: skip
        self.state = QLabel(state)
        self.state.setStyleSheet(MUTED)

        self.url = QLineEdit(url or "")
        self.url.setPlaceholderText("https://your-vps:8443")
        self.url.textEdited.connect(self._address_changed)
        self.fetch_button = QPushButton("Fetch certificate")
        self.fetch_button.clicked.connect(self.fetch)
        address_row = QHBoxLayout()
        address_row.addWidget(self.url, 1)
        address_row.addWidget(self.fetch_button)

        self.fingerprint = QLabel("—")
        self.fingerprint.setObjectName("nodeFingerprint")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.fingerprint.setFont(mono)
        self.fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel("")
        self.warning.setObjectName("nodeWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(ERROR)
        self.warning.hide()
        self.confirm = QCheckBox("It is the fingerprint the node printed when it started")
        self.confirm.setEnabled(False)
        self.confirm.toggled.connect(self._update_buttons)

        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("dk_… (a trade-scoped key created on the node)")
        self.key.textChanged.connect(self._update_buttons)

        form = QFormLayout()
        form.addRow("Node address", address_row)
        form.addRow("Certificate SHA-256", self.fingerprint)
        form.addRow("", self.warning)
        form.addRow("", self.confirm)
        form.addRow("API key", self.key)
        hint = QLabel("The key is kept in this profile's encrypted vault, never in a file.")
        hint.setStyleSheet(MUTED)
        form.addRow("", hint)

        self.message = QLabel("")
        self.message.setObjectName("nodeMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.pair_button = self.buttons.addButton(
            "Pair and use for orders", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.accepted.connect(self.pair)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.state)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._update_buttons()

    # -- steps ---------------------------------------------------------------------------------
    def fetch(self) -> None:
        if not self._busy:
            self._start(self._fetch(self.url.text().strip()), "node-fetch-certificate")

    def pair(self) -> None:
        if not self._busy and self.pair_button.isEnabled():
            self._start(self._pair(), "node-pair")

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._busy = True
        self._update_buttons()
        spawn(coro, name=name)

    async def _fetch(self, url: str) -> None:
        self._say("Reading the node's certificate…", MUTED)
        self._seen = self._fetched_url = None
        self.warning.hide()
        self.confirm.setChecked(False)
        try:
            seen = await self._pairing.fetch_fingerprint(url)
        except Exception as e:  # unreachable, not TLS, bad address: a message, not a crash
            self.fingerprint.setText("—")
            self._say(str(e), ERROR)
        else:
            self._fetched_url = url.rstrip("/")
            self._seen = seen
            if seen is None:
                self.fingerprint.setText("none: plain http on this machine (or an SSH tunnel)")
                self._say("The node answers. Enter its API key.", MUTED)
            else:
                self.fingerprint.setText(pretty(seen))
                changed = (self._pinned is not None and self._pinned != seen
                           and self._pinned_url == self._fetched_url)  # fmt: skip
                if changed:
                    assert self._pinned is not None
                    self.warning.setText(
                        "This is NOT the certificate you pinned for this node "
                        f"({self._pinned[:16]}…). If you did not replace the node's "
                        "certificate, someone may be between you and the node: do not confirm."
                    )
                    self.warning.show()
                    self.adjustSize()  # the wrapped warning needs its height
                    self._say("The certificate changed since you paired.", ERROR)
                else:
                    same = self._pinned == seen and self._pinned_url == self._fetched_url
                    self._say("The same certificate as pinned." if same else
                              "Compare it with the fingerprint the node printed, then confirm.",
                              MUTED)  # fmt: skip
        finally:
            self._busy = False
            self._update_buttons()

    async def _pair(self) -> None:
        url = self._fetched_url
        assert url is not None
        self._say("Trying the key on the node…", MUTED)
        try:
            text = await self._pairing.pair(url, self._seen, self.key.text())
        except Exception as e:  # wrong key, read-only key, changed certificate, node gone
            self._say(str(e), ERROR)
        else:
            self.key.clear()
            self._pinned, self._pinned_url = self._seen, url
            self.warning.hide()
            self.state.setText(f"Orders go through {url} (from the next start).")
            self._say(text, GOOD)
            if self._on_paired is not None:
                self._on_paired(text)
        finally:
            self._busy = False
            self._update_buttons()

    # -- state ---------------------------------------------------------------------------------
    def _address_changed(self, _text: str) -> None:
        self._seen = self._fetched_url = None
        self.fingerprint.setText("—")
        self.warning.hide()
        self.confirm.setChecked(False)
        self._update_buttons()

    def _update_buttons(self, *_: object) -> None:
        fetched = self._fetched_url is not None
        needs_confirm = fetched and self._seen is not None
        self.confirm.setEnabled(needs_confirm and not self._busy)
        if fetched and not needs_confirm:
            self.confirm.setChecked(False)
        trusted = fetched and (self._seen is None or self.confirm.isChecked())
        self.fetch_button.setEnabled(not self._busy)
        self.pair_button.setEnabled(trusted and bool(self.key.text().strip()) and not self._busy)

    def _say(self, text: str, style: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(style)

    @property
    def busy(self) -> bool:
        return self._busy


__all__ = ["NodeDialog", "NodePairing", "pretty"]
