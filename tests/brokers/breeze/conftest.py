"""Fixtures: a fresh fake Breeze per test and the Breeze adapters (the real SDK) pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.brokers.breeze import config
from services.brokers.breeze.execution import BreezeExecution
from services.brokers.breeze.session import BreezeSecrets, BreezeSession
from services.brokers.ports import SessionToken
from services.brokers.registry import BrokerContext, BrokerParts
from services.brokers.throttle import MemoryCountStore
from services.bus import EventBus
from services.clock import IST, ManualClock
from tests.fakes.breeze.server import FakeBreeze

MARKET_HOURS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)  # a Wednesday, session open


class MemorySecrets:
    """A ``SecretStore`` in a dict (the app's is the keyring-backed CredentialStore)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, str]] = {}

    def get(self, broker: str) -> dict[str, str] | None:
        entry = self.entries.get(broker)
        return dict(entry) if entry is not None else None

    def set(self, broker: str, fields: dict[str, str]) -> None:
        self.entries[broker] = dict(fields)

    def delete(self, broker: str) -> bool:
        return self.entries.pop(broker, None) is not None


@dataclass
class Rig:
    """The fake, the secrets, the counts and a way to (re)build the adapters against them."""

    fake: FakeBreeze
    clock: ManualClock
    cache_dir: Path
    secrets: MemorySecrets = field(default_factory=MemorySecrets)
    counts: MemoryCountStore = field(default_factory=MemoryCountStore)
    bus: EventBus = field(default_factory=EventBus)
    expired_calls: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.secrets.set(
            "breeze", {"api_key": self.fake.api_key, "api_secret": self.fake.api_secret}
        )

    def on_expired(self) -> None:
        self.expired_calls += 1

    def parts(self, **options: Any) -> BrokerParts:
        async def advance(seconds: float) -> None:
            self.clock.advance(seconds)

        opts: dict[str, Any] = {
            "timeout": 0.5,
            "lookup_delay": 0.0,
            "sleep": advance,
            "cache_dir": self.cache_dir,
            **self.options,
            **options,
        }
        context = BrokerContext(
            clock=self.clock,
            bus=self.bus,
            secrets=self.secrets,
            counts=self.counts,
            endpoints=self.fake.endpoints,
            on_session_expired=self.on_expired,
            options=opts,
        )
        return config.build(context)

    def session(self) -> BreezeSession:
        return BreezeSession(BreezeSecrets(self.secrets), self.clock, endpoints=self.fake.endpoints)

    async def login(self) -> SessionToken:
        return await self.session().complete_login({"API_Session": self.fake.issue_api_session()})

    async def execution(self, **options: Any) -> BreezeExecution:
        """A logged-in execution client (logs in first if no session is stored)."""
        if BreezeSecrets(self.secrets).token() is None:
            await self.login()
        execution = self.parts(**options).execution
        assert isinstance(execution, BreezeExecution)
        return execution


@pytest.fixture
def fake() -> Iterator[FakeBreeze]:
    with FakeBreeze(hang_seconds=1.0, today=MARKET_HOURS.date()) as server:
        yield server


@pytest.fixture
def rig(fake: FakeBreeze, tmp_path: Path) -> Rig:
    return Rig(fake, ManualClock(MARKET_HOURS), tmp_path / "cache")
