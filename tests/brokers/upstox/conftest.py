"""Fixtures: a fresh fake Upstox per test and the adapter (the real SDK) pointed at it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from services.brokers.ports import InstrumentMaster, Listing
from services.brokers.throttle import OrderThrottle
from services.brokers.upstox.client import UpstoxApi
from services.brokers.upstox.config import LIMITS, UpstoxEndpoints
from services.brokers.upstox.execution import UpstoxExecution
from services.brokers.upstox.instruments import parse_master
from services.clock import IST, ManualClock
from tests.fakes.upstox import FakeUpstox, default_instruments

MARKET_HOURS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)  # a Wednesday, session open


@pytest.fixture
def fake() -> Iterator[FakeUpstox]:
    instruments = default_instruments(MARKET_HOURS.date())
    with FakeUpstox(hang_seconds=1.0, instruments=instruments) as server:
        yield server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MARKET_HOURS)


def endpoints_for(fake: FakeUpstox) -> UpstoxEndpoints:
    return UpstoxEndpoints(
        host=fake.base_url,
        order_host=fake.base_url,
        login=fake.login_url,
        instruments=fake.instruments_url,
        verify_tls=False,
    )


def master_for(fake: FakeUpstox, clock: ManualClock) -> InstrumentMaster:
    records: list[dict[str, Any]] = list(fake.instruments.values())
    parsed = parse_master(gzip.compress(json.dumps(records).encode()), clock.now().date())
    return InstrumentMaster("upstox", clock.now().date(), (Listing(i, k) for i, k in parsed.rows))


def make_api(fake: FakeUpstox, token: str = "fake-access-token", **kwargs: Any) -> UpstoxApi:
    kwargs.setdefault("timeout", 0.4)
    return UpstoxApi(token, endpoints=endpoints_for(fake), **kwargs)


def make_execution(fake: FakeUpstox, clock: ManualClock, **kwargs: Any) -> UpstoxExecution:
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    throttle = kwargs.pop("throttle", None) or OrderThrottle.for_limits(
        LIMITS, clock, broker="upstox", sleep=advance
    )
    api = kwargs.pop("api", None) or make_api(fake)
    return UpstoxExecution(
        api, master_for(fake, clock), throttle=throttle, clock=clock, lookup_delay=0.0, **kwargs
    )


@pytest.fixture
def execution(fake: FakeUpstox, clock: ManualClock) -> Iterator[UpstoxExecution]:
    client = make_execution(fake, clock)
    yield client
    client.api.close()
