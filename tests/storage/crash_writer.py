"""Child process for the SIGKILL test: journal orders and fills, stream ticks, say what is durable.

``ACK <id>`` is printed only after the journal call returned (the row is committed with
synchronous=FULL); ``TICKS <n>`` after a tick batch committed.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from services.security import FileDescriptorKeySource, Vault
from services.storage import OrderJournal, ProfilePaths, TickWriter
from tests.storage.helpers import T0, make_fill, make_order, make_tick

BATCH = 100


def main() -> None:
    base, run, fd = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    vault = Vault(ProfilePaths.for_profile("crash", base, base / "cache"))
    db = vault.unlock(FileDescriptorKeySource(fd), actor="crash-test")
    journal = OrderJournal(db)
    writer = TickWriter(db, batch_size=BATCH)
    i = 0
    while True:
        order_id = f"r{run}-o{i}"
        journal.record_intent(make_order(order_id))
        print(f"ACK {order_id}", flush=True)
        journal.record_fill(make_fill(f"r{run}-f{i}", order_id))
        print(f"ACK r{run}-f{i}", flush=True)
        for j in range(37):
            if writer.add(make_tick("NSE:CRASH", T0 + timedelta(microseconds=i * 100 + j), j)):
                print(f"TICKS {writer.written}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
