from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.storage import Database, ProfilePaths
from tests.storage.crash_writer import BATCH

ROOT = Path(__file__).resolve().parents[2]
KILLS = 15


def _run_and_kill(base: Path, run: int, key: bytes, rng: random.Random) -> tuple[set[str], int]:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, key.hex().encode())
    os.close(write_fd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_writer", str(base), str(run), str(read_fd)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        pass_fds=(read_fd,),
        text=True,
    )
    os.close(read_fd)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # started writing
    time.sleep(rng.uniform(0.0, 0.25))
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    acked: set[str] = set()
    ticks = 0
    for line in (first + rest).splitlines():
        word, _, value = line.partition(" ")
        if word == "ACK":
            acked.add(value)
        elif word == "TICKS":
            ticks = int(value)
    return acked, ticks


@pytest.mark.slow
def test_sigkill_never_loses_acknowledged_orders_or_more_than_one_tick_batch(
    tmp_path: Path,
) -> None:
    rng = random.Random(20260105)
    key = os.urandom(32)
    db_path = ProfilePaths.for_profile("crash", tmp_path, tmp_path / "cache").database
    Database.open(db_path, key, create=True).close()
    started = time.monotonic()
    previous_ticks = 0
    all_acked: set[str] = set()
    for run in range(KILLS):
        acked, flushed = _run_and_kill(tmp_path, run, key, rng)
        all_acked |= acked
        with Database.open(db_path, key) as db:  # always opens after a kill
            durable = db.orders.ids() | db.fills.ids()
            assert all_acked <= durable, sorted(all_acked - durable)[:5]
            count = db.ticks.count()
        written = count - previous_ticks
        # Batches are atomic; at most the batch in flight (committed, not yet reported) more.
        assert written % BATCH == 0
        assert flushed <= written <= flushed + BATCH
        previous_ticks = count
    assert len(all_acked) > KILLS  # the kills landed mid-stream, not before the first write
    assert time.monotonic() - started < 60
