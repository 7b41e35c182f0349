"""Tests that must run in a process of their own, and the runner that gives them one.

Some tests use libraries whose process-wide state outlives a test: KiteTicker's Twisted
reactor cannot be restarted once an earlier test stopped it. In the whole suite these tests
fail depending on what ran before them, so they are skipped there and run by
``tests/test_isolated.py`` in a fresh interpreter each.

The Breeze and Angel One desktop tests used to be here too; their feeds now end every thread
and socket in ``stopped()`` (awaited by ``AppServices.stop``), which
``tests/brokers/conformance/test_feed_threads.py`` and the desktop tests themselves assert,
so they run in-process.
"""

from __future__ import annotations

import os

import pytest

ISOLATED_ENV = "DALAL_TEST_ISOLATED"

isolated = pytest.mark.skipif(
    os.environ.get(ISOLATED_ENV) != "1",
    reason="runs in its own process, from tests/test_isolated.py",
)

ISOLATED_TESTS = (
    "tests/node/test_node_on_kite.py",
)
