"""Where parallel work runs: this machine, or a dask.distributed cluster.

One place parses a cluster address and opens the client, so backtest sweeps and walk-forward
model training name clusters the same way: ``tcp://host:8786`` (or ``tls://``) for a running
scheduler, ``local:N`` for a LocalCluster of N worker processes here. Inside the context,
joblib's ``dask`` backend sends work to the cluster.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

_ADDRESS = re.compile(r"^(local:\d{1,3}|(tcp|tls)://\S{1,200})$")


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise ValueError(
            f"--cluster wants tcp://host:port, tls://host:port or local:N, not {address!r}"
        )
    return address


# Background work every dask process does by default, and what it costs on an idle 2-core
# LocalCluster (CPU seconds per second, measured): the statistical profiler samples each
# worker's stacks every 10 ms (0.017 a worker), and every process checks its event loop every
# 20 ms (0.012 a worker, more in the scheduler's). Together 0.11 of a core idle, more while
# the GIL-bound backtests run, taken from the same cores as the work; with neither, 0.04.
# Neither is used here (no dashboard), so a local cluster turns the profiler off and checks
# its loops once a second.
QUIET_LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
}


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A LocalCluster of ``workers`` single-threaded processes (backtests hold the GIL, so
    a thread more per process would only queue), with the background work above turned down;
    its scheduler and workers live for the ``with`` block."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(QUIET_LOCAL_CONFIG),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        yield cluster


@contextlib.contextmanager
def dask_cluster(address: str) -> Iterator[None]:
    """Connect to (or start) the cluster for the ``with`` block; joblib's "dask" backend
    then runs on it. A scheduler that cannot be reached is a ``ValueError`` with the reason."""
    check_address(address)
    from distributed import Client

    if address.startswith("local:"):
        workers = int(address.removeprefix("local:"))
        if workers < 1:
            raise ValueError("local:N needs at least one worker")
        with local_cluster(workers) as local, Client(local):  # type: ignore[no-untyped-call]
            yield
        return
    try:
        client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as e:
        raise ValueError(f"cannot reach the dask scheduler at {address}: {e}") from None
    with client:
        yield
