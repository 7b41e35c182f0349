"""The terminal's GTT book survives a restart, and a GTT that fired as the process died is
never fired again. Real parts: the paper venue's whole order path and the encrypted profile."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from app.settings import Settings
from app.wiring import AppServices, build_services
from services.domain import OrderRequest, OrderType, Product, Side, Tick
from services.gtt import (
    INTERRUPTED,
    SENDING,
    GttError,
    GttKind,
    GttStatus,
    LegChange,
    gtt_from_record,
)
from services.storage import Database
from tests.kite_app.test_ack_after_answer import crash_copy

KEY = "NSE:INFY"


def _settings() -> Settings:
    return Settings(seed=7, always_open=True, ticks_per_second=50, watchlist=[KEY],
                    models_enabled=False)  # fmt: skip


async def _started(db: Database) -> AppServices:
    services = build_services(_settings(), database=db)
    await services.start()
    for _ in range(500):
        if services.quotes.last_price(KEY) is not None:
            return services
        await asyncio.sleep(0.01)
    raise AssertionError("no quote for the test instrument")


def _limit(side: Side, price: Decimal) -> OrderRequest:
    return OrderRequest(KEY, side, 5, OrderType.LIMIT, Product.CNC, price=price)


def _at(services: AppServices, price: Decimal) -> Tick:
    last = services.last_tick(KEY)
    assert last is not None
    return replace(last, last_price=price, ts=services.clock.now())


async def test_gtts_and_their_states_come_back_after_a_restart(tmp_path: Path) -> None:
    key = os.urandom(32)
    with Database.open(tmp_path / "p.db", key, create=True) as db:
        services = await _started(db)
        ltp = services.quotes.last_price(KEY)
        assert ltp is not None
        single = await services.place_gtt_single(ltp - 7, _limit(Side.BUY, ltp - 7))
        oco = await services.place_gtt_oco(
            ltp - 20, _limit(Side.SELL, ltp - 20), ltp + Decimal("20.05"),
            _limit(Side.SELL, ltp + Decimal("20.05")),
        )
        cancelled = await services.cancel_gtt(single.gtt_id)
        with pytest.raises(GttError, match="CANCELLED, not active"):
            await services.modify_gtt(single.gtt_id, [LegChange(ltp - 8)])
        with pytest.raises(GttError, match="stop below and its target above"):
            await services.modify_gtt(oco.gtt_id, [LegChange(ltp + 1), LegChange(ltp + 30)])
        oco = await services.modify_gtt(  # a trailing stop: trigger and limit move together
            oco.gtt_id, [LegChange(ltp - 10, ltp - Decimal("10.5")), LegChange(ltp + 25)])
        assert [(leg.trigger, leg.order.price) for leg in oco.legs] == [
            (ltp - 10, ltp - Decimal("10.5")), (ltp + 25, ltp + Decimal("20.05"))]
        before = await services.gtt_list()
        await services.stop()

    with Database.open(tmp_path / "p.db", key) as db:
        restarted = await _started(db)
        try:
            after = await restarted.gtt_list()
            assert after == before == [cancelled, oco]  # legs, prices, times: exact
            assert after[1].kind is GttKind.OCO and after[1].status is GttStatus.ACTIVE
            ltp = restarted.quotes.last_price(KEY)
            assert ltp is not None
            third = await restarted.place_gtt_single(ltp + 9, _limit(Side.SELL, ltp + 9))
            assert third.gtt_id == 3  # ids continue after the stored ones
            with pytest.raises(ValueError, match="CANCELLED, not active"):
                await restarted.cancel_gtt(single.gtt_id)
        finally:
            await restarted.stop()


async def test_a_gtt_that_fired_as_the_process_died_is_failed_not_fired_again(
    tmp_path: Path,
) -> None:
    key = os.urandom(32)
    path = tmp_path / "p.db"
    with Database.open(path, key, create=True) as db:
        services = await _started(db)
        assert services.gtt is not None and services.recorder is not None
        ltp = services.quotes.last_price(KEY)
        assert ltp is not None
        trigger = ltp - 5
        gtt = await services.place_gtt_single(trigger, _limit(Side.BUY, trigger))
        gid = gtt.gtt_id
        assert isinstance(gid, int)  # the terminal's own book numbers its GTTs
        release = threading.Event()  # the order journal is stuck: the order cannot go yet
        held = asyncio.ensure_future(services.recorder.durable(release.wait))
        try:
            services.gtt.on_tick(_at(services, trigger - Decimal("0.05")))
            for _ in range(500):
                if gtt_from_record(gid, dict(db.gtts.all())[gid]).message == SENDING:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the fired GTT was not stored as sending")
            crashed = crash_copy(path, tmp_path / "crashed")  # the power cut, now
        finally:
            release.set()
            await held
        for _ in range(500):  # the process that lived sends the order and records it
            done = next(g for g in await services.gtt_list() if g.gtt_id == gtt.gtt_id)
            if done.order_id is not None:
                break
            await asyncio.sleep(0.01)
        assert done.status is GttStatus.TRIGGERED and done.order_id is not None
        await services.stop()
        stored_done = gtt_from_record(gid, dict(db.gtts.all())[gid])
        assert stored_done.order_id == done.order_id

    with Database.open(crashed, key) as db:
        restarted = await _started(db)
        try:
            assert restarted.gtt is not None
            (interrupted,) = await restarted.gtt_list()
            assert interrupted.status is GttStatus.FAILED and interrupted.message == INTERRUPTED
            orders_before = len(restarted.order_list())
            restarted.gtt.on_tick(_at(restarted, trigger - 1))  # through the trigger again
            await asyncio.sleep(0.2)
            assert len(restarted.order_list()) == orders_before  # never sent twice
            on_disk = gtt_from_record(gid, dict(db.gtts.all())[gid])
            assert on_disk.status is GttStatus.FAILED  # and it says so on disk too
        finally:
            await restarted.stop()


async def test_an_unreadable_stored_gtt_is_left_out_and_the_rest_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = os.urandom(32)
    with Database.open(tmp_path / "p.db", key, create=True) as db:
        services = await _started(db)
        ltp = services.quotes.last_price(KEY)
        assert ltp is not None
        kept = await services.place_gtt_single(ltp + 3, _limit(Side.SELL, ltp + 3))
        await services.stop()
        db.gtts.put(7, '{"key": "NSE:INFY", "kind": "weird"}')
        restarted = await _started(db)
        try:
            assert await restarted.gtt_list() == [kept]
            assert "stored GTT 7 is unreadable" in caplog.text
            ltp = restarted.quotes.last_price(KEY)
            assert ltp is not None
            placed = await restarted.place_gtt_single(ltp + 4, _limit(Side.SELL, ltp + 4))
            assert placed.gtt_id == 8  # never over the unreadable row
        finally:
            await restarted.stop()
