"""A holder that keeps a widget's every-tick text changes from re-laying out the window.

``QLabel.setText`` always calls ``updateGeometry``, and ``QLayout.activate`` passes
``updateGeometry`` on to its widget's parent, whether or not a size hint changed: a price
label in a dock re-laid out the dock, then the ``QMainWindow`` (its dock animator starts a
``QPropertyAnimation`` per dock), and the whole window was painted a second time after every
UI frame that changed the ticket's quote (``bench/bench_window_ticks.py``: 2 window paints per
frame). The chain stops at a parent without a layout, which only gets a ``LayoutRequest``
event: ``LayoutFence`` is that parent. It places its one child over itself, and passes a
change up only when the child's size hints really changed (a longer price, a wrapped line).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

_Hints = tuple[QSize, QSize, QSize, QSize, QSizePolicy, int]


class LayoutFence(QWidget):
    """Holds ``child`` (always shown) and stands in for it in the parent's layout."""

    def __init__(self, child: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.child = child
        child.setParent(self)
        child.move(0, 0)
        self.passed_up = 0  # size changes passed to the parent layout (tests read it)
        self._hints = self._measure()
        self._mirror()

    def _measure(self) -> _Hints:
        c = self.child
        height = c.heightForWidth(self.width()) if c.hasHeightForWidth() else -1
        return (
            c.sizeHint(), c.minimumSizeHint(), c.minimumSize(), c.maximumSize(), c.sizePolicy(),
            height,
        )  # fmt: skip

    def _mirror(self) -> None:
        c = self.child
        self.setSizePolicy(c.sizePolicy())
        self.setMaximumSize(c.maximumSize())

    def sizeHint(self) -> QSize:
        return self.child.sizeHint()

    def minimumSizeHint(self) -> QSize:
        # What a layout would take as the child's minimum: an explicit minimum wins.
        c = self.child
        hint = c.minimumSizeHint()
        return QSize(c.minimumWidth() or hint.width(), c.minimumHeight() or hint.height())

    def hasHeightForWidth(self) -> bool:
        return self.child.hasHeightForWidth()

    def heightForWidth(self, width: int) -> int:
        return self.child.heightForWidth(width)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.child.setGeometry(self.rect())
        self._hints = self._measure()  # the height for the new width is the one laid out
        super().resizeEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the child's geometry may have changed
            hints = self._measure()
            if hints != self._hints:
                self._hints = hints
                self._mirror()
                self.passed_up += 1
                self.updateGeometry()
            return True
        return super().event(event)


def fence(child: QWidget) -> LayoutFence:
    """``child`` in a ``LayoutFence``, ready to add to a layout in its place."""
    return LayoutFence(child)
