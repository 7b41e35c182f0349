"""Parametrise the contract suite over every registered broker, through its harness module.

A registered broker without ``harness_<name>.py`` fails here: a broker joins the registry
and the suite together.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from services.brokers import registry
from tests.brokers.conformance.harness import Feature, Harness


def load_harness(name: str) -> Harness:
    module = importlib.import_module(f"tests.brokers.conformance.harness_{name}")
    harness: Harness = module.Harness()
    return harness


@pytest.fixture(params=sorted(set(registry.names())))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = load_harness(str(request.param))
    h.start()
    try:
        yield h
    finally:
        h.stop()


def need(harness: Harness, feature: Feature) -> None:
    if feature not in harness.features:
        pytest.skip(f"{harness.name} does not offer {feature.value}")
