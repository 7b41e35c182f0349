"""``dalal check-connections``: a table of what works, with reasons for what does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.commands.check_connections import Check, render
from services.brokers import registry

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[str, list[dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.kite_app.check_connections_scenario", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return "\n".join(lines[:-1]), json.loads(lines[-1])


def by_name(checks: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["broker"], c["check"]): c for c in checks}


@pytest.mark.slow
def test_everything_ok_against_the_fake() -> None:
    table, checks = run()
    found = by_name(checks)
    checked = {k for k in found if k[0] in ("paper", "kite")}
    names = ("login", "instruments", "ticker")
    assert checked == {(b, c) for b in ("paper", "kite") for c in names}
    # Every other registered broker is listed, as not configured.
    others = {b for b, c in found if b not in ("paper", "kite")}
    assert others == set(registry.names(live_only=True)) - {"kite"}
    assert all("not configured" in found[(b, "-")]["detail"] for b in others)
    assert all(c["ok"] for c in checks), table
    assert "session valid" in found[("kite", "login")]["detail"]
    assert "NSE:INFY lot 1 tick 0.1" in found[("kite", "instruments")]["detail"]
    assert "NSE:INFY tick" in found[("kite", "ticker")]["detail"]
    assert "FAIL" not in table


@pytest.mark.slow
def test_expired_token_fails_with_the_reason() -> None:
    table, checks = run("expired")
    found = by_name(checks)
    assert all(c["ok"] for b, c in found.items() if b[0] == "paper")
    for check in ("login", "instruments", "ticker"):
        assert not found[("kite", check)]["ok"]
        assert "session has expired" in found[("kite", check)]["detail"]
    assert "FAIL" in table


def test_table_lines_up() -> None:
    text = render([Check("paper", "login", True, "fine"), Check("kite", "ticker", False, "why")])
    lines = text.splitlines()
    assert lines[0].split() == ["BROKER", "CHECK", "RESULT", "DETAIL"]
    assert lines[2].index("FAIL") == lines[1].index("OK") == lines[0].index("RESULT")
