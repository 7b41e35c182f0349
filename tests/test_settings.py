"""Settings files: the documented risk section loads, and a typo names itself."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import SettingsError, load_settings

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user-guide.md"


def test_the_user_guide_risk_example_is_a_valid_settings_file(tmp_path: Path) -> None:
    text = GUIDE.read_text("utf-8")
    section = text[text.index("### Setting your limits") :]
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "settings.json"
    path.write_text(example.group(1))
    settings = load_settings(path)
    assert settings.risk.max_order_value == Decimal(500000)
    assert settings.risk.max_orders_per_second == 5
    assert settings.stuck_order_seconds == 60


def test_a_mistyped_limit_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"risk": {"max_order_valu": "1"}}))
    with pytest.raises(SettingsError, match=r"risk\.max_order_valu"):
        load_settings(path)


def test_an_unknown_paper_tariff_is_refused_with_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"paper_tariff": "zerodah"}))
    with pytest.raises(SettingsError, match=r"unknown tariff 'zerodah'; choose one of .*zerodha"):
        load_settings(path)


@pytest.mark.parametrize("section", ["kite", "upstox", "breeze"])
def test_a_login_redirect_off_loopback_is_refused_with_the_reason(section: str) -> None:
    from app.settings import Settings

    with pytest.raises(ValidationError, match="only binds the loopback address"):
        Settings.model_validate({section: {"redirect_url": "https://example.com/callback"}})
    ok = Settings.model_validate({section: {"redirect_url": "http://127.0.0.1:5000/cb"}})
    assert getattr(ok, section).redirect_url == "http://127.0.0.1:5000/cb"
