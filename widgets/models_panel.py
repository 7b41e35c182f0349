"""The Models panel: versions with their stage and metrics beside the baselines, training,
promotion and rollback, A/B tests with their evidence, and the history of stage changes.

Every action goes through the models runtime the app hands in (``ModelsPort``): training
runs on the runtime's training thread and reports progress back on the event loop; registry
reads and writes run on its model thread. Promotion and rollback ask first, because they
change which model trades.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.abtest import ABEvaluation
from models.registry import ModelRecord, Stage, StageEvent
from services.clock import IST
from services.domain import LIVE_TIMEFRAMES, Timeframe
from widgets.ui_pump import spawn

log = logging.getLogger(__name__)

ACTOR = "user"
MODEL_TYPES = ("logistic_regression", "random_forest", "gradient_boosting")
MODEL_COLUMNS = ("Model", "Ver", "Stage", "Type", "Symbol", "TF", "Accuracy", "Always up",
                 "Prev dir", "Net ret", "Log loss")
AB_COLUMNS = ("Test", "Model", "Champion hits/n", "Challenger hits/n", "Evidence",
              "P(chal. better)", "Decision", "Status")
HISTORY_COLUMNS = ("When", "Model", "Ver", "Change", "By", "Why")
NEXT_STAGE = {Stage.DEV: Stage.STAGING, Stage.STAGING: Stage.PRODUCTION}
STAGE_COLOURS = {Stage.PRODUCTION: "#26a69a", Stage.STAGING: "#f0b429", Stage.DEV: "#9aa4b2",
                 Stage.ARCHIVED: "#5c6370"}
REFRESH_MS = 5000


class ModelsPort(Protocol):
    """The part of ``app.models_runtime.ModelsRuntime`` the panel uses."""

    async def models(self, model_id: str | None = None) -> list[ModelRecord]: ...

    async def events(self, model_id: str | None = None) -> list[StageEvent]: ...

    async def ab_tests(self) -> list[ABEvaluation]: ...

    async def train(
        self, model_id: str, symbol: str, timeframe: Timeframe | str, model_type: str, *,
        horizon: int = ..., actor: str = ...,
        progress: Callable[[int, int, str], None] | None = ...,
    ) -> ModelRecord: ...

    async def promote(
        self, model_id: str, version: int, stage: str | Stage, *, actor: str = ...,
        force: bool = ..., reason: str = ...,
    ) -> ModelRecord: ...

    async def rollback(self, model_id: str, *, actor: str = ..., reason: str = ...) -> ModelRecord:
        ...


def _metric(record: ModelRecord, who: str, name: str, fmt: str) -> str:
    value = record.metrics.get(who, {}).get(name)
    return format(value, fmt) if value is not None else "–"


def _table(columns: Sequence[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(22)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: Sequence[Sequence[str]]) -> None:
    table.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, text in enumerate(values):
            table.setItem(r, c, QTableWidgetItem(text))


class ModelsPanel(QWidget):
    def __init__(self, port: ModelsPort | None, default_symbol: str = "NSE:INFY") -> None:
        super().__init__()
        self.setObjectName("modelsPanel")
        self.port = port
        self.records: list[ModelRecord] = []
        self.evaluations: list[ABEvaluation] = []
        self.events: list[StageEvent] = []
        self.busy = 0
        self.refreshes = 0
        # Replaced in tests; a real click asks with a dialog.
        self.confirm: Callable[[str, str], bool] = self._ask

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.model_id = QLineEdit("momentum")
        self.model_id.setPlaceholderText("model id")
        self.model_id.setMaximumWidth(120)
        self.symbol = QLineEdit(default_symbol)
        self.symbol.setMaximumWidth(140)
        self.timeframe = QComboBox()
        self.timeframe.addItems([t.value for t in LIVE_TIMEFRAMES])
        self.model_type = QComboBox()
        self.model_type.addItems(MODEL_TYPES)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.progress.setMaximumWidth(220)

        train_row = QHBoxLayout()
        for w in (QLabel("New version:"), self.model_id, self.symbol, self.timeframe,
                  self.model_type, self.train_button, self.progress):
            train_row.addWidget(w)
        train_row.addStretch(1)

        self.table = _table(MODEL_COLUMNS)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.promote_button = QPushButton("Promote…")
        self.promote_button.clicked.connect(self.promote_selected)
        self.rollback_button = QPushButton("Roll back…")
        self.rollback_button.clicked.connect(self.rollback_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        actions = QHBoxLayout()
        for w in (self.promote_button, self.rollback_button, self.refresh_button):
            actions.addWidget(w)
        actions.addStretch(1)

        self.ab_table = _table(AB_COLUMNS)
        self.history_table = _table(HISTORY_COLUMNS)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.ab_table, "A/B tests")
        self.tabs.addTab(self.history_table, "Stage history")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(train_row)
        layout.addWidget(self.table, 3)
        layout.addLayout(actions)
        layout.addWidget(self.tabs, 2)
        layout.addWidget(self.message)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)
        if port is None:
            self._say("Models need an encrypted profile: this in-memory session has no model "
                      "registry.", error=True)
            for w in (self.train_button, self.promote_button, self.rollback_button,
                      self.refresh_button):
                w.setEnabled(False)
        self._selection_changed()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self.port is not None:
            self.refresh()
            self.timer.start()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already deleted with its window
            self.timer.stop()

    def _tick(self) -> None:
        if self.isVisible() and not self.busy:
            self.refresh()

    # -- actions ---------------------------------------------------------------------------
    def refresh(self) -> None:
        if self.port is not None:
            spawn(self._refresh(), name="models-refresh")

    async def _refresh(self) -> None:
        assert self.port is not None
        self.busy += 1
        try:
            records = await self.port.models()
            events = await self.port.events()
            evaluations = await self.port.ab_tests()
        except Exception as e:
            log.exception("models panel refresh failed")
            self._say(f"Could not read the model registry: {e}", error=True)
            return
        finally:
            self.busy -= 1
        self.show_records(records)
        self.show_ab(evaluations)
        self.show_history(events)
        self.refreshes += 1

    def train(self) -> None:
        if self.port is None:
            return
        model_id = self.model_id.text().strip()
        symbol = self.symbol.text().strip().upper()
        if not model_id or not symbol:
            self._say("Give a model id and a symbol to train.", error=True)
            return
        spawn(self._train(model_id, symbol, self.timeframe.currentText(),
                          self.model_type.currentText()), name="models-train")

    async def _train(self, model_id: str, symbol: str, timeframe: str, model_type: str) -> None:
        assert self.port is not None
        self.train_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.setFormat("loading bars…")
        self._say(f"Training {model_id} ({model_type}) on {symbol} {timeframe}…")
        self.busy += 1
        try:
            record = await self.port.train(model_id, symbol, timeframe, model_type, actor=ACTOR,
                                           progress=self._progress)
        except Exception as e:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("failed")
            self._say(f"Training failed: {e}", error=True)
            return
        finally:
            self.busy -= 1
            self.train_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        acc = _metric(record, "model", "accuracy", ".3f")
        self._say(f"Registered {record.label} in dev (walk-forward accuracy {acc}).")
        await self._refresh()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{message} (%v/%m)")

    def selected(self) -> ModelRecord | None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) != 1:
            return None
        row = rows.pop()
        return self.records[row] if 0 <= row < len(self.records) else None

    def select(self, model_id: str, version: int) -> None:
        for row, r in enumerate(self.records):
            if (r.model_id, r.version) == (model_id, version):
                self.table.selectRow(row)
                return

    def promote_selected(self) -> None:
        record = self.selected()
        if record is None or self.port is None or record.stage not in NEXT_STAGE:
            return
        target = NEXT_STAGE[record.stage]
        extra = ""
        if target is Stage.PRODUCTION:
            extra = " It will trade, and the current production version will be archived."
        if not self.confirm("Promote model",
                            f"Promote {record.label} from {record.stage.value} to "
                            f"{target.value}?{extra}"):
            return
        spawn(self._act(self.port.promote(record.model_id, record.version, target, actor=ACTOR),
                        f"{record.label} is now {target.value}"), name="models-promote")

    def rollback_selected(self) -> None:
        record = self.selected()
        if record is None or self.port is None:
            return
        if not self.confirm("Roll back model",
                            f"Roll {record.model_id} back to its previous production version?"):
            return
        spawn(self._act(self.port.rollback(record.model_id, actor=ACTOR, reason="from the panel"),
                        f"{record.model_id} rolled back"), name="models-rollback")

    async def _act(self, action: object, done: str) -> None:
        self.busy += 1
        try:
            record = await action  # type: ignore[misc]
        except Exception as e:
            self._say(f"Refused: {e}", error=True)
            return
        finally:
            self.busy -= 1
        self._say(f"{done}." if not isinstance(record, ModelRecord) else
                  f"{done}: {record.label} ({record.stage.value}).")
        await self._refresh()

    # -- views -----------------------------------------------------------------------------
    def show_records(self, records: Sequence[ModelRecord]) -> None:
        chosen = self.selected()
        self.records = sorted(records, key=lambda r: (r.model_id, -r.version))
        rows = [
            (r.model_id, str(r.version), r.stage.value, r.model_type, r.symbol,
             r.timeframe.value, _metric(r, "model", "accuracy", ".3f"),
             _metric(r, "always_up", "accuracy", ".3f"),
             _metric(r, "previous_direction", "accuracy", ".3f"),
             _metric(r, "model", "net_return", "+.4f"), _metric(r, "model", "log_loss", ".4f"))
            for r in self.records
        ]
        _fill(self.table, rows)
        for row, r in enumerate(self.records):
            item = self.table.item(row, 2)
            if item is not None:
                item.setForeground(QColor(STAGE_COLOURS[r.stage]))
            best_baseline = max(r.metrics.get(b, {}).get("accuracy", 0.0)
                                for b in ("always_up", "previous_direction"))
            acc_item = self.table.item(row, 6)
            if acc_item is not None and "model" in r.metrics:
                beats = r.metrics["model"].get("accuracy", 0.0) > best_baseline
                acc_item.setForeground(QColor("#26a69a" if beats else "#ef5350"))
                acc_item.setToolTip("beats both baselines" if beats
                                    else "does not beat the better baseline")
        if chosen is not None:
            self.select(chosen.model_id, chosen.version)
        self._selection_changed()

    def show_ab(self, evaluations: Sequence[ABEvaluation]) -> None:
        self.evaluations = list(evaluations)
        rows = []
        for ev in self.evaluations:
            t = ev.test
            mode = "shadow" if t.shadow else f"split {t.split:.0%}"
            rows.append((
                f"{t.test_id} ({mode})", t.model_id,
                f"v{t.champion}: {ev.champion.hits}/{ev.champion.n}",
                f"v{t.challenger}: {ev.challenger.hits}/{ev.challenger.n}",
                f"{ev.evidence:.2f} / {ev.threshold:.0f}",
                f"{ev.result.prob_challenger_better:.2f}",
                ev.decision.value + (f" (min {t.min_samples})"
                                     if ev.decision.value == "collecting" else ""),
                t.status + (f": {t.verdict}" if t.verdict else ""),
            ))
        _fill(self.ab_table, rows)

    def show_history(self, events: Sequence[StageEvent]) -> None:
        self.events = sorted(events, key=lambda e: e.seq, reverse=True)
        rows = [
            (e.at.astimezone(IST).strftime("%d %b %H:%M:%S"), e.model_id, str(e.version),
             f"{e.from_stage.value if e.from_stage else 'new'} → {e.to_stage.value}", e.actor,
             e.reason)
            for e in self.events
        ]
        _fill(self.history_table, rows)
        for row, e in enumerate(self.events):
            if "roll" in e.reason:
                for col in range(len(HISTORY_COLUMNS)):
                    item = self.history_table.item(row, col)
                    if item is not None:
                        item.setForeground(QColor("#f0b429"))

    def _selection_changed(self) -> None:
        record = self.selected()
        can_promote = record is not None and record.stage in NEXT_STAGE
        self.promote_button.setEnabled(self.port is not None and can_promote)
        if record is not None and record.stage in NEXT_STAGE:
            self.promote_button.setText(f"Promote to {NEXT_STAGE[record.stage].value}…")
        else:
            self.promote_button.setText("Promote…")
        self.rollback_button.setEnabled(
            self.port is not None and record is not None and record.stage is Stage.PRODUCTION
        )

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ef5350;" if error else "")

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def text(self, row: int, column: str) -> str:
        item = self.table.item(row, MODEL_COLUMNS.index(column))
        return item.text() if item is not None else ""
