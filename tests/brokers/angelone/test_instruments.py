"""OpenAPIScripMaster.json: every field a string, tick size and strike in paise, cached a day."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from services.brokers.angelone.instruments import (
    AngelInstrumentProvider,
    AngelInstruments,
    MasterError,
    ScripMasterCache,
    parse_master,
    parse_master_bytes,
)
from services.brokers.errors import DataError, InstrumentUnknown
from services.clock import IST, ManualClock
from services.domain import InstrumentKind
from tests.fakes.angelone import FakeAngel

ROWS = [
    {"token": "3045", "symbol": "SBIN-EQ", "name": "SBIN", "expiry": "", "strike": "-1.000000",
     "lotsize": "1", "instrumenttype": "", "exch_seg": "NSE", "tick_size": "5.000000"},
    {"token": "99926000", "symbol": "Nifty 50", "name": "NIFTY", "expiry": "",
     "strike": "0.000000", "lotsize": "1", "instrumenttype": "AMXIDX", "exch_seg": "NSE",
     "tick_size": "0.000000"},
    {"token": "43700", "symbol": "NIFTY30DEC2624000CE", "name": "NIFTY", "expiry": "30DEC2026",
     "strike": "2400000.000000", "lotsize": "75", "instrumenttype": "OPTIDX",
     "exch_seg": "NFO", "tick_size": "5.000000"},
    {"token": "43701", "symbol": "NIFTY30DEC2624000PE", "name": "NIFTY", "expiry": "30DEC2026",
     "strike": "2400000.000000", "lotsize": "75", "instrumenttype": "OPTIDX",
     "exch_seg": "NFO", "tick_size": "5.000000"},
    {"token": "435823", "symbol": "GOLDM05JAN27FUT", "name": "GOLDM", "expiry": "05JAN2027",
     "strike": "-1.000000", "lotsize": "1", "instrumenttype": "FUTCOM", "exch_seg": "MCX",
     "tick_size": "100.000000"},
    {"token": "3045", "symbol": "SBIN", "name": "SBIN", "expiry": "", "strike": "-1.000000",
     "lotsize": "1", "instrumenttype": "", "exch_seg": "BSE", "tick_size": "5.000000"},
    # Unusable rows: an exchange the terminal does not trade, an unknown type, no tick.
    {"token": "1", "symbol": "X", "name": "X", "expiry": "", "strike": "-1", "lotsize": "1",
     "instrumenttype": "", "exch_seg": "NCDEX", "tick_size": "1.000000"},
    {"token": "2", "symbol": "Y", "name": "Y", "expiry": "", "strike": "-1", "lotsize": "1",
     "instrumenttype": "WEIRD", "exch_seg": "NSE", "tick_size": "1.000000"},
    {"token": "3", "symbol": "Z-EQ", "name": "Z", "expiry": "", "strike": "-1", "lotsize": "1",
     "instrumenttype": "", "exch_seg": "NSE", "tick_size": "0.000000"},
]  # fmt: skip


def test_rows_become_exact_instruments() -> None:
    parsed = parse_master(ROWS)
    by_key = {x.key: x for x in parsed.listings}
    assert set(by_key) == {
        "NSE:SBIN",
        "NSE:NIFTY 50",
        "NFO:NIFTY30DEC2624000CE",
        "NFO:NIFTY30DEC2624000PE",
        "MCX:GOLDM05JAN27FUT",
        "BSE:SBIN",
    }
    assert parsed.skipped == 3
    sbin = by_key["NSE:SBIN"].instrument
    assert sbin.tick_size == Decimal("0.05") and sbin.kind is InstrumentKind.EQUITY
    assert by_key["NSE:SBIN"].broker_id == "NSE|3045"
    assert by_key["BSE:SBIN"].broker_id == "BSE|3045"  # same token, other exchange
    call = by_key["NFO:NIFTY30DEC2624000CE"].instrument
    assert call.kind is InstrumentKind.CALL and call.strike == Decimal("24000")
    assert call.expiry == date(2026, 12, 30) and call.lot_size == 75
    assert by_key["NFO:NIFTY30DEC2624000PE"].instrument.kind is InstrumentKind.PUT
    assert by_key["MCX:GOLDM05JAN27FUT"].instrument.tick_size == Decimal("1.00")
    assert by_key["NSE:NIFTY 50"].instrument.kind is InstrumentKind.INDEX
    assert parsed.angel_symbols["NSE:SBIN"] == "SBIN-EQ"


def test_unreadable_files_are_refused() -> None:
    with pytest.raises(MasterError, match="not JSON"):
        parse_master_bytes(b"<html>")
    with pytest.raises(MasterError, match="not a JSON array"):
        parse_master_bytes(b'{"token": "1"}')


async def test_provider_downloads_once_a_day_and_keys_round_trip(
    fake: FakeAngel, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 8, 0, tzinfo=IST))
    cache = ScripMasterCache(tmp_path / "cache")
    holder = AngelInstruments()
    provider = AngelInstrumentProvider(fake.master_url, clock, cache=cache, holder=holder)
    master = await provider.fetch_master()
    assert holder.master is master and len(master) == len(fake.scrips)
    for listing in master:
        assert master.key_of(master.broker_id(listing.key)) == listing.key
    assert holder.angel_symbol("NSE:SBIN") == "SBIN-EQ"
    assert holder.ident("NFO:NIFTY30DEC26FUT") == ("NFO", "43650")
    again = await provider.fetch_master()
    assert again is master and fake.master_downloads == 1
    # A restart on the same day reads the cached file, not Angel's server.
    restarted = AngelInstrumentProvider(fake.master_url, clock, cache=cache)
    assert len(await restarted.fetch_master()) == len(master)
    assert fake.master_downloads == 1
    # The next morning brings a new download and drops the old file.
    clock.advance(24 * 3600)
    await provider.fetch_master()
    assert fake.master_downloads == 2
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        "angelone-scrip-master-2026-11-26.json"
    ]
    with pytest.raises(InstrumentUnknown, match="NSE:NOSUCH"):
        holder.listing("NSE:NOSUCH")


async def test_a_broken_download_is_a_data_error(fake: FakeAngel) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 8, 0, tzinfo=IST))
    provider = AngelInstrumentProvider(f"{fake.base_url}/no/such/file.json", clock)
    with pytest.raises(DataError, match=r"download failed \(HTTP 4\d\d\)"):
        await provider.fetch_master()
