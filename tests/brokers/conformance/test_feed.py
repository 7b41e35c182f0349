"""The ``MarketDataFeed`` contract (services/brokers/ports.py), for every broker with a feed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.conformance.conftest import need
from tests.brokers.conformance.feed_contract import feed_contract
from tests.brokers.conformance.harness import Feature, Harness


@pytest.fixture
def observed(harness: Harness) -> dict[str, Any]:
    need(harness, Feature.FEED)
    return harness.run_feed(feed_contract)


@pytest.mark.slow
def test_feed_contract(observed: dict[str, Any]) -> None:
    o = observed
    # Capacity and unknown keys are refused before anything is subscribed.
    limit = o["capacity_limit"]
    assert o["capacity_error"] is not None
    assert str(limit) in o["capacity_error"] or f"{limit:,}" in o["capacity_error"]
    assert o["unknown_error"] is not None
    assert o["subscribed_after_errors"] == []
    # Subscriptions reach the server with their modes; ticks are domain ticks.
    assert o["subscribed_in"] is not None
    assert o["first_ticks_in"] is not None
    assert all(t["decimal"] and t["aware"] for t in o["ticks"].values())
    # Reconnect after a drop, everything resubscribed within 1 s of the new connection.
    assert o["reconnected_in"] is not None
    assert o["resubscribed_after_connect"] is not None
    assert o["resubscribed_after_connect"] < 1.0
    assert o["ticks_after_reconnect_in"] is not None
    # A silent feed is detected within 3 s and comes back.
    assert o["stale_detected_in"] is not None and o["stale_detected_in"] < 3.0
    assert o["back_after_stale_in"] is not None
    assert o["after_unsubscribe"] == o["expected_after_unsubscribe"]
    assert o["status"]["connected"] is True
