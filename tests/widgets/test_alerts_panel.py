"""The Alerts dock on the real simulated market: set alerts, see one fire, remove one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QDialog

from services.alerts import AlertCondition
from tests.widgets.conftest import TEST_WATCHLIST
from widgets.alerts_panel import FIRED_COLOUR
from widgets.main_window import MainWindow

STEP = Decimal("0.05")


@pytest.fixture
def window(qtbot, services, qloop, tmp_path):
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    qloop.until(lambda: all(services.last_tick(k) is not None for k in TEST_WATCHLIST))
    win.docks["Alerts"].raise_()
    yield win
    qloop.run(win.stop())


def _add_via_panel(qtbot, qloop, panel, condition: AlertCondition, level: Decimal) -> None:
    before = panel.table.rowCount()
    panel.condition.setCurrentIndex(panel.condition.findData(condition))
    panel.level.clear()
    qtbot.keyClicks(panel.level, str(level))
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: panel.table.rowCount() == before + 1, what=f"alert {level} listed")


def test_alerts_either_side_of_the_price_one_fires_and_is_shown(qtbot, window, services, qloop):
    panel = window.alerts_panel
    key = window.watchlist.selected_key()
    assert key is not None and panel.symbol.text() == key  # follows the selected instrument

    price = services.last_tick(key).last_price
    _add_via_panel(qtbot, qloop, panel, AlertCondition.PRICE_ABOVE, price + STEP)
    _add_via_panel(qtbot, qloop, panel, AlertCondition.PRICE_BELOW, price - STEP)
    assert [a.key for a in services.alert_list()] == [key, key]
    assert "Alert set" in panel.message.text()

    # Two ticks either side of the price: the market moves one way or the other.
    qloop.until(lambda: services.alerts.triggered(), timeout=30, what="an alert to fire")
    fired = services.alerts.triggered()[0]  # the market may reach the other one too
    assert fired.triggered_price is not None
    if fired.condition is AlertCondition.PRICE_ABOVE:
        assert fired.triggered_price >= fired.level
    else:
        assert fired.triggered_price <= fired.level

    qloop.until(lambda: panel.is_highlighted(fired.alert_id), what="the fired row highlighted")
    row = panel.row_of(fired.alert_id)
    status = panel.table.item(row, 4).text()
    assert status.startswith(f"triggered at {fired.triggered_price}")
    assert panel.table.item(row, 0).background().color() == FIRED_COLOUR
    other = next(a for a in services.alert_list() if a.alert_id != fired.alert_id)
    if other.active:
        assert panel.table.item(panel.row_of(other.alert_id), 4).text() == "active"
        assert panel.table.item(panel.row_of(other.alert_id), 0).background().color() != (
            FIRED_COLOUR
        )
    message = window.status.currentMessage()
    assert message.startswith("Alert: ") and key in message
    # The notice interrupts nothing: no dialog opened over the window.
    assert QApplication.activeModalWidget() is None
    assert not [d for d in window.findChildren(QDialog) if d.isVisible()]
    # pytest-qt deletes the window before fixtures stop its pump: nothing may fire after.
    qloop.run(services.remove_alert(other.alert_id))


def test_bad_level_is_explained_and_nothing_is_added(qtbot, window, services, qloop):
    panel = window.alerts_panel
    qtbot.keyClicks(panel.level, "25OO")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert "Level must be a number" in panel.message.text()
    panel.symbol.setText("NOSUCH")
    panel.level.setText("100")
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert "Unknown symbol NSE:NOSUCH" in panel.message.text()
    qloop.for_seconds(0.2)
    assert services.alert_list() == [] and panel.table.rowCount() == 0


def test_remove_button_removes_the_selected_alert(qtbot, window, services, qloop):
    panel = window.alerts_panel
    panel.symbol.setText("INFY")  # the exchange defaults to NSE
    _add_via_panel(qtbot, qloop, panel, AlertCondition.PRICE_ABOVE, Decimal("99999"))
    [alert] = services.alert_list()
    assert alert.key == "NSE:INFY" and alert.level == Decimal("99999")

    panel.table.selectRow(panel.row_of(alert.alert_id))
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: panel.table.rowCount() == 0, what="the row removed")
    assert services.alert_list() == []


def test_the_default_window_fits_a_1600_pixel_screen(qtbot, services) -> None:
    """Every panel's default place keeps the window within 1600x900 (no clipped docks)."""
    from widgets.main_window import MainWindow

    window = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() <= 1600
