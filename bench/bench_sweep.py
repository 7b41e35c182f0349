"""A sweep of 8 SMA-crossover configurations: serial versus a 2-worker dask LocalCluster.

Target: the cluster run is at least 1.6x faster than the serial one (2 cores). Both runs do
the same backtests from the same bars; the cluster's also pays for sending the bars to the
workers (packing them and each worker's decoding), but not for starting the cluster, which
outlives one sweep (the output says so). The serial run goes first, before any worker process
exists, so it shares the cores with nothing of the bench's. Each run is timed three times and
the medians compared; the load average is printed beside each figure, because on a shared
machine a 2-core speed-up means little without it. The cluster's results must equal the
serial ones.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import date

from services.backtest.data import simulator_bars
from services.backtest.engine import BacktestConfig
from services.backtest.sweep import SweepResult, grid, run_config, sweep
from services.cluster import local_cluster
from services.domain import Timeframe

TARGET = 1.6


def main() -> int:
    bars = simulator_bars(["NSE:INFY", "NSE:TCS"], Timeframe.M1, date(2026, 11, 2),
                          date(2026, 11, 27))
    configs = grid({"fast": [5, 10, 15, 20], "slow": [40, 80]})
    common = {"quantity": 10, "product": "MIS", "timeframe": "1m"}
    config = BacktestConfig()
    print(f"before the runs: load {_load()}", flush=True)

    results: dict[str, list[SweepResult]] = {}

    def serial() -> None:
        results["serial"] = [run_config("sma_cross", p, common, bars, config) for p in configs]

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        fn()
        return time.perf_counter() - began

    serial_s = statistics.median(timed(serial) for _ in range(3))
    print(f"serial median {serial_s:.2f} s (load {_load()})", flush=True)
    with local_cluster(2) as cluster:  # the app's own local:2 cluster
        address = cluster.scheduler_address

        def clustered() -> None:
            # The app's own sweep: the candles go to each worker once, then the 8 backtests.
            results["cluster"] = sweep("sma_cross", configs, common, bars, config,
                                       cluster=address)

        clustered()  # warm the workers' imports
        cluster_s = statistics.median(timed(clustered) for _ in range(3))
    if results["cluster"] != results["serial"]:
        print("the cluster's results differ from the serial run's")
        return 1
    ratio = serial_s / cluster_s
    print(f"sweep of {len(configs)} configs over {len(bars):,} bars: serial {serial_s:.2f} s, "
          f"2-worker LocalCluster {cluster_s:.2f} s (its start-up not timed; load {_load()}), "
          f"speed-up {ratio:.2f}x (target >= {TARGET}x)")
    return 0 if ratio >= TARGET else 1


def _load() -> str:
    """The 1-minute load average. The bench itself adds about 1 while the serial run goes and
    2 while the workers do; anything above that is other work sharing the cores."""
    one, _, _ = os.getloadavg()
    return f"{one:.2f} on {os.cpu_count()} cores"


if __name__ == "__main__":
    sys.exit(main())
