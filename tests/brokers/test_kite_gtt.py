"""Kite's GTTs through the real kiteconnect SDK against the fake's ``/gtt/triggers``: a single
trigger and a two-leg OCO rest at Zerodha, are read back in the terminal's ``Gtt`` shape,
fire an order when the price reaches them (the OCO's other leg void), are modified and
cancelled; what Kite's GTT cannot carry is refused before anything is sent."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.brokers.errors import InvalidInput
from services.brokers.kite.execution import KiteBroker
from services.brokers.kite.gtt import KiteGtt, gtt_from_kite
from services.brokers.ports import GttVenue
from services.domain import OrderRequest, OrderType, Product, Side, Validity
from services.gtt import GttError, GttKind, GttStatus, LegChange
from tests.fakes.kite_server import FakeKite

KEY = "NSE:INFY"  # the fake's last price: 1573.70
LAST = Decimal("1573.70")
MOCKS = "/work/shared/kiteconnect-mocks"


def limit(side: Side, price: str, **kw: object) -> OrderRequest:
    base: dict[str, object] = {
        "key": KEY, "side": side, "quantity": 3, "order_type": OrderType.LIMIT,
        "product": Product.CNC, "price": Decimal(price),
    }  # fmt: skip
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


def gtt_posts(fake: FakeKite) -> int:
    return fake.journal.count("POST", "/gtt/triggers")


async def test_a_single_gtt_rests_at_zerodha_and_fires_an_order(
    broker: KiteBroker, fake: FakeKite
) -> None:
    venue = KiteGtt(broker)
    assert isinstance(venue, GttVenue) and venue.oco
    placed = await venue.place_single(Decimal("1500.5"), limit(Side.BUY, "1501.5"), LAST)
    record = fake.gtts[int(placed.gtt_id)]
    assert record["type"] == "single"
    assert record["condition"]["trigger_values"] == [1500.5]
    assert record["condition"]["last_price"] == 1573.7
    assert record["orders"][0]["price"] == 1501.5 and record["orders"][0]["quantity"] == 3
    assert placed.kind is GttKind.SINGLE and placed.status is GttStatus.ACTIVE
    assert placed.key == KEY and placed.legs[0].trigger == Decimal("1500.5")
    assert placed.legs[0].rising is False  # below the last price: fires on a fall
    assert placed.legs[0].order.price == Decimal("1501.5")
    assert placed.legs[0].order.product is Product.CNC
    assert [g.gtt_id for g in await venue.gtts()] == [placed.gtt_id]

    fake.set_price(KEY, "1510.0")  # not there yet
    assert (await venue.gtt(placed.gtt_id)).status is GttStatus.ACTIVE
    fake.set_price(KEY, "1500.0")
    fired = await venue.gtt(placed.gtt_id)
    assert fired.status is GttStatus.TRIGGERED and fired.fired_leg == 0
    assert fired.order_id is not None
    order = await broker.order(fired.order_id)
    assert order.request.side is Side.BUY and order.request.price == Decimal("1501.5")
    with pytest.raises(InvalidInput, match="not active"):
        await venue.cancel(placed.gtt_id)


async def test_an_oco_brackets_a_holding_and_the_first_leg_wins(
    broker: KiteBroker, fake: FakeKite
) -> None:
    venue = KiteGtt(broker)
    placed = await venue.place_oco(
        Decimal("1520"), limit(Side.SELL, "1519"), Decimal("1650"), limit(Side.SELL, "1651"),
        LAST,
    )  # fmt: skip
    record = fake.gtts[int(placed.gtt_id)]
    assert record["type"] == "two-leg"
    assert record["condition"]["trigger_values"] == [1520, 1650]
    assert [o["price"] for o in record["orders"]] == [1519, 1651]
    assert placed.kind is GttKind.OCO
    assert [(leg.trigger, leg.rising) for leg in placed.legs] == [
        (Decimal("1520"), False), (Decimal("1650"), True)
    ]  # fmt: skip
    fake.set_price(KEY, "1655.0")
    fired = await venue.gtt(placed.gtt_id)
    assert fired.status is GttStatus.TRIGGERED and fired.fired_leg == 1
    orders_before = len(fake.orders)
    fake.set_price(KEY, "1500.0")  # the stop is void now
    assert len(fake.orders) == orders_before
    assert (await venue.gtt(placed.gtt_id)).fired_leg == 1


async def test_a_gtt_is_modified_and_cancelled_at_zerodha(
    broker: KiteBroker, fake: FakeKite
) -> None:
    venue = KiteGtt(broker)
    placed = await venue.place_single(Decimal("1700"), limit(Side.SELL, "1699"), LAST)
    assert placed.legs[0].rising is True
    moved = await venue.modify(placed.gtt_id, [LegChange(Decimal("1710.5"))], LAST)
    assert moved.gtt_id == placed.gtt_id and moved.legs[0].trigger == Decimal("1710.5")
    assert moved.legs[0].order.price == Decimal("1699")  # no new price: the limit stays
    moved = await venue.modify(placed.gtt_id, [LegChange(Decimal("1720"), Decimal("1719.5"))],
                               LAST)  # fmt: skip
    assert (moved.legs[0].trigger, moved.legs[0].order.price) == (1720, Decimal("1719.5"))
    puts = fake.journal.count("PUT", f"/gtt/triggers/{placed.gtt_id}")
    with pytest.raises(GttError, match="equals the last price"):
        await venue.modify(placed.gtt_id, [LegChange(LAST)], LAST)
    assert fake.journal.count("PUT", f"/gtt/triggers/{placed.gtt_id}") == puts == 2
    cancelled = await venue.cancel(placed.gtt_id)
    assert cancelled.status is GttStatus.CANCELLED
    assert fake.journal.count("DELETE", f"/gtt/triggers/{placed.gtt_id}") == 1
    fake.set_price(KEY, "1720.0")
    assert (await venue.gtt(placed.gtt_id)).status is GttStatus.CANCELLED
    assert not fake.orders


async def test_what_kite_cannot_carry_is_refused_before_sending(
    broker: KiteBroker, fake: FakeKite
) -> None:
    venue = KiteGtt(broker)
    market = OrderRequest(KEY, Side.SELL, 1, OrderType.MARKET, Product.CNC)
    with pytest.raises(InvalidInput, match="LIMIT order"):
        await venue.place_single(Decimal("1500"), market, LAST)
    with pytest.raises(InvalidInput, match="day order"):
        await venue.place_single(
            Decimal("1500"), limit(Side.SELL, "1500", validity=Validity.IOC), LAST
        )
    with pytest.raises(InvalidInput, match="stop below and its target above"):
        await venue.place_oco(
            Decimal("1600"), limit(Side.SELL, "1600"), Decimal("1650"),
            limit(Side.SELL, "1650"), LAST,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="same instrument"):
        await venue.place_oco(
            Decimal("1500"), limit(Side.SELL, "1500"), Decimal("1650"),
            limit(Side.SELL, "1650", key="NSE:SBIN"), LAST,
        )  # fmt: skip
    assert gtt_posts(fake) == 0
    # Kite's own refusal (an unknown instrument) comes back through the SDK, mapped.
    with pytest.raises(InvalidInput, match="does not exist"):
        await venue.place_single(
            Decimal("10"), limit(Side.BUY, "10", key="NSE:NOSUCH"), Decimal("12")
        )
    with pytest.raises(InvalidInput, match="not a Kite GTT id"):
        await venue.cancel("GTT-1")


def test_kites_own_mock_records_read_as_gtts() -> None:
    """Zerodha's published GTT list (kiteconnect-mocks): a single and a fired two-leg whose
    order Kite refused; the reader takes both."""
    try:
        with open(f"{MOCKS}/gtt_get_orders.json") as f:
            data = json.load(f)["data"]
    except FileNotFoundError:
        pytest.skip("kiteconnect-mocks are not on this machine")
    single, oco = (gtt_from_kite(r) for r in data)
    assert single.gtt_id == 112127 and single.kind is GttKind.SINGLE
    assert single.legs[0].trigger == Decimal("702") and not single.legs[0].rising
    assert single.legs[0].order.price == Decimal("702.5")
    assert oco.kind is GttKind.OCO and oco.fired_leg == 1
    assert oco.status is GttStatus.FAILED and "circuit limit" in oco.message
