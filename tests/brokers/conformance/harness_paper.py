"""The paper venue's harness: the venue is the paper book itself, driven by ticks.

Fills come from ticks whose depth holds exactly the quantity to fill at the order's price,
the way the live feed would deliver them. A restart builds a new ``PaperBroker`` through the
registry and restores it from what the previous one reported (what the recorder journals).
Paper has no session, throttle, lost answers or broker-side refusals to inject.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.brokers import registry
from services.brokers.ports import ExecutionClient, InstrumentProvider
from services.brokers.throttle import MemoryCountStore
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import Depth, DepthLevel, Order, OrderType, Product, Side, Tick, Validity
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper import PaperBroker
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample

SESSION = date(2026, 3, 10)
KEY = "NSE:RELIANCE"


class Harness:
    name = "paper"
    # An after-market order rests until the next session opens (services.paper.broker).
    features = frozenset(
        {Feature.ORDERS, Feature.INTRADAY, Feature.PARTIAL_FILLS, Feature.RESTART, Feature.AMO}
    )
    faults: frozenset[Fault] = frozenset()
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.SL_M, OrderType.MARKET)
    validities = (Validity.DAY, Validity.IOC)

    def __init__(self) -> None:
        self.clock = ManualClock(datetime(2026, 3, 10, 10, 0, tzinfo=IST))
        self.counts = MemoryCountStore()
        self.session_expired_calls = 0
        self.bus = EventBus()
        self.universe = InstrumentRegistry(bundled_universe(SESSION)[0])
        inst = self.universe.get(KEY)
        assert inst is not None
        self.price = Decimal("2500.00")
        self.samples = (Sample(KEY, self.price, inst.tick_size, inst.lot_size, Product.CNC),)
        self._broker: PaperBroker | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _tick(self, key: str, *, asks: tuple[tuple[Decimal, int], ...] = ()) -> Tick:
        spread = Decimal("0.05")
        book = Depth(
            bids=(DepthLevel(self.price - spread, 100, 1),),
            asks=tuple(DepthLevel(p, q, 1) for p, q in asks)
            or (DepthLevel(self.price + spread, 100, 1),),
        )
        p = self.price
        return Tick(key, self.clock.now(), p, 1, 1000, p, p, p, p, depth=book)

    def execution(self) -> ExecutionClient:
        parts = registry.build(
            "paper",
            registry.BrokerContext(self.clock, self.bus, instruments=self.universe),
        )
        broker = parts.execution
        assert isinstance(broker, PaperBroker)
        previous = self._broker
        if previous is not None:  # a restart: resume from the journal of the day
            broker.restore(
                [previous.order(o) for o in sorted(previous._orders)], list(previous._fills)
            )
        else:
            broker.on_tick(self._tick(KEY))  # a last price, so MARKET orders can be valued
        self._broker = broker
        return broker

    async def fill(self, order: Order, quantity: int) -> None:
        assert self._broker is not None
        price = order.request.price
        assert price is not None and order.side is Side.BUY
        self.clock.advance(1)
        self._broker.on_tick(self._tick(order.key, asks=((price, quantity),)))

    def inject(self, fault: Fault) -> None:
        raise NotImplementedError(f"paper cannot inject {fault}")

    def restore_session(self) -> None:
        raise NotImplementedError

    def venue_orders(self, tag: str) -> int:
        assert self._broker is not None
        return sum(1 for o in self._broker._orders.values() if o.request.tag == tag)

    def instruments(self) -> InstrumentProvider:
        raise NotImplementedError("paper fills against the data feed's instruments")

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        raise NotImplementedError("paper is a venue, not a feed")
