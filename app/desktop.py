"""The desktop runner: Qt and asyncio on one loop (qasync), services started, window shown.

Qt is imported inside ``run_desktop`` so that ``dalal --help`` and the headless runner never
pay for it. ``DALAL_EXIT_AFTER_FIRST_PAINT=1`` makes the app print how long it took to paint
its first live tick and exit: that is how ``bench/bench_cold_start.py`` measures cold start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from app.settings import Settings

log = logging.getLogger(__name__)

# Taken when this module is first imported, i.e. before Qt, pyqtgraph and the services load.
IMPORTED_AT = time.perf_counter()

EXIT_AFTER_FIRST_PAINT_ENV = "DALAL_EXIT_AFTER_FIRST_PAINT"


def run_desktop(settings: Settings, *, started_at: float | None = None) -> int:
    """Run the terminal until its window is closed; return the process exit code."""
    t0 = IMPORTED_AT if started_at is None else started_at
    exit_after_paint = os.environ.get(EXIT_AFTER_FIRST_PAINT_ENV) == "1"

    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.settings import APP_NAME
    from app.wiring import build_services
    from widgets.main_window import MainWindow
    from widgets.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("dalal")
    app.setQuitOnLastWindowClosed(False)  # the window's `closed` ends the coroutine below
    apply_dark_theme(app)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def main() -> None:
        services = build_services(settings)
        layouts = None if exit_after_paint else QSettings("dalal", APP_NAME)
        window = MainWindow(services, settings.watchlist, layouts)
        closed = asyncio.Event()
        window.closed.connect(closed.set)
        if exit_after_paint:

            def first_paint() -> None:
                print(f"first-paint {time.perf_counter() - t0:.3f}s", flush=True)
                window.close()

            window.firstTickPainted.connect(first_paint)
        await services.start()
        window.show()
        window.start()
        try:
            await closed.wait()
        finally:
            await window.stop()
            await services.stop()

    try:
        with loop:
            loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
    return 0
