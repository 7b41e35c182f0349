"""The router over real providers against the fakes: fallback, circuit breaker, partial
coverage, chunking at span limits, timezones, holidays and garbage answers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest

from services.calendar import IST
from services.domain import Timeframe
from services.marketdata.breaker import BreakerState, CircuitBreaker
from services.marketdata.errors import NoProvider
from services.marketdata.store import HistoryStore
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW, Providers, make_router

INFY = "NSE:INFY"


def d(y: int, m: int, day: int) -> datetime:
    return datetime(y, m, day, tzinfo=IST)


async def test_fallback_goes_down_the_priority_list_and_the_circuit_stays_open(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo, providers.nse], store)
    fake.fault("yahoo", "429", times=5)
    report = await router.fetch(INFY, Timeframe.D1, d(2026, 3, 2), d(2026, 3, 7))
    assert report.by_provider == {"nse-archives": 4}  # Mon, Wed, Thu, Fri (Tue was Holi)
    assert any("429" in e for e in report.errors)
    assert store.provenance(INFY, Timeframe.D1, d(2026, 3, 2).replace(hour=9, minute=15))[0] \
        == "nse-archives"
    assert router.breaker("yfinance").state is BreakerState.OPEN  # a 429 trips at once
    yahoo_calls = fake.count("query2.finance.yahoo.com", "/chart/")
    await router.fetch(INFY, Timeframe.D1, d(2026, 3, 9), d(2026, 3, 14))
    assert fake.count("query2.finance.yahoo.com", "/chart/") == yahoo_calls  # skipped
    health = {h.name: h for h in router.health()}
    assert health["yfinance"].state is BreakerState.OPEN and health["yfinance"].failures == 1
    assert health["nse-archives"].state is BreakerState.CLOSED


async def test_an_open_circuit_sends_one_probe_after_its_cooldown(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    now = [0.0]
    router = make_router([providers.yahoo, providers.nse], store,
                         breaker=lambda: CircuitBreaker(cooldown=30, clock=lambda: now[0]))
    fake.fault("yahoo", "429", times=2)  # yfinance retries once with its other cookie strategy
    await router.fetch(INFY, Timeframe.D1, d(2026, 3, 2), d(2026, 3, 3))
    breaker = router.breaker("yfinance")
    assert breaker.state is BreakerState.OPEN and breaker.retry_in() == 30
    now[0] = 31.0
    assert breaker.state is BreakerState.HALF_OPEN
    report = await router.fetch(INFY, Timeframe.D1, d(2026, 3, 4), d(2026, 3, 5))
    assert report.by_provider == {"yfinance": 1}  # the probe succeeded
    assert breaker.state is BreakerState.CLOSED
    # A failed probe re-opens for twice as long.
    fake.fault("yahoo", "500", times=3)
    breaker.failure("x", trips=True)
    now[0] = 100.0
    await router.fetch(INFY, Timeframe.D1, d(2026, 3, 5), d(2026, 3, 6))
    assert breaker.state is BreakerState.OPEN and breaker.retry_in() == pytest.approx(60)


async def test_repeated_plain_failures_open_the_circuit_after_the_threshold() -> None:
    breaker = CircuitBreaker(threshold=3, clock=lambda: 0.0)
    breaker.failure("down")
    breaker.failure("down")
    assert breaker.state is BreakerState.CLOSED
    breaker.failure("down")
    assert breaker.state is BreakerState.OPEN


async def test_one_minute_bars_are_chunked_at_eight_days_per_request(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    report = await router.fetch(INFY, Timeframe.M1, d(2026, 2, 23), d(2026, 3, 20))
    assert not report.unserved, report.unserved
    spans = [(int(q["period2"]) - int(q["period1"])) / 86_400
             for path, q in fake.log if path.endswith("INFY.NS") and "period1" in q]
    assert len(spans) == 4 and max(spans) <= 8
    # 18 sessions between 23 Feb and 19 Mar (3 March was Holi), 375 bars each.
    assert report.stored == 18 * 375
    assert store.gaps(INFY, Timeframe.M1, date(2026, 2, 23), date(2026, 3, 19)) == []


async def test_partial_coverage_serves_the_recent_part_and_names_the_rest(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    report = await router.fetch(INFY, Timeframe.M1, d(2026, 2, 2), d(2026, 2, 24))
    assert report.stored == 3 * 375  # 19, 20 and 23 February are within Yahoo's 30 days
    [(rng, why)] = report.unserved
    assert rng == (d(2026, 2, 2), d(2026, 2, 19))
    assert "yfinance keeps 1m candles for 30 days only" in why
    with pytest.raises(NoProvider, match="30 days only"):
        await router.candles(INFY, Timeframe.M1, d(2026, 1, 5), d(2026, 1, 10))


async def test_a_later_provider_fills_what_the_first_does_not_cover(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    # Futures: Yahoo has none, NSE's F&O bhavcopy has them (end of day).
    router = make_router([providers.yahoo, providers.nse], store)
    report = await router.fetch("NFO:NIFTY26MARFUT", Timeframe.D1, d(2026, 3, 9), d(2026, 3, 14))
    assert report.by_provider == {"nse-archives": 5}
    assert fake.count("query2.finance.yahoo.com") == 0  # never asked: not covered


async def test_a_server_in_the_wrong_timezone_is_refused_and_nothing_is_stored(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    fake.fault("yahoo", "shift")
    report = await router.fetch(INFY, Timeframe.M5, d(2026, 3, 9), d(2026, 3, 10))
    assert report.stored == 0 and store.count() == 0
    assert any("outside the session" in e for e in report.errors)
    assert router.health()[0].failures == 1


@pytest.mark.parametrize("fault, message", [
    ("html", "not JSON from Yahoo"),
    ("nan", "have no price (NaN)"),
    ("empty", "no 5m prices"),
])
async def test_garbage_answers_give_a_clear_error_and_store_nothing(
    fake: FakeMarketData, providers: Providers, store: HistoryStore, fault: str, message: str
) -> None:
    router = make_router([providers.yahoo], store)
    fake.fault("yahoo", fault)
    report = await router.fetch(INFY, Timeframe.M5, d(2026, 3, 9), d(2026, 3, 10))
    assert report.stored == 0 and store.count() == 0
    assert any(message in e for e in report.errors), report.errors
    assert report.unserved and message in report.unserved[0][1]


async def test_a_broken_bhavcopy_zip_is_garbage(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.nse], store)
    fake.fault("nse", "garbage")
    report = await router.fetch(INFY, Timeframe.D1, d(2026, 3, 9), d(2026, 3, 10))
    assert store.count() == 0 and "not a zip" in report.errors[0]


async def test_holidays_are_never_asked_for_nor_counted_as_gaps(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.nse], store)
    report = await router.fetch(INFY, Timeframe.D1, d(2026, 3, 2), d(2026, 3, 5))
    assert report.days == 2 and report.stored == 2  # 2 and 4 March; 3 March was Holi
    asked = [p for p, _ in fake.log if "BhavCopy" in p]
    assert not any("20260303" in p for p in asked)
    assert store.gaps(INFY, Timeframe.D1, date(2026, 3, 2), date(2026, 3, 4)) == []


async def test_a_fetch_resumes_and_repairs_only_what_is_missing(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    first = await router.fetch(INFY, Timeframe.M15, d(2026, 3, 9), d(2026, 3, 14))
    assert first.stored == 5 * 25
    calls = fake.count("query2.finance.yahoo.com", "/chart/")
    again = await router.fetch(INFY, Timeframe.M15, d(2026, 3, 9), d(2026, 3, 14))
    assert again.stored == 0 and again.skipped == 5
    assert fake.count("query2.finance.yahoo.com", "/chart/") == calls
    # Lose the tail of one day; a repair fetches that day only.
    store._db.query("DELETE FROM history_bars WHERE start_ns >= ? AND start_ns < ?",
                    (int(d(2026, 3, 11).replace(hour=15).timestamp() * 1e9),
                     int(d(2026, 3, 12).timestamp() * 1e9)))
    store.record_empty(INFY, Timeframe.M15, [date(2026, 3, 11)], "x", NOW)  # recount it
    assert [g.day for g in store.gaps(INFY, Timeframe.M15, date(2026, 3, 9),
                                      date(2026, 3, 13))] == [date(2026, 3, 11)]
    repaired = await router.fetch(INFY, Timeframe.M15, d(2026, 3, 9), d(2026, 3, 14),
                                  repair=True)
    assert repaired.skipped == 4 and repaired.stored == 25
    assert store.gaps(INFY, Timeframe.M15, date(2026, 3, 9), date(2026, 3, 13)) == []


async def test_alpha_vantage_quota_note_opens_its_circuit(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.alphavantage], store)
    report = await router.fetch("BSE:RELIANCE", Timeframe.D1, d(2026, 3, 2), d(2026, 3, 14))
    assert report.stored == 9 and report.by_provider == {"alphavantage": 9}
    fake.fault("alphavantage", "note")
    report = await router.fetch("BSE:TCS", Timeframe.D1, d(2026, 3, 2), d(2026, 3, 14))
    assert report.stored == 0 and "quota spent" in report.errors[0]
    assert router.breaker("alphavantage").state is BreakerState.OPEN


async def test_alpha_vantage_daily_cap_is_enforced_before_asking(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.alphavantage], store)
    bucket = router._slots[0].bucket
    bucket.used_today, bucket._day = 25, NOW.date().isoformat()
    report = await router.fetch("BSE:INFY", Timeframe.D1, d(2026, 3, 2), d(2026, 3, 14))
    assert fake.count("www.alphavantage.co") == 0
    assert "25 requests are used" in report.errors[0]


async def test_polygon_says_it_has_no_indian_markets_and_serves_us_and_fx(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.polygon], store)
    report = await router.fetch(INFY, Timeframe.D1, d(2026, 3, 2), d(2026, 3, 14))
    assert "does not cover NSE equity" in report.unserved[0][1]
    assert fake.count("api.polygon.io") == 0
    us = await router.fetch("US:AAPL", Timeframe.H1, d(2026, 3, 2), d(2026, 3, 8))
    assert us.stored == 5 * 7  # 14:00-20:00 UTC, five days
    fx = await router.candles("FX:USDINR", Timeframe.D1, d(2026, 3, 2), d(2026, 3, 7))
    assert len(fx) == 5 and fx[0].close == fx[0].close.quantize(fx[0].close)


async def test_recent_fetches_back_far_enough_for_a_model(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    bars = await router.recent(INFY, Timeframe.M5, 600, NOW)
    assert len(bars) == 600
    assert bars[-1].start == d(2026, 3, 20).replace(hour=15, minute=25)
    starts = [b.start for b in bars]
    assert starts == sorted(starts) and len(set(starts)) == 600
    assert all(b.start - a.start >= timedelta(minutes=5) for a, b in pairwise(bars))


async def test_provider_health_is_in_metrics(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    from services.metrics import Metrics

    router = make_router([providers.yahoo, providers.nse], store)
    metrics = Metrics(process=False)
    metrics.watch_data_providers(router.health)
    fake.fault("yahoo", "429", times=2)
    await router.fetch(INFY, Timeframe.D1, d(2026, 3, 2), d(2026, 3, 7))
    assert metrics.sample("dalal_marketdata_provider_up", {"provider": "yfinance"}) == 0.0
    assert metrics.sample("dalal_marketdata_provider_up", {"provider": "nse-archives"}) == 1.0
    assert metrics.sample("dalal_marketdata_provider_failures_total",
                          {"provider": "yfinance"}) == 1
    assert metrics.sample("dalal_marketdata_provider_requests_total",
                          {"provider": "nse-archives"}) == 1
    latency = metrics.sample("dalal_marketdata_provider_latency_seconds",
                             {"provider": "nse-archives"})
    assert latency is not None and latency > 0
    assert metrics.sample("dalal_marketdata_provider_delayed", {"provider": "yfinance"}) == 1


def test_a_delayed_snapshot_never_prices_an_order() -> None:
    from decimal import Decimal

    from services.marketdata.quotes import DelayedPrice, Snapshot, require_live

    snap = Snapshot(INFY, Decimal("1500.05"), NOW - timedelta(minutes=15), "nse-website")
    with pytest.raises(DelayedPrice, match="cannot be used for a market-protection band"):
        require_live(snap, "a market-protection band")
    assert snap.label(NOW) == "1500.05 (delayed 15 min, nse-website)"
    assert require_live(Decimal("1500.10"), "an order") == Decimal("1500.10")


async def test_nse_website_needs_its_warm_up_and_backs_off_on_the_bot_wall(
    fake: FakeMarketData, providers: Providers
) -> None:
    from services.marketdata.errors import Blocked
    from services.marketdata.providers.nse import NseWebsite

    site = NseWebsite(providers.endpoints)
    try:
        quote = await site.quote(INFY)
        assert quote.delayed and quote.source == "nse-website"
        assert fake.count("www.nseindia.com", "/option-chain") == 1  # the warm-up visit
        assert "CM" in await site.holidays()
        fake.fault("nse", "403")
        with pytest.raises(Blocked, match="403"):
            await site.quote(INFY)
        assert Blocked.trips
    finally:
        await site.close()


async def test_fo_intraday_says_only_a_broker_has_it(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo, providers.nse], store)
    with pytest.raises(NoProvider, match="F&O intraday history comes only from a logged-in "
                                         "broker"):
        await router.candles("NFO:NIFTY26MARFUT", Timeframe.M5, d(2026, 3, 9), d(2026, 3, 10))


async def test_token_bucket_paces_and_keeps_a_daily_allowance() -> None:
    from services.marketdata.coverage import RateLimit, TokenBucket

    now = [0.0]
    bucket = TokenBucket(RateLimit(per_second=2.0, burst=2, per_day=3), clock=lambda: now[0])
    assert bucket.try_take("d1") == 0.0 and bucket.try_take("d1") == 0.0
    assert bucket.try_take("d1") == pytest.approx(0.5)  # empty: half a second to the next
    now[0] = 0.5
    assert bucket.try_take("d1") == 0.0
    now[0] = 10.0
    assert bucket.try_take("d1") == -1.0  # three a day, all used
    assert bucket.try_take("d2") == 0.0  # a new day
