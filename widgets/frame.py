"""One paint of the whole window per UI frame, right after the frame's updates.

Qt paints a window when its (low-priority) UpdateRequest comes round, so the updates of one
frame normally share a single paint. QGraphicsScene breaks that: each scene processes its
dirty items in a queued call that ends by *sending* the window's pending UpdateRequest at
once (``QGraphicsScenePrivate::_q_processDirtyItems`` dispatches pending update requests),
so with four charts the window painted four or five times per frame, each paint holding
the tick's latency and only the first carrying the watchlist. ``FramePresenter.present``,
called by the UI pump after a frame's handlers, processes those queued scene calls and the
pending layouts while it holds the window's UpdateRequest back, then paints the window once,
before the pump sleeps: a tick is on screen at the end of the frame that applied it.
Outside frames (a hover, a drag) nothing is held and Qt paints as it always does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QGraphicsScene, QWidget


class FramePresenter(QObject):
    def __init__(self, window: QWidget, scenes: Callable[[], Iterable[QGraphicsScene]]) -> None:
        super().__init__(window)
        self._window = window
        self._scenes = scenes
        self._holding = False
        self._held = False
        self.presents = 0  # window paints started by present() (tests read it)
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self._holding and event.type() == QEvent.Type.UpdateRequest and watched is self._window:
            self._held = True  # painted once by present(), after every scene and layout
            return True
        return False

    def present(self) -> None:
        """Flush the frame's scene updates and layouts, then paint what they dirtied, once."""
        window = self._window
        if not window.isVisible():
            return
        self._holding, self._held = True, False
        try:
            for scene in self._scenes():
                # pyqtgraph fits auto-ranged views when asked to prepare for a paint; done
                # inside the paint, the new range dirtied the items again and the chart was
                # painted a second time by the next event-loop pass.
                prepare = getattr(scene, "prepareForPaint", None)
                if prepare is not None:
                    prepare()
                QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall.value)
            # A label whose text grew asks its layout for room; settle it before the paint.
            QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)
        finally:
            self._holding = False
        self.presents += 1
        if self._held:
            # The swallowed request left Qt's "update requested" flag set: nothing else will
            # post one until this sync runs and clears it.
            QCoreApplication.sendEvent(window, QEvent(QEvent.Type.UpdateRequest))
        else:
            QCoreApplication.sendPostedEvents(window, QEvent.Type.UpdateRequest.value)
