"""Security errors; every message is safe to show and carries no key material."""

from __future__ import annotations

from services.storage.errors import WrongKeyError

__all__ = ["InsecureKeyringError", "KeyUnavailableError", "LockedOutError", "WrongKeyError"]


class InsecureKeyringError(Exception):
    """The selected keyring backend would keep secrets readable on disk (or not at all)."""


class KeyUnavailableError(Exception):
    """No key could be obtained from the chosen source (missing entry, fd, credential)."""


class LockedOutError(Exception):
    """Too many failed unlocks: the next attempt is allowed after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed unlock attempts; try again in {retry_after:.0f} s")
        self.retry_after = retry_after
