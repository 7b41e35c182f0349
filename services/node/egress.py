"""Which address the node's broker calls leave from: the one the trader registered.

On a dual-stack VPS a connection to the broker may leave by IPv6 while the IPv4 address is the
registered one (or the other way round), and the broker answers "IP not allowed". The broker
SDKs all make their REST calls through urllib3, which asks ``allowed_gai_family`` which
address family to resolve; pinning it makes every order call leave by the chosen family.
"""

from __future__ import annotations

import socket
from typing import Literal

Family = Literal["any", "ipv4", "ipv6"]

_FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def pin_family(family: Family) -> None:
    """Make every urllib3 connection of this process resolve only ``family``."""
    import urllib3.util.connection as connection

    chosen = _FAMILIES[family]
    original = getattr(connection, "_dalal_original_family", connection.allowed_gai_family)
    connection._dalal_original_family = original  # type: ignore[attr-defined]
    if chosen == socket.AF_UNSPEC:
        connection.allowed_gai_family = original
    else:
        connection.allowed_gai_family = lambda: chosen


def pinned_family() -> int:
    import urllib3.util.connection as connection

    return int(connection.allowed_gai_family())
