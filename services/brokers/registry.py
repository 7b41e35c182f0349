"""The brokers the terminal knows: adding a broker is one ``BrokerEntry`` in ``REGISTRY``.

Each entry names a package laid out like ``services/brokers/_template`` (see its README):
``config.py`` holds the broker's limits and a ``build(context) -> BrokerParts`` that makes
its adapters, importing the SDK only inside. The app, the CLI (``dalal login BROKER``,
``dalal check-connections``), the desktop's Broker menu and the conformance suite
(``tests/brokers/conformance``) all iterate this registry; none of them names a broker.

Roles say what a broker can be chosen for: the execution venue and the data feed are
chosen separately (paper orders on live Kite data), so a data-only provider registers with
``feed``/``history`` roles and no ``execution``.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from services.brokers.ports import (
    BrokerSession,
    ExecutionClient,
    GttVenue,
    HistoryProvider,
    InstrumentMaster,
    InstrumentProvider,
    LoginSpec,
    MarketDataFeed,
    OrderUpdateStream,
    SecretStore,
    SessionToken,
)
from services.bus import EventBus
from services.clock import Clock

if TYPE_CHECKING:
    from services.brokers.throttle import DailyCountStore
    from services.instruments import InstrumentRegistry


class Role(enum.StrEnum):
    EXECUTION = "execution"
    FEED = "feed"
    HISTORY = "history"
    INSTRUMENTS = "instruments"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class BrokerEntry:
    """One registered broker. ``name`` is the CLI word, the settings section and the keyring
    entry (``dalal login kite``, ``[brokers.kite]``, credentials ``kite``)."""

    name: str
    title: str
    package: str  # "services.brokers.kite": its config.py has LIMITS and build()
    roles: frozenset[Role]
    live: bool = True  # False for the paper venue: no login, no network

    def module(self, part: str = "config") -> Any:
        """Import one of the broker's files (``config``, ``session``, ...)."""
        return importlib.import_module(f"{self.package}.{part}")


REGISTRY: tuple[BrokerEntry, ...] = (
    BrokerEntry(
        "paper",
        "Paper trading",
        "services.paper",
        frozenset({Role.EXECUTION}),
        live=False,
    ),
    BrokerEntry(
        "kite",
        "Zerodha Kite",
        "services.brokers.kite",
        frozenset(Role),
    ),
    BrokerEntry(
        "breeze",
        "ICICI Direct Breeze",
        "services.brokers.breeze",
        frozenset(Role),
    ),
    BrokerEntry(
        "angelone",
        "Angel One",
        "services.brokers.angelone",
        frozenset(Role),
    ),
    BrokerEntry(
        "upstox",
        "Upstox",
        "services.brokers.upstox",
        frozenset(Role),
    ),
    # Orders through the trader's own order node (static IP); it holds the real broker.
    BrokerEntry(
        "node",
        "Order node (your static-IP VPS)",
        "services.brokers.node",
        frozenset({Role.EXECUTION}),
    ),
)


class UnknownBroker(KeyError):
    def __str__(self) -> str:
        known = ", ".join(e.name for e in REGISTRY)
        return f"unknown broker {self.args[0]!r}; known brokers: {known}"


def entries(role: Role | None = None) -> list[BrokerEntry]:
    return [e for e in REGISTRY if role is None or role in e.roles]


def names(role: Role | None = None, *, live_only: bool = False) -> list[str]:
    return [e.name for e in entries(role) if e.live or not live_only]


def entry(name: str) -> BrokerEntry:
    for e in REGISTRY:
        if e.name == name:
            return e
    raise UnknownBroker(name)


def login_spec(name: str) -> LoginSpec:
    """How broker ``name`` logs in (its ``config.LOGIN``), read without building it: the
    command line makes ``dalal login NAME``'s options from it."""
    spec = getattr(entry(name).module("config"), "LOGIN", None)
    return spec if isinstance(spec, LoginSpec) else LoginSpec()


@dataclass
class BrokerContext:
    """What the app hands a broker's ``build``: shared services and that broker's settings.

    ``endpoints`` is the broker's own endpoints object (production when ``None``; tests pass
    the fake server's URLs); ``settings`` is the broker's settings section as a mapping.
    """

    clock: Clock
    bus: EventBus
    secrets: SecretStore | None = None
    counts: DailyCountStore | None = None
    executor: Executor | None = None
    endpoints: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    on_session_expired: Callable[[], None] | None = None
    instruments: InstrumentRegistry | None = None  # the paper venue's universe
    access_token: str | None = None  # a token given explicitly (tests, benches)
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific knobs


class FeedFactory(Protocol):
    def __call__(self, master: InstrumentMaster) -> MarketDataFeed: ...


@dataclass
class BrokerParts:
    """A broker's adapters, each ``None`` when the broker lacks that role.

    ``feed`` is a factory: a feed maps keys through the day's master, so it is built once
    the master is loaded (``feed.use_master`` is not part of the port: a new master after
    the morning reload reaches the feed through ``use_master`` here). ``use_token`` hands a
    new day's token (after a login or renewal) to every part that holds one, the feed
    included, without rebuilding them.
    """

    name: str
    session: BrokerSession | None = None
    instruments: InstrumentProvider | None = None
    execution: ExecutionClient | None = None
    history: HistoryProvider | None = None
    feed: FeedFactory | None = None
    # Order updates on a socket of their own (not on the feed), started with the feed.
    order_stream: OrderUpdateStream | None = None
    # GTTs held at the broker (Kite, Upstox); None: the terminal's own GTT book serves.
    gtt: GttVenue | None = None
    use_token: Callable[[SessionToken], None] = lambda token: None
    # The day's master, once loaded or reloaded, for parts that map keys (history).
    use_master: Callable[[InstrumentMaster], None] = lambda master: None
    logged_in: bool = True  # a usable token was found (or none is needed)


def build(name: str, context: BrokerContext) -> BrokerParts:
    """Build broker ``name``'s adapters: ``<package>.config.build(context)``."""
    parts: BrokerParts = entry(name).module("config").build(context)
    return parts


Builder = Callable[[BrokerContext], BrokerParts]


@dataclass(frozen=True)
class Brokers:
    """The registry as the app sees it: ``build`` by name, with optional replacements.

    ``overrides`` swaps one broker's ``build`` (a test's paper venue with demat holdings, a
    bench's instrumented adapter) without patching the app's modules.
    """

    overrides: Mapping[str, Builder] = field(default_factory=dict)

    def build(self, name: str, context: BrokerContext) -> BrokerParts:
        custom = self.overrides.get(name)
        if custom is not None:
            return custom(context)
        return build(name, context)


DEFAULT_BROKERS = Brokers()
