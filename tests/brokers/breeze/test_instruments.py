"""ICICI's security master: stock codes <-> symbols, F&O contracts, the per-day cache."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from services.brokers.breeze.instruments import (
    BreezeInstruments,
    MasterCache,
    MasterError,
    fno_symbol,
    parse_master,
)
from services.brokers.errors import DataError, InstrumentUnknown
from services.clock import IST, ManualClock
from services.domain import Exchange, InstrumentKind
from tests.brokers.breeze.conftest import MARKET_HOURS
from tests.fakes.breeze.master import build_master_zip, default_scrips, monthly_expiry
from tests.fakes.breeze.server import FakeBreeze

DAY = MARKET_HOURS.date()
EXPIRY = monthly_expiry(DAY)


def test_cash_rows_map_stock_codes_to_exchange_symbols() -> None:
    master = parse_master(build_master_zip(default_scrips(DAY)), DAY)
    reliance = master.contract("NSE:RELIANCE")
    assert reliance is not None
    assert reliance.stock_code == "RELIND" and reliance.token == "2885"
    assert reliance.stream_token == "4.1!2885" and reliance.depth_token == "4.2!2885"
    assert reliance.instrument.tick_size == Decimal("0.10")
    assert master.key_for("NSE", "RELIND") == "NSE:RELIANCE"
    assert master.key_for("BSE", "RELIND") == "BSE:RELIANCE"
    assert master.contract("BSE:RELIANCE").stream_token == "1.1!500325"  # type: ignore[union-attr]
    index = master.contract("NSE:NIFTY 50")
    assert index is not None and index.instrument.kind is InstrumentKind.INDEX
    assert not index.instrument.tradable
    assert master.broker_id("NSE:RELIANCE") == "NSE|2885"
    assert master.key_of("NSE|2885") == "NSE:RELIANCE"


def test_fno_rows_carry_lot_tick_expiry_strike_and_freeze() -> None:
    master = parse_master(build_master_zip(default_scrips(DAY)), DAY)
    mon = EXPIRY.strftime("%b").upper()
    yy = EXPIRY.year % 100
    future = master.contract(f"NFO:NIFTY{yy}{mon}FUT")
    assert future is not None
    inst = future.instrument
    assert (inst.exchange, inst.kind, inst.lot_size) == (Exchange.NFO, InstrumentKind.FUTURE, 75)
    assert inst.tick_size == Decimal("0.10")  # the F&O file gives ticks in paise: 10
    assert inst.expiry == EXPIRY and inst.freeze_quantity == 1800
    assert future.stock_code == "NIFTY" and future.product == "futures"
    assert future.expiry_param == f"{EXPIRY.isoformat()}T06:00:00.000Z"
    call = master.contract(f"NFO:NIFTY{yy}{mon}24500CE")
    assert call is not None and call.right == "call" and call.strike == Decimal(24500)
    assert call.instrument.tick_size == Decimal("0.05")
    stock_option = master.contract(f"NFO:RELIANCE{yy}{mon}3000CE")
    assert stock_option is not None and stock_option.stock_code == "RELIND"
    assert stock_option.instrument.lot_size == 500
    # The earlier (weekly) expiry gets NSE's weekly spelling.
    weekly = next(c for c in master.by_key.values() if c.token == "35003")
    assert weekly.expiry is not None
    assert weekly.key == "NFO:" + fno_symbol("NIFTY", weekly.expiry, False, Decimal(24600), "call")
    assert weekly.key != f"NFO:NIFTY{yy}{mon}24600CE"
    assert master.key_for("NFO", "NIFTY", EXPIRY, Decimal(24500), "call") == call.key
    assert master.key_for("NFO", "NIFTY", EXPIRY, Decimal(0), "others") == future.key


def test_kite_style_symbols() -> None:
    d = date(2026, 10, 6)
    assert fno_symbol("NIFTY", d, True, None, "others") == "NIFTY26OCTFUT"
    assert fno_symbol("NIFTY", d, True, Decimal("24500"), "put") == "NIFTY26OCT24500PE"
    assert fno_symbol("NIFTY", d, False, Decimal("22.5"), "call") == "NIFTY26O0622.5CE"


def test_every_key_round_trips_and_unknown_keys_are_named() -> None:
    master = parse_master(build_master_zip(default_scrips(DAY)), DAY)
    assert len(master) == len(default_scrips(DAY))
    for listing in master:
        assert master.key_of(master.broker_id(listing.key)) == listing.key
    with pytest.raises(InstrumentUnknown, match="NSE:NOPE"):
        master.listing("NSE:NOPE")


def test_a_bad_master_is_refused_with_the_file_and_line() -> None:
    with pytest.raises(MasterError, match="not a zip"):
        parse_master(b"<html>maintenance</html>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "FONSEScripMaster.txt",
            '"Token","InstrumentName","ShortName","Series","ExpiryDate","StrikePrice",'
            '"OptionType","LotSize","TickSize","ExchangeCode"\n'
            '"1","OPTIDX","NIFTY","OPTION","31-Foo-2026","100","CE","75","5","NIFTY 50"\n',
        )
    with pytest.raises(MasterError, match=r"FONSEScripMaster\.txt line 2"):
        parse_master(buffer.getvalue())


async def test_the_master_is_downloaded_once_a_day(tmp_path: Path) -> None:
    clock = ManualClock(MARKET_HOURS)
    with FakeBreeze(today=DAY) as fake:
        cache = MasterCache(tmp_path)
        provider = BreezeInstruments(fake.endpoints.security_master, clock, cache=cache)
        first = await provider.fetch_master()
        again = await BreezeInstruments(
            fake.endpoints.security_master, clock, cache=cache
        ).fetch_master()
        assert fake.master_downloads == 1  # the second provider read the day's file
        assert len(first) == len(again) and first.day == DAY
        clock.set(MARKET_HOURS.replace(day=MARKET_HOURS.day + 1, tzinfo=IST))
        await provider.fetch_master()
        assert fake.master_downloads == 2
        files = await asyncio.to_thread(lambda: list(tmp_path.glob("SecurityMaster-*.zip")))
        assert len(files) == 1  # yesterday's removed
        fake.master_zip = b"not a zip"
        clock.set(MARKET_HOURS.replace(day=MARKET_HOURS.day + 2, tzinfo=IST))
        with pytest.raises(DataError, match="could not be read"):
            await provider.fetch_master()
