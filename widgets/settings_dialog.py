"""The Settings dialog: risk limits, market hours, brokers, data providers and the theme.

Before it, these were JSON or command line only. The dialog edits a plain mapping that a
``SettingsStore`` loads, checks and saves (``app.settings.FileSettingsStore``: pydantic, the
same rules as the file, written atomically), so the widget knows nothing of the file or the
model. Every field is text or a choice: the store's validation decides, and each problem is
shown beside the field it names, in words, with nothing saved until all are fixed. Settings
the form does not show (data providers, the watchlist, models...) are edited as JSON on the
last page, so nothing a newer version adds is out of reach or lost on save.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

Problem = tuple[str, str]  # (dotted path such as "risk.daily_loss_limit", message)
MUTED = "color: #8b95a5;"


class SettingsStore(Protocol):
    @property
    def location(self) -> str: ...

    def load(self) -> dict[str, Any]: ...

    def problems(self, data: Mapping[str, Any]) -> list[Problem]: ...

    def save(self, data: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Field:
    path: str
    label: str
    kind: str = "text"  # text | optional | bool | choice
    choices: tuple[str, ...] = ()
    hint: str = ""


PAGES: dict[str, list[Field]] = {
    "Risk limits": [
        Field("risk.max_order_value", "Max order value (₹)", "optional", hint="empty: none"),
        Field("risk.max_order_quantity", "Max order quantity", "optional"),
        Field("risk.max_open_orders", "Max open orders", "optional"),
        Field("risk.max_orders_per_second", "Max orders per second", "optional"),
        Field("risk.daily_loss_limit", "Daily loss limit (₹)", "optional",
              hint="trading halts when the day's loss passes it"),
        Field("risk.max_drawdown", "Max drawdown from the day's peak (₹)", "optional"),
        Field("risk.check_margin", "Check margin before sending", "bool"),
    ],
    "Market hours": [
        Field("always_open", "Simulated market ticks around the clock", "bool",
              hint="off: only in NSE hours, 09:15-15:30 IST on trading days"),
        Field("paper_square_off_at", "Paper MIS square-off (IST, HH:MM)",
              hint="with real market hours only"),
    ],
    "Brokers": [
        Field("broker", "Broker", "choice", ("paper", "kite"),
              hint="paper: simulator and paper broker; kite: your Zerodha account"),
        Field("paper_tariff", "Paper charges as at", "choice",
              ("zerodha", "upstox", "angelone", "breeze", "flat20"),
              hint="whose brokerage paper fills pay (docs/backtesting.md); breeze is ICICI "
                   "Direct's iValue plan, its delivery rate unverified; flat20 is a "
                   "hypothetical ₹20 an order, no broker's tariff"),
        Field("kite.api_key", "Kite API key", "optional",
              hint="the secret goes to `dalal credentials set kite`, never here"),
        Field("kite.redirect_url", "Kite redirect URL"),
        Field("kite.ticker_mode", "Kite ticker mode", "choice", ("ltp", "quote", "full")),
    ],
    "Theme": [
        Field("theme", "Theme", "choice", ("dark", "system"), hint="applies at the next start"),
    ],
}
FORM_PATHS = {f.path for fields in PAGES.values() for f in fields}
OTHER_PAGE = "Data providers and more"


def get_path(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def rebase(base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]
           ) -> dict[str, Any]:
    """``mine`` (edited from ``base``) applied onto ``theirs`` (``base`` changed meanwhile by
    someone else): every key ``mine`` left as it was takes ``theirs``; what ``mine`` changed,
    added or removed wins."""
    out = copy.deepcopy(dict(theirs))
    for key in base.keys() - mine.keys():
        out.pop(key, None)  # removed in the dialog
    for key, value in mine.items():
        before = base.get(key, _MISSING)
        if value == before:
            continue  # untouched here: the file's current value stands
        now = out.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(before, Mapping) and isinstance(now, Mapping):
            out[key] = rebase(before, value, now)
        else:
            out[key] = copy.deepcopy(value)
    return out


_MISSING: Any = object()


def without_form_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the JSON page shows: everything the form pages do not."""
    rest = copy.deepcopy(dict(data))
    for path in FORM_PATHS:
        parts = path.split(".")
        node: Any = rest
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    for key in [k for k, v in rest.items() if v == {}]:
        del rest[key]
    return rest


class SettingsDialog(QDialog):
    def __init__(
        self,
        store: SettingsStore,
        parent: QWidget | None = None,
        *,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self._store = store
        self._on_saved = on_saved
        self._original = store.load()
        self.inputs: dict[str, QWidget] = {}
        self.labels: dict[str, str] = {}

        self.tabs = QTabWidget()
        for title, fields in PAGES.items():
            page = QWidget()
            form = QFormLayout(page)
            for f in fields:
                widget = self._input(f, get_path(self._original, f.path))
                if f.hint:
                    widget.setToolTip(f.hint)
                self.inputs[f.path] = widget
                self.labels[f.path] = f"{title} › {f.label}"
                form.addRow(f.label, widget)
                if f.hint:
                    hint = QLabel(f.hint)
                    hint.setStyleSheet(MUTED)
                    hint.setWordWrap(True)
                    form.addRow("", hint)
            self.tabs.addTab(page, title)
        self.other = QPlainTextEdit(json.dumps(without_form_fields(self._original), indent=2))
        other_page = QWidget()
        other_layout = QVBoxLayout(other_page)
        note = QLabel("Data providers, the watchlist, models and every other setting, as JSON.")
        note.setWordWrap(True)
        other_layout.addWidget(note)
        other_layout.addWidget(self.other)
        self.tabs.addTab(other_page, OTHER_PAGE)

        self.errors = QLabel("")
        self.errors.setObjectName("settingsErrors")
        self.errors.setWordWrap(True)
        self.errors.setStyleSheet("color: #ff5f57;")
        self.errors.hide()
        where = QLabel(f"Saved to {store.location}; most changes apply at the next start.")
        where.setStyleSheet(MUTED)
        where.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.errors)
        layout.addWidget(where)
        layout.addWidget(self.buttons)

    @staticmethod
    def _input(field: Field, value: Any) -> QWidget:
        if field.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        if field.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(field.choices))
            if value is not None and str(value) not in field.choices:
                combo.addItem(str(value))
            combo.setCurrentText(str(value) if value is not None else field.choices[0])
            return combo
        text = "" if value is None else str(value)
        if field.path == "paper_square_off_at" and len(text) == 8 and text.endswith(":00"):
            text = text[:5]  # 15:20:00 -> 15:20
        edit = QLineEdit(text)
        if field.kind == "optional":
            edit.setPlaceholderText("no limit" if field.path.startswith("risk.") else "not set")
        return edit

    def values(self) -> dict[str, Any] | None:
        """The edited settings, or None (with the message shown) if the JSON page is bad."""
        try:
            extra = json.loads(self.other.toPlainText() or "{}")
        except json.JSONDecodeError as e:
            self._show([(OTHER_PAGE, f"not valid JSON (line {e.lineno}): {e.msg}")])
            return None
        if not isinstance(extra, dict):
            self._show([(OTHER_PAGE, "must be a JSON object ({...})")])
            return None
        data = copy.deepcopy(extra)
        for fields in PAGES.values():
            for f in fields:
                widget = self.inputs[f.path]
                value: Any
                if isinstance(widget, QCheckBox):
                    value = widget.isChecked()
                elif isinstance(widget, QComboBox):
                    value = widget.currentText()
                else:
                    assert isinstance(widget, QLineEdit)
                    value = widget.text().strip()
                    if f.kind == "optional" and value == "":
                        value = None
                set_path(data, f.path, value)
        return data

    def save(self) -> bool:
        edited = self.values()
        if edited is None:
            return False
        # The window saves watchlists (and a layout) to the same file while the dialog is
        # open: only what the dialog changed is written over what the file holds now.
        data = rebase(self._original, edited, self._store.load())
        problems = self._store.problems(data)
        if problems:
            self._show(problems)
            return False
        self._store.save(data)
        if self._on_saved is not None:
            self._on_saved()
        self.accept()
        return True

    def _show(self, problems: list[Problem]) -> None:
        for path, widget in self.inputs.items():
            wrong = any(p == path for p, _ in problems)
            widget.setStyleSheet("border: 1px solid #ff5f57;" if wrong else "")
        lines = [f"{self.labels.get(path, path)}: {message}" for path, message in problems]
        self.errors.setText("Not saved:\n" + "\n".join(lines))
        self.errors.show()
        order = [f.path for fields in PAGES.values() for f in fields]
        bad = sorted((order.index(p), p) for p, _ in problems if p in self.inputs)
        if bad:  # the first bad field in page order is shown and focused
            first = bad[0][1]
            page = next(i for i, fields in enumerate(PAGES.values())
                        if any(f.path == first for f in fields))  # fmt: skip
            self.tabs.setCurrentIndex(page)
            self.inputs[first].setFocus()
        elif any(p == OTHER_PAGE or p not in FORM_PATHS for p, _ in problems):
            self.tabs.setCurrentIndex(len(PAGES))

    def error_text(self) -> str:
        return "" if self.errors.isHidden() else self.errors.text()


__all__ = ["PAGES", "Field", "SettingsDialog", "SettingsStore", "rebase"]
