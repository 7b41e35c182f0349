"""``dalal backtest`` end to end: simulator history, a kept run, the exports, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import cli
from tests.keyrings import MemoryKeyring

RANGE = ["--from", "2026-11-02", "--to", "2026-11-13"]


def profile(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
            "--kdf-time-cost", "1"]


def test_backtest_on_the_simulator_keeps_the_run_and_exports_it(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    html, csv = tmp_path / "r.html", tmp_path / "t.csv"
    rc = cli.main([
        "backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20",
        "--symbols", "NSE:INFY", *RANGE, "--interval", "5m", "--quantity", "10",
        "--source", "simulator", "--html", str(html), "--csv", str(csv), *profile(tmp_path),
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Charges paid" in out and "buy and hold" in out
    run_id = out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    assert run_id.startswith("BT")
    page = html.read_text()
    assert "<svg" in page and "Equity" in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # self-contained: nothing fetched
    lines = csv.read_text().splitlines()
    assert lines[0] == "time,symbol,side,quantity,price,product,order_id,tag"
    assert len(lines) > 2

    assert cli.main(["backtest", "--list", *profile(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert run_id in listed and "sma_cross" in listed


def test_stored_source_without_bars_says_how_to_fetch_them(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main(["backtest", "--strategy", "orb", "--symbols", "NSE:INFY", *RANGE,
                   *profile(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no stored 5m bars for NSE:INFY" in err and "dalal data fetch" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "sma_cross", "--param", "fast"], "--param wants NAME=VALUE"),
        (["--strategy", "sma_cross", "--param", "fast=50"], "0 < fast < slow"),
        (["--strategy", "orb", "--param", "width=3"], "orb takes minutes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main(["backtest", *extra, "--symbols", "NSE:INFY", *RANGE, "--source", "simulator",
                   "--no-save", *profile(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_grid_sweeps_every_combination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main([
        "backtest", "--strategy", "sma_cross", "--grid", "fast=3,5", "--grid", "slow=20,30",
        "--symbols", "NSE:INFY", *RANGE, "--source", "simulator", *profile(tmp_path),
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = [line for line in out.splitlines() if line.startswith("fast=")]
    assert sorted(r.split()[0:2] for r in rows) == [
        ["fast=3", "slow=20"], ["fast=3", "slow=30"], ["fast=5", "slow=20"], ["fast=5", "slow=30"]
    ]


def test_backtest_on_fetched_history_in_the_profile(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    from datetime import UTC, date, datetime

    from app.commands.vault import unlock
    from services.backtest.data import simulator_bars
    from services.domain import Timeframe
    from services.marketdata.store import HistoryStore

    args = argparse.Namespace(profile="default", data_dir=tmp_path / "data",
                              cache_dir=tmp_path / "cache", key_fd=None, key_credential=None,
                              kdf_time_cost=1)
    _vault, db = unlock(args)
    # Fetched candles, as `dalal data fetch` keeps them (provider and fetch time recorded).
    bars = simulator_bars(["NSE:INFY"], Timeframe.M5, date(2026, 11, 2), date(2026, 11, 13))
    assert HistoryStore(db).write(bars, "yfinance", datetime(2026, 11, 14, tzinfo=UTC)) > 0
    db.close()
    rc = cli.main(["backtest", "--strategy", "sma_cross", "--symbols", "NSE:INFY", *RANGE,
                   "--quantity", "5", *profile(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{len(bars):,} 5m bars" in out


def test_a_registered_model_backtests_as_a_strategy(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    where = profile(tmp_path)[:4]  # the model commands take no --kdf-time-cost
    assert cli.main(["model", "train", "m5", "--symbol", "NSE:INFY", "--timeframe", "5m",
                     "--model-type", "logistic_regression", "--synthetic", "1500",
                     "--train-size", "600", "--test-size", "200", "--splits", "2",
                     *where]) == 0
    capsys.readouterr()
    rc = cli.main(["backtest", "--strategy", "model:m5", "--symbols", "NSE:INFY", *RANGE,
                   "--source", "simulator", "--quantity", "5", *where])
    err = capsys.readouterr().err
    assert rc == 2 and "no production version" in err and "model:m5@VERSION" in err
    rc = cli.main(["backtest", "--strategy", "model:m5@1", "--symbols", "NSE:INFY", *RANGE,
                   "--source", "simulator", "--quantity", "5", *where])
    out = capsys.readouterr().out
    assert rc == 0, out
    first_line = out.splitlines()[0]
    assert first_line.startswith("model:m5") and "on NSE:INFY" in first_line, first_line
