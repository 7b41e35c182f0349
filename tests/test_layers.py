"""The architecture's layers, checked by import-linter on every test run.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): services <- models <-
widgets <- app, no Qt below widgets, the HTTP API beside the widgets, and widgets that never
import a broker SDK, the database or an adapter directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout, result.stdout
