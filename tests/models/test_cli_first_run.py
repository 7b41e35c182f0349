"""`dalal model` on a fresh profile: no models is said plainly, training finds the simulated
market's kept history without --synthetic, and JSON output never holds NaN or Infinity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.commands.model import dump_json
from services.marketdata.store import HistoryStore
from services.security import Vault
from services.security.keys import Argon2Params
from services.storage import ProfilePaths
from tests.models.test_cli import run  # noqa: F401  (fixture)


def strict(text: str) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_fresh_profile_lists_nothing_then_trains_on_kept_history(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    assert run("model", "list") == 0
    assert "no models registered yet" in capsys.readouterr().out
    assert run("model", "list", "--json") == 0
    assert strict(capsys.readouterr().out) == []

    common = ["--symbol", "NSE:INFY", "--train-size", "300", "--test-size", "100",
              "--splits", "2"]  # fmt: skip
    assert run("model", "train", "mom", *common) == 0
    out = capsys.readouterr()
    assert "registered mom v1" in out.out and "simulated market kept" in out.err
    kept = kept_bars(tmp_path)
    assert kept >= 300 + 100 * 2
    assert run("model", "train", "mom", *common) == 0
    assert kept_bars(tmp_path) == kept  # made once: the second training read it back
    capsys.readouterr()
    assert run("model", "list", "mom", "--json") == 0
    records = strict(capsys.readouterr().out)
    assert isinstance(records, list) and len(records) == 2

    vault = Vault(ProfilePaths.for_profile("t", tmp_path / "d", tmp_path / "c"),
                  argon2=Argon2Params(time_cost=1))  # fmt: skip
    db = vault.unlock(vault.keyring_source(), actor="test")
    try:
        rows = db.query("SELECT data_start, data_end FROM ml_models ORDER BY version")
        assert rows[0] == rows[1]  # both versions trained on the same bars
    finally:
        db.close()


def kept_bars(tmp_path: Path) -> int:
    vault = Vault(ProfilePaths.for_profile("t", tmp_path / "d", tmp_path / "c"),
                  argon2=Argon2Params(time_cost=1))  # fmt: skip
    db = vault.unlock(vault.keyring_source(), actor="test")
    try:
        return HistoryStore(db).count("NSE:INFY")
    finally:
        db.close()


def test_json_output_has_no_nan_or_infinity() -> None:
    text = dump_json({"sharpe": float("nan"), "x": [float("inf"), 1.5], "n": 3})
    assert strict(text) == {"sharpe": None, "x": [None, 1.5], "n": 3}
