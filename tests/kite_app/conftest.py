"""Fixtures for the terminal running on Kite: a fake Kite, settings pointing at it, secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.settings import KiteSettings, Settings
from tests.fakes.kite_server import FakeKite


class MemorySecrets:
    """The ``SecretStore`` protocol in memory (CredentialStore keeps it in the keyring)."""

    def __init__(self, entries: dict[str, dict[str, str]] | None = None) -> None:
        self.entries = dict(entries or {})

    def get(self, broker: str) -> dict[str, str] | None:
        return self.entries.get(broker)

    def set(self, broker: str, fields: dict[str, str]) -> None:
        self.entries[broker] = dict(fields)

    def delete(self, broker: str) -> bool:
        return self.entries.pop(broker, None) is not None


@pytest.fixture
def fake() -> Iterator[FakeKite]:
    with FakeKite(hang_seconds=1.0) as server:
        yield server


def kite_settings(fake: FakeKite, **kite: object) -> Settings:
    return Settings(
        broker="kite",
        watchlist=["NSE:INFY", "NSE:SBIN"],
        kite=KiteSettings(
            api_root=fake.base_url,
            login_url=f"{fake.base_url}/connect/login",
            ticker_url=f"ws://127.0.0.1:{fake.port}/ws",
            **kite,  # type: ignore[arg-type]
        ),
    )
