"""Fixtures: a fresh fake Angel One per test, its instrument master, and the adapter on the
real smartapi-python SDK pointed at it. Every test runs in its own working directory so that
a stray ``./logs`` from the SDK would be seen (and fail ``no_sdk_logs``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.brokers.angelone.config import AngelEndpoints
from services.brokers.angelone.execution import AngelExecution, AngelTokens
from services.brokers.angelone.instruments import AngelInstruments, AngelMaster, parse_master
from tests.fakes.angelone import FakeAngel


class NoWait:
    """A throttle that never holds back: for tests that are not about pacing."""

    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> float:
        self.acquired += 1
        return 0.0


@pytest.fixture(autouse=True)
def no_sdk_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "logs").exists(), "the SDK wrote ./logs"


@pytest.fixture
def fake() -> Iterator[FakeAngel]:
    with FakeAngel(hang_seconds=1.0) as server:
        yield server


def endpoints_for(fake: FakeAngel) -> AngelEndpoints:
    return AngelEndpoints(root=fake.base_url, stream=fake.stream_url, scrip_master=fake.master_url)


def instruments_for(fake: FakeAngel) -> AngelInstruments:
    parsed = parse_master([s.master() for s in fake.scrips.values()])
    return AngelInstruments(AngelMaster(None, parsed))


def tokens_for(fake: FakeAngel) -> AngelTokens:
    jwt, refresh, feed = fake.issue_session()
    return AngelTokens(jwt, refresh, feed, fake.client_code)


def make_execution(fake: FakeAngel, **kwargs: object) -> AngelExecution:
    kwargs.setdefault("throttle", NoWait())
    kwargs.setdefault("book_interval", 0.0)
    kwargs.setdefault("timeout", 0.4)  # short, for the lost-answer faults
    return AngelExecution(
        fake.api_key,
        tokens_for(fake),
        instruments_for(fake),
        endpoints=endpoints_for(fake),
        lookup_delay=0.0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def execution(fake: FakeAngel) -> AngelExecution:
    return make_execution(fake)


def pythonpath_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env
