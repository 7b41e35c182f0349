"""``BreezeSocket``: one of ICICI's Socket.IO connections, kept up for as long as it runs.

ICICI streams ticks and order notifications on two connections that behave alike: the same
``auth={"user", "token"}`` (the session key from the SDK's login), the same refusal when the
key is gone, the same Engine.IO pings. breeze-connect runs each on python-socketio's threaded
client and re-registers its handlers on every reconnect; we use the same library's
``AsyncClient`` on the event loop (no thread to outlive ``stop``) with our own reconnection,
and the tick feed and the order stream each own one of these.

Reconnection: after a drop the first attempt comes after ``first_delay`` (0.1-0.2 s), then
backing off with jitter up to ``max_delay``. A connection that says nothing, pings included,
for ``stale_after`` seconds (never less than 1.5 of the server's ping intervals, so a quiet
healthy stream is not cut between pings) is reported DISCONNECTED and redialled. A refused
connect (the session key is gone) calls ``on_session_expired`` once and waits for a new key
instead of retrying the dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from services.brokers.ports import SessionToken
from services.bus import CONNECTION, EventBus
from services.clock import Clock, SystemClock
from services.domain import ConnectionState, ConnectionStatus
from services.tasks import BackgroundTask

USER_AGENT = "python-socketio[client]/socket"  # what the SDK sends
REFUSED = "One or more namespaces failed to connect"


def client_class() -> Any:
    """python-socketio's AsyncClient whose Engine.IO layer reports every packet (pings too),
    so that a quiet but healthy stream is not taken for a dead one."""
    import engineio  # type: ignore[import-untyped]
    import socketio  # type: ignore[import-untyped]

    class PacketClock(engineio.AsyncClient):  # type: ignore[misc]
        on_packet: Callable[[], None] | None = None

        async def _receive_packet(self, pkt: Any) -> None:
            if self.on_packet is not None:
                self.on_packet()
            await super()._receive_packet(pkt)

    class Client(socketio.AsyncClient):  # type: ignore[misc]
        def _engineio_client_class(self) -> Any:
            return PacketClock

    return Client


class BreezeSocket:
    """A self-healing connection to ``url``; ``start``/``stop`` on the event loop.

    ``handlers`` maps Socket.IO events to callbacks; ``on_connected(client)`` is awaited on
    every connect before it is reported CONNECTED (the feed joins its rooms there);
    ``alongside()`` runs as a task for the life of each connection (the order stream reads
    the order lists there) and is cancelled when the connection ends.
    """

    def __init__(
        self,
        component: str,
        what: str,
        url: Callable[[], str],
        token: Callable[[], SessionToken | None],
        handlers: Mapping[str, Callable[[Any], None]],
        *,
        bus: EventBus | None,
        clock: Clock | None = None,
        on_connected: Callable[[Any], Awaitable[None]] | None = None,
        alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
        on_session_expired: Callable[[], None] | None = None,
        stale_after: float = 2.0,
        first_delay: float = 0.1,
        max_delay: float = 3.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.component = component
        self.what = what
        self._url = url
        self._token = token
        self._handlers = dict(handlers)
        self._bus = bus
        self._clock = clock or SystemClock()
        self._on_connected = on_connected
        self._alongside = alongside
        self.on_session_expired = on_session_expired
        self.stale_after = stale_after
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.connect_timeout = connect_timeout
        self._task = BackgroundTask(component, self._run)
        self._refused_token: str | None = None
        self.client: Any = None  # while connected
        self.connected = False
        self.stale = False
        self.connects = 0
        self.refusals = 0
        self.detail = ""
        self.last_message: float | None = None  # time.monotonic() of the last packet

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._task.start()

    def stop(self) -> None:
        """Cancel the connection; it closes its socket as it unwinds."""
        self._task.stop()

    async def stopped(self) -> None:
        """``stop`` and wait until the socket is closed (tests, shutdown)."""
        await self._task.stopped()

    @property
    def running(self) -> bool:
        return self._task.running

    def touch(self) -> None:
        self.last_message = time.monotonic()

    # -- the connection ---------------------------------------------------------------------

    def _state(self, status: ConnectionStatus, detail: str = "") -> None:
        self.detail = detail
        if self._bus is not None:
            self._bus.publish(
                CONNECTION, ConnectionState(self.component, status, detail, ts=self._clock.now())
            )

    def _delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * (2.0**attempt))
        return base * (1 + random.random())  # jitter: up to twice the base  # noqa: S311

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                token = self._token()
                if token is None or token.access_token == self._refused_token:
                    self._state(ConnectionStatus.DISCONNECTED, "no Breeze session: log in")
                    await self._wait_for_new_token()
                    continue
                ended = await self._session(token)
                if ended == "refused":
                    self.refusals += 1
                    self._refused_token = token.access_token
                    if self.on_session_expired is not None:
                        self.on_session_expired()
                    continue
                attempt = 0 if ended == "dropped" else attempt + 1
                await asyncio.sleep(self._delay(attempt))
        finally:
            self.connected = False

    async def _wait_for_new_token(self) -> None:
        """The token comes from a callable (the app's session store): poll it."""
        while True:
            token = self._token()
            if token is not None and token.access_token != self._refused_token:
                return
            await asyncio.sleep(0.5)

    async def _session(self, token: SessionToken) -> str:
        """One connection: how it ended (``refused``, ``failed``, ``dropped``)."""
        client = client_class()(reconnection=False, logger=False, engineio_logger=False)
        client.eio.on_packet = self.touch
        ended = asyncio.Event()
        for event, handler in self._handlers.items():
            client.on(event, handler)
        client.on("disconnect", lambda *args: ended.set())
        self._state(ConnectionStatus.CONNECTING)
        try:
            await client.connect(
                self._url(),
                headers={"User-Agent": USER_AGENT},
                auth={"user": token.extra.get("user_id", ""), "token": token.access_token},
                transports=["websocket"],
                wait_timeout=self.connect_timeout,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            if REFUSED in str(exc):
                self._state(ConnectionStatus.DISCONNECTED, "Breeze refused the session key")
                return "refused"
            self._state(ConnectionStatus.DISCONNECTED, f"cannot reach Breeze ({exc})")
            return "failed"
        alongside: asyncio.Task[None] | None = None
        try:
            self.client = client
            self.connected = True
            self.stale = False
            self.connects += 1
            self.touch()
            # Pings count as messages, so a healthy but quiet stream must not be called stale
            # between two of the server's pings: never less than 1.5 ping intervals.
            ping = float(getattr(client.eio, "ping_interval", 0) or 0)
            stale_after = max(self.stale_after, ping * 1.5)
            if self._on_connected is not None:
                await self._on_connected(client)
            self._state(ConnectionStatus.CONNECTED, f"connected (#{self.connects})")
            if self._alongside is not None:
                alongside = asyncio.get_running_loop().create_task(self._alongside())
            while not ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), timeout=0.25)
                last = self.last_message
                if last is not None and time.monotonic() - last > stale_after:
                    self.stale = True
                    self.connected = False
                    self._state(
                        ConnectionStatus.DISCONNECTED,
                        f"{self.what} silent for {stale_after:g} s: reconnecting",
                    )
                    return "dropped"
            self.connected = False
            self._state(ConnectionStatus.DISCONNECTED, f"{self.what} dropped: reconnecting")
            return "dropped"
        finally:
            self.connected = False
            self.client = None
            if alongside is not None:
                alongside.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await alongside
            with contextlib.suppress(Exception):
                await client.disconnect()


__all__ = ["REFUSED", "USER_AGENT", "BreezeSocket", "client_class"]
