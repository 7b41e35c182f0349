"""Run the whole terminal on one (offscreen) screen size and report what a trader would see.

Started by ``test_small_screens.py`` as ``python -m tests.widgets.screen_probe OUT.png`` with
``QT_QPA_PLATFORM=offscreen:configfile=...`` describing the screen (and ``QT_SCALE_FACTOR`` for
a scaled desktop), because the screen is fixed when ``QApplication`` starts. Prints one JSON
line of measurements and saves a screenshot.
"""

from __future__ import annotations

import asyncio
import json
import sys

import qasync
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QWidget

from app.settings import Settings
from app.wiring import build_services
from services.domain import Side


def rect_in(widget: QWidget, window: QWidget) -> QRect:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return QRect(top_left, widget.size())


def seen(widget: QWidget, window: QWidget) -> bool:
    """Shown, not covered, and wholly inside the window."""
    return (
        widget.isVisible()
        and not widget.visibleRegion().isEmpty()
        and window.rect().contains(rect_in(widget, window))
    )


async def probe(out: str) -> dict[str, object]:
    from app.desktop import ephemeral_session
    from widgets.main_window import MainWindow

    settings = Settings(seed=7, always_open=True, ticks_per_second=500)
    services = build_services(settings)
    # The longest session note the status bar carries (a profile-less session's warning).
    window = MainWindow(
        services, settings.watchlist, None,
        session_note=ephemeral_session("screen probe").note,
        session_warning=True,
    )  # fmt: skip
    await services.start()
    window.fit_to_screen()
    window.show()
    window.start()
    app = QApplication.instance()
    assert app is not None
    for _ in range(60):  # ticks reach the panels, the chart gets its history
        await asyncio.sleep(0.05)
    window.ticket.set_side(Side.BUY)
    screen = window.screen().availableGeometry()
    before = (window.width(), window.height())

    # A position, so the positions table has a P&L to show.
    from services.domain import OrderRequest, OrderType, Product

    await services.submit_order(
        OrderRequest("NSE:INFY", Side.BUY, 3, OrderType.MARKET, Product.MIS)
    )
    for _ in range(20):
        await asyncio.sleep(0.05)
    window.docks["Positions"].raise_()
    await asyncio.sleep(0.2)
    positions = window.positions
    watch = window.watchlist.table
    fm = watch.fontMetrics()
    model = window.watchlist.model
    names = [model.index(r, 0).data() for r in range(model.rowCount())]
    widest = max(fm.horizontalAdvance(str(n)) for n in names)
    grab = window.grab()
    grab.save(out)

    # The longest F&O symbol in the ticket and the chart must not widen the window.
    longest = max((i.key for i in services.instruments), key=len)
    window.show_instrument(longest)
    for _ in range(10):
        await asyncio.sleep(0.05)
    report = {
        "screen": [screen.width(), screen.height()],
        "window": list(before),
        "window_after_long_symbol": [window.width(), window.height()],
        "longest_symbol": longest,
        "kill_button": seen(window.risk_panel.kill_button, window),
        "kill_toolbar": seen(window.toolbar, window),
        "place_button": seen(window.ticket.place_button, window),
        "ticket_quantity": seen(window.ticket.quantity, window),
        "status_bar": seen(window.status, window),
        # The right-hand figures (funds, rate, clock) are squeezed first when the bar is full.
        "clock_uncut": window.status.clock_label.width()
        >= window.status.clock_label.sizeHint().width(),
        "chart": seen(window.chart, window),
        "symbol_column": watch.columnWidth(0),
        "widest_symbol": widest,
        "positions_shown": positions.column_fit.shown(),
        "dpr": grab.devicePixelRatio(),
    }
    await window.stop()
    await services.stop()
    return report


def main() -> None:
    app = QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        report = loop.run_until_complete(probe(sys.argv[1]))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
