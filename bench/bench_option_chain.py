"""Option-chain refresh: 200 strikes (400 contracts) with IV and Greeks, target <= 5 ms.

One refresh is what the panel does per UI frame with new ticks: read the latest tick of the
underlying, the future and all 400 contracts, solve every IV, take every Greek, PCR and max
pain, and build the immutable snapshot the view formats. Prices move between refreshes (a
new random smile each time) so nothing is cached. Reports median and p99 over N refreshes;
exit status 1 when p99 misses the target.

    .venv/bin/python bench/bench_option_chain.py [--refreshes N]
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.clock import IST
from services.domain import Exchange, Instrument, InstrumentKind, Tick
from services.options.chain import OptionChain
from services.options.pricing import greeks, years_to_expiry

TARGET_MS = 5.0
STRIKES = 200
EXPIRY = date(2026, 12, 29)
NOW = datetime(2026, 12, 22, 11, 0, tzinfo=IST)
UNDERLYING = "NSE:NIFTY 50"


def contracts() -> tuple[list[Instrument], Instrument]:
    out: list[Instrument] = []
    for n in range(STRIKES):
        strike = 21_000 + 50 * n
        for kind in (InstrumentKind.CALL, InstrumentKind.PUT):
            out.append(Instrument(
                Exchange.NFO, f"NIFTY26DEC{strike}{kind.value}", 1_000 + len(out), "NIFTY", kind,
                Decimal("0.05"), 65, expiry=EXPIRY, strike=Decimal(strike), underlying=UNDERLYING,
            ))
    future = Instrument(Exchange.NFO, "NIFTY26DECFUT", 999, "NIFTY", InstrumentKind.FUTURE,
                        Decimal("0.05"), 65, expiry=EXPIRY, underlying=UNDERLYING)
    return out, future


def market(rng: random.Random, options: list[Instrument], future: Instrument) -> dict[str, Tick]:
    spot = 26_000 * math.exp(rng.gauss(0, 0.003))
    fwd = spot * math.exp(0.065 * years_to_expiry(EXPIRY, NOW))
    years = years_to_expiry(EXPIRY, NOW)
    base = rng.uniform(0.11, 0.16)

    def tick(key: str, price: float, oi: int = 0) -> Tick:
        p = Decimal(max(round(price / 0.05), 1) * 5) / 100
        return Tick(key, NOW, p, 65, 65_000, p, p, p, p, None, oi, oi // 2)

    ticks = {UNDERLYING: tick(UNDERLYING, spot), future.key: tick(future.key, fwd)}
    for inst in options:
        k = float(inst.strike or 0)
        vol = base + 0.6 * math.log(k / fwd) ** 2
        call = inst.kind is InstrumentKind.CALL
        value = float(greeks(fwd, k, years, vol, call, rate=0.065).value)
        ticks[inst.key] = tick(inst.key, value, rng.randrange(65, 6_500_000, 65))
    return ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refreshes", type=int, default=2_000)
    args = parser.parse_args()
    options, future = contracts()
    chain = OptionChain.from_instruments([*options, future], UNDERLYING, EXPIRY)
    rng = random.Random(19)
    books = [market(rng, options, future) for _ in range(20)]
    for book in books[:3]:
        chain.compute(book.get, NOW, rate=0.065)  # warm-up
    gc.collect()
    samples: list[float] = []
    cpu: list[float] = []
    solved = 0
    for n in range(args.refreshes):
        book = books[n % len(books)]
        c0 = time.process_time()
        t0 = time.perf_counter()
        snap = chain.compute(book.get, NOW, rate=0.065)
        samples.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
        solved = sum(1 for r in snap.rows for q in (r.call, r.put) if q and q.iv is not None)
    samples.sort()
    median = statistics.median(samples)
    p99 = samples[int(0.99 * (len(samples) - 1))]
    ok = p99 <= TARGET_MS
    cpu.sort()
    # CPU time per refresh: on a shared machine the wall-clock p99 is mostly time the
    # process spent waiting for a core.
    print(
        f"CPU time per refresh: median {statistics.median(cpu):.2f} ms, "
        f"p99 {cpu[int(0.99 * (len(cpu) - 1))]:.2f} ms"
    )
    print(
        f"option chain refresh, {STRIKES} strikes ({2 * STRIKES} contracts, {solved} IVs solved): "
        f"median {median:.2f} ms, p99 {p99:.2f} ms (target p99 <= {TARGET_MS:.0f} ms) "
        f"{'OK' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
