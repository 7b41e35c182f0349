"""A 100,000-bar one-minute chart pans and zooms at >= 60 fps, drawing only the visible window.

The chart carries its default SMA 20 / EMA 50 overlays plus Bollinger and RSI (a pane of its
own). Each frame moves the view (a pan step, or a zoom in/out every tenth frame) and renders
the whole chart synchronously (``QWidget.repaint`` of the graphics view): what a drag or
wheel costs on screen. Reports frames per second (median over the frames and the slowest
1%) beside the target; exit 1 on a miss.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_chart_pan.py [--frames 600]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PySide6.QtWidgets import QApplication

from services.clock import IST
from services.domain import Bar, Timeframe
from widgets.chart import ChartWidget

TARGET_FPS = 60.0
BARS = 100_000


def bars() -> list[Bar]:
    rng = np.random.default_rng(3)
    closes = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, BARS)))
    start = datetime(2025, 1, 6, 9, 15, tzinfo=IST)
    out = []
    for i, c in enumerate(closes.tolist()):
        p = Decimal(f"{c:.2f}")
        when = start + timedelta(days=i // 375, minutes=i % 375)
        out.append(Bar("NSE:NIFTY 50", Timeframe.M1, when, p, p + 3, p - 3, p, 100, True))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    chart = ChartWidget()
    chart.resize(1400, 800)
    chart.show()
    chart.set_bars("NSE:NIFTY 50", Timeframe.M1, bars())
    chart.studies.add("Bollinger", (20, 2.0))
    chart.studies.add("RSI", (14,))
    app.processEvents()
    view = chart._graphics
    times: list[float] = []
    cpu: list[float] = []
    left, right = float(BARS - 200), float(BARS)
    for n in range(args.frames):
        if n % 10 == 9:
            span = right - left
            factor = 1.25 if (n // 10) % 2 else 0.8
            left = right - span * factor
        else:
            left, right = left - 7, right - 7
        c0 = time.process_time()
        t0 = time.perf_counter()
        chart.price_plot.setXRange(left, right, padding=0)
        view.repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times = times[10:]
    cpu = cpu[10:]
    fps = 1.0 / statistics.median(times)
    slow = 1.0 / sorted(times)[int(0.99 * (len(times) - 1))]
    ok = fps >= TARGET_FPS
    print(
        f"{BARS:,} bars, {args.frames} pan/zoom frames: median {fps:.0f} fps, slowest 1% "
        f"{slow:.0f} fps (target >= {TARGET_FPS:.0f} fps) {'OK' if ok else 'MISS'}"
    )
    # CPU time per frame: what the frame costs when the process has a core to itself (on a
    # shared machine the wall-clock figure mostly measures the wait for one).
    cpu_ms = 1000 * statistics.median(cpu)
    print(f"CPU time per frame: median {cpu_ms:.1f} ms ({1000 / cpu_ms:.0f} fps of CPU)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
