"""The node venue's harness: a real node (``serve``, paper broker behind it) on loopback.

The venue is ``dalal headless`` in a thread of its own with its own event loop, built through
the same ``serve`` as production, on an encrypted profile database (its journal and
idempotency ledger), with the paper broker filling against its simulator. The adapter is built
through the registry (``services.brokers.node.config.build``) with a trade-scoped key. The
node's risk limits are opened up so that the contract, not the node's risk policy, is what is
exercised; SEBI's order-rate gate stays on (10 a second, in ``wait`` mode). Beyond the order
contract, the node promises that a restart keeps what it acknowledged (VENUE_RESTART: the
same port, the same database) and SEBI's order rate (ORDER_RATE).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.headless import ServerOptions, parse_listen, serve
from app.settings import NodeSettings, Settings
from services.apikeys import ApiKeyStore, Scope
from services.brokers import registry
from services.brokers.ports import ExecutionClient, InstrumentProvider
from services.brokers.throttle import MemoryCountStore
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import Order, OrderType, Product, Validity
from services.instruments import bundled_universe
from services.risk import RiskLimits
from services.storage import Database
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.kite_app.conftest import MemorySecrets
from tests.node.node_process import free_port

KEY = "NSE:RELIANCE"
OPEN = RiskLimits(max_orders_per_second=None, duplicate_window_seconds=None,
                  max_open_orders=None, equity_price_band_percent=None,
                  max_order_value=None, check_margin=False)  # fmt: skip


class Harness:
    name = "node"
    features = frozenset({Feature.ORDERS, Feature.VENUE_RESTART, Feature.ORDER_RATE})
    faults: frozenset[Fault] = frozenset()
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.SL_M, OrderType.MARKET)
    validities = (Validity.DAY,)
    order_rate = NodeSettings().order_rate_per_second  # SEBI: 10 a second per exchange

    def __init__(self) -> None:
        self.clock = ManualClock(datetime(2026, 3, 10, 10, 0, tzinfo=IST))
        self.counts = MemoryCountStore()
        self.session_expired_calls = 0
        universe, references = bundled_universe(date.today())
        inst = next(i for i in universe if i.key == KEY)
        self.samples = (Sample(KEY, references[KEY].price, inst.tick_size, inst.lot_size,
                               Product.CNC),)  # fmt: skip
        self._store = ApiKeyStore(sqlite3.connect(":memory:", check_same_thread=False))
        self._token = str(self._store.create("conformance", [Scope.READ, Scope.TRADE]).token)
        self._base = ""
        self._port = free_port()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._dir = ""
        self._db: Database | None = None

    def start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="dalal-node-harness-")
        self._db = Database.open(Path(self._dir) / "terminal.db", os.urandom(32), create=True)
        self._start_node()

    def _start_node(self) -> None:
        ready = threading.Event()
        database = self._db

        def announce(line: str) -> None:
            self._base = line.removeprefix("listening on ")
            ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            settings = Settings(ticks_per_second=500, models_enabled=False, risk=OPEN,
                                node=NodeSettings(rate_mode="wait"))  # fmt: skip
            await serve(settings, parse_listen(f"127.0.0.1:{self._port}"), announce=announce,
                        stop=self._stop, options=ServerOptions(keys=self._store, rate=1e6,
                                                               burst=1e6, database=database))

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), name="node",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        if not ready.wait(60):
            raise RuntimeError("the node did not start")
        # MARKET orders need a last price at the node: let its simulator tick every symbol.
        # (No event to wait on from here: the node is another loop, its quotes internal.)
        threading.Event().wait(1.5)

    def _stop_node(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive(), "the node did not stop"
        self._thread = self._loop = self._stop = None

    def stop(self) -> None:
        self._stop_node()
        if self._db is not None:
            self._db.close()
            self._db = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def restart_venue(self) -> None:
        self._stop_node()
        self._start_node()

    def execution(self) -> ExecutionClient:
        parts = registry.build("node", registry.BrokerContext(
            self.clock, EventBus(), secrets=MemorySecrets({"node": {"api_key": self._token}}),
            settings={"url": self._base}))  # fmt: skip
        assert parts.execution is not None
        return parts.execution

    async def fill(self, order: Order, quantity: int) -> None:
        raise NotImplementedError("the node's paper venue fills against its own simulator")

    def inject(self, fault: Fault) -> None:
        raise NotImplementedError(f"the node harness cannot inject {fault}")

    def restore_session(self) -> None:
        raise NotImplementedError

    def venue_orders(self, tag: str) -> int:
        """Read the node's own order book (its API, not the adapter under test)."""
        asked = urllib.request.Request(self._base + "/v1/orders",
                                       headers={"Authorization": f"Bearer {self._token}"})
        with urllib.request.urlopen(asked, timeout=10) as answer:
            book = json.load(answer)["orders"]
        return sum(1 for o in book if o.get("tag") == tag)

    def instruments(self) -> InstrumentProvider:
        raise NotImplementedError("the node is a venue: instruments come from the data feed")

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        raise NotImplementedError("the node is a venue, not a feed")
