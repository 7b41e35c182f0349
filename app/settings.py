"""User settings: what the terminal starts with, loaded from a JSON file in the config dir.

Pydantic validates the file so that a hand-edited typo gives a clear message naming the field
instead of a crash deep inside a service.
"""

from __future__ import annotations

import json
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    seed: int = 42
    ticks_per_second: float = Field(default=200.0, gt=0, le=50_000)
    # The simulator ticks outside 09:15-15:30 IST by default so a new user sees a live market
    # whenever they first start the app; switch it off to follow real market hours.
    always_open: bool = True
    opening_balance: str = Field(default="1000000", pattern=r"^\d{1,12}(\.\d{1,2})?$")
    watchlist: list[str] = Field(default_factory=lambda: list(DEFAULT_WATCHLIST))


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
    path = path or config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(settings.model_dump_json(indent=2), "utf-8")
    tmp.replace(path)
