"""Which data providers a profile uses, in priority order, and where each one lives.

No provider is on by default: a fresh install runs on the simulator with no network, and a
trader opts in (settings ``marketdata.providers``). Base URLs are settings so a proxy, a
recorded-fixture server or the test fakes can stand in; NSE's paths are settings because
NSE changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.clock import Clock
from services.marketdata.providers.base import (
    HistorySource,
    QuoteSource,
    TickSize,
    default_tick,
)
from services.marketdata.providers.nse import NseEndpoints

ProviderName = Literal["broker", "nse", "yfinance", "alphavantage", "polygon"]
PROVIDER_NAMES: tuple[str, ...] = ("broker", "nse", "yfinance", "alphavantage", "polygon")
# (provider) -> {field: value} from the credential store, or None
Credentials = Callable[[str], "dict[str, str] | None"]


class NseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    website: str = NseEndpoints.website
    archives: str = NseEndpoints.archives
    warmup: list[str] = Field(default_factory=lambda: list(NseEndpoints.warmup))
    quote: str = NseEndpoints.quote
    option_chain: str = NseEndpoints.option_chain
    holidays: str = NseEndpoints.holidays
    cm_bhavcopy: str = NseEndpoints.cm_bhavcopy
    fo_bhavcopy: str = NseEndpoints.fo_bhavcopy
    lot_sizes: str = NseEndpoints.lot_sizes

    def endpoints(self) -> NseEndpoints:
        data = self.model_dump()
        data["warmup"] = tuple(data["warmup"])
        return NseEndpoints(**data)


class MarketDataConfig(BaseModel):
    """Settings section ``marketdata`` (docs/data.md)."""

    model_config = ConfigDict(extra="forbid")

    # Tried in this order for every request; "broker" is the logged-in broker's history.
    providers: list[ProviderName] = Field(default_factory=list)
    # The chart fills its history from the providers (when any is configured).
    backfill_charts: bool = True
    # Where yfinance's https requests go instead of Yahoo (a proxy or a fake); None: Yahoo.
    yahoo_url: str | None = None
    alphavantage_url: str = "https://www.alphavantage.co"
    polygon_url: str = "https://api.polygon.io"
    nse: NseSettings = Field(default_factory=NseSettings)


def build_providers(
    config: MarketDataConfig,
    credentials: Credentials,
    *,
    cache_dir: Path | None = None,
    broker: HistorySource | None = None,
    tick_size: TickSize = default_tick,
    clock: Clock | None = None,
) -> list[HistorySource]:
    """The configured providers, in priority order (a "broker" entry needs ``broker``)."""
    out: list[HistorySource] = []
    for name in dict.fromkeys(config.providers):
        if name == "broker":
            if broker is not None:
                out.append(broker)
        elif name == "nse":
            from services.marketdata.providers.nse import NseArchivesProvider

            out.append(NseArchivesProvider(config.nse.endpoints(), tick_size=tick_size,
                                           clock=clock))
        elif name == "yfinance":
            from services.marketdata.providers.yahoo import YahooProvider

            out.append(YahooProvider(base_url=config.yahoo_url, cache_dir=cache_dir,
                                     tick_size=tick_size, clock=clock))
        elif name == "alphavantage":
            from services.marketdata.providers.alphavantage import AlphaVantageProvider

            out.append(AlphaVantageProvider(_key(credentials, "alphavantage"),
                                            base_url=config.alphavantage_url,
                                            tick_size=tick_size, clock=clock))
        elif name == "polygon":
            from services.marketdata.providers.polygon import PolygonProvider

            out.append(PolygonProvider(_key(credentials, "polygon"),
                                       base_url=config.polygon_url, tick_size=tick_size,
                                       clock=clock))
    return out


def quote_sources(
    config: MarketDataConfig, providers: Sequence[HistorySource]
) -> list[QuoteSource]:
    """The configured snapshot-quote providers, in the providers' priority order.

    "nse" quotes from NSE's website JSON (a different host from its archives); "yfinance"
    is the same provider object that serves history, so both share its circuit breaker.
    """
    out: list[QuoteSource] = []
    yahoo = next((p for p in providers if p.name == "yfinance"), None)
    for name in dict.fromkeys(config.providers):
        if name == "nse":
            from services.marketdata.providers.nse import NseWebsite

            out.append(NseWebsite(config.nse.endpoints()))
        elif name == "yfinance" and yahoo is not None:
            out.append(yahoo)  # type: ignore[arg-type]  # YahooProvider serves both ports
    return out


def _key(credentials: Credentials, provider: str) -> Callable[[], str | None]:
    def read() -> str | None:
        fields = credentials(provider)
        return (fields or {}).get("api_key")

    return read


def describe(providers: Sequence[HistorySource]) -> str:
    return ", ".join(p.name for p in providers) or "none"
