"""Storage tests: an in-memory keyring (never the real one) and profile dirs under tmp_path."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from services.security import Argon2Params, Vault
from services.storage import ProfilePaths

FAST_ARGON2 = Argon2Params(time_cost=1)  # still 64 MiB: only the iteration count is cut


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username))


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def paths(tmp_path: Path) -> ProfilePaths:
    return ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")


@pytest.fixture
def vault(paths: ProfilePaths, memory_keyring: MemoryKeyring) -> Vault:
    return Vault(paths, keyring_backend=memory_keyring, argon2=FAST_ARGON2)


@pytest.fixture
def cli_args(tmp_path: Path, memory_keyring: MemoryKeyring):  # type: ignore[no-untyped-def]
    def make(**extra: object) -> argparse.Namespace:
        base: dict[str, object] = {
            "profile": "test",
            "data_dir": tmp_path / "data",
            "cache_dir": tmp_path / "cache",
            "key_fd": None,
            "key_credential": None,
            "kdf_time_cost": 1,
        }
        base.update(extra)
        return argparse.Namespace(**base)

    return make
