"""The desktop's end of ``/v1/stream``: the node's events onto the desktop's event bus.

Orders, fills, positions and funds are published on the bus like any broker adapter's events,
so the desktop's order manager, blotters and risk panel follow the node. The client keeps the
last sequence number and the node's epoch; after a drop it reconnects (backoff with jitter)
with ``since=SEQ&epoch=EPOCH`` and gets exactly the events it missed, or a snapshot when the
node restarted or no longer has them. A sequence gap (which the node never sends) is treated
as a drop. While disconnected it says "orders unavailable" on the CONNECTION topic, and
``unreachable()`` gives the reason new orders are refused.

Clock skew: the hello carries the node's clock; the difference from ours is kept and shown
when it exceeds two seconds. Order times are the node's (the broker's, in truth) and are
displayed as sent; nothing on the desktop compares them with its own clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from services.brokers.node.pinning import ssl_for
from services.bus import CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, EventBus
from services.clock import Clock
from services.domain import ConnectionState, ConnectionStatus, Fill
from services.node.wire import (
    STREAM_PROTOCOL,
    WireError,
    decode_fill,
    decode_funds,
    decode_order,
    decode_position,
)

log = logging.getLogger(__name__)

COMPONENT = "broker:node"
TRADING_COMPONENT = "node:trading"
SKEW_WARNING_SECONDS = 2.0
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Resync(Exception):
    pass


@dataclass
class NodeStream:
    url: str
    api_key: str
    bus: EventBus
    clock: Clock
    fingerprint: str | None = None
    epoch: str | None = None
    seq: int | None = None
    connected: bool = False
    last_error: str = "not connected yet"
    skew_seconds: float = 0.0
    trading_state: dict[str, Any] = field(default_factory=dict)
    fills: dict[str, Fill] = field(default_factory=dict)
    connects: int = 0
    running: bool = False  # run() started: until then nobody watches, requests find out
    snapshots: int = 0
    gaps: int = 0
    on_event: Callable[[dict[str, Any]], None] | None = None  # tests and benches
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def unreachable(self) -> str | None:
        """Why orders cannot go to the node now, or None when they can (or nobody watches)."""
        if self.connected or not self.running:
            return None
        return (f"the order node at {self.url} is not reachable ({self.last_error}); "
                "market data keeps streaming")  # fmt: skip

    def fill_list(self) -> list[Fill]:
        return list(self.fills.values())

    async def wait_connected(self) -> None:
        await self._ready.wait()

    async def run(self) -> None:
        """Stay connected until cancelled."""
        self.running = True
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except asyncio.CancelledError:
                self._down("stopped")
                raise
            except _Resync:
                self.gaps += 1
                self._down("sequence gap: resuming")
                continue
            except (aiohttp.ClientError, TimeoutError, OSError, WireError, ValueError) as e:
                self._down(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            await asyncio.sleep(delay * random.uniform(0.7, 1.3))  # noqa: S311 (jitter)

    def _stream_url(self) -> str:
        base = self.url.rstrip("/") + "/v1/stream"
        if self.epoch is not None and self.seq is not None:
            return f"{base}?since={self.seq}&epoch={self.epoch}"
        return base

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5)) as http,
            http.ws_connect(self._stream_url(), headers=headers, protocols=(STREAM_PROTOCOL,),
                            ssl=ssl_for(self.url, self.fingerprint), heartbeat=10) as ws,
        ):  # fmt: skip
            if ws.protocol != STREAM_PROTOCOL:
                raise WireError(f"the node speaks no stream protocol this terminal knows "
                                f"(it chose {ws.protocol!r})")  # fmt: skip
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                self._handle(json.loads(msg.data))
            code = ws.close_code
        self._down(f"the node closed the stream (code {code})")

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "hello":
            if msg["epoch"] != self.epoch:
                self.seq = None  # another process: its numbers start afresh (a snapshot comes)
            self.epoch = msg["epoch"]
            server = datetime.fromisoformat(msg["server_time"])
            self.skew_seconds = (server - self.clock.now()).total_seconds()
            self.connects += 1
            self.connected = True
            self.last_error = ""
            self._ready.set()
            self._publish_status()
            return
        if kind == "snapshot":
            self.snapshots += 1
            self.seq = int(msg["seq"])
            orders = [decode_order(o) for o in msg["orders"]]
            if orders:
                self.bus.publish_many(ORDERS, orders)
            fills = [decode_fill(f) for f in msg["fills"]]
            for f in fills:
                self.fills[f.fill_id] = f
            if fills:
                self.bus.publish_many(FILLS, fills)
            for p in msg["positions"]:
                self.bus.publish(POSITIONS, decode_position(p))
            if msg.get("funds"):
                self.bus.publish(FUNDS, decode_funds(msg["funds"]))
            self._trading(msg["trading_state"])
            return
        if kind != "event":
            return
        seq = int(msg["seq"])
        if self.seq is not None and seq <= self.seq:
            return  # already applied (never sent by the node; harmless)
        if self.seq is not None and seq != self.seq + 1:
            raise _Resync(f"expected event {self.seq + 1}, got {seq}")
        self.seq = seq
        data = msg["data"]
        event = msg["kind"]
        if event == "order":
            self.bus.publish(ORDERS, decode_order(data))
        elif event == "fill":
            fill = decode_fill(data)
            self.fills[fill.fill_id] = fill
            self.bus.publish(FILLS, fill)
        elif event == "position":
            self.bus.publish(POSITIONS, decode_position(data))
        elif event == "funds":
            self.bus.publish(FUNDS, decode_funds(data))
        elif event == "trading_state":
            self._trading(data)
        if self.on_event is not None:
            self.on_event(msg)

    def _trading(self, state: dict[str, Any]) -> None:
        self.trading_state = dict(state)
        halted = state.get("state") == "HALTED"
        detail = f"node trading {state.get('state')}" + (
            f": {state['reason']}" if state.get("reason") else "")
        self.bus.publish(CONNECTION, ConnectionState(
            TRADING_COMPONENT,
            ConnectionStatus.DISCONNECTED if halted else ConnectionStatus.CONNECTED,
            detail, self.clock.now()))  # fmt: skip

    def _publish_status(self) -> None:
        if self.connected:
            detail = f"orders via node {self.url}"
            if abs(self.skew_seconds) > SKEW_WARNING_SECONDS:
                detail += f" (its clock differs from this one by {self.skew_seconds:+.1f} s)"
            status = ConnectionStatus.CONNECTED
        else:
            detail = f"orders unavailable: {self.unreachable()}"
            status = ConnectionStatus.DISCONNECTED
        self.bus.publish(CONNECTION, ConnectionState(COMPONENT, status, detail,
                                                     self.clock.now()))  # fmt: skip

    def _down(self, reason: str) -> None:
        was = self.connected
        self.connected = False
        self.last_error = reason
        self._ready.clear()
        if was or self.connects == 0:
            log.warning("order node stream down: %s", reason)
        self._publish_status()
