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

_ADDRESS = re.compile(r"^(local:\d{1,3}|(tcp|tls)://\S{1,200})$")


def check_address(address: str) -> str:
    if not _ADDRESS.match(address):
        raise ValueError(
            f"--cluster wants tcp://host:port, tls://host:port or local:N, not {address!r}"
        )
    return address


@contextlib.contextmanager
def dask_cluster(address: str) -> Iterator[None]:
    """Connect to (or start) the cluster for the ``with`` block; joblib's "dask" backend
    then runs on it. A scheduler that cannot be reached is a ``ValueError`` with the reason."""
    check_address(address)
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        workers = int(address.removeprefix("local:"))
        if workers < 1:
            raise ValueError("local:N needs at least one worker")
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as local,
            Client(local),  # type: ignore[no-untyped-call]
        ):
            yield
        return
    try:
        client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as e:
        raise ValueError(f"cannot reach the dask scheduler at {address}: {e}") from None
    with client:
        yield
