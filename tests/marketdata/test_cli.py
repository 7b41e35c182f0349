"""``dalal data fetch|candles|gaps`` against every fake, through ``app.cli.main``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app.cli import main
from tests.fakes.marketdata import FakeMarketData, alphavantage, polygon
from tests.keyrings import MemoryKeyring


@pytest.fixture
def dalal(
    tmp_path: Path, fake: FakeMarketData, memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    """Run ``dalal`` with a settings file whose providers point at the fakes."""
    from services.clock import SystemClock
    from tests.marketdata.conftest import NOW

    monkeypatch.setattr(SystemClock, "now", lambda self: NOW)  # the fakes' "now"
    config = tmp_path / "settings.json"

    def run(*argv: str, providers: list[str]) -> int:
        config.write_text(json.dumps({"marketdata": {
            "providers": providers,
            "yahoo_url": f"http://127.0.0.1:{fake.port}",
            "alphavantage_url": fake.url("www.alphavantage.co"),
            "polygon_url": fake.url("api.polygon.io"),
            "nse": {"website": fake.url("www.nseindia.com"),
                    "archives": fake.url("nsearchives.nseindia.com")},
        }}))
        return main(["--config", str(config), "--profile", "t", *argv,
                     "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "c")])

    return run


def _store_key(dalal, name: str, key: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import getpass

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": key)
    assert dalal("credentials", "set", name, "--field", "api_key", providers=[]) == 0


@pytest.mark.parametrize("providers, symbol, interval, first, last, stored", [
    (["yfinance"], "NSE:INFY", "5m", "2026-03-09", "2026-03-13", 5 * 75),
    (["nse"], "NSE:TCS", "1d", "2026-03-02", "2026-03-13", 9),
    (["nse"], "NFO:NIFTY26MARFUT", "1d", "2026-03-09", "2026-03-13", 5),
    (["alphavantage"], "BSE:RELIANCE", "1d", "2026-03-02", "2026-03-13", 9),
    (["polygon"], "US:AAPL", "1d", "2026-03-02", "2026-03-06", 5),
])
def test_fetch_works_against_every_fake(  # type: ignore[no-untyped-def]
    dalal, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    providers: list[str], symbol: str, interval: str, first: str, last: str, stored: int,
) -> None:
    if providers == ["alphavantage"]:
        _store_key(dalal, "alphavantage", alphavantage.KEY, monkeypatch)
    if providers == ["polygon"]:
        _store_key(dalal, "polygon", polygon.KEY, monkeypatch)
    capsys.readouterr()
    assert dalal("data", "fetch", symbol, "--interval", interval, "--from", first, "--to", last,
                 providers=providers) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{stored} {interval} bars of {symbol} stored from {providers[0]}"
                          if providers != ["nse"] else f"{stored} {interval} bars of {symbol} "
                          "stored from nse-archives"), out
    assert "days" in err  # the progress bar
    # Resumed: a second run fetches nothing new (NSE/BSE days are tracked by the calendar; a
    # US range is fetched again and replaces the same bars, no duplicates).
    assert dalal("data", "fetch", symbol, "--interval", interval, "--from", first, "--to", last,
                 providers=providers) == 0
    out, _ = capsys.readouterr()
    if symbol.startswith("US:"):
        assert out.startswith(f"{stored} {interval} bars")
    else:
        assert out.startswith(f"0 {interval} bars") and "already complete" in out


def test_candles_export_csv_and_parquet_with_exact_prices_and_provenance(  # type: ignore[no-untyped-def]
    dalal, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert dalal("data", "fetch", "NSE:INFY", "--interval", "15m", "--from", "2026-03-09",
                 "--to", "2026-03-09", providers=["yfinance"]) == 0
    capsys.readouterr()
    assert dalal("data", "candles", "NSE:INFY", "--interval", "15m", providers=[]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 25
    assert rows[0]["time"] == "2026-03-09T09:15:00+05:30" and rows[0]["provider"] == "yfinance"
    assert all(len(r["close"].split(".")[1]) == 2 for r in rows)  # on the tick, no float tail
    out = tmp_path / "infy.parquet"
    assert dalal("data", "candles", "NSE:INFY", "--interval", "15m", "--format", "parquet",
                 "-o", str(out), providers=[]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows == 25 and str(table.schema.field("close").type) == "decimal128(18, 2)"
    assert str(table.column("close")[0].as_py()) == rows[0]["close"]


def test_cli_errors_are_one_line(dalal, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert dalal("data", "fetch", "NSE:INFY", "--from", "2026-03-09", providers=[]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no market-data provider configured" in err
    assert dalal("data", "candles", "NSE:SBIN", providers=[]) == 2
    assert "no stored NSE:SBIN 5m candles" in capsys.readouterr().err
    assert dalal("data", "fetch", "NSE:INFY", "--from", "2026-03-09", "--to", "2026-03-01",
                 providers=["yfinance"]) == 2
    assert "is not after --from" in capsys.readouterr().err


def test_a_polygon_key_missing_is_named_with_the_command(  # type: ignore[no-untyped-def]
    dalal, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dalal("data", "fetch", "US:AAPL", "--interval", "1d", "--from", "2026-03-02",
                 "--to", "2026-03-06", providers=["polygon"]) == 1
    err = capsys.readouterr().err
    assert "dalal credentials set polygon --field api_key" in err


def test_gaps_lists_short_days(dalal, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert dalal("data", "fetch", "NSE:INFY", "--interval", "1d", "--from", "2026-03-02",
                 "--to", "2026-03-06", providers=["nse"]) == 0
    capsys.readouterr()
    assert dalal("data", "gaps", "NSE:INFY", "--interval", "1d", "--from", "2026-03-02",
                 "--to", "2026-03-10", providers=[]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["2026-03-09\t0/1\t-", "2026-03-10\t0/1\t-"]


def test_holidays_are_fetched_from_nse_cached_and_used(  # type: ignore[no-untyped-def]
    dalal, fake: FakeMarketData, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    from datetime import date

    from services import calendar

    fake.nse.holiday_payload = {"CM": [
        {"tradingDate": "26-Jan-2027", "description": "Republic Day"},
        {"tradingDate": "10-Mar-2027", "description": "Holi"},
    ]}
    try:
        assert dalal("data", "holidays", "--fetch", "--year", "2027", providers=[]) == 0
        out = capsys.readouterr().out
        assert "NSE 2027 (nse-cache)" in out and "2027-03-10\tWed\tHoli" in out
        assert (tmp_path / "c" / calendar.CACHE_NAME).exists()
        assert fake.count("www.nseindia.com", "/api/holiday-master") == 1
        assert not calendar.load_cache(tmp_path / "c" / calendar.CACHE_NAME).is_trading_day(
            date(2027, 3, 10))
    finally:
        calendar.install(calendar.ExchangeCalendar())


def test_quote_prints_delayed_snapshots_and_fails_clearly(  # type: ignore[no-untyped-def]
    dalal, capsys: pytest.CaptureFixture[str], fake: FakeMarketData
) -> None:
    assert dalal("data", "quote", "NSE:INFY", "NSE:TCS", providers=["nse", "yfinance"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["NSE:INFY", "NSE:TCS"]
    assert all("(delayed" in line and "nse-website)" in line for line in lines), out
    fake.fault("nse", "403", times=10)
    assert dalal("data", "quote", "NSE:INFY", providers=["nse", "yfinance"]) == 0
    assert "yfinance)" in capsys.readouterr().out
    assert dalal("data", "quote", "US:AAPL", providers=["yfinance"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "US:AAPL" in err and "Traceback" not in err
