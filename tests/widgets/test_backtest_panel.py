"""The Backtest panel, driven as a trader would: fill the form, run, read, export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from PySide6.QtCore import QDate, Qt

from services.backtest.service import BacktestService
from widgets.backtest_panel import BacktestPanel


def test_run_a_backtest_and_export_its_report(qtbot, qloop, tmp_path: Path) -> None:
    service = BacktestService(None)
    panel = BacktestPanel(service, today=date(2026, 11, 28))
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.symbols.setText("NSE:INFY, NSE:TCS")
    panel.first.setDate(QDate(2026, 11, 2))
    panel.last.setDate(QDate(2026, 11, 13))
    panel.params.setText("fast=5 slow=20")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qloop.until(lambda: panel.progress.format() in ("done", "failed"), timeout=60, what="run")
    assert panel.progress.format() == "done", panel.message.text()
    run = panel.run_result
    assert run is not None and run.symbols == ["NSE:INFY", "NSE:TCS"]
    assert panel.trades.rowCount() == len(run.trades) > 0
    labels = [panel.figures.item(r, 0).text() for r in range(panel.figures.rowCount())]
    assert "Charges paid (₹)" in labels and "Max drawdown" in labels
    xs, ys = panel.equity_curve.getData()
    assert len(xs) == len(run.equity) and len(ys) > 1
    assert panel.export_html.isEnabled()
    target = tmp_path / "report.html"
    panel.export_to(target, "html")
    assert "<svg" in target.read_text()
    panel.export_to(tmp_path / "missing" / "x.csv", "csv")
    assert panel.message.text().startswith("could not write")
    panel.grab().save(str(tmp_path / "backtest.png"))
    service.close()


def test_a_bad_form_says_what_is_wrong_without_running(qtbot) -> None:
    panel = BacktestPanel(BacktestService(None), today=date(2026, 11, 28))
    qtbot.addWidget(panel)
    panel.params.setText("fast")
    panel.start()
    assert panel.message.text() == "parameters are NAME=VALUE, not 'fast'"
    assert panel.progress.format() == "idle"
