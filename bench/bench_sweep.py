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

import joblib
from distributed import Client, LocalCluster

from services.backtest.data import simulator_bars
from services.backtest.engine import BacktestConfig
from services.backtest.sweep import grid, run_config
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
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster):

        def clustered() -> None:
            # joblib's dask backend scatters the (large) bars to the workers once per call.
            with joblib.parallel_config(backend="dask", n_jobs=-1):
                joblib.Parallel()(
                    joblib.delayed(run_config)("sma_cross", p, common, bars, config)
                    for p in configs
                )

        clustered()  # warm the workers' imports
        cluster_s = statistics.median(timed(clustered) for _ in range(3))
    ratio = serial_s / cluster_s
    print(f"sweep of {len(configs)} configs over {len(bars):,} bars: serial {serial_s:.2f} s, "
          f"2-worker LocalCluster {cluster_s:.2f} s, speed-up {ratio:.2f}x (target >= {TARGET}x)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
