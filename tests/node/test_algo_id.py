"""SEBI's algo id, as the order node gives it to each broker, arrives on the wire in that
broker's form: Kite's ``algo_id`` parameter, Upstox's ``X-Algo-Name`` header. Angel One and
Breeze have no field for it; their orders carry the tag (``ordertag``, ``user_remark``).
Each through the broker's official SDK against its fake on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from services.broker import OrderChange
from services.clock import IST, ManualClock
from services.domain import OrderRequest, OrderType, Product, Side
from services.node.sebi import apply_algo_id
from tests.brokers.angelone.conftest import make_execution as make_angel
from tests.brokers.breeze.conftest import MARKET_HOURS as BREEZE_DAY
from tests.brokers.breeze.conftest import Rig
from tests.brokers.conftest import MARKET_HOURS, make_broker
from tests.brokers.upstox.conftest import make_execution as make_upstox
from tests.fakes.angelone import FakeAngel
from tests.fakes.breeze.server import FakeBreeze
from tests.fakes.kite_server import FakeKite
from tests.fakes.upstox import FakeUpstox, default_instruments

ALGO = "dalal-terminal"  # the Upstox fake knows this name as registered


def limit(key: str, price: str, tag: str) -> OrderRequest:
    return OrderRequest(key, Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal(price),
                        tag=tag)  # fmt: skip


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # smartapi-python must not leave ./logs anywhere
    yield tmp_path
    assert not (tmp_path / "logs").exists()


async def test_kite_gets_the_algo_id_parameter() -> None:
    with FakeKite(hang_seconds=1.0) as fake:
        broker = make_broker(fake, ManualClock(MARKET_HOURS))
        assert "algo_id" in apply_algo_id(broker, ALGO)
        await broker.place_order(limit("NSE:INFY", "1570.1", "K1"))
        (sent,) = fake.orders.values()
        assert sent["algo_id"] == ALGO and sent["tag"] == "K1"


async def test_upstox_gets_the_algo_name_header_on_place_modify_and_cancel() -> None:
    day = MARKET_HOURS.date()
    with FakeUpstox(hang_seconds=1.0, instruments=default_instruments(day)) as fake:
        execution = make_upstox(fake, ManualClock(MARKET_HOURS))
        try:
            assert "X-Algo-Name" in apply_algo_id(execution, ALGO)
            order = await execution.place_order(limit("NSE:INFY", "1570.10", "U1"))
            await execution.modify_order(order.order_id, OrderChange(price=Decimal("1571.10")))
            await execution.cancel_order(order.order_id)
            for method, path in (("POST", "/v3/order/place"), ("PUT", "/v3/order/modify"),
                                 ("DELETE", "/v3/order/cancel")):  # fmt: skip
                assert fake.journal.headers(method, path)[-1]["X-Algo-Name"] == ALGO, path
            assert fake.placed[-1]["tag"] == "U1"
        finally:
            execution.api.close()


async def test_angel_one_has_no_algo_field_and_sends_the_tag(in_tmp: Path) -> None:
    with FakeAngel(hang_seconds=1.0) as fake:
        execution = make_angel(fake)
        said = apply_algo_id(execution, ALGO)
        assert "not sent" in said and "ordertag" in said
        await execution.place_order(limit("NSE:SBIN", "800.05", "A1"))
        sent = fake.requests[-1][2]
        assert sent["ordertag"] == "A1"
        assert ALGO not in json.dumps(sent)


async def test_breeze_has_no_algo_field_and_sends_the_tag(tmp_path: Path) -> None:
    with FakeBreeze(hang_seconds=1.0, today=BREEZE_DAY.date()) as fake:
        rig = Rig(fake, ManualClock(BREEZE_DAY.astimezone(IST)), tmp_path / "cache")
        execution = await rig.execution()
        said = apply_algo_id(execution, ALGO)
        assert "not sent" in said and "user_remark" in said
        await execution.place_order(limit("NSE:RELIANCE", "2900.10", "B1"))
        posted = [json.loads(body) for m, path, _, body in fake.journal.requests
                  if m == "POST" and path.endswith("/order")]  # fmt: skip
        assert posted[-1]["user_remark"] == "B1"
        assert ALGO not in json.dumps(posted[-1])
