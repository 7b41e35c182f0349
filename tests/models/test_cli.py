from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from app.commands import model as model_cmd
from services.security import AuditLog, Vault
from services.security.keys import Argon2Params
from services.storage import ProfilePaths
from tests.keyrings import MemoryKeyring


@pytest.fixture
def run(tmp_path: Path) -> Iterator[object]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    model_cmd.register(sub)
    base = ["--profile", "t", "--data-dir", str(tmp_path / "d"), "--cache-dir",
            str(tmp_path / "c"), "--kdf-time-cost", "1"]

    def call(*argv: str) -> int:
        args = parser.parse_args([*argv, *base])
        return int(args.func(args))

    try:
        yield call
    finally:
        keyring.set_keyring(previous)


def test_cli_train_promote_ab_and_rollback(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    common = ["--symbol", "NSE:SYNTH", "--synthetic", "1500", "--train-size", "400",
              "--test-size", "200", "--splits", "2"]
    assert run("model", "train", "mom", *common) == 0
    assert run("model", "train", "mom", *common) == 0
    assert "registered mom v2" in capsys.readouterr().out
    assert run("model", "promote", "mom", "1", "production") == 2
    assert "skips" in capsys.readouterr().err
    assert run("model", "promote", "mom", "1", "production", "--force") == 0
    assert run("model", "promote", "mom", "2", "staging") == 0
    assert run("model", "promote", "mom", "2", "production") == 0
    assert run("model", "ab", "start", "mom", "2", "2") == 2
    assert "two different versions" in capsys.readouterr().err
    assert run("model", "ab", "start", "mom", "1", "2", "--shadow") == 0
    test_id = capsys.readouterr().out.split()[3].rstrip(":")
    assert run("model", "ab", "evaluate", test_id) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "collecting"
    assert run("model", "rollback", "mom", "--reason", "test") == 0
    assert "mom v1 is production again" in capsys.readouterr().out
    assert run("model", "list", "mom", "--json") == 0
    stages = {r["version"]: r["stage"] for r in json.loads(capsys.readouterr().out)}
    assert stages == {1: "production", 2: "archived"}
    assert run("model", "promote", "mom", "1", "canary") == 2
    assert "unknown stage" in capsys.readouterr().err
    # the audit log of the encrypted profile database recorded every change
    vault = Vault(ProfilePaths.for_profile("t", tmp_path / "d", tmp_path / "c"),
                  argon2=Argon2Params(time_cost=1))
    db = vault.unlock(vault.keyring_source(), actor="test")
    try:
        kinds = [r.kind for r in AuditLog(db).rows()]
    finally:
        db.close()
    assert kinds.count("model.register") == 2
    assert {"model.promote", "model.ab_start", "model.rollback"} <= set(kinds)
