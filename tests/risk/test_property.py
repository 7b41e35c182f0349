"""No sequence of orders, cancels and fills can get past the configured limits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.broker import OrderRejected
from services.domain import Instrument, OrderRequest, OrderStatus, OrderType, Product, Side
from services.risk import RiskLimits
from tests.risk.support import CALL, EQUITY, FUTURE, make_world

LIMITS = RiskLimits(
    max_open_orders=3,
    max_order_quantity=600,
    max_order_value=Decimal(2_000_000),
    max_orders_per_second=4,
    duplicate_window_seconds=1.0,
    check_margin=False,
)
ONE_SECOND = timedelta(seconds=1)
SEEN_RULES: Counter[str] = Counter()


@dataclass(frozen=True)
class Place:
    instrument: Instrument
    side: Side
    lots: int
    ticks_away: int
    market: bool
    after_ms: int


@dataclass(frozen=True)
class Finish:
    fill: bool  # filled, else cancelled
    pick: int
    after_ms: int


places = st.builds(
    Place,
    st.sampled_from((EQUITY, FUTURE, CALL)),
    st.sampled_from(Side),
    st.sampled_from((1, 1, 2, 3, 5, 8, 9, 25)),  # lots: 9 breaks the quantity, 25 the freeze
    st.integers(-2500, 2500),
    st.booleans(),
    st.sampled_from((0, 10, 60, 150, 400, 400)),
)
finishes = st.builds(Finish, st.booleans(), st.integers(0, 50), st.sampled_from((0, 20, 200)))


flows = st.lists(st.one_of(places, places, places, finishes), min_size=20, max_size=80)


@settings(max_examples=120, deadline=None)
@given(flows)
def test_random_order_flow_never_exceeds_the_limits(actions: list[Place | Finish]) -> None:
    run_flow(actions)


def run_flow(actions: list[Place | Finish]) -> None:
    world = make_world()
    engine = world.engine(LIMITS)
    accepted: list[tuple[datetime, OrderRequest, Decimal]] = []
    for action in actions:
        now = world.clock.advance(action.after_ms / 1000)
        if isinstance(action, Finish):
            working = [i for i, o in enumerate(world.orders) if o.status.is_working]
            if working:
                index = working[action.pick % len(working)]
                status = OrderStatus.FILLED if action.fill else OrderStatus.CANCELLED
                world.orders[index] = world.orders[index].evolve(status, now)
            continue

        inst = action.instrument
        last = world.prices[inst.key]
        qty = action.lots * (inst.lot_size if inst.lot_size > 1 else 10)
        price = None if action.market else last + inst.tick_size * action.ticks_away
        if price is not None and price <= 0:
            continue
        order_type = OrderType.MARKET if action.market else OrderType.LIMIT
        request = OrderRequest(inst.key, action.side, qty, order_type, Product.MIS, price=price)
        try:
            engine(request, inst)
        except OrderRejected as exc:
            SEEN_RULES[exc.rule] += 1
            continue
        value = (price if price is not None else last) * qty
        accepted.append((now, request, value))
        world.add_open_order(request)
        world.orders[-1] = replace(world.orders[-1], placed_at=now)

        assert LIMITS.max_open_orders is not None and LIMITS.max_order_value is not None
        assert sum(o.status.is_working for o in world.orders) <= LIMITS.max_open_orders
        assert qty <= (LIMITS.max_order_quantity or 0)
        assert value <= LIMITS.max_order_value
        in_window = [t for t, _, _ in accepted if now - t < ONE_SECOND]
        assert len(in_window) <= (LIMITS.max_orders_per_second or 0)
        fingerprint = (request.key, request.side, request.quantity, request.price)
        assert not [
            t
            for t, r, _ in accepted[:-1]
            if (r.key, r.side, r.quantity, r.price) == fingerprint and now - t < ONE_SECOND
        ]
    assert engine.accepted == len(accepted)


def test_the_random_flow_reaches_every_limit() -> None:
    """Guards the property test against generating orders that never meet a limit."""

    @settings(max_examples=120, deadline=None, derandomize=True, database=None)
    @given(flows)
    def replay(actions: list[Place | Finish]) -> None:
        run_flow(actions)

    SEEN_RULES.clear()
    replay()
    for rule in ("max_open_orders", "max_order_quantity", "max_order_value", "price_band",
                 "freeze_quantity", "order_rate", "duplicate_order"):
        assert SEEN_RULES[rule] > 0, (rule, SEEN_RULES)
