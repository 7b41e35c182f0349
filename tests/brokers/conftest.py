"""Fixtures: a fresh fake Kite per test and a KiteBroker (the real SDK) pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from services.brokers.kite.config import LIMITS, KiteEndpoints
from services.brokers.kite.execution import KiteBroker
from services.brokers.throttle import OrderThrottle
from services.clock import IST, ManualClock
from tests.fakes.kite_server import FakeKite

MARKET_HOURS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)  # a Wednesday, session open
AFTER_HOURS = datetime(2026, 11, 25, 17, 30, 0, tzinfo=IST)


@pytest.fixture
def fake() -> Iterator[FakeKite]:
    with FakeKite(hang_seconds=1.0) as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MARKET_HOURS)


def make_broker(fake: FakeKite, clock: ManualClock, **kwargs: object) -> KiteBroker:
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    kwargs.setdefault(
        "throttle", OrderThrottle.for_limits(LIMITS, clock, broker="Kite", sleep=advance)
    )
    return KiteBroker(
        fake.api_key,
        "fakeaccesstoken",
        endpoints=KiteEndpoints(
            root=fake.base_url,
            login=f"{fake.base_url}/connect/login",
            ticker=f"ws://127.0.0.1:{fake.port}/ws",
        ),
        clock=clock,
        timeout=0.4,
        lookup_delay=0.0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def broker(fake: FakeKite, clock: ManualClock) -> KiteBroker:
    return make_broker(fake, clock)
