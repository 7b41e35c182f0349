"""The Kite day token in a long-running node: readiness, and taking a newly saved token.

With Zerodha Kite the access token dies at 06:00 IST every day. ``/readyz`` then reports
``broker_session`` as expired, and the running process takes the token that the next
``dalal login kite`` saves, without a restart: at once on SIGHUP, and by reading the credential
store every minute (in a worker thread) while the session is expired.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.health import Check

if TYPE_CHECKING:
    from app.kite_runtime import KiteRuntime
    from app.wiring import AppServices

log = logging.getLogger("dalal.headless")

SESSION_POLL_SECONDS = 60.0  # how often an expired Kite session looks for a new token


class SessionRenewal:
    """Takes a Kite token saved by another process (``dalal login kite``) into this one.

    ``wake`` (SIGHUP) checks at once; while the session is expired or missing the credential
    store is read every ``poll_interval`` seconds. An expiry itself only starts the polling:
    at that moment the stored token is the one Kite just refused. The read blocks (keyring,
    database), so it runs in a worker thread. A stored token equal to the one in use is not
    news.
    """

    def __init__(
        self,
        services: AppServices,
        kite: KiteRuntime,
        *,
        poll_interval: float = SESSION_POLL_SECONDS,
    ) -> None:
        self._services = services
        self._kite = kite
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._rearm = asyncio.Event()  # the session changed state: recompute the poll timeout
        self.renewals = 0
        services.on_session_expired(self._rearm.set)

    def wake(self) -> None:
        self._wake.set()

    async def check_now(self) -> bool:
        """Resume with the stored token if it is new; True if it was taken."""
        token = await asyncio.to_thread(self._kite.stored_token)
        if token is None or token == self._kite.broker.access_token:
            return False
        log.info("a new Kite access token was saved: resuming the broker session")
        self._services.session_renewed(token)
        self.renewals += 1
        return True

    async def run(self) -> None:
        while True:
            timeout = None if self._kite.session_valid else self.poll_interval
            waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, self._rearm)]
            try:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if self._rearm.is_set() and not self._wake.is_set():
                self._rearm.clear()
                continue  # just expired: poll from now on, the stored token is the refused one
            self._rearm.clear()
            self._wake.clear()
            try:
                await self.check_now()
            except Exception:  # a locked keyring must not end the watcher
                log.exception("could not read the stored Kite token")


def broker_session_probe(kite: KiteRuntime) -> Callable[[], Check]:
    def probe() -> Check:
        state = kite.session_state
        details: dict[str, Any] = {"broker": "zerodha"}
        if state != "valid":
            details["action"] = "run `dalal login kite`, then SIGHUP or wait up to a minute"
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
