"""The dark theme: one palette and one style sheet, so every panel looks like the same product.

Models colour their cells from the constants here (Qt roles, not style sheets), because a
style sheet cannot colour one cell of a table by the sign of a number.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

UP = QColor("#26c281")
DOWN = QColor("#ff5f57")
NEUTRAL = QColor("#d6dbe3")
MUTED = QColor("#8b95a5")
BACKGROUND = QColor("#0f1318")
PANEL = QColor("#161b22")
ACCENT = QColor("#2f81f7")


def signed_colour(value: Decimal | int | float) -> QColor:
    """Green for a gain, red for a loss, the text colour for flat."""
    if value > 0:
        return UP
    if value < 0:
        return DOWN
    return NEUTRAL


def style_sheet() -> str:
    """The QSS, with ``@ICONS@`` made the icons' folder: a style sheet's ``url()`` is a file
    path, and the folder moves with the install (a wheel, a frozen app)."""
    sheet = resources.files("resources").joinpath("themes", "dark.qss").read_text("utf-8")
    icons = Path(str(resources.files("resources").joinpath("icons"))).as_posix()
    return sheet.replace("@ICONS@", icons)


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette underneath the QSS, so unstyled corners match too."""
    app.setStyle("Fusion")
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, BACKGROUND)
    pal.setColor(QPalette.ColorRole.WindowText, NEUTRAL)
    pal.setColor(QPalette.ColorRole.Base, BACKGROUND)
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#131920"))
    pal.setColor(QPalette.ColorRole.Text, NEUTRAL)
    pal.setColor(QPalette.ColorRole.Button, PANEL)
    pal.setColor(QPalette.ColorRole.ButtonText, NEUTRAL)
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#1d3b63"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, PANEL)
    pal.setColor(QPalette.ColorRole.ToolTipText, NEUTRAL)
    pal.setColor(QPalette.ColorRole.PlaceholderText, MUTED)
    app.setPalette(pal)
    app.setStyleSheet(style_sheet())
