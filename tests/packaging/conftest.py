"""Figures measured by the packaging tests, printed after the run beside their targets.

Printed from the terminal summary so they show without ``-s``: they are the point of the run.
"""

from __future__ import annotations

from typing import Any

FIGURES: list[tuple[str, str, str]] = []  # (figure, measured, target)


def record_figure(name: str, measured: str, target: str = "") -> None:
    FIGURES.append((name, measured, target))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("packaging figures")
    terminalreporter.write_line(f"{'figure':<44} {'measured':>14}   target")
    for name, measured, target in FIGURES:
        terminalreporter.write_line(f"{name:<44} {measured:>14}   {target}")
