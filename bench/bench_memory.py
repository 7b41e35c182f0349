"""Memory: RSS <= 400 MB with 3,000 subscribed instruments and 10 charts, growing < 5%.

The whole desktop on the simulator at 5,000 ticks/s: the main window with a 3,000-row
watchlist (every instrument ticks into it), its four charts in the 2x2 layout, and six more
chart windows, every chart fed live bars and carrying an SMA/EMA plus one study. RSS is read
from /proc every 10 s. Growth is measured from the end of the warm-up (the first fifth of
the run, when history, bar buffers and caches fill) to the end: a leak shows as steady
growth, a working set as a plateau. The issue's target is a 30-minute run (the default);
``--minutes 3`` gives a shortened run (say so when reporting it). Exit 1 on a miss.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_memory.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync
from PySide6.QtWidgets import QApplication

from app.settings import Settings
from app.wiring import build_services
from services.bus import BARS
from services.domain import Bar, Timeframe
from widgets import ui_thread_gc
from widgets.chart import ChartWidget
from widgets.main_window import MainWindow
from widgets.ui_pump import UiPump

TARGET_MB = 400.0
TARGET_GROWTH = 0.05
INSTRUMENTS = 3_000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def run(minutes: float) -> int:
    probe = build_services(Settings(seed=11))
    keys = [i.key for i in probe.instruments][:INSTRUMENTS]
    settings = Settings(seed=11, always_open=True, ticks_per_second=5000, watchlist=keys)
    services = build_services(settings)
    await services.start()
    ui_thread_gc.install()  # as the desktop does (app/desktop.py)
    win = MainWindow(services, keys, None)
    win.resize(1600, 900)
    win.show()
    win.start()
    win.charts.set_count(4)
    equities = [k for k in keys if k.startswith("NSE:")][:10]
    win.show_instrument(equities[0])
    for chart in win.charts.charts:
        chart.studies.add("RSI", (14,))
    extra: list[ChartWidget] = []
    for n, key in enumerate(equities[1:7]):
        chart = ChartWidget()
        chart.resize(800, 500)
        chart.show()
        timeframe = (Timeframe.M1, Timeframe.M5)[n % 2]
        chart.set_bars(key, timeframe, services.history(key, timeframe))
        chart.studies.add("Bollinger", (20, 2.0))
        extra.append(chart)

    def feed(bars: list[Bar]) -> None:
        for chart in extra:
            for bar in bars:
                if bar.key == chart.key and bar.timeframe == chart.timeframe:
                    chart.update_bar(bar)

    pump = UiPump(services.bus, "bench-extra-charts")
    pump.on(BARS, feed)
    pump.start()
    charts = len(win.charts.visible_charts()) + len(extra)
    seconds = minutes * 60.0
    warm = seconds / 5.0
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    while (elapsed := time.monotonic() - start) < seconds:
        await asyncio.sleep(10.0)
        samples.append((elapsed, rss_mb()))
        print(f"  {elapsed / 60:5.1f} min  RSS {samples[-1][1]:6.1f} MB", flush=True)
    await pump.stop()
    await win.stop()
    await services.stop()
    after_warm = [mb for t, mb in samples if t >= warm]
    base = after_warm[0] if after_warm else samples[0][1]
    peak = max(mb for _, mb in samples)
    growth = (samples[-1][1] - base) / base
    ok = peak <= TARGET_MB and growth < TARGET_GROWTH
    print(
        f"{INSTRUMENTS:,} instruments in the watchlist, {charts} charts, "
        f"{services.bus.published.get('ticks', 0):,} ticks in {minutes:g} min: "
        f"peak RSS {peak:.0f} MB (target <= {TARGET_MB:.0f}), growth after warm-up "
        f"{growth * 100:+.1f}% (target < {TARGET_GROWTH * 100:.0f}%) {'OK' if ok else 'MISS'}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        return loop.run_until_complete(run(args.minutes))


if __name__ == "__main__":
    sys.exit(main())
