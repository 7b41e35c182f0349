"""The default window on a laptop: 1280x720, 1366x768, 1920x1080 and a 150 % scaled desktop.

Each size runs the whole terminal in its own process (``screen_probe``), on an offscreen screen
of that size, because a screen is fixed when Qt starts. The window must fit the screen with the
order ticket, the kill switch and the status bar in view, no panel may widen it (not even a
25-character F&O symbol), the watchlist keeps its symbols whole and the positions table keeps
the P&L. ``DALAL_SCREENSHOT_DIR=docs/screenshots`` refreshes the screenshots kept in the docs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENS = {
    "1280x720": (1280, 720, None),
    "1366x768": (1366, 768, None),
    "1920x1080": (1920, 1080, None),
    "1920x1080-150pct": (1920, 1080, "1.5"),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Run the four probes side by side (each needs a few seconds of ticks)."""
    tmp = tmp_path_factory.mktemp("screens")
    shots = Path(os.environ.get("DALAL_SCREENSHOT_DIR") or tmp)
    running = {}
    for name, (width, height, scale) in SCREENS.items():
        config = tmp / f"{name}.json"
        config.write_text(json.dumps({"screens": [{
            "name": name, "x": 0, "y": 0, "width": width, "height": height,
            "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1,
        }]}))  # fmt: skip
        env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
        env.pop("QT_SCALE_FACTOR", None)
        if scale is not None:
            env["QT_SCALE_FACTOR"] = scale
        out = shots / f"terminal-{name}.png"
        running[name] = (subprocess.Popen(
            [sys.executable, "-m", "tests.widgets.screen_probe", str(out)], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ), out)  # fmt: skip
    found = {}
    for name, (proc, out) in running.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-3000:]
        found[name] = json.loads(stdout.strip().splitlines()[-1])
        assert out.exists()
    return found


@pytest.mark.parametrize("name", list(SCREENS))
def test_the_default_window_fits_with_ticket_and_kill_switch_in_view(
    reports: dict[str, dict[str, object]], name: str
) -> None:
    r = reports[name]
    width, height = r["screen"]  # type: ignore[misc]
    assert r["window"][0] <= width and r["window"][1] <= height, r  # type: ignore[index]
    for part in ("kill_button", "kill_toolbar", "place_button", "ticket_quantity",
                 "status_bar", "chart", "clock_uncut"):  # fmt: skip
        assert r[part] is True, f"{part} not fully in view at {name}: {r}"
    # The longest F&O symbol in the ticket and chart header does not widen the window.
    assert r["window_after_long_symbol"] == r["window"], r
    # Symbols are never cut ("NIF…"); the positions table keeps symbol, P&L and quantity.
    assert r["symbol_column"] >= r["widest_symbol"], r  # type: ignore[operator]
    assert r["positions_shown"][:3] == [0, 7, 2], r  # type: ignore[index]
    if name.endswith("150pct"):
        assert r["dpr"] == 1.5 and r["screen"] == [1280, 720], r
