"""Bundled data files load from any working directory (installed and frozen apps)."""

import subprocess
import sys
from pathlib import Path


def test_bundled_files_load_outside_the_repository(tmp_path: Path) -> None:
    code = (
        "from datetime import date\n"
        "from services.instruments import bundled_universe\n"
        "from widgets.theme import style_sheet\n"
        "from importlib import resources\n"
        "instruments, _ = bundled_universe(date(2026, 11, 25))\n"
        "assert len(instruments) > 50\n"
        "assert 'QMainWindow' in style_sheet()\n"
        "import os, re\n"
        "urls = re.findall(r'url\\(\"([^\"]+)\"\\)', style_sheet())\n"
        "assert urls and all(os.path.isfile(u) for u in urls), urls\n"
        "assert resources.files('resources').joinpath('monitoring', 'alerting_rules.yml')"
        ".read_text()\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
