"""Watchlist: search-and-add, removal, and repaint of changed rows only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from PySide6.QtCore import Qt

from services.domain import Tick
from widgets.watchlist import WatchlistWidget


def _watchlist(qtbot, services, keys=("NSE:INFY", "NSE:TCS", "NSE:SBIN")) -> WatchlistWidget:
    widget = WatchlistWidget(services, keys)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def _tick(key: str, price: str) -> Tick:
    p = Decimal(price)
    return Tick(key, datetime.now(UTC), p, 1, 100, p, p, p, Decimal(100))


def test_typing_a_prefix_and_enter_adds_the_instrument(qtbot, services):
    widget = _watchlist(qtbot, services)
    qtbot.keyClicks(widget.search, "REL")
    assert any(s.startswith("NSE:RELIANCE") for s in widget.completer.model().stringList())
    qtbot.keyClick(widget.search, Qt.Key.Key_Return)

    assert widget.keys() == ["NSE:INFY", "NSE:TCS", "NSE:SBIN", "NSE:RELIANCE"]
    assert widget.selected_key() == "NSE:RELIANCE"
    assert widget.search.text() == ""


def test_unknown_text_is_refused_with_a_message(qtbot, services):
    widget = _watchlist(qtbot, services)
    qtbot.keyClicks(widget.search, "ZZZQQ")
    qtbot.keyClick(widget.search, Qt.Key.Key_Return)
    assert widget.keys() == ["NSE:INFY", "NSE:TCS", "NSE:SBIN"]
    assert widget.message.text() == "no instrument matches 'ZZZQQ'"
    assert widget.add_key("NSE:NOPE") is False
    assert widget.message.text() == "unknown symbol NSE:NOPE"


def test_adding_twice_keeps_one_row(qtbot, services):
    widget = _watchlist(qtbot, services)
    assert widget.add_symbol("tcs") == "NSE:TCS"
    assert widget.keys().count("NSE:TCS") == 1


def test_delete_key_and_context_action_remove_the_selected_row(qtbot, services):
    widget = _watchlist(qtbot, services)
    selected: list[str] = []
    widget.instrumentSelected.connect(selected.append)
    widget.select_key("NSE:TCS")
    assert selected[-1] == "NSE:TCS"

    qtbot.keyClick(widget.table, Qt.Key.Key_Delete)
    assert widget.keys() == ["NSE:INFY", "NSE:SBIN"]

    widget.select_key("NSE:INFY")
    widget.remove_action.trigger()
    assert widget.keys() == ["NSE:SBIN"]


def test_a_tick_repaints_only_its_own_row_and_colours_by_change(qtbot, services):
    widget = _watchlist(qtbot, services)
    changes: list[tuple[int, int, int, int]] = []
    widget.model.dataChanged.connect(
        lambda a, b, _roles=None: changes.append((a.row(), b.row(), a.column(), b.column()))
    )
    up = _tick("NSE:SBIN", "101.50")
    widget.apply_ticks([up, replace(up, key="NSE:NOT-LISTED")])

    assert changes == [(2, 2, 1, 3)]  # one row, the live columns only
    assert widget.model.text("NSE:SBIN", "LTP") == "101.50"
    assert widget.model.text("NSE:SBIN", "Chg %") == "+1.50%"
    ltp = widget.model.index(2, 1)
    assert widget.model.data(ltp, Qt.ItemDataRole.ForegroundRole).name() == "#26c281"

    changes.clear()
    widget.apply_ticks([_tick("NSE:INFY", "99"), _tick("NSE:TCS", "98")])
    assert changes == [(0, 1, 1, 3)]  # adjacent rows merged into one span
    assert widget.model.data(widget.model.index(0, 2), Qt.ItemDataRole.ForegroundRole).name() == (
        "#ff5f57"
    )
