"""Done-when of issue 15: on a fresh profile, ``dalal model train`` with a provider
configured (the Yahoo fake) fetches the bars it needs and trains, with no hidden flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from tests.fakes.marketdata import FakeMarketData
from tests.keyrings import MemoryKeyring


def test_model_train_on_a_fresh_profile_fetches_its_bars(
    tmp_path: Path, fake: FakeMarketData, memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from services.clock import SystemClock
    from tests.marketdata.conftest import NOW

    monkeypatch.setattr(SystemClock, "now", lambda self: NOW)
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"marketdata": {
        "providers": ["yfinance"], "yahoo_url": f"http://127.0.0.1:{fake.port}"}}))
    profile = ["--data-dir", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c")]
    code = main(["--config", str(config), "--profile", "fresh", "model", "train", "m1",
                 "--symbol", "NSE:INFY", "--timeframe", "5m", "--train-size", "300",
                 "--test-size", "100", "--splits", "2", *profile])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "registered m1 v1" in out
    assert "days" in err  # the fetch's progress bar
    assert fake.count("query2.finance.yahoo.com", "INFY.NS") >= 1
    # The fetched bars are in the profile's history store for next time.
    assert main(["--profile", "fresh", "data", "candles", "NSE:INFY", "--interval", "5m",
                 *profile]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) - 1 >= 300 + 2 * 100

