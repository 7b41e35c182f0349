"""Load on the control API's read endpoints: 200 concurrent clients on loopback.

The server runs in its own process (as in production), started by this script with the
production key store: ``ApiKeyStore`` on a temporary encrypted profile database (SQLCipher,
queried from the key store's own thread, as ``dalal headless`` does); the clients run here,
200 concurrent connections, each sending its requests one after another. Bounded:
``--requests`` each, and a 60 s wall-clock limit.

Each client polls at ``--rate`` requests/s (default 10, so 200 clients offer 2,000 requests/s,
what 200 dashboards or bots polling would send); ``--rate 0`` sends back to back, which
measures saturation: latency is then queueing (200 requests in flight / throughput).

The per-key rate limit is lifted for the run (it would answer 429 long before the server is
loaded); everything else (auth, middlewares, metrics, problem handling) is the real path.

The load generator is ``wrk`` (Debian package ``wrk``) when it is installed: a C client
that leaves the two cores to the server, so the figure is the server's; each of its 200
connections waits ``1/rate`` s between requests (a Lua ``delay``). Without wrk, Python
aiohttp clients in this process generate the load, and on a 2-core machine their own CPU
use shows up in the latencies.

The same load also runs against a bare aiohttp server (same routes, a constant bearer check,
small JSON answers) started the same way in the same run: the floor this machine can reach.
The target is the API's p95 within 2x that floor, printed as the ratio.

    .venv/bin/python bench/bench_api_load.py [--clients 200] [--requests 25] [--python]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_RATIO = 2.0  # the API's p95 over the bare aiohttp server's, same load, same run
PATHS = ("/v1/positions", "/v1/orders", "/v1/funds", "/livez")


def serve(db: str, ticks_per_second: float) -> None:
    from app.headless import ServerOptions, parse_listen
    from app.headless import serve as run_server
    from app.settings import Settings
    from services.apikeys import ApiKeyStore, DatabaseConnection
    from services.storage import Database

    path, key = db.split("#")
    database = Database.open(Path(path), bytes.fromhex(key))
    store = ApiKeyStore(DatabaseConnection(database))  # the production store (SQLCipher)
    options = ServerOptions(keys=store, rate=1e9, burst=1e9)
    settings = Settings(ticks_per_second=ticks_per_second, models_enabled=False)
    try:
        code = asyncio.run(run_server(settings, parse_listen("127.0.0.1:0"), options=options))
    finally:
        database.close()
    sys.exit(code)


def serve_bare(token: str) -> None:
    """The floor: aiohttp with the same routes, a constant bearer check, tiny JSON bodies."""
    from aiohttp import web

    expected = f"Bearer {token}"

    async def handler(request: web.Request) -> web.Response:
        if request.path != "/livez" and request.headers.get("Authorization") != expected:
            return web.json_response({"title": "Unauthorized"}, status=401)
        return web.json_response({"positions": [], "orders": [], "available_cash": "1"})

    async def run() -> None:
        app = web.Application()
        for path in PATHS:
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())


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


WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer %(token)s"})
end
delay = function() return %(delay_ms)d end
done = function(summary, latency, requests)
  io.write(string.format("WRK %%d %%d %%d %%.3f %%.3f %%.3f %%.3f\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def load_with_wrk(
    base: str, token: str, clients: int, seconds: int, rate: float, tmp: str
) -> tuple[float, float, float, float, int, int, float]:
    """Run wrk; return p50, p95, p99, max (ms), requests, errors and requests/s."""
    script = os.path.join(tmp, "load.lua")
    paths = ", ".join(f'"{p}"' for p in PATHS)
    delay_ms = int(1000 / rate) if rate else 0
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {"paths": paths, "token": token, "delay_ms": delay_ms})
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "-s", script, base],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    requests, errors, duration_us, p50, p95, p99, worst = line.split()[1:]
    rps = int(requests) / (int(duration_us) / 1e6)
    return float(p50), float(p95), float(p99), float(worst), int(requests), int(errors), rps


def measure(
    cmd: list[str], token: str, args: argparse.Namespace, tmp: str, *, server_p95: bool
) -> dict[str, float]:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("listening on ")
        if not base.startswith("http"):
            raise SystemExit(f"the server did not start: {cmd}")
        if shutil.which("wrk") is not None and not args.python:
            asyncio.run(load(base, token, args.clients, 1, 0))  # warm up
            p50, p95, p99, worst, n, errors, rps = load_with_wrk(
                base, token, args.clients, args.seconds, args.rate, tmp
            )
        else:
            t0 = time.perf_counter()
            latencies, errors = asyncio.run(
                load(base, token, args.clients, args.requests, args.rate)
            )
            wall = time.perf_counter() - t0
            ms = sorted(x * 1000 for x in latencies)
            p50, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
            p99, worst, n, rps = ms[int(0.99 * (len(ms) - 1))], ms[-1], len(ms), len(ms) / wall
        handling = asyncio.run(server_side_p95(base)) if server_p95 else float("nan")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    return {"p50": p50, "p95": p95, "p99": p99, "max": worst, "n": n, "errors": errors,
            "rps": rps, "server_p95": handling}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", metavar="TOKEN", help=argparse.SUPPRESS)
    parser.add_argument("--python", action="store_true", help="Python clients even with wrk")
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="requests/s per client; 0: flat out"
    )
    parser.add_argument("--ticks-per-second", type=float, default=200.0,
                        help="the node's simulator (on the API's loop): how much it costs")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.ticks_per_second)
        return 0
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    from services.apikeys import ApiKeyStore, DatabaseConnection, Scope
    from services.storage import Database

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile" / "terminal.db"
        key = os.urandom(32)
        with Database.open(path, key, create=True) as db:
            token = str(ApiKeyStore(DatabaseConnection(db)).create("bench", [Scope.READ]).token)
        api = measure([sys.executable, __file__, "--serve", f"{path}#{key.hex()}",
                       "--ticks-per-second", str(args.ticks_per_second)], token, args, tmp,
                      server_p95=True)  # fmt: skip
        bare = measure([sys.executable, __file__, "--serve-bare", token], token, args, tmp,
                       server_p95=False)  # fmt: skip
    use_wrk = shutil.which("wrk") is not None and not args.python
    generator = "wrk" if use_wrk else "python aiohttp clients (install wrk for a truer figure)"
    pace = f"{args.rate:g} req/s each" if args.rate else "back to back"
    print(f"load generator: {generator}")
    print(f"clients: {args.clients} concurrent ({pace}) to {', '.join(PATHS)}; the node's "
          f"simulator at {args.ticks_per_second:g} ticks/s")
    for name, m in (("dalal API", api), ("bare aiohttp", bare)):
        print(f"{name:>12}: {m['n']:.0f} requests, {m['errors']:.0f} errors, {m['rps']:.0f} "
              f"req/s; ms p50 {m['p50']:.2f}  p95 {m['p95']:.2f}  p99 {m['p99']:.2f}  "
              f"max {m['max']:.2f}")  # fmt: skip
    print(f"server-side handling p95 <= {api['server_p95']:.2f} ms (histogram bucket bound)")
    ratio = api["p95"] / bare["p95"] if bare["p95"] > 0 else float("inf")
    met = ratio <= TARGET_RATIO and api["errors"] == 0
    print(f"p95 ratio API/bare {ratio:.2f}x   target <= {TARGET_RATIO:.0f}x   "
          f"{'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
