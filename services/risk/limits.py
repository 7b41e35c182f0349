"""Risk limits: what a profile allows, with defaults a retail trader can start from.

Every limit can be switched off by setting it to ``None`` (or ``False`` for the margin check),
so a profile file only has to name what it changes. Profiles are plain JSON so the settings
screen and the headless operator edit the same thing.

Price bands. NSE refuses limit orders priced too far from a reference price; we refuse them
earlier, with a message, and against the last traded price:

* equity: +/-10 % (NSE's dynamic price band for stocks in F&O starts at 10 %);
* futures: +/-5 % (NSE's execution range for futures);
* options: NSE's Limit Price Protection for index options (circular of 28 October 2022):
  premium up to Rs 50 -> +/-Rs 20 absolute, above Rs 50 -> +/-40 %. ``option_price_bands``
  holds that table; each row applies up to and including ``up_to`` (``None`` = no ceiling).

Like the exchange, the band is one-sided per side: a buy priced above the upper bound or a
sell priced below the lower bound is refused; a buy far below the market cannot hurt anyone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OptionBand(BaseModel):
    """One row of the option price-band table: an absolute or a percentage band."""

    model_config = ConfigDict(frozen=True)

    up_to: Decimal | None = None
    absolute: Decimal | None = None
    percent: Decimal | None = None

    @model_validator(mode="after")
    def _one_width(self) -> OptionBand:
        if (self.absolute is None) == (self.percent is None):
            raise ValueError("an option band needs exactly one of 'absolute' and 'percent'")
        return self

    def width(self, reference: Decimal) -> Decimal:
        if self.absolute is not None:
            return self.absolute
        assert self.percent is not None
        return reference * self.percent / 100


NSE_OPTION_BANDS: tuple[OptionBand, ...] = (
    OptionBand(up_to=Decimal(50), absolute=Decimal(20)),
    OptionBand(up_to=None, percent=Decimal(40)),
)


class RiskLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_value: Decimal | None = Decimal(1_000_000)  # Rs 10 lakh
    max_order_quantity: int | None = Field(default=10_000, gt=0)
    max_open_orders: int | None = Field(default=50, gt=0)
    duplicate_window_seconds: float | None = Field(default=1.0, gt=0)
    max_orders_per_second: int | None = Field(default=8, gt=0)  # NSE cap for non-algo IDs: 10
    equity_price_band_percent: Decimal | None = Decimal(10)
    future_price_band_percent: Decimal | None = Decimal(5)
    option_price_bands: tuple[OptionBand, ...] | None = NSE_OPTION_BANDS
    # Fallback freeze limits by underlying name (Instrument.name, e.g. "NIFTY") when the
    # instrument data has none; the broker's instrument master is fresher, so it wins.
    freeze_quantities: dict[str, int] = Field(default_factory=dict)
    check_margin: bool = True
    daily_loss_limit: Decimal | None = Decimal(25_000)
    max_drawdown: Decimal | None = Decimal(40_000)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RiskLimits:
        return cls.model_validate(dict(data))


class RiskProfiles(BaseModel):
    """``default`` limits plus named profiles that override some of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RiskLimits = Field(default_factory=RiskLimits)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def limits_for(self, profile: str | None) -> RiskLimits:
        """Return the limits of ``profile`` (the defaults for ``None`` or ``"default"``)."""
        if profile in (None, "default"):
            return self.default
        try:
            overrides = self.profiles[profile]
        except KeyError:
            raise KeyError(f"unknown risk profile {profile!r}") from None
        merged = self.default.model_dump() | overrides
        return RiskLimits.model_validate(merged)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RiskProfiles:
        return cls.model_validate(dict(data))

    @classmethod
    def from_json(cls, text: str) -> RiskProfiles:
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: Path) -> RiskProfiles:
        """Read a profiles file (blocking: call at start-up or in an executor)."""
        return cls.from_json(path.read_text("utf-8"))

    def dump_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1)
