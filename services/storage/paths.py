"""Where a profile's files live. The base directory is injectable so tests never touch $HOME."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "dalal-terminal"
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def default_data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME)


def default_cache_dir() -> Path:
    return platformdirs.user_cache_path(APP_NAME)


def check_profile_name(profile: str) -> str:
    """Profile names become directory names and keyring entries: keep them boring."""
    if not _PROFILE.fullmatch(profile) or profile in {".", ".."}:
        raise ValueError(f"invalid profile name {profile!r}: use letters, digits, '.', '_' or '-'")
    return profile


@dataclass(frozen=True, slots=True)
class ProfilePaths:
    profile: str
    directory: Path
    cache_directory: Path

    @classmethod
    def for_profile(
        cls, profile: str, base_dir: Path | None = None, cache_dir: Path | None = None
    ) -> ProfilePaths:
        check_profile_name(profile)
        base = base_dir if base_dir is not None else default_data_dir()
        cache = cache_dir if cache_dir is not None else default_cache_dir()
        return cls(profile, base / "profiles" / profile, cache / "profiles" / profile)

    @property
    def database(self) -> Path:
        return self.directory / "terminal.db"

    @property
    def wal(self) -> Path:
        return self.directory / "terminal.db-wal"

    @property
    def shm(self) -> Path:
        return self.directory / "terminal.db-shm"

    @property
    def header(self) -> Path:
        """Non-secret vault header: key mode and, in passphrase mode, the Argon2 salt."""
        return self.directory / "vault.json"

    @property
    def lockout(self) -> Path:
        return self.directory / "lockout.json"
