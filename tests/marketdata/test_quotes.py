"""Snapshot quotes through the router: NSE's website first, Yahoo after, delayed always."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.clock import ManualClock
from services.marketdata.errors import NoProvider
from services.marketdata.providers.nse import NseWebsite
from services.marketdata.quotes import DelayedPrice, require_live
from services.marketdata.router import MarketDataRouter
from services.marketdata.store import HistoryStore
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW, Providers, fast

INFY = "NSE:INFY"


def _router(providers: Providers, store: HistoryStore, *quotes: object) -> MarketDataRouter:
    return MarketDataRouter([providers.yahoo], store, clock=ManualClock(NOW), rate=fast,
                            quotes=quotes)  # type: ignore[arg-type]


async def test_yahoo_quote_is_the_chart_answers_last_price_on_the_tick_and_delayed(
    fake: FakeMarketData, providers: Providers
) -> None:
    snap = await providers.yahoo.quote(INFY)
    assert snap.source == "yfinance" and snap.delayed
    assert snap.last_price == snap.last_price.quantize(Decimal("0.01"))  # no float32 tail
    assert abs(snap.ts - NOW) < timedelta(minutes=1)
    with pytest.raises(DelayedPrice):
        require_live(snap, "an order")


async def test_quotes_fall_back_from_nse_to_yahoo_and_the_circuit_remembers(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    site = NseWebsite(providers.endpoints)
    router = _router(providers, store, site, providers.yahoo)
    try:
        first = await router.quote(INFY)
        assert first.source == "nse-website"
        fake.fault("nse", "403", times=10)
        second = await router.quote(INFY)
        assert second.source == "yfinance"
        assert router.breaker("nse-website").state.value == "open"  # the bot wall trips it
        asked = fake.count("www.nseindia.com", "/api/quote-equity")
        third = await router.quote(INFY)  # the open circuit is not asked again
        assert third.source == "yfinance"
        assert fake.count("www.nseindia.com", "/api/quote-equity") == asked
        assert {h.name for h in router.health()} == {"yfinance", "nse-website"}
    finally:
        await router.close()


async def test_yahoo_shares_one_breaker_for_history_and_quotes(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = _router(providers, store, providers.yahoo)
    fake.fault("yahoo", "429", times=2)  # yfinance retries once with its other cookie strategy
    with pytest.raises(NoProvider, match="429"):
        await router.quote(INFY)
    assert router.breaker("yfinance").state.value == "open"
    assert len(router.health()) == 1


async def test_no_quote_provider_and_uncovered_keys_say_why(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    with pytest.raises(NoProvider, match="no quote provider configured"):
        await MarketDataRouter([], store).quote(INFY)
    router = _router(providers, store, NseWebsite(providers.endpoints), providers.yahoo)
    try:
        with pytest.raises(NoProvider, match="not an NSE or BSE instrument"):
            await router.quote("US:AAPL")
    finally:
        await router.close()
