"""The instrument master (complete.json.gz) and the v3 historical candles."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from services.brokers.errors import DataError, HistoryNotCovered, InstrumentUnknown
from services.brokers.upstox.history import UpstoxHistory
from services.brokers.upstox.instruments import (
    UpstoxInstruments,
    contract_symbol,
    parse_master,
)
from services.clock import IST, ManualClock
from services.domain import InstrumentKind, Timeframe
from tests.brokers.upstox.conftest import endpoints_for, make_api, master_for
from tests.fakes.upstox import FakeUpstox, default_instruments


async def test_master_downloads_and_maps_keys_both_ways(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    master = await UpstoxInstruments(endpoints_for(fake), clock=clock).fetch_master()
    infy = master.instrument("NSE:INFY")
    assert master.broker_id("NSE:INFY") == "NSE_EQ|INE009A01021"
    assert infy.tick_size == Decimal("0.1") and infy.lot_size == 1  # 10.0 paise
    assert master.key_of("NSE_INDEX|Nifty 50") == "NSE:NIFTY 50"
    assert master.instrument("NSE:NIFTY 50").kind is InstrumentKind.INDEX
    assert master.broker_id("BSE:SBIN") == "BSE_EQ|INE062A01020"
    for listing in master:
        assert master.key_of(master.broker_id(listing.key)) == listing.key
    option = next(i for i in master.instruments() if i.kind is InstrumentKind.CALL)
    assert option.lot_size == 75 and option.freeze_quantity == 1800
    assert option.tick_size == Decimal("0.05") and option.strike == Decimal("24500")
    assert option.expiry is not None and option.expiry >= clock.now().date()
    future = next(
        i for i in master.instruments() if i.kind is InstrumentKind.FUTURE and i.exchange == "NFO"
    )
    assert future.tradingsymbol.endswith("FUT") and future.tick_size == Decimal("0.1")
    gold = master.instrument(next(i.key for i in master.instruments() if i.exchange == "MCX"))
    assert gold.tick_size == Decimal("1")
    with pytest.raises(InstrumentUnknown):
        master.key_of("NSE_FO|34001")  # expired: refused, not listed


async def test_master_counts_what_it_skips_and_refuses_garbage(clock: ManualClock) -> None:
    today = clock.now().date()
    parsed = parse_master(gzip.compress(json.dumps(default_instruments(today)).encode()), today)
    assert parsed.skipped == {"expired": 1, "segment BCD_FO": 1}
    assert len(parsed.rows) == 7
    with pytest.raises(ValueError, match="cannot be read"):
        parse_master(b"\x1f\x8bnot gzip", today)
    provider = UpstoxInstruments(clock=clock)

    async def garbage() -> bytes:
        return b"{}"

    provider.download = garbage  # type: ignore[method-assign]
    with pytest.raises(DataError, match="not a list"):
        await provider.fetch_master()


def test_contract_symbols_are_spelled_the_nse_way() -> None:
    day = date(2026, 11, 24)
    weekly = contract_symbol("NIFTY", InstrumentKind.CALL, day, Decimal("24500"), True)
    monthly = contract_symbol("NIFTY", InstrumentKind.PUT, day, Decimal("24500.5"), False)
    october = contract_symbol(
        "BANKNIFTY", InstrumentKind.CALL, date(2026, 10, 6), Decimal("52000"), True
    )
    fut = contract_symbol("NIFTY", InstrumentKind.FUTURE, date(2026, 11, 24), None, False)
    assert (weekly, monthly, october, fut) == (
        "NIFTY26N2424500CE",
        "NIFTY26NOV24500.5PE",
        "BANKNIFTY26O0652000CE",
        "NIFTY26NOVFUT",
    )


async def test_history_is_exact_oldest_first_and_chunked_by_coverage(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    history = UpstoxHistory(make_api(fake, timeout=10.0), master_for(fake, clock), clock=clock)
    start = datetime(2026, 11, 2, 9, 15, tzinfo=IST)
    end = datetime(2026, 11, 24, 15, 30, tzinfo=IST)
    bars = await history.candles("NSE:INFY", Timeframe.M15, start, end)
    assert bars == sorted(bars, key=lambda b: b.start)
    assert all(start <= b.start < end and b.closed for b in bars)
    assert bars[0].open == Decimal("1573.8") and bars[0].high == Decimal("1574.8")
    assert bars[0].start.utcoffset() == timedelta(hours=5, minutes=30)
    assert fake.journal.count("GET", "/v3/historical-candle/") == 1
    long_start = datetime(2026, 6, 1, tzinfo=IST)
    long_end = long_start + timedelta(days=75)
    minutes = await history.candles("NSE:INFY", Timeframe.M15, long_start, long_end)
    assert fake.journal.count("GET", "/v3/historical-candle/") == 1 + 3  # 30-day chunks
    assert len(minutes) == len({b.start for b in minutes})
    with pytest.raises(HistoryNotCovered, match="go back"):
        await history.candles("NSE:INFY", Timeframe.M1, datetime(2021, 6, 1, tzinfo=IST),
                              datetime(2021, 6, 2, tzinfo=IST))
    daily = await history.candles("NSE:INFY", Timeframe.D1, datetime(2015, 1, 1, tzinfo=IST),
                                  datetime(2015, 1, 10, tzinfo=IST))
    assert len(daily) == 7
    history.api.close()
