"""A live broker's day token in a long-running node: readiness, and SIGHUP.

Broker tokens die every day (at 06:00 IST for some). ``/readyz`` then reports ``broker_session``
as expired, and the running process takes the token that the next ``dalal login BROKER``
saves, without a restart: ``services.brokers.live.SessionRenewal`` (generic over brokers)
polls the credential store while the session is expired, and SIGHUP (installed here, the
process's signal) wakes it at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.brokers.live import SESSION_POLL_SECONDS, SessionRenewal
from services.health import Check

if TYPE_CHECKING:
    from services.brokers.live import LiveBroker

__all__ = [
    "SESSION_POLL_SECONDS",
    "SessionRenewal",
    "broker_session_probe",
    "install_reload_signal",
]

log = logging.getLogger("dalal.headless")



def broker_session_probe(live: LiveBroker) -> Callable[[], Check]:
    def probe() -> Check:
        state = live.session_state
        execution = live.parts.execution
        details: dict[str, Any] = {"broker": execution.name if execution else live.name}
        if state != "valid":
            details["action"] = (
                f"run `dalal login {live.name}`, then SIGHUP or wait up to a minute"
            )
        return Check("broker_session", state == "valid", state, details=details)

    return probe



def install_reload_signal(loop: asyncio.AbstractEventLoop, renewal: SessionRenewal) -> bool:
    """SIGHUP: look for a new broker token now; False where signals cannot be handled."""
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return False
    try:
        loop.add_signal_handler(sighup, _on_reload, renewal)
    except (NotImplementedError, RuntimeError):
        return False
    return True


def _on_reload(renewal: SessionRenewal) -> None:
    log.info("received SIGHUP: looking for a new broker session token")
    renewal.wake()
