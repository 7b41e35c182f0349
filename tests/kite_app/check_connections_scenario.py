"""``dalal check-connections`` against the fake Kite, in its own process (Twisted's reactor
cannot be restarted). Argument ``expired`` makes Kite refuse the stored token. Prints the
table, then one JSON line with the checks."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from dataclasses import asdict
from datetime import datetime, timedelta

from app.commands.check_connections import render, run_checks
from services.brokers.kite.session import CREDENTIALS, SESSION
from services.clock import IST
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import MemorySecrets, kite_settings


def main() -> int:
    expired = "expired" in sys.argv[1:]
    with FakeKite() as fake:
        stop = threading.Event()

        def pusher() -> None:  # Kite streams by itself; the fake pushes when told to
            while not stop.wait(0.2):
                fake.push_ticks()

        threading.Thread(target=pusher, daemon=True).start()
        secrets = MemorySecrets(
            {
                CREDENTIALS: {"api_key": fake.api_key, "api_secret": fake.api_secret},
                SESSION: {
                    "access_token": "fakeaccesstoken",
                    "expires_at": (datetime.now(IST) + timedelta(hours=2)).isoformat(),
                },
            }
        )
        if expired:
            fake.expire_session()
        checks = asyncio.run(
            run_checks(kite_settings(fake), secrets, symbol="NSE:INFY", per_check=3.0)
        )
        stop.set()
    print(render(checks))
    print(json.dumps([asdict(c) for c in checks]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
