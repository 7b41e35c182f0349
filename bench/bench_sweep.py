"""A sweep of 8 SMA-crossover configurations: serial versus a 2-worker dask LocalCluster.

Target: the cluster run is at least 1.6x faster than the serial one (2 cores). The cluster's
start-up is outside the timed part (a cluster outlives one sweep); each run is timed three
times and the medians compared.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date

from distributed import LocalCluster

from services.backtest.data import simulator_bars
from services.backtest.engine import BacktestConfig
from services.backtest.sweep import grid, run_config, sweep
from services.domain import Timeframe

TARGET = 1.6


def main() -> int:
    bars = simulator_bars(["NSE:INFY", "NSE:TCS"], Timeframe.M1, date(2026, 11, 2),
                          date(2026, 11, 27))
    configs = grid({"fast": [5, 10, 15, 20], "slow": [40, 80]})
    common = {"quantity": 10, "product": "MIS", "timeframe": "1m"}
    config = BacktestConfig()

    def serial() -> None:
        for params in configs:
            run_config("sma_cross", params, common, bars, config)

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        fn()
        return time.perf_counter() - began

    serial_s = statistics.median(timed(serial) for _ in range(3))
    print(f"serial median {serial_s:.2f} s", flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address

        def clustered() -> None:
            # The app's own sweep: the candles go to each worker once, then the 8 backtests.
            sweep("sma_cross", configs, common, bars, config, cluster=address)

        clustered()  # warm the workers' imports
        cluster_s = statistics.median(timed(clustered) for _ in range(3))
    ratio = serial_s / cluster_s
    print(f"sweep of {len(configs)} configs over {len(bars):,} bars: serial {serial_s:.2f} s, "
          f"2-worker LocalCluster {cluster_s:.2f} s, speed-up {ratio:.2f}x (target >= {TARGET}x)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
