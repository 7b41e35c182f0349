"""User settings: what the terminal starts with, loaded from a JSON file in the config dir.

Pydantic validates the file so that a hand-edited typo gives a clear message naming the field
instead of a crash deep inside a service.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.costs import load_schedule
from services.marketdata.config import MarketDataConfig
from services.risk.limits import RiskLimits

if TYPE_CHECKING:
    from services.brokers.breeze.config import BreezeEndpoints
    from services.brokers.upstox.config import UpstoxEndpoints


def _loopback_only(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise ValueError(
            "must be http://127.0.0.1:<port>/<path>: the login listener only binds the "
            "loopback address"
        )
    return value


# A broker login's redirect URL: our listener catches the browser there, on loopback only.
LoopbackUrl = Annotated[str, AfterValidator(_loopback_only)]


APP_NAME = "dalal-terminal"

DEFAULT_WATCHLIST = [
    "NSE:NIFTY 50",
    "NSE:NIFTY BANK",
    "NSE:RELIANCE",
    "NSE:HDFCBANK",
    "NSE:ICICIBANK",
    "NSE:INFY",
    "NSE:TCS",
    "NSE:SBIN",
    "NSE:BHARTIARTL",
    "NSE:ITC",
    "NSE:LT",
    "NSE:TATASTEEL",
]


DEFAULT_KITE_REDIRECT = "http://127.0.0.1:5010/kite/callback"
SIMULATOR = "simulator"


class KiteSettings(BaseModel):
    """Zerodha Kite Connect. The API secret and the day's access token are not here: they
    live in the OS keyring (``dalal credentials set kite``, ``dalal login kite``)."""

    model_config = ConfigDict(extra="forbid")

    # The app's API key is not a secret (it is in every login URL), so it may sit here; when
    # empty, the key stored in the keyring with the secret is used.
    api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,64}$")
    # Must equal the redirect URL registered on the Kite Connect app, character for character.
    redirect_url: LoopbackUrl = DEFAULT_KITE_REDIRECT
    ticker_mode: Literal["ltp", "quote", "full"] = "full"
    # Endpoint overrides, for tests against a local fake Kite; None means Zerodha's servers.
    api_root: str | None = None
    login_url: str | None = None
    ticker_url: str | None = None


class OptionsSettings(BaseModel):
    """The option chain's pricing (services/options): NSE quotes IV off Black-76 on the
    future of the expiry; Black-Scholes on spot is the other convention traders use."""

    model_config = ConfigDict(extra="forbid")

    # The risk-free rate, a fraction a year: roughly the 91-day T-bill yield.
    risk_free_rate: float = Field(default=0.065, ge=0, le=0.5)
    model: Literal["black76", "black_scholes"] = "black76"
    dividend_yield: float = Field(default=0.0, ge=0, le=0.5)  # Black-Scholes only
class NodeSettings(BaseModel):
    """The order node (docs/operator-guide.md, "Orders from a static IP").

    On the node (``dalal headless`` on the VPS): SEBI's retail-algo controls. On the desktop:
    ``venue = "node"`` sends orders to the node at ``url`` instead of to the broker directly.
    """

    model_config = ConfigDict(extra="forbid")

    # -- on the node --
    # Orders per second per exchange (SEBI: 10 unless the strategy is exchange-registered).
    order_rate_per_second: int = Field(default=10, ge=1, le=10)
    # With a registered strategy id the broker allows more; the limit becomes this.
    registered_strategy_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    registered_rate_per_second: int = Field(default=50, ge=1, le=500)
    # What the 11th order in one second does: wait for the window, or be refused at once.
    rate_mode: Literal["wait", "refuse"] = "wait"
    # The algo id (or name) the broker knows this flow by; each broker's form is the adapter's.
    algo_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # Market protection in percent put on MARKET and SL-M orders that carry none.
    market_protection_percent: str = Field(default="2", pattern=r"^\d{1,2}(\.\d{1,2})?$")
    # Which address family the node's broker connections leave by, and the address the
    # operator registered with the broker (shown in /readyz and in "IP not allowed" messages).
    egress_family: Literal["any", "ipv4", "ipv6"] = "any"
    registered_ip: str | None = Field(default=None, max_length=45)
    # -- on the desktop --
    venue: Literal["broker", "node"] = "broker"
    url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    # SHA-256 of the node's TLS certificate, pinned on first use after the trader confirmed it.
    fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


DEFAULT_BREEZE_REDIRECT = "http://127.0.0.1:5011/breeze/callback"


class BreezeSettings(BaseModel):
    """ICICI Direct Breeze (docs/brokers/icici.md). The API key and secret and the day's
    session are in the vault (``dalal credentials set breeze``, ``dalal login breeze``)."""

    model_config = ConfigDict(extra="forbid")

    # Where ICICI's login page posts the API_Session: the redirect URL registered on the
    # Breeze app. A loopback one lets ``dalal login breeze`` catch it; otherwise paste it.
    redirect_url: LoopbackUrl = DEFAULT_BREEZE_REDIRECT
    # One local server standing in for every Breeze URL (tests, a recording proxy); None
    # means ICICI's servers.
    base_url: str | None = None

    def endpoints(self) -> BreezeEndpoints:
        from services.brokers.breeze.config import BreezeEndpoints

        return BreezeEndpoints.local(self.base_url) if self.base_url else BreezeEndpoints()


class AngelOneSettings(BaseModel):
    """Angel One SmartAPI. The client code, PIN and TOTP seed are not here: they live in the
    credential store (``dalal credentials set angelone --field api_key --field client_code
    --field pin --field totp_secret``); the day's session comes from ``dalal login angelone``."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Endpoint overrides, for tests against a local fake; None means Angel One's servers.
    api_root: str | None = None
    stream_url: str | None = None
    scrip_master_url: str | None = None
    order_stream_url: str | None = None  # None: Angel's, or the stream_url's host


class StrategySettings(BaseModel):
    """A built-in strategy trading live on the paper broker (docs/backtesting.md)."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["sma_cross", "orb"]
    symbols: list[str] = Field(min_length=1, max_length=50)
    params: dict[str, int] = Field(default_factory=dict)
    quantity: int = Field(default=1, gt=0, le=100_000)
    product: Literal["MIS", "CNC", "NRML"] = "MIS"
    timeframe: Literal["1m", "5m", "15m", "30m", "1h"] = "5m"

    @model_validator(mode="after")
    def _buildable(self) -> StrategySettings:
        from services.strategies import build_strategy

        build_strategy(
            self.name, {k: str(v) for k, v in self.params.items()}, quantity=self.quantity,
            product=self.product, timeframe=self.timeframe,
        )
        return self


DEFAULT_UPSTOX_REDIRECT = "http://127.0.0.1:53682/cb/upstox"


class UpstoxSettings(BaseModel):
    """Upstox (docs/brokers/upstox.md). The API key and secret and the day's token are not
    here: they live in the credential store (``dalal credentials set upstox``, ``dalal login
    upstox``)."""

    model_config = ConfigDict(extra="forbid")

    # Must equal the redirect URL registered on the Upstox app, character for character.
    redirect_url: LoopbackUrl = DEFAULT_UPSTOX_REDIRECT
    # The exchange-registered algo name sent as X-Algo-Name (registered strategies only;
    # empty for manual trading, when Upstox stamps its generic algo id).
    algo_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9 _.-]{1,64}$")
    # One local server standing in for every Upstox URL (tests); None means Upstox's servers.
    base_url: str | None = None

    def endpoints(self) -> UpstoxEndpoints:
        from services.brokers.upstox.config import UpstoxEndpoints

        return UpstoxEndpoints.local(self.base_url) if self.base_url else UpstoxEndpoints()


WatchlistColumn = Literal["bid", "ask", "open", "high", "low", "close", "oi"]


class WatchlistEntry(BaseModel):
    """One named watchlist: instrument keys (``NSE:INFY``) in the order they are shown."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    keys: list[str] = Field(default_factory=list, max_length=5_000)

    @field_validator("name")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if value != value.strip() or not value:
            raise ValueError("a list name has no leading or trailing spaces")
        return value


class WatchlistsSettings(BaseModel):
    """The desktop's named watchlists, the one on screen and the extra columns shown.

    The desktop saves this section whenever a list changes (``app/watchlist_store.py``).
    """

    model_config = ConfigDict(extra="forbid")

    lists: list[WatchlistEntry] = Field(
        default_factory=lambda: [WatchlistEntry(name="Default", keys=list(DEFAULT_WATCHLIST))],
        min_length=1,
        max_length=100,
    )
    current: str = "Default"
    columns: list[WatchlistColumn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique_and_current_known(self) -> WatchlistsSettings:
        seen: set[str] = set()
        for entry in self.lists:
            folded = entry.name.casefold()
            if folded in seen:
                raise ValueError(f"two lists are named {entry.name!r}")
            seen.add(folded)
        if self.current not in {entry.name for entry in self.lists}:
            raise ValueError(f"current: no list is named {self.current!r}")
        return self

    def all_keys(self) -> list[str]:
        """Every key in any list, the current list's first, each once."""
        ordered = sorted(self.lists, key=lambda e: e.name != self.current)
        return list(dict.fromkeys(k for entry in ordered for k in entry.keys))


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    seed: int = 42
    ticks_per_second: float = Field(default=200.0, gt=0, le=50_000)
    # The simulator ticks outside 09:15-15:30 IST by default so a new user sees a live market
    # whenever they first start the app; switch it off to follow real market hours.
    always_open: bool = True
    opening_balance: str = Field(default="1000000", pattern=r"^\d{1,12}(\.\d{1,2})?$")
    # Whose brokerage the paper broker charges (resources/charges/tariffs.json): paper P&L
    # is net of the charges that broker's contract note would show.
    paper_tariff: str = Field(default="zerodha", pattern=r"^[a-z0-9_]{1,32}$")
    # When the paper broker squares MIS positions off (IST), as a broker's RMS does; only
    # with real market hours (``always_open`` false).
    paper_square_off_at: time = time(15, 20)
    # Strategies that trade on the paper broker through the same order path and risk checks
    # as the ticket (never on a live broker: a backtested rule earns real money only by choice).
    strategies: list[StrategySettings] = Field(default_factory=list, max_length=20)
    # Where parameter sweeps run (dalal backtest --grid): None here, "local:N" for N worker
    # processes, or a dask scheduler "tcp://host:8786" (docs/backtesting.md).
    cluster: str | None = Field(default=None, pattern=r"^(local:\d{1,3}|(tcp|tls)://\S{1,200})$")
    # Named watchlists (``watchlists.lists``); a settings file from before named lists has one
    # ``watchlist`` array, read as the list named "Default" (``_single_watchlist_is_default``).
    watchlists: WatchlistsSettings = Field(default_factory=WatchlistsSettings)
    # The execution venue: "paper" (the built-in paper broker, no account) or a registered
    # live broker (services/brokers/registry.py), e.g. "kite" for real orders on Zerodha.
    broker: str = "paper"
    # The market data: "simulator" or a registered broker with a feed. Unset: the simulator
    # for paper, the broker itself for a live venue. "paper" orders on "kite" data works.
    feed: str | None = None
    # Each broker's own section, typed by its model (credentials stay in the keyring).
    kite: KiteSettings = Field(default_factory=KiteSettings)
    breeze: BreezeSettings = Field(default_factory=BreezeSettings)
    angelone: AngelOneSettings = Field(default_factory=AngelOneSettings)
    upstox: UpstoxSettings = Field(default_factory=UpstoxSettings)
    # Embedded models (registry, live signals, A/B tests): on whenever a profile database is
    # open. Paper trading from signals is off until chosen: it sends real orders to the broker.
    # Minutes of no keyboard or mouse before the window hides its data (docs/security.md).
    idle_lock_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # Pre-trade limits, daily loss and drawdown (services/risk/limits.py; user guide, Risk).
    risk: RiskLimits = Field(default_factory=RiskLimits)
    # An order open this long with no word from the broker is checked against its order book.
    stuck_order_seconds: float = Field(default=60.0, gt=0, le=86_400)
    models_enabled: bool = True
    models_paper_trading: bool = False
    models_paper_quantity: int = Field(default=1, gt=0, le=100_000)
    models_min_confidence: float = Field(default=0.3, ge=0, le=1)
    # joblib backend for training (docs/models.md): "threading", "loky", or a cluster backend
    # such as "dask" or "ray" once registered with joblib.
    models_training_backend: str = Field(default="threading", pattern=r"^[a-z_]{1,32}$")
    models_training_jobs: int = Field(default=1, ge=-1, le=1024)
    # The option chain's risk-free rate and pricing model.
    options: OptionsSettings = Field(default_factory=OptionsSettings)
    node: NodeSettings = Field(default_factory=NodeSettings)
    # Market-data providers for history (docs/data.md); none by default: no network.
    marketdata: MarketDataConfig = Field(default_factory=MarketDataConfig)
    # The desktop's look: "dark" (the terminal's own theme) or "system" (the platform's).
    theme: Literal["dark", "system"] = "dark"

    @model_validator(mode="before")
    @classmethod
    def _single_watchlist_is_default(cls, data: Any) -> Any:
        """Migrate ``"watchlist": [keys]`` to one list named "Default", keeping every key."""
        if not isinstance(data, Mapping) or "watchlist" not in data:
            return data
        if "watchlists" in data:
            raise ValueError(
                "watchlist: give the named lists in watchlists, or the older single watchlist, "
                "not both"
            )
        migrated = {k: v for k, v in data.items() if k != "watchlist"}
        migrated["watchlists"] = {
            "lists": [{"name": "Default", "keys": data["watchlist"]}],
            "current": "Default",
        }
        return migrated

    @property
    def watchlist(self) -> list[str]:
        """Every watched key (the current list's first): what the feed subscribes to."""
        return self.watchlists.all_keys()

    @field_validator("broker")
    @classmethod
    def _known_venue(cls, value: str) -> str:
        from services.brokers import registry

        venues = registry.names(registry.Role.EXECUTION)
        if value not in venues:
            raise ValueError(f"unknown broker {value!r}; choose one of {', '.join(venues)}")
        return value

    @field_validator("feed")
    @classmethod
    def _known_feed(cls, value: str | None) -> str | None:
        from services.brokers import registry

        feeds = [SIMULATOR, *registry.names(registry.Role.FEED)]
        if value is not None and value not in feeds:
            raise ValueError(f"unknown feed {value!r}; choose one of {', '.join(feeds)}")
        return value

    @model_validator(mode="after")
    def _venue_trades_on_its_own_data(self) -> Settings:
        from services.brokers import registry

        if registry.entry(self.broker).live and self.data_feed != self.broker:
            raise ValueError(
                f"feed: real orders on {self.broker!r} need its own market data, not "
                f"{self.data_feed!r} (paper trading may use any feed)"
            )
        return self

    @property
    def data_feed(self) -> str:
        """The feed in use: ``feed``, or the default for the venue."""
        if self.feed is not None:
            return self.feed
        from services.brokers import registry

        return self.broker if registry.entry(self.broker).live else SIMULATOR

    def broker_section(self, name: str) -> dict[str, object]:
        """Broker ``name``'s own settings as a mapping (empty when it has none)."""
        section = getattr(self, name, None)
        return section.model_dump() if isinstance(section, BaseModel) else {}

    @field_validator("paper_tariff")
    @classmethod
    def _known_tariff(cls, value: str) -> str:
        known = load_schedule().tariffs
        if value not in known:
            choices = ", ".join(sorted(known))
            raise ValueError(f"unknown tariff {value!r}; choose one of {choices}")
        return value


class SettingsError(Exception):
    pass


def config_dir() -> Path:
    return platformdirs.user_config_path(APP_NAME)


def load_settings(path: Path | None = None) -> Settings:
    """Return the saved settings, or defaults when there is no file yet."""
    path = path or config_dir() / "settings.json"
    if not path.exists():
        return Settings()
    try:
        return Settings.model_validate(json.loads(path.read_text("utf-8")))
    except json.JSONDecodeError as e:
        raise SettingsError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise SettingsError(f"{path}: {problems}") from None


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically: a crash or a full disk leaves the old file whole, never half a file."""
    path = path or config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(settings.model_dump_json(indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself, durable (not on every platform)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def settings_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each problem as (dotted field path, message); empty when ``data`` is valid."""
    try:
        Settings.model_validate(data)
    except ValidationError as e:
        return [
            (".".join(str(p) for p in err["loc"]) or "settings", _plain(err["msg"]))
            for err in e.errors()
        ]
    return []


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ")


class FileSettingsStore:
    """The settings file as the Settings dialog (``widgets.settings_dialog``) edits it."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.json"

    @property
    def location(self) -> str:
        return str(self.path)

    def load(self) -> dict[str, Any]:
        try:
            settings = load_settings(self.path)
        except SettingsError:  # show what is there, so it can be fixed in the dialog
            try:
                raw = json.loads(self.path.read_text("utf-8"))
            except (OSError, ValueError):
                raw = {}
            return raw if isinstance(raw, dict) else {}
        data: dict[str, Any] = settings.model_dump(mode="json")
        return data

    def problems(self, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        return settings_problems(data)

    def save(self, data: Mapping[str, Any]) -> None:
        save_settings(Settings.model_validate(data), self.path)
