"""The `dalal` command line: cheap help and version, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from app import cli

REPO = Path(__file__).resolve().parents[1]

# Modules `dalal --help` must not pay for (Qt, numpy-heavy services, ML, broker SDKs that even
# touch the network at import).
HEAVY = [
    "PySide6",
    "shiboken6",
    "pyqtgraph",
    "qasync",
    "numpy",
    "sklearn",
    "kiteconnect",
    "upstox_client",
    "breeze_connect",
    "SmartApi",
    "aiohttp",
    "app.wiring",
    "app.desktop",
    "app.headless",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "headless" in out.stdout and "run" in out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["headless", "--help"]])
def test_help_and_version_import_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "import app.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = app.cli.main({argv!r})\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps([rc, [m for m in heavy if m in sys.modules]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    rc, loaded = json.loads(out.stdout)
    assert rc == 0
    assert loaded == []


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"dalal-terminal {version('dalal-terminal')}"


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("nonsense", "expected HOST:PORT"),
        ("127.0.0.1:99999", "port must be a number from 0 to 65535"),
        ("0.0.0.0:9400", "not a loopback address"),
    ],
)
def test_bad_listen_is_one_line_and_exit_2(
    listen: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["headless", "--listen", listen]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dalal: error: ")
    assert message in err


def test_bad_listen_in_a_real_process_has_no_traceback() -> None:
    out = run("headless", "--listen", "127.0.0.1:port")
    assert out.returncode == 2
    assert out.stderr.startswith("dalal: error: --listen")
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_bad_settings_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "settings.json"
    config.write_text('{"ticks_per_second": -5}')
    assert cli.main(["--config", str(config), "headless", "--listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ticks_per_second" in err

    config.write_text("{not json")
    assert cli.main(["headless", "--config", str(config)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_option_overrides_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.json").write_text("{}")
    config = ["--config", str(tmp_path / "empty.json")]  # never the user's real settings
    assert (
        cli.main([*config, "--profile", "no spaces!", "headless", "--listen", "127.0.0.1:0"]) == 2
    )
    assert "profile" in capsys.readouterr().err
    assert cli.main(["headless", *config, "--ticks-per-second", "0"]) == 2
    assert "ticks_per_second" in capsys.readouterr().err


def test_common_options_work_before_and_after_the_command(tmp_path: Path) -> None:
    parser = cli.build_parser()
    config = str(tmp_path / "empty.json")  # an empty object: the defaults
    (tmp_path / "empty.json").write_text("{}")
    before = parser.parse_args(["--profile", "desk", "--config", config, "headless"])
    after = parser.parse_args(["headless", "--profile", "vps", "--seed", "7", "--market-hours"])
    assert before.profile == "desk" and str(before.config) == config
    assert after.profile == "vps"
    settings = cli.load_cli_settings(before)
    assert settings.profile == "desk"
    tuned = cli.load_cli_settings(
        parser.parse_args(["--config", config, "headless", "--seed", "7"]), seed=7
    )
    assert tuned.seed == 7


def test_no_command_and_run_both_start_the_desktop() -> None:
    parser = cli.build_parser()
    assert parser.parse_args([]).func is parser.parse_args(["run"]).func
    assert parser.parse_args(["headless"]).func is not parser.parse_args(["run"]).func


def test_command_modules_register_subcommands() -> None:
    import importlib

    for name in cli.COMMAND_MODULES:
        assert callable(importlib.import_module(name).register), name
