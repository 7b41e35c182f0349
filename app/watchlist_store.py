"""The desktop's watchlists kept in the settings file, beside the rest of the profile's settings.

The single watchlist of older profiles lived in ``settings.json``; the named lists stay there
(``Settings.watchlists``). Every change is written at once, but off the UI thread: a single
worker rewrites the file in submission order (atomically, as ``save_settings`` does), reading
it first so that other settings changed meanwhile (the Settings dialog) are kept.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.settings import (
    SettingsError,
    WatchlistsSettings,
    config_dir,
    load_settings,
    save_settings,
)
from widgets.watchlist_lists import NamedList, WatchlistState

log = logging.getLogger(__name__)


def state_of(section: WatchlistsSettings) -> WatchlistState:
    """The settings section as the watchlist widget holds it."""
    lists = tuple(NamedList(e.name, tuple(e.keys)) for e in section.lists)
    return WatchlistState(lists, section.current, tuple(section.columns))


def section_of(state: WatchlistState) -> WatchlistsSettings:
    state = state.normalised()
    return WatchlistsSettings.model_validate(
        {
            "lists": [{"name": e.name, "keys": list(e.keys)} for e in state.lists],
            "current": state.current,
            "columns": list(state.columns),
        }
    )


class FileWatchlistStore:
    """``widgets.watchlist_lists.WatchlistStore`` on the settings file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.json"
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dalal-watchlists")
        self.failures = 0

    def save(self, state: WatchlistState) -> None:
        self._writer.submit(self._write, section_of(state))

    def _write(self, section: WatchlistsSettings) -> None:
        try:
            settings = load_settings(self.path)
        except SettingsError as e:
            # A hand-edited file with a mistake in it is not overwritten: its other settings
            # would be lost. The lists stay on screen; the error says what to fix.
            self.failures += 1
            log.error("watchlists not saved: %s", e)
            return
        try:
            save_settings(settings.model_copy(update={"watchlists": section}), self.path)
        except OSError as e:
            self.failures += 1
            log.error("watchlists not saved to %s: %s", self.path, e)

    def close(self) -> None:
        """Wait for the writes already asked for (at shutdown)."""
        self._writer.shutdown(wait=True)
