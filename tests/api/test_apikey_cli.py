"""`dalal apikey create|list|revoke` on a real encrypted profile database."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from app import cli


def test_create_list_revoke_through_the_profile_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "dalal-db-key").write_text(secrets.token_hex(32))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    where = ["--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
             "--key-credential", "dalal-db-key"]  # fmt: skip
    assert cli.main(["apikey", "create", "--name", "bot", "--scopes", "read,trade",
                     "--expires", "30d", *where]) == 0  # fmt: skip
    out = capsys.readouterr().out
    token = re.search(r"^(dk_[0-9a-f]{12}_\S{43})$", out, re.MULTILINE)
    assert token, out
    key_id = token.group(1).split("_")[1]
    assert cli.main(["apikey", "list", *where]) == 0
    listing = capsys.readouterr().out
    assert f"{key_id}\tbot\tread,trade\tactive" in listing
    assert token.group(1).split("_", 2)[2] not in listing  # the secret is never shown again
    assert cli.main(["apikey", "revoke", key_id, *where]) == 0
    assert cli.main(["apikey", "list", *where]) == 0
    assert f"{key_id}\tbot\tread,trade\trevoked" in capsys.readouterr().out
    assert cli.main(["apikey", "revoke", "ffffffffffff", *where]) == 2
    assert cli.main(["apikey", "create", "--name", "x", "--scopes", "admin", *where]) == 2
    assert "unknown scope" in capsys.readouterr().err
