"""The systemd side of ``Type=notify``: ``READY=1`` once serving, ``STOPPING=1`` on drain.

A few lines of the documented datagram protocol on ``$NOTIFY_SOCKET``; no libsystemd needed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("dalal.headless")


def sd_notify(state: str, *, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd's notify socket; False when not under it."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", environ.get("NOTIFY_SOCKET"), e)
        return False
    return True
