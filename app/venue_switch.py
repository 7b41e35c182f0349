"""Switching where orders go, the order node or the terminal's own venue, without a restart.

The data feed, charts and the rest of the terminal do not move; the order path does: the
order manager, the kill switch and the risk supervisor are handed the new venue together, and
the order book, positions and funds are re-read from it. The switch is refused, and nothing
changes, while an order is in flight (its answer belongs to the venue it went to), when the
new venue cannot be read (the node is down, its key refused), and when leaving the paper
broker would let paper-only senders (strategies, model signals) place real orders.

The node's event stream runs only while the node is the venue, and the paper broker's
matching loop only while it is: two venues publishing orders, fills and positions on one bus
would mix their books.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from services.broker import BrokerError
from services.brokers.ports import ExecutionClient
from services.bus import CONNECTION
from services.domain import ConnectionState, ConnectionStatus
from services.paper import PaperBroker
from services.paper.broker import BROKER_COMPONENT as PAPER_COMPONENT

if TYPE_CHECKING:
    from app.settings import NodeSettings
    from app.wiring import AppServices
    from services.brokers.node.config import NodeVenue

log = logging.getLogger(__name__)

NODE: Final = "node"
NODE_TASK = "node-stream"
PAPER_TASK = "broker"
NODE_COMPONENT = "broker:node"  # services.brokers.node.stream.COMPONENT (aiohttp: not imported)


class VenueSwitchRefused(BrokerError):
    """The venue was not switched; ``str(e)`` says why, for the trader."""


class NodeGate:
    """The order path's admission for the node venue: asks whichever node is in use now."""

    def __init__(self, node: NodeVenue | None) -> None:
        self.node = node

    def __call__(self) -> str | None:
        return self.node.admission() if self.node is not None else None


def venue_names(services: AppServices) -> list[tuple[str, str, bool]]:
    """(name, title, in use) of the venues this terminal can send orders to."""
    home = services.home_venue
    node = services.node
    where = node.execution.url if node is not None else "static IP"
    return [(home.name, _title(home.name), node is None),
            (NODE, f"Order node ({where})", node is not None)]  # fmt: skip


def _title(name: str) -> str:
    return "Paper trading" if name == "paper" else f"{name.capitalize()} (from this computer)"


async def switch_venue(services: AppServices, name: str) -> str:
    """Send orders to ``name`` (``node`` or the home venue's name) from now on.

    Returns what changed, for the trader; raises ``VenueSwitchRefused`` (nothing changed).
    """
    in_flight = services.orders.in_flight()
    if in_flight:
        raise VenueSwitchRefused(_in_flight_message(len(in_flight)))
    if name == NODE:
        if services.node is not None:
            return f"Orders already go through the order node at {services.node.execution.url}"
        # The settings file, where pairing put the node's address and pin (a file read).
        return await _to_node(services, await asyncio.to_thread(services.node_settings))
    if name != services.home_venue.name:
        raise VenueSwitchRefused(f"no venue {name!r} here: choose {services.home_venue.name!r} "
                                 "or 'node'")  # fmt: skip
    if services.node is None:
        return f"Orders already go to {_title(name).lower()}"
    paper_unopened = isinstance(services.home_venue, PaperBroker) and not services.home_restored
    if services.recorder is not None and paper_unopened:
        # Its book was not restored from the profile at the start (the node was the venue):
        # new paper orders would reuse today's ids and overwrite the journal's rows.
        raise VenueSwitchRefused(
            f"{_title(name)} was not opened in this session (the terminal started with the "
            'order node): set node.venue to "broker" in the settings and restart the terminal '
            "to trade there"
        )
    return await _to_home(services, services.node)


def _in_flight_message(count: int) -> str:
    return (f"{count} order(s) still waiting for their answer: the venue was not switched; "
            "try again once they are acknowledged")  # fmt: skip


async def _to_node(services: AppServices, settings: NodeSettings) -> str:
    if isinstance(services.home_venue, PaperBroker) and (
        services.strategy_runners
        or (services.models is not None and services.settings.models_paper_trading)
    ):
        raise VenueSwitchRefused(
            "strategies and model signals trade on the paper broker only: turn them off "
            "(settings) before sending orders through the order node"
        )
    from services.brokers.node.config import build_venue  # aiohttp: only for the node

    try:
        node = build_venue(settings.url, settings.fingerprint, services.secrets, services.bus,
                           services.clock)  # fmt: skip
    except BrokerError as e:
        raise VenueSwitchRefused(f"the order node cannot be used: {e} (Broker > Order node "
                                 "(static IP)… pairs it)") from None
    paper = services.home_venue if isinstance(services.home_venue, PaperBroker) else None
    try:
        _, scopes = await node.execution.key_info()
        if "trade" not in scopes:
            raise VenueSwitchRefused(
                "the order node's key cannot place orders (it lacks the trade scope): pair "
                "again with a key made by `dalal apikey create --scope trade --scope read`"
            )
        if paper is not None:  # its fills and positions must not reach the node's book
            await services.cancel_task(PAPER_TASK)
        await _use(services, node.execution)
    except BrokerError as e:
        await node.execution.close()
        if paper is not None and not services.has_task(PAPER_TASK):
            services.spawn(PAPER_TASK, paper.run())
        if isinstance(e, VenueSwitchRefused):
            raise
        raise VenueSwitchRefused(f"orders still go to {_title(services.home_venue.name).lower()}"
                                 f": the order node cannot be used now ({e})") from None
    services.node = node
    services.node_gate.node = node
    services.spawn(NODE_TASK, node.stream.run())
    if paper is not None:
        _notice(services, PAPER_COMPONENT, "not in use: orders go through the order node")
    log.info("orders now go through the order node at %s", node.execution.url)
    return f"Orders now go through the order node at {node.execution.url}"


async def _to_home(services: AppServices, node: NodeVenue) -> str:
    home = services.home_venue
    await services.cancel_task(NODE_TASK)  # the node's events must not reach the home book
    try:
        await _use(services, home)
    except BrokerError as e:
        services.spawn(NODE_TASK, node.stream.run())
        if isinstance(e, VenueSwitchRefused):
            raise
        raise VenueSwitchRefused(f"orders still go through the order node: {e}") from None
    services.node = None
    services.node_gate.node = None
    await node.execution.close()
    _notice(services, NODE_COMPONENT, f"not in use: orders go to {_title(home.name).lower()}")
    if isinstance(home, PaperBroker):
        services.spawn(PAPER_TASK, home.run())
    log.info("orders now go to %s", home.name)
    return f"Orders now go to {_title(home.name).lower()}"


def _notice(services: AppServices, component: str, text: str) -> None:
    """The status bar's word for a venue that is not in use (rather than "stopped")."""
    services.bus.publish(CONNECTION, ConnectionState(component, ConnectionStatus.DISCONNECTED,
                                                     text, services.clock.now()))  # fmt: skip


async def _use(services: AppServices, venue: ExecutionClient) -> None:
    """Hand every part of the order path the new venue, its book read first."""
    try:
        await services.orders.use_venue(venue)
    except BrokerError as e:
        if services.orders.in_flight():
            raise VenueSwitchRefused(_in_flight_message(len(services.orders.in_flight()))) from e
        raise
    services.broker = venue
    services.kill_switch.broker = venue
    services.risk_supervisor.use_broker(venue, services.orders.positions())
