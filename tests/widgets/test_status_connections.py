"""The status bar shows connections that came up before the window was built."""

from __future__ import annotations

from services.bus import CONNECTION
from services.domain import ConnectionState, ConnectionStatus
from widgets.main_window import MainWindow


def test_a_feed_connected_before_the_window_shows_as_connected(qtbot, running, qloop):
    # Services started first, as the broker tests and the headless-to-desktop hand-over do.
    running.bus.publish(CONNECTION, ConnectionState(
        "feed:standby", ConnectionStatus.CONNECTED, "", running.clock.now()))
    window = MainWindow(running, running.settings.watchlist, None)
    qtbot.addWidget(window)
    window.start()
    try:
        qloop.until(lambda: window.status.connection_text("feed:standby") != "",
                    what="the status bar's feed label")
        assert window.status.connection_text("feed:standby").endswith("feed standby connected")
        # The simulator's own feed connected in services.start(), before the window too.
        assert "connected" in window.status.connection_text("feed:simulator")
    finally:
        qloop.run(window.stop())
