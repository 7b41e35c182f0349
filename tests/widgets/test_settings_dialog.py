"""The Settings dialog edits settings.json: bad values are named beside their field and
nothing is written; good ones are saved atomically and load back."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit

from app.settings import FileSettingsStore, load_settings
from app.watchlist_store import FileWatchlistStore
from widgets.settings_dialog import PAGES, SettingsDialog, rebase
from widgets.watchlist_lists import NamedList, WatchlistState


def edit(dialog: SettingsDialog, path: str) -> QLineEdit:
    widget = dialog.inputs[path]
    assert isinstance(widget, QLineEdit)
    return widget


def test_every_page_is_there(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = SettingsDialog(FileSettingsStore(tmp_path / "settings.json"))
    qtbot.addWidget(dialog)
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert titles == [*PAGES, "Data providers and more"]
    assert edit(dialog, "risk.daily_loss_limit").text() == "25000"  # the defaults shown


def test_bad_values_are_named_and_nothing_is_written(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "settings.json"
    dialog = SettingsDialog(FileSettingsStore(path))
    qtbot.addWidget(dialog)
    edit(dialog, "risk.max_open_orders").setText("0")
    edit(dialog, "risk.daily_loss_limit").setText("a lot")
    edit(dialog, "paper_square_off_at").setText("25:99")
    assert dialog.save() is False
    text = dialog.error_text()
    assert "Risk limits › Max open orders: Input should be greater than 0" in text
    assert "Risk limits › Daily loss limit (₹)" in text
    assert "Market hours › Paper MIS square-off" in text
    assert dialog.tabs.currentIndex() == 0  # the first bad field is shown
    assert not path.exists()

    edit(dialog, "risk.max_open_orders").setText("20")
    edit(dialog, "risk.daily_loss_limit").setText("")
    edit(dialog, "paper_square_off_at").setText("15:10")
    dialog.other.setPlainText("{not json")
    assert dialog.save() is False
    assert "not valid JSON" in dialog.error_text() and not path.exists()
    dialog.other.setPlainText(json.dumps({"watchlist": ["NSE:INFY"], "no_such_setting": 1}))
    assert dialog.save() is False
    assert "no_such_setting: Extra inputs are not permitted" in dialog.error_text()


def test_good_values_are_saved_atomically_and_load_back(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"watchlist": ["NSE:TCS"], "seed": 5}))
    dialog = SettingsDialog(FileSettingsStore(path))
    qtbot.addWidget(dialog)
    # A file from before named watchlists shows its list as the one named "Default".
    shown = json.loads(dialog.other.toPlainText())["watchlists"]["lists"]
    assert shown == [{"name": "Default", "keys": ["NSE:TCS"]}]
    edit(dialog, "risk.daily_loss_limit").setText("30000")
    edit(dialog, "risk.max_drawdown").setText("")  # no limit
    always_open = dialog.inputs["always_open"]
    assert isinstance(always_open, QCheckBox)
    always_open.setChecked(False)
    theme = dialog.inputs["theme"]
    assert isinstance(theme, QComboBox)
    theme.setCurrentText("system")
    broker = dialog.inputs["broker"]
    assert isinstance(broker, QComboBox) and broker.currentText() == "paper"
    assert dialog.save() is True

    saved = load_settings(path)
    assert str(saved.risk.daily_loss_limit) == "30000" and saved.risk.max_drawdown is None
    assert saved.always_open is False and saved.theme == "system"
    assert saved.watchlist == ["NSE:TCS"] and saved.seed == 5  # the rest kept
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temporary left


def test_watchlists_saved_while_the_dialog_is_open_are_kept(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"watchlist": ["NSE:TCS"], "seed": 5}))
    dialog = SettingsDialog(FileSettingsStore(path))
    qtbot.addWidget(dialog)
    # Meanwhile the window adds INFY to a new list and saves it to the same file.
    lists = FileWatchlistStore(path)
    lists.save(WatchlistState((NamedList("Default", ("NSE:TCS",)),
                               NamedList("Banks", ("NSE:HDFCBANK",))), "Banks"))
    lists.close()
    edit(dialog, "risk.daily_loss_limit").setText("30000")
    assert dialog.save() is True

    saved = load_settings(path)
    assert str(saved.risk.daily_loss_limit) == "30000"
    assert [(e.name, e.keys) for e in saved.watchlists.lists] == [
        ("Default", ["NSE:TCS"]), ("Banks", ["NSE:HDFCBANK"])]
    assert saved.watchlists.current == "Banks" and saved.seed == 5


def test_the_paper_tariff_choices_are_the_bundled_tariffs_and_flat20_is_called_hypothetical(
) -> None:
    from services.costs import load_schedule

    field = next(f for fields in PAGES.values() for f in fields if f.path == "paper_tariff")
    assert field.kind == "choice" and set(field.choices) == set(load_schedule().tariffs)
    hypothetical = [b for b, v in load_schedule().tariffs.items() if v[-1].hypothetical]
    assert hypothetical == ["flat20"] and "flat20 is a hypothetical" in field.hint


def test_rebase_keeps_their_changes_where_mine_did_not_touch() -> None:
    base = {"a": 1, "b": {"x": 1, "y": 2}, "gone": 1, "kept": 1}
    mine = {"a": 2, "b": {"x": 1, "y": 3}, "kept": 1}  # a and b.y edited, "gone" removed
    theirs = {"a": 1, "b": {"x": 9, "y": 2}, "gone": 1, "kept": 5, "new": 7}
    assert rebase(base, mine, theirs) == {"a": 2, "b": {"x": 9, "y": 3}, "kept": 5, "new": 7}


def test_the_desktop_menu_opens_the_dialog_on_the_settings_file(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMainWindow

    from app.desktop import add_settings_menu

    window = QMainWindow()
    qtbot.addWidget(window)
    add_settings_menu(window, tmp_path / "mine.json")
    [menu] = [a for a in window.menuBar().actions() if a.text() == "&Settings"]
    [action] = menu.menu().actions()
    assert action.shortcut().toString() == "Ctrl+,"
    action.trigger()
    dialog = window.findChild(SettingsDialog)
    assert dialog is not None and dialog.isVisible()
    assert str(tmp_path / "mine.json") in dialog.findChildren(type(dialog.errors))[-1].text()
    dialog.reject()
