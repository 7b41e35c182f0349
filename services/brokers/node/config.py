"""The node venue's configuration: where the node is, its pinned certificate, its key.

The API key is a trade-scoped key created on the node (``dalal apikey create --scope trade
--scope read``) and kept in the desktop's credential store under ``node`` (field
``api_key``), never in the settings file.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.broker import BrokerError
from services.brokers.node.execution import NODE_LIMITS, NodeExecution
from services.brokers.node.gtt import NodeGtt
from services.brokers.node.stream import NodeStream
from services.brokers.ports import SecretStore
from services.brokers.registry import BrokerContext, BrokerParts
from services.bus import EventBus
from services.clock import Clock

NAME = "node"
TITLE = "Order node (your static-IP VPS)"
LIMITS = NODE_LIMITS
SECRET_FIELD = "api_key"  # noqa: S105 (a field name, not a secret)

__all__ = ["LIMITS", "NAME", "TITLE", "NodeVenue", "build", "build_venue"]


@dataclass
class NodeVenue:
    """The execution client and the event stream of one node, built together."""

    execution: NodeExecution
    stream: NodeStream
    gtt: NodeGtt  # the node's /v1/gtts: GTTs fire with the desktop closed

    def admission(self) -> str | None:
        """Why a new order must not go out now: the node is unreachable or HALTED."""
        down = self.stream.unreachable()
        if down is not None:
            return f"orders unavailable: {down}"
        if self.stream.trading_state.get("state") == "HALTED":
            reason = self.stream.trading_state.get("reason") or "kill switch"
            return (f"the order node is HALTED ({reason}); resume it from the risk panel or "
                    "`dalal node resume`")  # fmt: skip
        return None


def build_venue(
    url: str | None,
    fingerprint: str | None,
    secrets: SecretStore | None,
    bus: EventBus,
    clock: Clock,
) -> NodeVenue:
    if not url:
        raise BrokerError("the node venue needs the node's address: set node.url (https://...)")
    stored = secrets.get(NAME) if secrets is not None else None
    key = (stored or {}).get(SECRET_FIELD)
    if not key:
        raise BrokerError("the node venue needs a trade-scoped API key of the node: "
                          "`dalal node pair URL` stores it")  # fmt: skip
    stream = NodeStream(url, key, bus, clock, fingerprint=fingerprint)
    execution = NodeExecution(url, key, fingerprint=fingerprint, reachable=stream.unreachable,
                              fills=stream.fill_list)  # fmt: skip
    return NodeVenue(execution, stream, NodeGtt(execution))


def build(context: BrokerContext) -> BrokerParts:
    """The registry's entry point: the node's ``ExecutionClient`` (its stream runs in the app).

    ``context.settings`` is the ``node`` settings section (``url``, ``fingerprint``); the key
    comes from ``context.secrets`` under ``node``.
    """
    venue = build_venue(
        context.settings.get("url"),
        context.settings.get("fingerprint"),
        context.secrets,
        context.bus,
        context.clock,
    )
    return BrokerParts(NAME, execution=venue.execution, gtt=venue.gtt)
