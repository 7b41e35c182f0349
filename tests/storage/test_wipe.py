"""`dalal data wipe` leaves nothing of the profile behind: keys, model artifacts, risk state."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import pytest

from app.commands import data as data_cmd
from app.commands.model import signing_key
from models.artifacts import ArtifactStore
from services.security import Vault
from services.security.keyring_policy import SERVICE
from tests.keyrings import MemoryKeyring


def test_wipe_removes_the_signing_key_models_and_risk_state(
    cli_args: Callable[..., argparse.Namespace],
    vault: Vault,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = vault.unlock(vault.keyring_source())
    profile_dir = vault.paths.directory
    # What a running terminal leaves beside the database: a signed artifact (key in the
    # keyring) in models/, and the risk engine's trading state.
    store = ArtifactStore(profile_dir / "models", signing_key("test", db, create=True))
    store.save_bytes(b"onnx graph", "m1-v1.onnx")
    db.close()
    (profile_dir / "risk_state.json").write_text(json.dumps({"halted": True}))
    assert (SERVICE, "model-signing:test") in memory_keyring.store

    assert data_cmd.wipe(cli_args(yes=True)) == 0

    out = capsys.readouterr().out
    assert f"removed keyring entry {SERVICE}/model-signing:test" in out
    assert f"removed {profile_dir / 'models'}/" in out
    assert f"removed {profile_dir / 'risk_state.json'}" in out
    assert memory_keyring.store == {}
    assert not profile_dir.exists()


def test_wipe_without_the_database_still_removes_both_keys(
    vault: Vault, memory_keyring: MemoryKeyring
) -> None:
    """A profile whose database cannot be opened (say, a forgotten passphrase) is still wiped."""
    vault.unlock(vault.keyring_source()).close()
    memory_keyring.set_password(SERVICE, "model-signing:test", "00" * 32)
    memory_keyring.set_password(SERVICE, "model-signing:other", "11" * 32)

    removed = vault.wipe()

    assert f"keyring entry {SERVICE}/db-key:test" in removed
    assert f"keyring entry {SERVICE}/model-signing:test" in removed
    assert memory_keyring.store == {(SERVICE, "model-signing:other"): "11" * 32}
