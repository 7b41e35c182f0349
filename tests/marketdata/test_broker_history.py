"""A broker's own history (Angel One's getCandleData through its ports adapter, against its
fake) as the router's "broker" provider: live, first in line, stored with provenance."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.brokers.angelone.history import AngelHistory
from services.clock import IST, ManualClock
from services.domain import Timeframe
from services.marketdata.providers.broker import BrokerHistory
from services.marketdata.router import MarketDataRouter
from services.marketdata.store import HistoryStore
from tests.brokers.angelone.conftest import fake as fake
from tests.brokers.angelone.conftest import make_execution
from tests.fakes.angelone import FakeAngel
from tests.marketdata.conftest import fast

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=IST)


async def _no_wait(seconds: float) -> None:
    return None


async def test_broker_history_is_a_provider_with_its_coverage(
    fake: FakeAngel, store: HistoryStore
) -> None:
    clock = ManualClock(NOW)
    execution = make_execution(fake)
    port = AngelHistory(execution, execution.instruments, clock=clock, sleep=_no_wait)
    source = BrokerHistory("angelone", port)
    assert source.name == "broker:angelone" and not source.info.delayed
    assert source.info.intervals[Timeframe.M1].span == timedelta(days=30)
    router = MarketDataRouter([source], store, clock=clock, rate=fast)
    week = datetime(2026, 11, 16, tzinfo=IST), datetime(2026, 11, 21, tzinfo=IST)
    report = await router.fetch("NSE:SBIN", Timeframe.D1, *week)
    assert report.stored == 5 and report.by_provider == {"broker:angelone": 5}, report.errors
    bars = store.bars("NSE:SBIN", Timeframe.D1, *week)
    assert bars[0].start.hour == 9 and bars[0].start.minute == 15  # midnight -> the open
    assert store.provenance("NSE:SBIN", Timeframe.D1, bars[0].start)[0] == "broker:angelone"

    # The fake answers with a candle on 24 November 2026 (Guru Nanak Jayanti, no session):
    # the store refuses that batch whole rather than keep an extra day.
    holiday = await router.fetch("NSE:SBIN", Timeframe.D1, datetime(2026, 11, 23, tzinfo=IST),
                                 datetime(2026, 11, 26, tzinfo=IST))
    assert holiday.stored == 0 and "2026-11-24 is not a trading day" in holiday.errors[0]
