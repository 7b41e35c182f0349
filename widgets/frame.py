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

Between frames, while frames are coming (the feed is live), a window update from a timer or
an event outside the pump (the status bar's clock, the risk panel's refresh, a table's
scroll bars settling after the frame) is held for the next frame's paint too: painted on its
own it cost a second paint of the window in one frame out of three. It waits at most
``HOLD_SECONDS`` (a frame that does not come, because the feed stopped, is replaced by a
timer). When no frame has run for that long (no feed, a hover, a drag) nothing is held and
Qt paints as it always does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer
from PySide6.QtWidgets import QGraphicsScene, QWidget

HOLD_SECONDS = 0.05  # three frames at 60 Hz: longer than a normal frame gap, short to a hand


class FramePresenter(QObject):
    def __init__(
        self,
        window: QWidget,
        scenes: Callable[[], Iterable[QGraphicsScene]],
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._scenes = scenes
        self._holding = False
        self._held = False
        self._hold = hold_seconds
        self._last_present = -hold_seconds
        self._painting = False  # the paint this presenter started: let its request through
        self.presents = 0  # window paints started by present() (tests read it)
        self.held_between_frames = 0  # updates joined to the next frame's paint (tests)
        # Paints what was held between frames when the next frame does not come.
        self._fallback = QTimer(self)
        self._fallback.setSingleShot(True)
        self._fallback.setInterval(int(hold_seconds * 1000))
        self._fallback.timeout.connect(self._paint_held)
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() != QEvent.Type.UpdateRequest
            or watched is not self._window
            or self._painting
        ):
            return False
        if self._holding:
            self._held = True  # painted once by present(), after every scene and layout
            return True
        if time.monotonic() - self._last_present < self._hold:
            self._held = True  # frames are coming: the next one paints it
            self.held_between_frames += 1
            if not self._fallback.isActive():
                self._fallback.start()
            return True
        return False

    def _paint_held(self) -> None:
        if self._held:
            self._paint(posted=False)

    def _paint(self, *, posted: bool) -> None:
        self._held = False
        self._painting = True
        try:
            if posted:
                QCoreApplication.sendPostedEvents(self._window, QEvent.Type.UpdateRequest.value)
            else:
                QCoreApplication.sendEvent(self._window, QEvent(QEvent.Type.UpdateRequest))
        finally:
            self._painting = False

    def present(self) -> None:
        """Flush the frame's scene updates and layouts, then paint what they dirtied, once."""
        window = self._window
        if not window.isVisible():
            return
        self._fallback.stop()
        held_before = self._held  # an update held since the last frame
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
            # A layout that changed size asks its parent's in a new event, which Qt leaves
            # to the next pass: three passes reach a dock's panel, the dock and the window.
            for _ in range(3):
                QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)
        finally:
            self._holding = False
        self.presents += 1
        self._last_present = time.monotonic()
        # A swallowed request left Qt's "update requested" flag set: nothing else will post
        # one until this sync runs and clears it, so it is sent, not waited for.
        self._paint(posted=not (self._held or held_before))
