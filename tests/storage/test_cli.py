from __future__ import annotations

import argparse
import getpass
import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.commands import audit as audit_cmd
from app.commands import credentials as cred_cmd
from app.commands import data as data_cmd
from app.commands import vault as vault_cmd
from services.security import AuditLog, Vault, WrongKeyError
from services.security.keyring_policy import SERVICE
from services.storage import EXPORT_TABLES, ProfilePaths
from services.storage.sqlcipher import connect_raw
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2

SECRET_VALUE = "CREDVALUE_MARKER_91c2e"
PASSPHRASE = "PASSPHRASE_MARKER_5d7b0"


def _prompts(answers: list[str]) -> Callable[[str], str]:
    queue = iter(answers)
    return lambda prompt="": next(queue)


def test_commands_register_on_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="dalal")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (vault_cmd, cred_cmd, audit_cmd, data_cmd):
        module.register(sub)
    args = parser.parse_args(["credentials", "set", "kite", "--profile", "p1"])
    assert args.func is cred_cmd.set_credentials and args.broker == "kite"
    args = parser.parse_args(["data", "wipe", "--yes"])
    assert args.func is data_cmd.wipe and args.yes


@pytest.fixture
def scenario_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_no_secret_reaches_disk_logs_or_errors(
    cli_args: Callable[..., argparse.Namespace],
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    scenario_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    args = cli_args()
    # Passphrase mode, then a failed and a good unlock, credentials, list, export.
    monkeypatch.setattr(getpass, "getpass", _prompts([PASSPHRASE, PASSPHRASE]))
    assert vault_cmd.passphrase(args) == 0
    errors: list[str] = []
    monkeypatch.setattr(getpass, "getpass", _prompts(["not-" + PASSPHRASE]))
    assert cred_cmd.list_credentials(args) == 2
    vault = Vault(
        ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache"),
        keyring_backend=memory_keyring,
        argon2=FAST_ARGON2,
    )
    try:
        vault.unlock(vault.passphrase_source("x" + PASSPHRASE))
    except WrongKeyError as exc:
        errors += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    monkeypatch.setattr(
        getpass, "getpass", _prompts([SECRET_VALUE + "k", SECRET_VALUE + "s", PASSPHRASE])
    )
    assert cred_cmd.set_credentials(cli_args(broker="kite", field=None)) == 0
    monkeypatch.setattr(getpass, "getpass", _prompts([PASSPHRASE]))
    assert cred_cmd.list_credentials(args) == 0
    export = tmp_path / "export.zip"
    monkeypatch.setattr(getpass, "getpass", _prompts([PASSPHRASE]))
    assert data_cmd.export(cli_args(path=export, force=False)) == 0
    out = capsys.readouterr()

    paths = vault.paths
    haystacks = {
        "db": paths.database.read_bytes(),
        "wal": paths.wal.read_bytes() if paths.wal.exists() else b"",
        "header": paths.header.read_bytes(),
        "lockout": paths.lockout.read_bytes() if paths.lockout.exists() else b"",
        "zip": b"".join(
            zipfile.ZipFile(export).read(n) for n in zipfile.ZipFile(export).namelist()
        ),
        "zip-raw": export.read_bytes(),
        "logs": scenario_logs.text.encode(),
        "errors": " ".join(errors).encode(),
        "stdout": (out.out + out.err).encode(),
    }
    assert "kite" in out.out and "wrong passphrase or key" in out.err
    for name, data in haystacks.items():
        for marker in (SECRET_VALUE, PASSPHRASE):
            assert marker.encode() not in data, f"{marker} found in {name}"
    # The credential really is stored, in the keyring only.
    stored = memory_keyring.store[(SERVICE, "broker:test:kite")]
    assert json.loads(stored)["api_key"] == SECRET_VALUE + "k"


def test_export_writes_csv_per_table_and_manifest(
    cli_args: Callable[..., argparse.Namespace], tmp_path: Path
) -> None:
    path = tmp_path / "out.zip"
    assert data_cmd.export(cli_args(path=path, force=False)) == 0
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        audit_csv = zf.read("audit_log.csv").decode()
    assert names == {f"{t}.csv" for t in EXPORT_TABLES} | {"manifest.json"}
    assert manifest["profile"] == "test" and manifest["tables"]["audit_log"]["rows"] >= 1
    assert audit_csv.startswith("seq,ts,kind,actor,details,prev_hash,hash")


def test_audit_verify_command_reports_the_tampered_row(
    cli_args: Callable[..., argparse.Namespace],
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    args = cli_args()
    assert audit_cmd.verify(args) == 0  # creates the profile; rows: unlock
    assert audit_cmd.verify(args) == 0  # second unlock row
    assert "intact" in capsys.readouterr().out
    key = bytes.fromhex(memory_keyring.store[(SERVICE, "db-key:test")])
    db_path = tmp_path / "data" / "profiles" / "test" / "terminal.db"
    conn = connect_raw(db_path, key)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE seq = 1")
    conn.close()
    assert audit_cmd.verify(args) == 1
    assert "TAMPERED: audit log broken at row 1" in capsys.readouterr().out


def test_wipe_asks_for_the_profile_name_and_removes_everything(
    cli_args: Callable[..., argparse.Namespace],
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(getpass, "getpass", _prompts(["k", "s"]))
    assert cred_cmd.set_credentials(cli_args(broker="upstox", field=None)) == 0
    cache = tmp_path / "cache" / "profiles" / "test"
    cache.mkdir(parents=True)
    (cache / "instruments.json").write_text("{}")
    monkeypatch.setattr("builtins.input", lambda prompt="": "wrong-name")
    assert data_cmd.wipe(cli_args(yes=False)) == 1
    assert (tmp_path / "data" / "profiles" / "test" / "terminal.db").exists()
    capsys.readouterr()
    monkeypatch.setattr("builtins.input", lambda prompt="": "test")
    assert data_cmd.wipe(cli_args(yes=False)) == 0
    out = capsys.readouterr().out
    assert "terminal.db" in out and "broker:test:upstox" in out and "db-key:test" in out
    assert memory_keyring.store == {}
    assert not (tmp_path / "data" / "profiles" / "test").exists()
    assert not cache.exists()


def test_wrong_passphrase_is_one_line_not_a_traceback(
    cli_args: Callable[..., argparse.Namespace],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(getpass, "getpass", _prompts(["a long passphrase"] * 2))
    assert vault_cmd.passphrase(cli_args()) == 0
    monkeypatch.setattr(getpass, "getpass", _prompts(["another passphrase"]))
    assert audit_cmd.verify(cli_args()) == 2
    assert capsys.readouterr().err.strip() == "error: wrong passphrase or key"
    monkeypatch.setattr(getpass, "getpass", _prompts(["a long passphrase"]))
    assert audit_cmd.show(cli_args(limit=10)) == 0
    assert "unlock_failed" in capsys.readouterr().out  # a new profile is made in passphrase mode
    assert AuditLog  # imported for type context
