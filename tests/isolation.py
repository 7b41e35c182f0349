"""Tests that must run in a process of their own, and the runner that gives them one.

Some tests use libraries whose process-wide state outlives a test: KiteTicker's Twisted
reactor cannot be restarted once an earlier test stopped it, and a Socket.IO client can keep
threads running. In the whole suite these tests fail depending on what ran before them, so
they are skipped there and run by ``tests/test_isolated.py`` in a fresh interpreter each.
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
    "tests/widgets/test_breeze_desktop.py",
    "tests/widgets/test_angelone_desktop.py",
)
