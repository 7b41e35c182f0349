"""Sweeps give the same figures on this machine and on a dask cluster (LocalCluster, 2 workers)."""

from __future__ import annotations

from datetime import date

import pytest

from services.backtest.data import simulator_bars
from services.backtest.sweep import grid, sweep
from services.domain import Timeframe

pytestmark = pytest.mark.slow


def test_a_sweep_on_a_two_worker_cluster_equals_the_local_run() -> None:
    bars = simulator_bars(["NSE:INFY"], Timeframe.M5, date(2026, 11, 2), date(2026, 11, 13))
    configs = grid({"fast": [3, 5], "slow": [20, 40]})
    common = {"quantity": 10, "product": "MIS", "timeframe": "5m"}
    local = sweep("sma_cross", configs, common, bars, n_jobs=1)
    cluster = sweep("sma_cross", configs, common, bars, cluster="local:2")
    assert [r.params for r in cluster] == configs
    assert cluster == local
    assert any(r.fills for r in local)  # the configurations really traded
    assert len({r.stats["end_equity"] for r in local}) > 1  # and differ from each other


def test_a_bad_cluster_address_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="tcp://host:port"):
        sweep("sma_cross", [{"fast": 3, "slow": 9}], {"quantity": 1, "product": "MIS",
              "timeframe": "5m"}, [], cluster="host:8786")


def test_walk_forward_training_on_a_two_worker_cluster_equals_the_local_run() -> None:
    from dataclasses import replace

    import dask

    from models.features import BarArrays
    from models.synthetic import synthetic_bars
    from models.training import TrainingConfig, train
    from services.cluster import dask_cluster

    bars = BarArrays.from_bars(synthetic_bars(900, key="NSE:INFY", timeframe=Timeframe.M5))
    config = TrainingConfig("logistic_regression", train_size=300, test_size=100, max_splits=4)
    local = train(bars, replace(config, backend="loky", n_jobs=1))
    with dask_cluster("local:2"):
        remote = train(bars, replace(config, backend="dask", n_jobs=-1))
        # The local cluster's workers run without dask's profiler and with a slow loop check.
        from distributed import get_client

        seen = get_client().run(  # type: ignore[no-untyped-call]
            lambda: (dask.config.get("distributed.worker.profile.enabled"),
                     dask.config.get("distributed.admin.tick.interval"))
        )
        assert list(seen.values()) == [(False, "1s"), (False, "1s")]
    assert remote.metrics == local.metrics
    assert len(remote.folds) == len(local.folds) == 4
