"""What a narrow panel gives up, so that no panel ever widens the window.

Labels whose text can be long (a 25-character F&O symbol, a status line, a quote) take no
width of their own: they show what fits, wrapped where they wrap, and the full text is one
hover away in the tooltip their owner sets (``yield_width``). Table columns give way by priority:

A narrow dock used to squeeze every column at once: the symbol became "NIF…" and the P&L was
cut while a volume column kept its full width. Here each table names its columns from most to
least important; on every resize the columns are shown in that order while their content fits
the viewport, and the rest are hidden until there is room again. The first column always
stays, and never widens the table beyond the viewport (so a panel never widens the window).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QTableView, QWidget

PADDING = 12  # the header's sort arrow and margins around the widest cell


class ColumnFitter(QObject):
    def __init__(self, view: QTableView, priority: Sequence[int]) -> None:
        super().__init__(view)
        self._view = view
        self.priority = list(priority)
        # Owned by the fitter (a child of the view): it dies with the view, never fires late.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.refit)
        view.viewport().installEventFilter(self)
        model = view.model()
        if model is not None:  # new rows can hold wider text (a long F&O symbol)
            model.rowsInserted.connect(self._schedule)
            model.modelReset.connect(self._schedule)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() is QEvent.Type.Resize:
            self._schedule()
        return False

    def _schedule(self, *_args: object) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def needed(self, column: int) -> int:
        view = self._view
        header = view.horizontalHeader()
        return max(header.sectionSizeHint(column), view.sizeHintForColumn(column)) + PADDING

    def refit(self) -> None:
        view = self._view
        available = view.viewport().width()
        used = 0
        for rank, column in enumerate(self.priority):
            need = self.needed(column)
            fits = rank == 0 or used + need <= available
            view.setColumnHidden(column, not fits)
            if fits:
                used += need

    def shown(self) -> list[int]:
        return [c for c in self.priority if not self._view.isColumnHidden(c)]


def yield_width(*widgets: QWidget) -> None:
    """Let ``widgets`` shrink below their text: the layout, not the text, sets the width.

    They keep their preferred width when there is room. An explicit minimum of one pixel
    replaces the minimum Qt derives from the text (zero would mean "use the text's").
    """
    for widget in widgets:
        widget.setMinimumWidth(1)


TALL_PANEL = 280  # the most height a docked panel may insist on (720-pixel screens)


def cap_height(widget: QWidget) -> QWidget:
    """``widget`` with its minimum height capped at ``TALL_PANEL``.

    A tall panel (a form, a report) would otherwise set the window's minimum height through
    its dock; below its natural height its bottom is clipped until the dock is made taller.
    (A scroll area around it was tried: its width-dependent height made the dock layout
    oscillate, hundreds of chart resizes per show.)
    """
    if widget.minimumSizeHint().height() > TALL_PANEL:
        widget.setMinimumHeight(TALL_PANEL)
    return widget


__all__ = ["ColumnFitter", "cap_height", "yield_width"]
