"""Registered live brokers beside the one in use, as the Broker menu works them.

The terminal's prices and orders come from one feed and one venue (``settings.feed`` and
``settings.broker``). Every other registered live broker can still be:

- **logged in to**: its day's token goes to the keyring, ready for when the settings choose
  it (or for the order node), through the same ``interactive_login`` as the one in use;
- **connected**: its session, its day's master and its feed run here, on an event bus of
  their own, so the trader sees that the broker works (its feed's state reaches the
  terminal's ``CONNECTION`` topic as ``feed:<name>``) while its prices never mix with the
  feed in use (two sources for one instrument would corrupt bars and volumes);
- **disconnected** again.

What is shown of a broker that is not connected (logged in or not, session expired) is read
from its stored session (``BrokerSession.current``) off the loop, when ``refresh`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.bars import BarBuilder
from services.broker import BrokerError
from services.brokers import registry
from services.brokers.live import LiveBroker, LiveOptions, interactive_login
from services.brokers.ports import BrokerSession, LoginPrompt, SecretStore, SessionToken
from services.bus import CONNECTION, EventBus, SubscriberLagged, Subscription
from services.clock import Clock
from services.domain import ConnectionState
from services.instruments import InstrumentRegistry
from services.tasks import cancel_and_wait

log = logging.getLogger(__name__)

NOT_SET_UP = "not set up"


@dataclass(frozen=True, slots=True)
class SessionFor:
    """What a standby broker needs from the app: its settings section and the secrets."""

    settings: Mapping[str, object]
    secrets: SecretStore | None


class StandbyBroker:
    """One registered live broker that is not the terminal's feed."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        bus: EventBus,
        config: Callable[[], SessionFor],
        *,
        watch: Iterable[str] = (),
        brokers: registry.Brokers = registry.DEFAULT_BROKERS,
    ) -> None:
        self.name = name
        self.title = registry.entry(name).title
        self._clock = clock
        self._bus = bus  # the terminal's: only CONNECTION states are forwarded to it
        self._config = config
        self._watch = list(watch)
        self._brokers = brokers
        self._session: BrokerSession | None = None
        self._token: SessionToken | None = None
        self._problem: str | None = None  # why it cannot be built (no credentials)
        self.live: LiveBroker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._states: Subscription[ConnectionState] | None = None

    # -- what the menu shows -------------------------------------------------------------

    @property
    def session_state(self) -> str:
        """``valid``, ``expired``, ``not logged in`` or ``not set up`` (no credentials)."""
        live = self.live
        if live is not None:
            return live.session_state
        if self._problem is not None:
            return NOT_SET_UP
        token = self._token
        if token is None:
            return "not logged in"
        return "valid" if token.valid_at(self._clock.now()) else "expired"

    @property
    def connected(self) -> bool:
        return self.live is not None and self.live.feed_connected

    def _context(self, bus: EventBus) -> registry.BrokerContext:
        config = self._config()
        return registry.BrokerContext(
            self._clock, bus, secrets=config.secrets, settings=dict(config.settings)
        )

    def _build_session(self) -> BrokerSession | None:
        """Blocking (an SDK import, the keyring): call it in a worker thread."""
        parts = self._brokers.build(self.name, self._context(EventBus()))
        return parts.session

    async def refresh(self) -> None:
        """Read the stored session again (a ``dalal login`` elsewhere may have saved one)."""
        if self.live is not None:
            return
        try:
            if self._session is None:
                self._session = await asyncio.to_thread(self._build_session)
            session = self._session
            self._token = (
                await asyncio.to_thread(session.current, self._clock.now())
                if session is not None
                else None
            )
            self._problem = None
        except BrokerError as exc:  # no credentials stored: say how, do not fail the menu
            self._session = None
            self._problem = str(exc)

    # -- verbs ---------------------------------------------------------------------------

    async def login(
        self, open_browser: Callable[[str], object], prompt: LoginPrompt | None = None
    ) -> SessionToken:
        if self.live is not None:
            return await self.live.login(open_browser, prompt=prompt)
        session = self._session or await asyncio.to_thread(self._build_session)
        self._session = session
        redirect = self._config().settings.get("redirect_url")
        token = await interactive_login(
            self.name,
            session,
            open_browser,
            redirect_url=str(redirect) if redirect else None,
            prompt=prompt,
        )
        self._token, self._problem = token, None
        return token

    async def connect(self) -> str:
        """Log the session in, load the day's master and start the feed on a private bus."""
        if self.live is not None:
            return f"{self.title} is already connected"
        private = EventBus()
        loop = asyncio.get_running_loop()
        private.bind_loop(loop)
        clock = self._clock
        context = self._context(private)
        try:
            live = await asyncio.to_thread(
                LiveBroker,
                self.name,
                context,
                InstrumentRegistry(),
                BarBuilder(private, clock=clock),
                options=LiveOptions(trading=False),
                brokers=self._brokers,
            )
        except BrokerError as exc:
            self._problem = str(exc)
            return f"{self.title} cannot connect: {exc}"
        if not live.session_valid:
            return f"{self.title} cannot connect: {live.session_state}; log in first"
        self._states = private.subscribe(CONNECTION, f"standby:{self.name}", lossless=True)
        self._tasks.append(loop.create_task(self._forward(), name=f"standby:{self.name}"))
        try:
            count = await live.load_instruments()
        except BrokerError as exc:
            await self._stop_tasks()
            return f"{self.title} cannot connect: {exc}"
        live.watch(self._watch)
        live.start_stream(loop)
        self._tasks.append(loop.create_task(live.watchdog(), name=f"standby:{self.name}:expiry"))
        self.live = live
        return f"connecting to {self.title} ({count:,} instruments; not the feed in use)"

    async def _forward(self) -> None:
        """The private bus's connection states, on the terminal's bus (the status bar)."""
        states = self._states
        assert states is not None
        while True:
            with contextlib.suppress(SubscriberLagged):
                self._bus.publish_many(CONNECTION, await states.next_batch())

    async def _stop_tasks(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        states, self._states = self._states, None
        if states is not None:
            with contextlib.suppress(SubscriberLagged):
                self._bus.publish_many(CONNECTION, states.drain())  # the last word: stopped
            states.close()

    async def disconnect(self) -> str:
        live = self.live
        if live is None:
            return f"{self.title} is not connected"
        said = live.disconnect()  # feed:<name> DISCONNECTED, forwarded by _stop_tasks
        live.stop_stream()
        await self._stop_tasks()
        self.live = None
        self._session = live.session
        await self.refresh()
        return said


class StandbyBrokers:
    """Every registered live broker but the one in use, by name."""

    def __init__(self, brokers: dict[str, StandbyBroker]) -> None:
        self.brokers = brokers

    def __contains__(self, name: object) -> bool:
        return name in self.brokers

    def get(self, name: str) -> StandbyBroker:
        return self.brokers[name]

    async def refresh(self) -> None:
        """Each broker's stored session, read again; one that cannot be read (a locked
        keyring) keeps what was known and is logged, the others still refresh."""
        brokers = list(self.brokers.values())
        results = await asyncio.gather(*(b.refresh() for b in brokers), return_exceptions=True)
        for broker, result in zip(brokers, results, strict=True):
            if isinstance(result, Exception):
                log.warning("%s session not read: %s", broker.title, result)

    async def close(self) -> None:
        for broker in self.brokers.values():
            if broker.live is not None:
                await broker.disconnect()
