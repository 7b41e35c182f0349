"""Runs each test module of ``tests.isolation.ISOLATED_TESTS`` in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.isolation import ISOLATED_ENV, ISOLATED_TESTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", ISOLATED_TESTS)
def test_in_its_own_process(path: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path],
        cwd=ROOT,
        env={**os.environ, ISOLATED_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tail = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, tail
    assert " passed" in tail and "skipped" not in tail.splitlines()[-1], tail
