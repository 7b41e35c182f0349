"""Upstox's own GTT orders through the official SDK against the fake: a single trigger rests
at Upstox, is modified and read back, fires a market order when the price crosses it, and
is cancelled; what Upstox's GTT cannot carry is refused before anything is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.brokers.errors import InvalidInput
from services.brokers.upstox.execution import UpstoxExecution
from services.brokers.upstox.gtt import UpstoxGtt
from services.domain import (
    MarketProtection,
    OrderRequest,
    OrderType,
    Product,
    Side,
    Validity,
)
from tests.fakes.upstox import FakeUpstox

INFY = "NSE_EQ|INE009A01021"


def market(**kw: object) -> OrderRequest:
    base: dict[str, object] = {
        "key": "NSE:INFY", "side": Side.SELL, "quantity": 4, "order_type": OrderType.MARKET,
        "product": Product.CNC,
    }  # fmt: skip
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


async def test_a_single_gtt_rests_at_upstox_fires_and_reads_back(
    execution: UpstoxExecution, fake: FakeUpstox
) -> None:
    gtt = UpstoxGtt(execution)
    placed = await gtt.place_single(
        Decimal("1450.05"), market(market_protection=MarketProtection(5)), rising=False
    )
    kind, body = fake.gtt_requests[0]
    assert kind == "place"
    assert body["type"] == "SINGLE" and body["instrument_token"] == INFY
    assert (body["product"], body["transaction_type"], body["quantity"]) == ("D", "SELL", 4)
    assert body["rules"] == [
        {"strategy": "ENTRY", "trigger_type": "BELOW", "trigger_price": 1450.05,
         "market_protection": 5.0}
    ]  # fmt: skip
    assert placed.key == "NSE:INFY" and placed.status == "SCHEDULED"
    assert placed.trigger == Decimal("1450.05") and not placed.rising
    assert placed.product is Product.CNC and placed.side is Side.SELL
    assert placed.expires_at is not None and placed.created_at is not None

    moved = await gtt.modify_single(
        placed.gtt_id, Decimal("1440"), market(quantity=2), rising=False
    )
    assert moved.trigger == Decimal("1440") and moved.quantity == 2
    assert [g.gtt_id for g in await gtt.gtts()] == [placed.gtt_id]

    assert fake.trigger_gtts(INFY, "1460") == []  # above a BELOW trigger: nothing
    (order_id,) = fake.trigger_gtts(INFY, "1439.50")
    fired = await gtt.gtt(placed.gtt_id)
    assert fired.status == "TRIGGERED" and fired.order_id == order_id
    order = await execution.order_status(order_id)
    assert order.filled_quantity == 2 and order.request.side is Side.SELL
    with pytest.raises(Exception, match="TRIGGERED"):
        await gtt.cancel(placed.gtt_id)


async def test_a_gtt_is_cancelled_at_upstox(execution: UpstoxExecution, fake: FakeUpstox) -> None:
    gtt = UpstoxGtt(execution)
    placed = await gtt.place_single(Decimal("1600"), market(side=Side.BUY), rising=True)
    assert fake.gtt_requests[0][1]["rules"][0]["trigger_type"] == "ABOVE"
    cancelled = await gtt.cancel(placed.gtt_id)
    assert cancelled.status == "CANCELLED"
    assert fake.trigger_gtts(INFY, "1650") == []


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (market(order_type=OrderType.LIMIT, price=Decimal("1500")), "places a market order"),
        (market(validity=Validity.IOC), "day order"),
        (market(key="NSE:NOSUCH"), "NOSUCH"),
    ],
)
async def test_what_an_upstox_gtt_cannot_carry_is_refused_before_sending(
    execution: UpstoxExecution, fake: FakeUpstox, request_: OrderRequest, reason: str
) -> None:
    with pytest.raises(Exception, match=reason):
        await UpstoxGtt(execution).place_single(Decimal("1400"), request_, rising=False)
    assert fake.gtt_requests == []


async def test_a_bad_trigger_is_refused(execution: UpstoxExecution, fake: FakeUpstox) -> None:
    with pytest.raises(InvalidInput, match="positive"):
        await UpstoxGtt(execution).place_single(Decimal("0"), market(), rising=False)
    assert fake.gtt_requests == []


async def test_the_gtt_port_on_upstox_places_reads_and_cancels_single_triggers(
    execution: UpstoxExecution, fake: FakeUpstox
) -> None:
    from services.brokers.errors import NotOffered
    from services.brokers.ports import GttVenue
    from services.brokers.upstox.gtt import UpstoxGttVenue
    from services.gtt import GttKind, GttStatus

    venue = UpstoxGttVenue(UpstoxGtt(execution))
    assert isinstance(venue, GttVenue) and not venue.oco
    placed = await venue.place_single(Decimal("1450"), market(), Decimal("1500"))
    assert fake.gtt_requests[0][1]["rules"][0]["trigger_type"] == "BELOW"  # from last price
    assert placed.kind is GttKind.SINGLE and placed.status is GttStatus.ACTIVE
    assert isinstance(placed.gtt_id, str) and placed.key == "NSE:INFY"
    (leg,) = placed.legs
    assert leg.trigger == Decimal("1450") and not leg.rising
    assert leg.order.order_type is OrderType.MARKET and leg.order.quantity == 4
    assert [g.gtt_id for g in await venue.gtts()] == [placed.gtt_id]
    (order_id,) = fake.trigger_gtts(INFY, "1449")
    fired = (await venue.gtts())[0]
    assert fired.status is GttStatus.TRIGGERED and fired.order_id == order_id
    assert fired.fired_leg == 0

    other = await venue.place_single(Decimal("1600"), market(side=Side.BUY), Decimal("1500"))
    assert other.legs[0].rising
    from services.gtt import GttError, LegChange

    moved = await venue.modify(other.gtt_id, [LegChange(Decimal("1620"))], Decimal("1500"))
    assert moved.gtt_id == other.gtt_id and moved.legs[0].trigger == Decimal("1620")
    assert fake.gtt_requests[-1][1]["rules"][0]["trigger_price"] == 1620
    with pytest.raises(GttError, match="no limit price"):  # Upstox's GTT order is MARKET
        await venue.modify(other.gtt_id, [LegChange(Decimal("1620"), Decimal("1621"))],
                           Decimal("1500"))  # fmt: skip
    assert (await venue.cancel(other.gtt_id)).status is GttStatus.CANCELLED
    sent = len(fake.gtt_requests)
    with pytest.raises(NotOffered, match="no OCO"):
        await venue.place_oco(
            Decimal("1400"), market(), Decimal("1600"), market(), Decimal("1500")
        )
    with pytest.raises(InvalidInput, match="equals the last price"):
        await venue.place_single(Decimal("1500"), market(), Decimal("1500"))
    assert len(fake.gtt_requests) == sent
