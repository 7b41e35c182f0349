"""A followed table view is told only about the changed rows it shows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from PySide6.QtWidgets import QTableView

from widgets.table_model import RIGHT, Column, RowTableModel, fmt_price


@dataclass(frozen=True)
class _Row:
    key: str
    price: Decimal


def _model() -> RowTableModel[_Row]:
    columns = [Column("Key", lambda r: r.key), Column("Price", lambda r: fmt_price(r.price), RIGHT)]
    return RowTableModel(columns, key=lambda r: r.key)


def test_three_thousand_rows_tick_but_only_the_shown_ones_are_announced(qtbot):
    model = _model()
    model.upsert(_Row(f"K{i:04d}", Decimal(100)) for i in range(3_000))
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.verticalHeader().setDefaultSectionSize(24)
    view.resize(400, 24 * 20)
    view.show()
    qtbot.waitExposed(view)
    model.follow_view(view)
    shown = model.shown_rows()
    assert 0 < len(shown) < 40 and shown.start == 0

    spans: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, _roles=(): spans.append((a.row(), b.row())))
    model.upsert(_Row(f"K{i:04d}", Decimal(101)) for i in range(0, 3_000, 2))  # every other
    changed_shown = [r for r in shown if r % 2 == 0]
    # One span per batch, from the first to the last changed row in sight, nothing beyond.
    assert spans == [(changed_shown[0], changed_shown[-1])]
    assert view.horizontalHeader().resizeContentsPrecision() == 0  # columns fit what shows

    # The rows outside the view changed all the same: scrolled into sight they read afresh.
    view.scrollToBottom()
    qtbot.waitUntil(lambda: model.shown_rows().stop == 3_000)
    assert model.data(model.index(2_998, 1)) == "101.00"
    assert model.data(model.index(2_999, 1)) == "100.00"
    spans.clear()
    model.upsert([_Row("K0002", Decimal(102)), _Row("K2999", Decimal(102))])
    assert spans == [(2_999, 2_999)]  # K0002 scrolled out of sight

    view.hide()
    spans.clear()
    model.upsert([_Row("K2999", Decimal(103))])
    assert spans == [] and model.data(model.index(2_999, 1)) == "103.00"


def test_a_model_with_no_view_announces_every_changed_row(qtbot):
    model = _model()
    model.upsert(_Row(f"K{i}", Decimal(1)) for i in range(5))
    spans: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, _roles=(): spans.append((a.row(), b.row())))
    model.upsert([_Row("K1", Decimal(2)), _Row("K2", Decimal(2)), _Row("K4", Decimal(2))])
    assert spans == [(1, 2), (4, 4)]
