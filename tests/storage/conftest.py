"""Storage tests: an in-memory keyring (never the real one) and profile dirs under tmp_path."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from services.security import Argon2Params, Vault
from services.storage import ProfilePaths
from tests.keyrings import MemoryKeyring

FAST_ARGON2 = Argon2Params(time_cost=1)  # still 64 MiB: only the iteration count is cut


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
