"""A label that changes every tick must not re-lay out (and so repaint) the whole window."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from widgets.fence import LayoutFence, fence


class LayoutRequests(QObject):
    def __init__(self, target: QWidget) -> None:
        super().__init__()
        self.count = 0
        target.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def _window(qtbot: QtBot, fenced: bool) -> tuple[QMainWindow, QLabel, QWidget]:
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setCentralWidget(QLabel("charts"))
    panel = QWidget()
    label = QLabel("LTP 1,234.50")
    layout = QVBoxLayout(panel)
    layout.addWidget(fence(label) if fenced else label)
    layout.addWidget(QLabel("form"))
    dock = QDockWidget("Ticket", window)
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.resize(800, 400)
    window.show()
    qtbot.waitExposed(window)
    _settle()
    return window, label, panel


def test_same_size_text_changes_stop_at_the_fence(qtbot: QtBot) -> None:
    window, label, _panel = _window(qtbot, fenced=True)
    requests = LayoutRequests(window)
    for i in range(10):
        label.setText(f"LTP 1,234.{i}0")  # digits are as wide as each other
        _settle()
    assert label.text() == "LTP 1,234.90"
    assert requests.count == 0


def test_without_the_fence_every_change_reaches_the_main_window(qtbot: QtBot) -> None:
    # What the fence is for: the same changes re-lay out the QMainWindow every time.
    window, label, _panel = _window(qtbot, fenced=False)
    requests = LayoutRequests(window)
    for i in range(10):
        label.setText(f"LTP 1,234.{i}0")
        _settle()
    assert requests.count >= 10


def test_a_longer_text_still_gets_its_room(qtbot: QtBot) -> None:
    _win, label, _panel = _window(qtbot, fenced=True)
    holder = label.parentWidget()
    assert isinstance(holder, LayoutFence)
    label.setText("LTP 1,234.50   Bid 1,234.45   Ask 1,234.55   and a long tail of words")
    _settle()
    assert holder.passed_up == 1
    assert label.width() >= label.sizeHint().width()  # the dock grew to show it
    assert label.geometry() == holder.rect()


def test_a_wrapped_label_keeps_its_policy_and_wraps_to_the_width(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    label = QLabel("short")
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    holder = fence(label)
    layout = QVBoxLayout(window)
    layout.addWidget(holder)
    layout.addStretch(1)
    window.resize(200, 300)
    window.show()
    qtbot.waitExposed(window)
    _settle()
    assert holder.sizePolicy().horizontalPolicy() is QSizePolicy.Policy.Ignored
    one_line = label.height()
    label.setText(" ".join(["figures"] * 30))  # wraps onto several lines at 200 px
    _settle()
    assert holder.passed_up >= 1
    assert label.height() > one_line
    assert label.height() >= label.heightForWidth(label.width())


def test_the_ticking_window_is_not_re_laid_out_by_its_quotes(qtbot, services, qloop, tmp_path):
    """The real window: the ticket's quote and the chain's figures change, the window's
    layout does not run (each run repainted the whole window after the frame's paint)."""
    from PySide6.QtCore import QSettings

    from widgets.main_window import MainWindow

    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(window)
    qloop.run(services.start())
    window.resize(1400, 850)
    window.show()
    qtbot.waitExposed(window)
    window.start()
    try:
        window.show_instrument("NSE:NIFTY 50")
        window.show_option_chain()
        qloop.until(lambda: window.option_chain.refreshes >= 2, what="the chain refreshed")
        qloop.for_seconds(0.3)  # opening the chain's dock lays the window out: let it settle
        # Counted at the two docks: a change inside either re-lays out the window from there
        # (other panels may re-lay it out now and then for their own reasons).
        requests = LayoutRequests(window.docks["Order ticket"])
        chain_requests = LayoutRequests(window.docks["Option chain"])
        quotes: set[str] = set()
        summaries: set[str] = set()

        def seen() -> bool:
            quotes.add(window.ticket.quote.text())
            summaries.add(window.option_chain.summary.text())
            return len(quotes) >= 12 and len(summaries) >= 4

        qloop.until(seen, timeout=20, what="the quote and the chain's figures changing")
        # Without the fences: one per change (16 or more). With them: only a real change of
        # size (the quote gaining its bid and ask, the summary wrapping anew) gets through.
        assert requests.count + chain_requests.count <= 3
    finally:
        qloop.run(window.stop())
