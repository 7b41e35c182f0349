"""The option chain: calls on the left, puts on the right, strikes down the middle.

One underlying and expiry at a time, the strikes around the money, with LTP, change, OI,
change in OI, volume, IV and the Greeks per side, the ATM strike highlighted and the
in-the-money side shaded, and PCR and max pain above. Pricing happens in
``services.options.chain`` (one vectorised pass per refresh); this view only formats the
rows it shows. It recomputes at most ``REFRESH_SECONDS`` apart and only when a tick for one
of its contracts (or the underlying) arrived, so a 5,000 ticks/s feed costs it a few
refreshes a second.

Keyboard and mouse: clicking a CE or PE price asks for a BUY ticket for that contract (with
its lot size), Shift+click (or the context menu) for a SELL; the context menu also builds a
straddle or strangle around the row as a basket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.clock import IST
from services.domain import Instrument, Side, Tick
from services.options.chain import ChainQuote, ChainSnapshot, OptionChain
from services.options.pricing import Model
from widgets import theme
from widgets.fence import fence

REFRESH_SECONDS = 0.25
NBSP = "\u00a0"
DASH = "—"
AnyIndex = QModelIndex | QPersistentModelIndex
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
_CELL_PADDING = 14  # the item view's margins around a cell's text


class OptionChainPort(Protocol):
    """What the chain needs from the services (``app.wiring.AppServices`` has it)."""

    def option_underlyings(self) -> list[str]: ...

    def option_expiries(self, underlying: str) -> list[date]: ...

    def option_chain(self, underlying: str, expiry: date) -> OptionChain: ...

    def option_pricing(self) -> tuple[float, Model, float]: ...

    def last_tick(self, key: str) -> Tick | None: ...

    def instrument(self, key: str) -> Instrument | None: ...


def _num(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{value:,.{digits}f}"


def _price(value: Decimal | None) -> str:
    return DASH if value is None else f"{value:,.2f}"


def _signed(value: Decimal | None) -> str:
    return DASH if value is None else f"{value:+,.2f}"


def _iv(q: ChainQuote) -> str:
    return DASH if q.iv is None else f"{q.iv * 100:.2f}"


def _lots(q: ChainQuote, units: int) -> str:
    lot = q.instrument.lot_size or 1
    return f"{units // lot:,}" if units else ("0" if q.ltp is not None else DASH)


def _signed_lots(q: ChainQuote, units: int) -> str:
    lot = q.instrument.lot_size or 1
    return f"{units // lot:+,}" if q.ltp is not None else DASH


@dataclass(frozen=True)
class Field:
    header: str
    text: Callable[[ChainQuote], str]
    signed: Callable[[ChainQuote], float | None] | None = None


FIELDS: dict[str, Field] = {
    "oi": Field("OI (lots)", lambda q: _lots(q, q.oi)),
    "doi": Field("ΔOI", lambda q: _signed_lots(q, q.oi_change), lambda q: q.oi_change),
    "volume": Field("Volume", lambda q: _lots(q, q.volume)),
    "iv": Field("IV %", _iv),
    "delta": Field("Delta", lambda q: _num(q.delta, 3)),
    "gamma": Field("Gamma", lambda q: _num(q.gamma, 5)),
    "theta": Field("Theta", lambda q: _num(q.theta, 2)),
    "vega": Field("Vega", lambda q: _num(q.vega, 2)),
    "change": Field(
        "Chg", lambda q: _signed(q.change), lambda q: None if q.change is None else float(q.change)
    ),
    "ltp": Field("LTP", lambda q: _price(q.ltp)),
}
# Mirrored as on NSE's chain: the prices meet at the strike column.
CALL_FIELDS = ["oi", "doi", "volume", "iv", "delta", "gamma", "theta", "vega", "change", "ltp"]
PUT_FIELDS = list(reversed(CALL_FIELDS))
STRIKE_COLUMN = len(CALL_FIELDS)
CALL_LTP_COLUMN = STRIKE_COLUMN - 1
PUT_LTP_COLUMN = STRIKE_COLUMN + 1

_ATM_BRUSH = QColor("#3a3320")
_ITM_BRUSH = QColor("#1f2a36")


_Cell = tuple[str, QColor | None, QColor | None]  # text, foreground, background
_CELL_SLOT = {
    Qt.ItemDataRole.DisplayRole.value: 0,
    Qt.ItemDataRole.ForegroundRole.value: 1,
    Qt.ItemDataRole.BackgroundRole.value: 2,
}
_ALIGNMENT_ROLE = Qt.ItemDataRole.TextAlignmentRole.value
_FONT_ROLE = Qt.ItemDataRole.FontRole.value


class ChainModel(QAbstractTableModel):
    """The visible window of a ``ChainSnapshot``: ``first`` .. ``first + count`` strikes.

    Each snapshot is formatted once, into a table of (text, colour, shading) per cell, and
    only the cells that read differently from the last snapshot are announced: a refresh
    costs two quotes per row rather than a quote per cell and role, and Qt repaints the
    cells that moved rather than the whole window.
    """

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: ChainSnapshot | None = None
        self.first = 0
        self.count = 0
        self.cells_changed = 0  # cells announced by the last refresh (tests read it)
        self._cells: list[list[_Cell]] = []
        # Longest text per column so far: the view re-fits its columns only when one grew.
        self._widest: list[str] = []
        self.widths_grew = False
        self.bold_font = QFont()
        self.bold_font.setBold(True)

    def set_snapshot(self, snapshot: ChainSnapshot, first: int, count: int) -> None:
        # The same number of rows of the same chain is an update in place, also when the ATM
        # moved the window a strike up or down: resetting the model re-laid the whole table.
        same_shape = (
            self.snapshot is not None
            and count == self.count
            and len(self.snapshot) == len(snapshot)
            and self.snapshot.underlying == snapshot.underlying
            and self.snapshot.expiry == snapshot.expiry
        )
        cells = self._render(snapshot, first, count)
        widest = [max((row[c][0] for row in cells), key=len, default="")
                  for c in range(self.columnCount())]  # fmt: skip
        if not same_shape:
            self._widest = widest
            self.widths_grew = True
        else:  # the longest text per column so far: columns only ever widen
            self.widths_grew = False
            for c, text in enumerate(widest):
                if len(text) > len(self._widest[c]):
                    self._widest[c] = text
                    self.widths_grew = True
        if not same_shape:
            self.beginResetModel()
            self.snapshot, self.first, self.count = snapshot, first, count
            self._cells = cells
            self.cells_changed = count * self.columnCount()
            self.endResetModel()
            return
        old, self._cells = self._cells, cells
        self.snapshot, self.first = snapshot, first
        self.cells_changed = 0
        for row, (before, after) in enumerate(zip(old, cells, strict=True)):
            if before == after:
                continue
            changed = [c for c, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            self.cells_changed += len(changed)
            self.dataChanged.emit(self.index(row, changed[0]), self.index(row, changed[-1]))

    def widest_texts(self) -> list[str]:
        """The longest text each column has shown since the chain was picked."""
        return list(self._widest)

    @staticmethod
    def _render(snap: ChainSnapshot, first: int, count: int) -> list[list[_Cell]]:
        fwd, atm = snap.forward, snap.atm_strike
        out: list[list[_Cell]] = []
        for i in range(first, first + count):
            strike = snap.strikes[i]
            quotes = (snap.quote(i, call=True), snap.quote(i, call=False))
            at_money = strike == atm
            row: list[_Cell] = []
            for col in range(2 * len(CALL_FIELDS) + 1):
                if col == STRIKE_COLUMN:
                    row.append((f"{strike.normalize():f}", None, _ATM_BRUSH if at_money else None))
                    continue
                call = col < STRIKE_COLUMN
                background: QColor | None = None
                if at_money:
                    background = _ATM_BRUSH
                elif fwd is not None:
                    itm = float(strike) < fwd if call else float(strike) > fwd
                    background = _ITM_BRUSH if itm else None
                quote = quotes[0] if call else quotes[1]
                if quote is None:
                    row.append((DASH, None, background))
                    continue
                name = CALL_FIELDS[col] if call else PUT_FIELDS[col - STRIKE_COLUMN - 1]
                field = FIELDS[name]
                colour = None
                if field.signed is not None:
                    value = field.signed(quote)
                    colour = None if value is None else theme.signed_colour(Decimal(value))
                row.append((field.text(quote), colour, background))
            out.append(row)
        return out

    def strike_index(self, row: int) -> int:
        return self.first + row

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.count

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 2 * len(CALL_FIELDS) + 1

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        if section == STRIKE_COLUMN:
            return "Strike"
        if section < STRIKE_COLUMN:
            return f"CE {FIELDS[CALL_FIELDS[section]].header}"
        return f"PE {FIELDS[PUT_FIELDS[section - STRIKE_COLUMN - 1]].header}"

    def quote_at(self, row: int, column: int) -> ChainQuote | None:
        if self.snapshot is None or column == STRIKE_COLUMN:
            return None
        return self.snapshot.quote(self.first + row, call=column < STRIKE_COLUMN)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # The view asks each visible cell for a dozen roles on every repaint; the ones the
        # chain has no answer for return before touching the index.
        slot = _CELL_SLOT.get(role)
        if slot is not None:
            if self.snapshot is None or not index.isValid():
                return None
            return self._cells[index.row()][index.column()][slot]
        if role == _ALIGNMENT_ROLE:
            return _CENTER if index.column() == STRIKE_COLUMN else _RIGHT
        if role == _FONT_ROLE and index.column() == STRIKE_COLUMN:
            return self.bold_font
        return None


class OptionChainPanel(QWidget):
    """Pick an underlying and expiry; the chain stays live from the feed."""

    tradeRequested = Signal(str, object)  # instrument key, Side
    basketRequested = Signal(object)  # list[tuple[str, Side]]: legs in order
    snapshotUpdated = Signal()

    def __init__(self, port: OptionChainPort, *, strikes_around_atm: int = 12) -> None:
        super().__init__()
        self._port = port
        self._chain: OptionChain | None = None
        self._keys: frozenset[str] = frozenset()
        self._dirty = False
        self._last_refresh = 0.0
        self.refreshes = 0
        self.snapshot: ChainSnapshot | None = None

        self.underlying = QComboBox()
        self.underlying.setObjectName("chainUnderlying")
        self.expiry = QComboBox()
        self.expiry.setObjectName("chainExpiry")
        self.width_box = QSpinBox()
        self.width_box.setRange(3, 100)
        self.width_box.setValue(strikes_around_atm)
        self.width_box.setPrefix("± ")
        self.width_box.setSuffix(" strikes")
        self.summary = QLabel(DASH)
        self.summary.setObjectName("chainSummary")
        # A long line of figures must not set the dock's (and the window's) minimum width.
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.model = ChainModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        # Fitted on demand (a new window of strikes, or a figure that got longer), not by
        # ResizeToContents: that mode re-measured every cell of a column on every
        # dataChanged, some 35,000 data() calls per refresh.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(40)
        self.table.clicked.connect(self._clicked)
        self.table.activated.connect(self._clicked)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)

        top = QHBoxLayout()
        top.setSpacing(6)
        top.addWidget(self.underlying)
        top.addWidget(self.expiry)
        top.addWidget(self.width_box)
        top.addWidget(fence(self.summary), 1)  # new figures every refresh (widgets/fence.py)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.table)

        for key in port.option_underlyings():
            inst = port.instrument(key)
            self.underlying.addItem(inst.tradingsymbol if inst else key, key)
        self.underlying.currentIndexChanged.connect(self._underlying_changed)
        self.expiry.currentIndexChanged.connect(self._expiry_changed)
        self.width_box.valueChanged.connect(lambda _v: self.refresh())
        self._underlying_changed()

    def sizeHint(self) -> QSize:
        # Twenty-one columns sized to their contents would ask for the whole screen; the
        # dock starts at a blotter's size and the table scrolls.
        return QSize(640, 300)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 120)

    # -- selection -----------------------------------------------------------------------
    def select(self, underlying: str, expiry: date | None = None) -> bool:
        i = self.underlying.findData(underlying)
        if i < 0:
            return False
        self.underlying.setCurrentIndex(i)
        if expiry is not None:
            j = self.expiry.findData(expiry)
            if j < 0:
                return False
            self.expiry.setCurrentIndex(j)
        return True

    def _underlying_changed(self, _index: int = 0) -> None:
        key = self.underlying.currentData()
        self.expiry.blockSignals(True)
        self.expiry.clear()
        if key:
            for d in self._port.option_expiries(key):
                self.expiry.addItem(f"{d:%d %b %Y}".upper(), d)
        self.expiry.blockSignals(False)
        self._expiry_changed()

    def _expiry_changed(self, _index: int = 0) -> None:
        key, expiry = self.underlying.currentData(), self.expiry.currentData()
        if not key or expiry is None:
            self._chain, self._keys = None, frozenset()
            return
        self._chain = self._port.option_chain(key, expiry)
        self._keys = frozenset(self._chain.keys())
        self.refresh()

    # -- live ----------------------------------------------------------------------------
    def apply_ticks(self, ticks: Iterable[Tick]) -> None:
        """Note ticks for this chain; recompute when the last refresh is old enough."""
        if not self._dirty:
            keys = self._keys
            self._dirty = any(t.key in keys for t in ticks)
        if self._dirty and time.monotonic() - self._last_refresh >= REFRESH_SECONDS:
            self.refresh()

    def refresh(self) -> None:
        chain = self._chain
        self._dirty = False
        self._last_refresh = time.monotonic()
        if chain is None:
            return
        rate, model, dividend_yield = self._port.option_pricing()
        tick = self._port.last_tick(chain.underlying)
        now = tick.ts if tick is not None else datetime.now(IST)
        snap = chain.compute(
            self._port.last_tick, now, rate=rate, model=model, dividend_yield=dividend_yield
        )
        self.snapshot = snap
        n = len(snap)
        centre = snap.index_of(snap.atm_strike) if snap.atm_strike is not None else None
        if centre is None:
            centre = n // 2
        half = self.width_box.value()
        first = max(0, centre - half)
        last = min(n, centre + half + 1)
        self.model.set_snapshot(snap, first, last - first)
        if self.model.widths_grew:
            self.fit_columns()
        self.refreshes += 1
        self.summary.setText(self._summary(snap, rate, model))
        self.snapshotUpdated.emit()

    def fit_columns(self) -> None:
        """Each column as wide as its header or the longest figure it has shown.

        Measured from the model's longest texts with the font's metrics: the view's
        ``resizeColumnsToContents`` asked every cell for its size hint, some 16 ms a time,
        and the ATM moving a strike re-fitted the table several times a second.
        """
        header = self.table.horizontalHeader()
        plain = self.table.fontMetrics()
        bold = QFontMetrics(self.model.bold_font)
        for column, text in enumerate(self.model.widest_texts()):
            metrics = bold if column == STRIKE_COLUMN else plain
            width = max(metrics.horizontalAdvance(text) + _CELL_PADDING,
                        header.sectionSizeHint(column))  # fmt: skip
            if header.sectionSize(column) != width:
                header.resizeSection(column, width)

    @staticmethod
    def _summary(snap: ChainSnapshot, rate: float, model: Model) -> str:
        spot = DASH if snap.spot is None else f"{snap.spot:,.2f}"
        fwd = DASH if snap.forward is None else f"{snap.forward:,.2f}"
        atm = DASH if snap.atm_strike is None else f"{snap.atm_strike.normalize():f}"
        pcr = DASH if snap.pcr is None else f"{snap.pcr:.2f}"
        pain = DASH if snap.max_pain is None else f"{snap.max_pain.normalize():f}"
        basis = "Black-76" if model is Model.BLACK_76 else "Black-Scholes"
        figures = (
            f"Spot {spot}", f"Fwd {fwd}", f"ATM {atm}", f"PCR {pcr}", f"Max pain {pain}",
            f"lot {snap.lot_size}", f"{basis}, r {rate * 100:.2f}%",
        )  # fmt: skip
        # A narrow dock wraps between figures, never inside one ("lot" above its "65").
        return "   ".join(f.replace(" ", NBSP) for f in figures)

    # -- trading -------------------------------------------------------------------------
    def _clicked(self, index: QModelIndex) -> None:
        if index.column() not in (CALL_LTP_COLUMN, PUT_LTP_COLUMN):
            return
        quote = self.model.quote_at(index.row(), index.column())
        if quote is None:
            return
        shift = QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier
        self.tradeRequested.emit(quote.key, Side.SELL if shift else Side.BUY)

    def straddle(self, row: int, side: Side = Side.BUY) -> list[tuple[str, Side]]:
        """The CE and PE of the row's strike."""
        legs = [
            self.model.quote_at(row, CALL_LTP_COLUMN),
            self.model.quote_at(row, PUT_LTP_COLUMN),
        ]
        return [(q.key, side) for q in legs if q is not None]

    def strangle(self, row: int, width: int = 2, side: Side = Side.BUY) -> list[tuple[str, Side]]:
        """The call ``width`` strikes above the row and the put ``width`` strikes below."""
        snap = self.model.snapshot
        if snap is None:
            return []
        i = self.model.strike_index(row)
        call = snap.quote(min(i + width, len(snap) - 1), call=True)
        put = snap.quote(max(i - width, 0), call=False)
        return [(q.key, side) for q in (call, put) if q is not None]

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        quote = self.model.quote_at(index.row(), index.column())
        if quote is not None:
            name = quote.instrument.tradingsymbol
            menu.addAction(f"Buy {name}", lambda: self.tradeRequested.emit(quote.key, Side.BUY))
            menu.addAction(f"Sell {name}", lambda: self.tradeRequested.emit(quote.key, Side.SELL))
            menu.addSeparator()
        row = index.row()
        baskets: list[tuple[str, list[tuple[str, Side]]]] = [
            ("Buy straddle", self.straddle(row, Side.BUY)),
            ("Sell straddle", self.straddle(row, Side.SELL)),
            ("Buy strangle (±2 strikes)", self.strangle(row, 2, Side.BUY)),
            ("Sell strangle (±2 strikes)", self.strangle(row, 2, Side.SELL)),
        ]
        for label, legs in baskets:
            action = menu.addAction(label)
            action.triggered.connect(lambda _c=False, legs=legs: self.basketRequested.emit(legs))
        menu.popup(self.table.viewport().mapToGlobal(pos))
