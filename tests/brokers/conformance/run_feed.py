"""``python -m tests.brokers.conformance.run_feed BROKER``: the feed contract in a fresh process.

For brokers whose SDK cannot start its stream twice in one process (Kite's Twisted reactor).
The harness module provides ``feed_control()``; one JSON line goes to stdout.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys

from tests.brokers.conformance.feed_contract import feed_contract


def main(name: str) -> int:
    module = importlib.import_module(f"tests.brokers.conformance.harness_{name}")
    harness = module.Harness()
    harness.start()
    try:
        result = asyncio.run(feed_contract(harness.feed_control()))
    finally:
        harness.stop()
    print(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
