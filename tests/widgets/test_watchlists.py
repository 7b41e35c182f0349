"""Named watchlists: create, rename, delete and switch from the keyboard, optional columns from
the header's menu, and all of it kept in the settings file across a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.settings import load_settings
from app.watchlist_store import FileWatchlistStore, state_of
from services.domain import Depth, DepthLevel, Tick
from widgets.watchlist import PromptMode, WatchlistWidget
from widgets.watchlist_lists import NamedList, WatchlistState

CTRL = Qt.KeyboardModifier.ControlModifier


def _shown(qtbot, widget: WatchlistWidget) -> WatchlistWidget:
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.table.setFocus()
    return widget


def _shortcut(widget: WatchlistWidget, key: Qt.Key) -> None:
    """Ctrl+key as the window system delivers it: through the shortcut map, to the focus."""
    QTest.keyClick(widget.windowHandle(), key, CTRL)


def _two_lists() -> WatchlistState:
    return WatchlistState(
        (
            NamedList("Default", ("NSE:INFY", "NSE:TCS")),
            NamedList("Banks", ("NSE:SBIN", "NSE:ICICIBANK", "NSE:HDFCBANK")),
        ),
        "Default",
    )


def _type_in_prompt(qtbot, widget: WatchlistWidget, text: str) -> None:
    widget.prompt.selectAll()
    qtbot.keyClicks(widget.prompt, text)
    qtbot.keyClick(widget.prompt, Qt.Key.Key_Return)


def test_ctrl_t_creates_a_list_from_the_keyboard_and_shows_it(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, ["NSE:INFY", "NSE:TCS"]))
    assert widget.list_names() == ["Default"] and widget.tabs.count() == 1

    _shortcut(widget, Qt.Key.Key_T)
    assert widget.prompt.isVisible() and widget.focusWidget() is widget.prompt
    assert widget.prompt_mode is PromptMode.NEW
    _type_in_prompt(qtbot, widget, "Swing")

    assert widget.list_names() == ["Default", "Swing"]
    assert widget.current_list() == "Swing" and widget.tabs.tabText(1) == "Swing"
    assert widget.tabs.currentIndex() == 1
    assert widget.keys() == [] and not widget.prompt.isVisible()
    # The search box adds to the list on screen, not to the first one.
    assert widget.add_symbol("REL") == "NSE:RELIANCE"
    assert widget.list_keys("Swing") == ["NSE:RELIANCE"]
    assert widget.list_keys("Default") == ["NSE:INFY", "NSE:TCS"]


def test_a_taken_or_empty_name_is_refused_and_esc_cancels(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, _two_lists()))
    widget.begin_new_list()
    _type_in_prompt(qtbot, widget, "banks")  # names compare without case
    assert widget.list_names() == ["Default", "Banks"]
    assert widget.message.text() == "there is already a list named 'banks'"
    assert widget.prompt.isVisible()  # still asking, with the reason beside it

    qtbot.keyClick(widget.prompt, Qt.Key.Key_Escape)
    assert not widget.prompt.isVisible() and widget.prompt_mode is PromptMode.NONE
    assert widget.create_list("   ") is False
    assert widget.message.text() == "a list needs a name"
    assert widget.create_list("x" * 41) is False
    assert widget.list_names() == ["Default", "Banks"]


def test_ctrl_pgdown_pgup_and_a_tab_click_switch_lists(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, _two_lists()))
    assert widget.keys() == ["NSE:INFY", "NSE:TCS"]

    _shortcut(widget, Qt.Key.Key_PageDown)
    assert widget.current_list() == "Banks"
    assert widget.keys() == ["NSE:SBIN", "NSE:ICICIBANK", "NSE:HDFCBANK"]
    _shortcut(widget, Qt.Key.Key_PageDown)  # wraps round
    assert widget.current_list() == "Default"
    _shortcut(widget, Qt.Key.Key_PageUp)
    assert widget.current_list() == "Banks"

    qtbot.mouseClick(widget.tabs, Qt.MouseButton.LeftButton, pos=widget.tabs.tabRect(0).center())
    assert widget.current_list() == "Default" and widget.keys() == ["NSE:INFY", "NSE:TCS"]
    # Ticks for a list not on screen change nothing; its prices come back on the switch.
    widget.apply_ticks([_tick("NSE:SBIN", "812.40")])
    assert widget.model.row_of("NSE:SBIN") is None


def test_ctrl_e_renames_the_current_list_and_double_click_renames_a_tab(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, _two_lists()))
    _shortcut(widget, Qt.Key.Key_E)
    assert widget.prompt_mode is PromptMode.RENAME and widget.prompt.text() == "Default"
    _type_in_prompt(qtbot, widget, "Core")
    assert widget.list_names() == ["Core", "Banks"] and widget.current_list() == "Core"
    assert widget.list_keys("Core") == ["NSE:INFY", "NSE:TCS"]  # the contents go with it

    widget.tabs.tabBarDoubleClicked.emit(1)
    assert widget.current_list() == "Banks" and widget.prompt.text() == "Banks"
    _type_in_prompt(qtbot, widget, "core")
    assert widget.message.text() == "there is already a list named 'core'"
    _type_in_prompt(qtbot, widget, "PSU Banks")
    assert widget.list_names() == ["Core", "PSU Banks"]
    assert [widget.tabs.tabText(i) for i in range(2)] == ["Core", "PSU Banks"]


def test_ctrl_w_asks_then_deletes_and_the_last_list_stays(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, _two_lists()))
    widget.switch_to("Banks")
    _shortcut(widget, Qt.Key.Key_W)
    assert widget.prompt_mode is PromptMode.DELETE
    assert widget.prompt.text() == (
        "Delete list 'Banks' (3 instruments)? Enter deletes, Esc keeps"
    )
    qtbot.keyClick(widget.prompt, Qt.Key.Key_Escape)
    assert widget.list_names() == ["Default", "Banks"]  # Esc keeps it

    _shortcut(widget, Qt.Key.Key_W)
    qtbot.keyClick(widget.prompt, Qt.Key.Key_Return)
    assert widget.list_names() == ["Default"] and widget.current_list() == "Default"
    assert widget.keys() == ["NSE:INFY", "NSE:TCS"] and widget.tabs.count() == 1

    assert not widget.delete_list_action.isEnabled()
    assert widget.delete_list("Default") is False
    assert widget.message.text() == "the last list cannot be deleted; rename it instead"


def _tick(key: str, price: str, *, oi: int = 0) -> Tick:
    p = Decimal(price)
    depth = Depth(
        (DepthLevel(p - Decimal("0.05"), 10, 1),), (DepthLevel(p + Decimal("0.10"), 7, 2),)
    )
    return Tick(
        key, datetime.now(UTC), p, 1, 100, Decimal("99.50"), Decimal("104.25"),
        Decimal("98.75"), Decimal(100), depth=depth, oi=oi,
    )


def _headers(widget: WatchlistWidget) -> list[str]:
    return [c.header for c in widget.model.columns]


def test_header_right_click_menu_adds_and_removes_optional_columns(qtbot, services):
    widget = _shown(qtbot, WatchlistWidget(services, ["NSE:INFY", "NSE:TCS"]))
    widget.resize(900, 300)
    widget.select_key("NSE:TCS")
    header = widget.table.horizontalHeader()
    header.customContextMenuRequested.emit(QPoint(10, 5))
    qtbot.waitUntil(widget.column_menu.isVisible)
    titles = [a.text() for a in widget.column_menu.actions()]
    assert titles == ["Bid", "Ask", "Open", "High", "Low", "Prev close", "OI"]
    assert not any(a.isChecked() for a in widget.column_menu.actions())

    widget.column_actions["oi"].trigger()
    widget.column_actions["bid"].trigger()
    widget.column_actions["high"].trigger()
    widget.column_menu.hide()
    assert _headers(widget) == ["Symbol", "LTP", "Chg %", "Volume", "Bid", "High", "OI"]
    assert widget.optional_columns() == ("bid", "high", "oi")
    assert widget.selected_key() == "NSE:TCS"  # the selection survives the new columns

    widget.apply_ticks([_tick("NSE:TCS", "101.50", oi=1_250_000)])
    assert widget.model.text("NSE:TCS", "Bid") == "101.45"
    assert widget.model.text("NSE:TCS", "High") == "104.25"
    assert widget.model.text("NSE:TCS", "OI") == "1,250,000"
    qtbot.waitUntil(lambda: not widget.table.isColumnHidden(6))  # wide enough: all shown

    widget.column_actions["bid"].trigger()  # unchecking takes it away again
    assert _headers(widget) == ["Symbol", "LTP", "Chg %", "Volume", "High", "OI"]
    assert not widget.column_actions["bid"].isChecked()


def test_lists_and_columns_survive_a_restart_through_the_settings_file(qtbot, services, tmp_path):
    path = tmp_path / "settings.json"
    # A profile from before named lists: one watchlist, and other settings beside it.
    # An expired contract the registry no longer knows stays in the list, unpriced.
    legacy = ["NSE:INFY", "NSE:TCS", "NSE:SBIN", "NFO:NIFTY24JAN20000CE"]
    path.write_text(json.dumps({"seed": 5, "watchlist": legacy}))
    first = load_settings(path)
    assert [e.name for e in first.watchlists.lists] == ["Default"]
    assert first.watchlists.lists[0].keys == legacy  # nothing lost

    store = FileWatchlistStore(path)
    widget = _shown(qtbot, WatchlistWidget(services, state_of(first.watchlists), store=store))
    assert widget.list_names() == ["Default"] and widget.keys() == legacy
    assert widget.model.text("NFO:NIFTY24JAN20000CE", "Symbol") == "NFO:NIFTY24JAN20000CE"
    widget.create_list("Options")
    widget.add_symbol("NIFTY")
    widget.create_list("Later")
    widget.rename_list("Later", "Watch later")
    widget.set_column_visible("oi", True)
    widget.set_column_visible("ask", True)
    widget.switch_to("Options")
    store.close()  # what the app does at shutdown: the writes asked for are done

    saved = json.loads(path.read_text())
    assert "watchlist" not in saved and saved["seed"] == 5  # migrated; other settings kept
    again = load_settings(path)
    assert again.seed == 5
    restored = WatchlistWidget(services, state_of(again.watchlists))
    qtbot.addWidget(restored)
    assert restored.list_names() == ["Default", "Options", "Watch later"]
    assert restored.current_list() == "Options"
    assert restored.keys() == widget.list_keys("Options") and restored.keys()
    assert restored.list_keys("Default") == legacy
    assert restored.optional_columns() == ("ask", "oi")
    assert _headers(restored)[4:] == ["Ask", "OI"]
    assert restored.column_actions["oi"].isChecked()
    assert again.watchlist[0] == restored.keys()[0]  # the feed subscribes the list on screen first


def test_every_change_is_saved_at_once(qtbot, services, tmp_path):
    path = tmp_path / "settings.json"
    store = FileWatchlistStore(path)
    widget = _shown(qtbot, WatchlistWidget(services, ["NSE:INFY"], store=store))
    widget.add_symbol("TCS")
    store._writer.submit(lambda: None).result(timeout=10)  # the writer has caught up
    assert load_settings(path).watchlists.lists[0].keys == ["NSE:INFY", "NSE:TCS"]
    widget.remove_key("NSE:INFY")
    store._writer.submit(lambda: None).result(timeout=10)
    assert load_settings(path).watchlists.lists[0].keys == ["NSE:TCS"]
    store.close()


def test_a_broken_settings_file_is_not_overwritten(qtbot, services, tmp_path: Path):
    path = tmp_path / "settings.json"
    path.write_text('{"seed": "not a number", "theme": "dark"}')
    store = FileWatchlistStore(path)
    widget = _shown(qtbot, WatchlistWidget(services, ["NSE:INFY"], store=store))
    widget.create_list("Swing")
    store.close()
    assert path.read_text() == '{"seed": "not a number", "theme": "dark"}'
    assert store.failures == 1
    assert widget.list_names() == ["Default", "Swing"]  # still on screen


@pytest.mark.parametrize(
    "section, problem",
    [
        ({"lists": []}, "at least 1 item"),
        ({"lists": [{"name": "A"}, {"name": "a"}], "current": "A"}, "two lists are named 'a'"),
        ({"lists": [{"name": "A"}], "current": "B"}, "no list is named 'B'"),
        ({"lists": [{"name": "A"}], "current": "A", "columns": ["vwap"]}, "columns"),
    ],
)
def test_bad_watchlists_in_the_file_are_named_clearly(tmp_path, section, problem):
    from app.settings import SettingsError

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"watchlists": section}))
    with pytest.raises(SettingsError, match="watchlists") as err:
        load_settings(path)
    assert problem in str(err.value)
