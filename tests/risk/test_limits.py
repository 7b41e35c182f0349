from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.risk import RiskLimits, RiskProfiles
from services.risk.limits import NSE_OPTION_BANDS


def test_defaults_are_the_documented_ones() -> None:
    limits = RiskLimits()
    assert limits.max_orders_per_second == 8
    assert limits.equity_price_band_percent == Decimal(10)
    assert limits.option_price_bands == NSE_OPTION_BANDS
    assert limits.duplicate_window_seconds == 1.0


def test_profile_overrides_only_what_it_names() -> None:
    profiles = RiskProfiles.from_mapping(
        {
            "default": {"max_order_value": "500000"},
            "profiles": {"scalper": {"max_orders_per_second": 4, "max_open_orders": None}},
        }
    )
    scalper = profiles.limits_for("scalper")
    assert scalper.max_orders_per_second == 4
    assert scalper.max_open_orders is None
    assert scalper.max_order_value == Decimal(500_000)  # inherited from default
    assert profiles.limits_for(None).max_open_orders == 50
    with pytest.raises(KeyError):
        profiles.limits_for("nobody")


def test_json_round_trip_and_typos_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    profiles = RiskProfiles.from_mapping({"profiles": {"safe": {"max_order_value": "1000"}}})
    path = tmp_path / "risk.json"
    path.write_text(profiles.dump_json(), "utf-8")
    loaded = RiskProfiles.load(path)
    assert loaded.limits_for("safe").max_order_value == Decimal(1000)
    assert loaded.default == RiskLimits()
    with pytest.raises(ValidationError):
        RiskLimits.from_mapping({"max_order_vaule": 1})
    with pytest.raises(ValidationError):
        profiles.model_validate({"profiles": {"x": {"max_open_orders": 0}}}).limits_for("x")


def test_option_band_needs_exactly_one_width() -> None:
    with pytest.raises(ValidationError):
        RiskLimits.from_mapping({"option_price_bands": [{"up_to": "50"}]})
