"""The ``InstrumentProvider`` contract: canonical keys round-trip through the broker's ids."""

from __future__ import annotations

import pytest

from services.brokers.errors import InstrumentUnknown
from services.brokers.ports import CachedMasterProvider
from tests.brokers.conformance.conftest import need
from tests.brokers.conformance.harness import Feature, Harness


async def test_every_key_round_trips_and_samples_carry_lot_and_tick(harness: Harness) -> None:
    need(harness, Feature.INSTRUMENTS)
    provider = harness.instruments()
    master = await provider.fetch_master()
    assert len(master) > 0 and master.broker == provider.broker
    for listing in master:
        assert master.key_of(master.broker_id(listing.key)) == listing.key
        assert listing.key == f"{listing.instrument.exchange}:{listing.instrument.tradingsymbol}"
        assert listing.instrument.tick_size > 0 and listing.instrument.lot_size >= 1
    for sample in harness.samples:
        inst = master.instrument(sample.key)
        assert (inst.tick_size, inst.lot_size) == (sample.tick, sample.lot)
        if inst.is_derivative:
            assert inst.expiry is not None
    ids = {listing.broker_id for listing in master}
    assert len(ids) == len(master)  # one id per instrument, no collisions


async def test_a_master_cached_as_instruments_comes_back_with_the_same_ids(
    harness: Harness,
) -> None:
    need(harness, Feature.INSTRUMENTS)
    provider = harness.instruments()
    master = await provider.fetch_master()
    assert all(listing.instrument.token == str(listing.broker_id) for listing in master)
    if not isinstance(provider, CachedMasterProvider):
        pytest.skip(f"{harness.name} caches its own master files")
    assert master.day is not None
    cached = provider.master_from_cache(master.instruments(), master.day)
    assert {(x.key, x.broker_id) for x in cached} == {(x.key, x.broker_id) for x in master}
    assert all(type(cached.broker_id(x.key)) is type(x.broker_id) for x in master)


async def test_an_unknown_key_is_refused_by_name(harness: Harness) -> None:
    need(harness, Feature.INSTRUMENTS)
    master = await harness.instruments().fetch_master()
    with pytest.raises(InstrumentUnknown, match="NSE:NOSUCHSYMBOL"):
        master.broker_id("NSE:NOSUCHSYMBOL")
