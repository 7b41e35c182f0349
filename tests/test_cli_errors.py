"""Every command, given bad input, answers with one clear line and a non-zero exit: never a
traceback. The walk covers every subcommand the parser knows, so a new one is covered too."""

from __future__ import annotations

import argparse
import builtins
import getpass
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app import cli

REPO = Path(__file__).resolve().parents[1]
NEVER_RUN = {("run",), ("headless",)}  # they start a window or a server when all is well
# Commands that work without a profile (status, the paper broker's checks, the calendar).
NEEDS_NO_PROFILE = {("vault", "status"), ("check-connections",), ("data", "holidays")}


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from leaves(child, (*path, name))


def placeholders(parser: argparse.ArgumentParser) -> list[str]:
    """Syntactically valid values for the positionals and required options."""
    argv: list[str] = []
    for action in parser._actions:
        value = "1" if action.type is int else "x"
        if not action.option_strings and action.nargs != "?" and action.dest != "help":
            argv.append(value)
        elif action.option_strings and action.required:
            argv += [action.option_strings[-1], value]
    return argv


def has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in a.option_strings for a in parser._actions)


COMMANDS = list(leaves(cli.build_parser()))


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No keyring, and every prompt meets the end of standard input."""

    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", eof)
    monkeypatch.setattr(builtins, "input", eof)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"run", "headless", "vault passphrase", "credentials set", "data export",
            "model train", "model ab evaluate", "apikey create", "login kite",
            "check-connections"} <= names  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [p for p, parser in COMMANDS if not parser.get_default("config_may_be_new")],  # pairing
    ids=" ".join,
)
def test_a_missing_config_file_is_an_error(
    path: tuple[str, ...], no_terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = dict(COMMANDS)[path]
    argv = ["--config", "/nonexistent/dalal/settings.json", *path, *placeholders(parser)]
    assert cli.main(argv) == 2
    assert "settings file /nonexistent/dalal/settings.json does not exist" in one_line_error(
        capsys
    )


@pytest.mark.parametrize(
    "path", [p for p, parser in COMMANDS if has_option(parser, "--key-fd")], ids=" ".join
)
def test_a_key_fd_that_is_not_open_is_an_error(
    path: tuple[str, ...], no_terminal: None, capsys: pytest.CaptureFixture[str]
) -> None:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    parser = dict(COMMANDS)[path]
    assert cli.main([*path, *placeholders(parser), "--key-fd", str(read)]) == 2
    assert "not an open file descriptor" in one_line_error(capsys)


@pytest.mark.parametrize(
    "path",
    [p for p, parser in COMMANDS if has_option(parser, "--data-dir") and p not in NEVER_RUN],
    ids=" ".join,
)
def test_a_fresh_profile_with_no_keyring_and_no_terminal(
    path: tuple[str, ...],
    no_terminal: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = dict(COMMANDS)[path]
    argv = [*path, *placeholders(parser), "--data-dir", str(tmp_path / "d"),
            "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    if has_option(parser, "--timeout"):
        argv += ["--timeout", "0.5"]
    code = cli.main(argv)
    if path in NEEDS_NO_PROFILE:
        # Nothing wrong: no profile yet is fine for these (1: a connection check was slow).
        assert code in (0, 1)
        assert "Traceback" not in capsys.readouterr().err
        return
    assert code != 0
    one_line_error(capsys)


def run(*argv: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *argv], cwd=REPO, stdin=stdin, capture_output=True,
        text=True, timeout=60, check=False, start_new_session=True,  # no controlling terminal
    )  # fmt: skip


def test_the_reported_tracebacks_are_one_line_errors_in_a_real_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--data-dir", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c")]
    answers = iter(["first run passphrase"] * 2)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert cli.main(["vault", "passphrase", "--kdf-time-cost", "1", *dirs]) == 0
    capsys.readouterr()

    for argv, expected in (
        (["audit", "verify", *dirs], "standard input ended"),  # `dalal audit verify </dev/null`
        (["data", "export", "/nonexistent/dir/x.zip", *dirs], "does not exist"),
        (["audit", "verify", "--key-fd", "9", *dirs], "not an open file descriptor"),
    ):
        out = run(*argv)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], out.stderr
        assert "Traceback" not in out.stderr


def test_export_asks_before_replacing_a_file_or_takes_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = ["--data-dir", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c")]
    answers = iter(["export passphrase"] * 2 + ["export passphrase"] * 3)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert cli.main(["vault", "passphrase", "--kdf-time-cost", "1", *dirs]) == 0
    target = tmp_path / "out.zip"
    target.write_bytes(b"keep me")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", lambda prompt="": "n")
    assert cli.main(["data", "export", str(target), *dirs]) == 1
    assert target.read_bytes() == b"keep me"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    capsys.readouterr()
    assert cli.main(["data", "export", str(target), *dirs]) == 2
    assert "use --force" in one_line_error(capsys)
    assert target.read_bytes() == b"keep me"
    assert cli.main(["data", "export", str(target), "--force", *dirs]) == 0
    assert target.read_bytes().startswith(b"PK")
