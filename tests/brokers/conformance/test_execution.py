"""The ``ExecutionClient`` contract (services/brokers/ports.py), for every registered broker."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from services.broker import OrderChange
from services.brokers.errors import (
    BrokerError,
    InsufficientFunds,
    IpNotAllowed,
    OrderRejected,
    RateLimited,
    SessionExpired,
)
from services.brokers.ports import ExecutionClient
from services.domain import (
    AUTO_PROTECTION,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
    round_to_tick,
)
from services.orders import new_tag
from tests.brokers.conformance.conftest import need
from tests.brokers.conformance.harness import Fault, Feature, Harness, Sample

ACKED = {
    OrderStatus.PENDING,
    OrderStatus.OPEN,
    OrderStatus.TRIGGER_PENDING,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
}


def away(sample: Sample, side: Side, percent: int = 10) -> Decimal:
    """A price ``percent`` away from the market on the side that does not fill."""
    factor = Decimal(100 - percent if side is Side.BUY else 100 + percent) / 100
    return round_to_tick(sample.price * factor, sample.tick)


def request(
    sample: Sample,
    order_type: OrderType = OrderType.LIMIT,
    *,
    side: Side = Side.BUY,
    lots: int = 1,
    validity: Validity = Validity.DAY,
) -> OrderRequest:
    price = trigger = None
    if order_type in (OrderType.LIMIT, OrderType.SL):
        price = away(sample, side)
    if order_type.needs_trigger:
        # A stop that is not touched: above the market for a buy, below for a sell.
        trigger = away(sample, side.opposite, 5)
        if order_type is OrderType.SL:
            price = away(sample, side.opposite, 6)
    return OrderRequest(
        sample.key,
        side,
        sample.lot * lots,
        order_type,
        sample.product,
        validity=validity,
        price=price,
        trigger_price=trigger,
        tag=new_tag(),
        market_protection=AUTO_PROTECTION if not order_type.needs_price else None,
    )


async def status(client: ExecutionClient, order: Order) -> Order:
    return await client.order_status(order.order_id)


# -- orders ---------------------------------------------------------------------------------


async def test_every_order_type_product_and_validity_round_trips(harness: Harness) -> None:
    need(harness, Feature.ORDERS)
    client = harness.execution()
    assert client.limits.tag_max_length >= len(new_tag())
    for sample in harness.samples:
        for order_type in harness.order_types:
            for validity in harness.validities:
                if validity is Validity.IOC and order_type.needs_trigger:
                    continue  # no exchange takes a stop-loss IOC
                req = request(sample, order_type, validity=validity)
                ack = await client.place_order(req)
                what = f"{harness.name} {sample.key} {order_type} {validity}"
                assert ack.status in ACKED, what
                assert ack.request.tag == req.tag, what
                assert ack.order_id, what
                seen = await status(client, ack)
                assert (seen.key, seen.side, seen.quantity, seen.request.order_type) == (
                    req.key,
                    req.side,
                    req.quantity,
                    order_type,
                ), what
                assert seen.request.product is sample.product, what
                assert await client.order_by_tag(req.tag or "") is not None, what
                if not seen.status.is_working or order_type is OrderType.MARKET:
                    continue
                if validity is Validity.IOC:
                    continue
                new_qty = req.quantity + sample.lot
                change = OrderChange(quantity=new_qty)
                if order_type in (OrderType.LIMIT, OrderType.SL):
                    change = OrderChange(
                        quantity=new_qty, price=(req.price or Decimal(0)) - sample.tick
                    )
                modified = await client.modify_order(ack.order_id, change)
                assert modified.quantity == new_qty, what
                if change.price is not None:
                    assert modified.request.price == change.price, what
                cancelled = await client.cancel_order(ack.order_id)
                assert cancelled.status is OrderStatus.CANCELLED, what
                assert (await status(client, ack)).status is OrderStatus.CANCELLED, what


async def test_order_by_tag_finds_only_our_orders(harness: Harness) -> None:
    need(harness, Feature.ORDERS)
    client = harness.execution()
    req = request(harness.samples[0])
    ack = await client.place_order(req)
    found = await client.order_by_tag(req.tag or "")
    assert found is not None and found.order_id == ack.order_id
    assert await client.order_by_tag(new_tag()) is None


async def test_modify_or_cancel_a_finished_order_is_refused(harness: Harness) -> None:
    need(harness, Feature.ORDERS)
    client = harness.execution()
    ack = await client.place_order(request(harness.samples[0]))
    await client.cancel_order(ack.order_id)
    with pytest.raises(OrderRejected):
        await client.modify_order(ack.order_id, OrderChange(quantity=ack.quantity + 1))
    with pytest.raises(BrokerError):
        await client.cancel_order(ack.order_id)


async def test_partial_fills_show_in_order_fills_and_positions(harness: Harness) -> None:
    need(harness, Feature.PARTIAL_FILLS)
    client = harness.execution()
    sample = harness.samples[0]
    req = request(sample, lots=3)
    ack = await client.place_order(req)
    await harness.fill(ack, sample.lot)
    partial = await status(client, ack)
    assert partial.status is OrderStatus.PARTIALLY_FILLED
    assert partial.filled_quantity == sample.lot
    fills = [f for f in await client.fills() if f.order_id == ack.order_id]
    assert sum(f.quantity for f in fills) == sample.lot
    assert all(f.price == req.price for f in fills)
    await harness.fill(ack, 2 * sample.lot)
    done = await status(client, ack)
    assert done.status is OrderStatus.FILLED and done.filled_quantity == req.quantity
    assert done.average_price == req.price
    fills = [f for f in await client.fills() if f.order_id == ack.order_id]
    assert sum(f.quantity for f in fills) == req.quantity
    net = {(p.key, p.product): p.quantity for p in await client.positions()}
    assert net[(sample.key, sample.product)] == req.quantity


async def test_an_intraday_order_keeps_its_product_in_the_book_and_positions(
    harness: Harness,
) -> None:
    need(harness, Feature.INTRADAY)
    client = harness.execution()
    sample = next(s for s in harness.samples if s.product is Product.CNC)  # an equity
    req = replace(request(sample, lots=2), product=Product.MIS)
    ack = await client.place_order(req)
    assert ack.status in ACKED
    seen = await status(client, ack)
    assert seen.request.product is Product.MIS
    found = await client.order_by_tag(req.tag or "")
    assert found is not None and found.request.product is Product.MIS
    await harness.fill(ack, sample.lot)
    net = {(p.key, p.product): p.quantity for p in await client.positions()}
    assert net.get((sample.key, Product.MIS)) == sample.lot
    assert (sample.key, Product.CNC) not in net  # not reported as a delivery position
    cancelled = await client.cancel_order(ack.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.request.product is Product.MIS


async def test_an_after_market_order_is_sent_and_reported_as_one(harness: Harness) -> None:
    need(harness, Feature.AMO)
    client = harness.execution()
    sample = harness.samples[0]
    req = replace(request(sample), amo=True)
    ack = await client.place_order(req)
    assert ack.status in ACKED
    seen = await status(client, ack)
    assert seen.request.amo, "the broker's order book does not say after-market"
    found = await client.order_by_tag(req.tag or "")
    assert found is not None and found.request.amo
    plain = await client.place_order(request(sample))
    assert not (await status(client, plain)).request.amo  # only the one asked for
    cancelled = await client.cancel_order(ack.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    await client.cancel_order(plain.order_id)


async def test_a_validity_the_broker_lacks_is_refused_before_anything_is_sent(
    harness: Harness,
) -> None:
    """TTL needs a duration no ticket sets: every venue that does not declare it refuses it
    with a message (raised, or a REJECTED order as the paper venue answers), and no order
    is working under its tag."""
    need(harness, Feature.ORDERS)
    if Validity.TTL in harness.validities:
        pytest.skip(f"{harness.name} takes TTL orders (the round trip covers them)")
    client = harness.execution()
    req = request(harness.samples[0], validity=Validity.TTL)
    outcome = await rejected(client, req)
    if isinstance(outcome, Order):
        assert outcome.status is OrderStatus.REJECTED, outcome
        assert "TTL" in outcome.status_message
    else:
        assert isinstance(outcome, BrokerError) and "TTL" in str(outcome)
    found = await client.order_by_tag(req.tag or "")
    assert found is None or found.status is OrderStatus.REJECTED


# -- failures -------------------------------------------------------------------------------


async def rejected(client: ExecutionClient, req: OrderRequest) -> BaseException | Order:
    try:
        ack = await client.place_order(req)
    except BrokerError as exc:
        return exc
    return await client.order_status(ack.order_id)


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (Fault.INSUFFICIENT_FUNDS, InsufficientFunds, "fund"),
        (Fault.IP_NOT_ALLOWED, IpNotAllowed, "ip"),
        (Fault.RATE_LIMITED, RateLimited, "too many"),
    ],
)
async def test_broker_refusals_map_onto_the_taxonomy(
    harness: Harness, fault: Fault, error: type[BrokerError], words: str
) -> None:
    if fault not in harness.faults:
        pytest.skip(f"{harness.name}'s fake cannot inject {fault.value}")
    client = harness.execution()
    req = request(harness.samples[0])
    harness.inject(fault)
    outcome = await rejected(client, req)
    assert isinstance(outcome, error), outcome
    assert words in str(outcome).lower()
    assert harness.venue_orders(req.tag or "") == 0
    if isinstance(outcome, RateLimited):
        assert outcome.retry_after is None or outcome.retry_after > 0


@pytest.mark.parametrize("fault", [Fault.TIMEOUT_AFTER_SEND, Fault.DROP_AFTER_SEND])
async def test_lost_answer_is_resolved_by_tag_without_a_duplicate(
    harness: Harness, fault: Fault
) -> None:
    need(harness, Feature.OUTCOME_UNKNOWN)
    if fault not in harness.faults:
        pytest.skip(f"{harness.name}'s fake cannot inject {fault.value}")
    client = harness.execution()
    req = request(harness.samples[0])
    harness.inject(fault)
    order = await client.place_order(req)
    assert order.request.tag == req.tag
    assert order.status in ACKED
    assert harness.venue_orders(req.tag or "") == 1
    assert (await client.order_by_tag(req.tag or "")) is not None


async def test_session_expiry_mid_day_then_a_new_login(harness: Harness) -> None:
    need(harness, Feature.SESSION_EXPIRY)
    client = harness.execution()
    before = await client.place_order(request(harness.samples[0]))
    harness.inject(Fault.SESSION_EXPIRED)
    req = request(harness.samples[0])
    with pytest.raises(SessionExpired) as info:
        await client.place_order(req)
    assert "log in" in str(info.value).lower()
    assert harness.session_expired_calls >= 1
    with pytest.raises(SessionExpired):
        await client.orders()
    assert harness.venue_orders(req.tag or "") == 0
    harness.restore_session()
    ids = {o.order_id for o in await client.orders()}
    assert before.order_id in ids
    again = await client.place_order(request(harness.samples[0]))
    assert again.status in ACKED


async def test_throttle_spreads_a_burst_and_its_day_count_survives_a_restart(
    harness: Harness,
) -> None:
    need(harness, Feature.THROTTLE)
    client = harness.execution()
    window = min(client.limits.order_windows, key=lambda w: w.seconds)
    start = harness.clock.now()
    tags = []
    for _ in range(window.limit + 1):
        req = request(harness.samples[0])
        tags.append(req.tag or "")
        await client.place_order(req)
    waited = (harness.clock.now() - start).total_seconds()
    assert waited == pytest.approx(window.seconds, abs=0.05), waited
    assert all(harness.venue_orders(t) == 1 for t in tags)
    day = harness.clock.now().date()

    async def persisted(count: int) -> bool:
        for _ in range(200):
            if any(v == count for (_, d), v in harness.counts.counts.items() if d == day):
                return True
            await asyncio.sleep(0.01)
        return False

    assert await persisted(window.limit + 1)
    restarted = harness.execution()
    await restarted.place_order(request(harness.samples[0]))
    assert await persisted(window.limit + 2)


async def test_a_restarted_adapter_reports_the_same_day(harness: Harness) -> None:
    need(harness, Feature.RESTART)
    client = harness.execution()
    sample = harness.samples[0]
    # A stop that is not touched stays working while the limit order below it fills.
    working = await client.place_order(request(sample, OrderType.SL, lots=2))
    filled = await client.place_order(request(sample, lots=2))
    await harness.fill(filled, sample.lot)
    after = harness.execution()
    orders = {o.order_id: o for o in await after.orders()}
    assert orders[working.order_id].status.is_working
    assert orders[filled.order_id].status is OrderStatus.PARTIALLY_FILLED
    assert orders[filled.order_id].filled_quantity == sample.lot
    assert [f.quantity for f in await after.fills() if f.order_id == filled.order_id] == [
        sample.lot
    ]
    for order in (working, filled):
        found = await after.order_by_tag(order.request.tag or "")
        assert found is not None and found.order_id == order.order_id
    net = {(p.key, p.product): p.quantity for p in await after.positions()}
    assert net[(sample.key, sample.product)] == sample.lot
    # The restarted adapter can carry on: cancel what was left working.
    assert (await after.cancel_order(working.order_id)).status is OrderStatus.CANCELLED


async def test_what_the_venue_acknowledged_survives_its_restart(harness: Harness) -> None:
    need(harness, Feature.VENUE_RESTART)
    client = harness.execution()
    sample = harness.samples[0]
    working = await client.place_order(request(sample))
    stop = await client.place_order(request(sample, OrderType.SL))
    cancelled = await client.cancel_order(
        (await client.place_order(request(sample))).order_id
    )
    assert cancelled.status is OrderStatus.CANCELLED
    harness.restart_venue()
    after = harness.execution()
    orders = {o.order_id: o for o in await after.orders()}
    assert orders[working.order_id].status.is_working
    assert orders[stop.order_id].status.is_working
    assert orders[cancelled.order_id].status is OrderStatus.CANCELLED
    # An order whose answer was lost before the restart is sent again with its tag: the
    # venue answers with the order it has, and holds one.
    again = await after.place_order(working.request)
    assert again.order_id == working.order_id
    assert harness.venue_orders(working.request.tag or "") == 1
    # The restarted venue carries on: modify and cancel what was left working.
    changed = await after.modify_order(working.order_id, OrderChange(quantity=2 * sample.lot))
    assert changed.quantity == 2 * sample.lot
    assert (await after.cancel_order(stop.order_id)).status is OrderStatus.CANCELLED


async def test_a_burst_beyond_the_order_rate_waits_and_is_placed_once(harness: Harness) -> None:
    need(harness, Feature.ORDER_RATE)
    assert harness.order_rate is not None
    client = harness.execution()
    sample = harness.samples[0]
    loop = asyncio.get_running_loop()
    requests = [request(sample) for _ in range(harness.order_rate + 1)]
    started = loop.time()
    acked = []
    for req in requests:
        await client.place_order(req)
        acked.append(loop.time() - started)
    # The one beyond waited for the one-second window to move (on a machine so slow that the
    # first ones alone took a second, there is nothing to wait for, and this holds too).
    assert acked[-1] >= 0.95, acked
    assert [harness.venue_orders(r.tag or "") for r in requests] == [1] * len(requests)
