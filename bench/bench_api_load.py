"""Load on the control API's read endpoints: 200 concurrent clients on loopback.

The server runs in its own process (as in production), started by this script with a temporary
sqlite key store; the clients run here, 200 concurrent connections, each sending its requests
one after another. Bounded: REQUESTS_PER_CLIENT requests each, and a 60 s wall-clock limit.

Each client polls at ``--rate`` requests/s (default 10, so 200 clients offer 2,000 requests/s,
what 200 dashboards or bots polling would send); ``--rate 0`` sends back to back, which
measures saturation: latency is then queueing (200 requests in flight / throughput).

The per-key rate limit is lifted for the run (it would answer 429 long before the server is
loaded); everything else (auth, middlewares, metrics, problem handling) is the real path.

    .venv/bin/python bench/bench_api_load.py [--clients 200] [--requests 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_P95_MS = 5.0
PATHS = ("/v1/positions", "/v1/orders", "/v1/funds", "/livez")


def serve(db: str) -> None:
    from app.headless import ServerOptions, parse_listen
    from app.headless import serve as run_server
    from app.settings import Settings
    from services.apikeys import ApiKeyStore

    store = ApiKeyStore(sqlite3.connect(db))
    options = ServerOptions(keys=store, rate=1e9, burst=1e9)
    settings = Settings(ticks_per_second=200)
    sys.exit(asyncio.run(run_server(settings, parse_listen("127.0.0.1:0"), options=options)))


async def client(
    base: str, token: str, n: int, session: object, out: list[float], rate: float = 0.0
) -> int:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    headers = {"Authorization": f"Bearer {token}"}
    errors = 0
    start = time.perf_counter() + (random.random() / rate if rate else 0.0)
    for i in range(n):
        path = PATHS[i % len(PATHS)]
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        async with session.get(base + path, headers=headers) as r:
            await r.read()
            if r.status != 200:
                errors += 1
        out.append(time.perf_counter() - t0)
    return errors


async def load(
    base: str, token: str, clients: int, per_client: int, rate: float
) -> tuple[list[float], int]:
    import aiohttp

    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):  # warm up: open the connections, fill caches
            await asyncio.gather(*(client(base, token, 1, session, []) for _ in range(clients)))
        errors = await asyncio.wait_for(
            asyncio.gather(
                *(client(base, token, per_client, session, latencies, rate)
                  for _ in range(clients))
            ),
            timeout=60,
        )
    return latencies, sum(errors)


async def server_side_p95(base: str) -> float:
    """p95 of the server's own handling time (dalal_http_request_duration_seconds), in ms.

    Read from the histogram buckets, so it is an upper bound at bucket resolution.
    """
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        text = await r.text()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("dalal_http_request_duration_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    total = buckets.get(float("inf"), 0.0)
    for bound in sorted(buckets):
        if buckets[bound] >= 0.95 * total:
            return bound * 1000
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="requests/s per client; 0: flat out"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from services.apikeys import ApiKeyStore, Scope

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "keys.db")
        token = str(ApiKeyStore(sqlite3.connect(db)).create("bench", [Scope.READ]).token)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", db],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            base = line.removeprefix("listening on ")
            t0 = time.perf_counter()
            latencies, errors = asyncio.run(
                load(base, token, args.clients, args.requests, args.rate)
            )
            wall = time.perf_counter() - t0
            server_p95 = asyncio.run(server_side_p95(base))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    p95 = ms[int(0.95 * (len(ms) - 1))]
    pace = f"{args.rate:g} req/s each" if args.rate else "back to back"
    print(f"clients: {args.clients} concurrent ({pace}), {len(ms)} requests to {', '.join(PATHS)}, "
          f"{errors} non-200, {len(ms) / wall:.0f} req/s")  # fmt: skip
    print(f"latency ms: p50 {statistics.median(ms):.2f}  p95 {p95:.2f}  "
          f"p99 {ms[int(0.99 * (len(ms) - 1))]:.2f}  max {ms[-1]:.2f}")  # fmt: skip
    print(f"server-side handling p95 <= {server_p95:.2f} ms (histogram bucket bound)")
    print(f"p95 {p95:.2f} ms   target < {TARGET_P95_MS:.0f} ms   "
          f"{'MET' if p95 < TARGET_P95_MS else 'NOT MET'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
