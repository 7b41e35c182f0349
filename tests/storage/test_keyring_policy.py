"""The keyring policy is an allow-list: only backends known to encrypt secrets at rest pass."""

from __future__ import annotations

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer
from keyrings.alt.file import PlaintextKeyring

from services.security import InsecureKeyringError, Vault, check_backend
from services.security.keyring_policy import trusted_keyring_backends
from services.storage import ProfilePaths
from tests.keyrings import MemoryKeyring


class HomeGrownKeyring(KeyringBackend):
    """A third-party backend the policy has never heard of."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        pass

    def delete_password(self, service: str, username: str) -> None:
        pass


def _refused(backend: KeyringBackend) -> str:
    with pytest.raises(InsecureKeyringError, match="refusing keyring backend") as info:
        check_backend(backend)
    message = str(info.value)
    assert "keyrings.cryptfile" in message and "Secret Service" in message
    return message


def test_plaintext_unknown_and_lookalike_backends_are_refused() -> None:
    assert "keyrings.alt.file.PlaintextKeyring" in _refused(PlaintextKeyring())
    assert "HomeGrownKeyring" in _refused(HomeGrownKeyring())
    # The plaintext backend of older keyrings.alt releases, which a deny-list missed.
    pyfs = type("PlaintextKeyring", (HomeGrownKeyring,), {"__module__": "keyrings.alt.pyfs"})
    assert "keyrings.alt.pyfs.PlaintextKeyring" in _refused(pyfs())


def test_an_encrypted_backend_is_allowed_by_its_exact_class() -> None:
    lookalike = type("Keyring", (HomeGrownKeyring,), {"__module__": "keyring.backends.macOS"})
    assert check_backend(lookalike())  # stands in for the real (macOS-only) Keychain backend
    subclass = type("Keyring", (lookalike,), {"__module__": "somewhere.else"})
    _refused(subclass())


def test_the_memory_backend_is_accepted_only_through_the_test_hook(paths: ProfilePaths) -> None:
    with trusted_keyring_backends():
        _refused(MemoryKeyring())
        vault = Vault(paths, keyring_backend=MemoryKeyring())
        with pytest.raises(InsecureKeyringError):
            vault.unlock(vault.keyring_source())
        assert not paths.database.exists()
    with trusted_keyring_backends(MemoryKeyring):
        assert check_backend(MemoryKeyring())
        # Trust is for that exact class, not for anything derived from it.
        _refused(type("PlaintextKeyring", (MemoryKeyring,), {})())


def test_a_chainer_passes_only_when_every_chained_backend_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = MemoryKeyring()
    monkeypatch.setattr("keyring.backend.get_all_keyring", lambda: [memory])
    assert check_backend(chainer.ChainerBackend())
    plaintext = PlaintextKeyring()
    monkeypatch.setattr("keyring.backend.get_all_keyring", lambda: [memory, plaintext])
    assert "keyrings.alt.file.PlaintextKeyring" in _refused(chainer.ChainerBackend())
    monkeypatch.setattr("keyring.backend.get_all_keyring", lambda: [])
    assert "no usable backend" in _refused(chainer.ChainerBackend())
