"""Five-level market depth of the selected instrument, bids beside asks.

Only the selected instrument's newest tick matters, and the UI pump already hands over one
coalesced batch per frame, so the panel redraws at most once per frame and not at all when the
book did not change. A click on a row offers that level's price to the order ticket: choosing
a price off the book is quicker and safer than typing it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.domain import Depth, DepthLevel, Tick
from widgets import theme
from widgets.ports import TerminalFacade
from widgets.table_model import CENTER, LEFT, RIGHT, fmt_int, fmt_price

LEVELS = 5
HEADERS = ["Orders", "Qty", "Bid", "Ask", "Qty", "Orders"]
BID_QTY, BID_PRICE, ASK_PRICE, ASK_QTY = 1, 2, 3, 4
INDEX_MESSAGE = "Indices have no order book"
WAITING_MESSAGE = "Waiting for the order book"
# The fraction of the side's largest quantity a level holds: what the bar delegate draws.
BAR_ROLE = int(Qt.ItemDataRole.UserRole) + 1

AnyIndex = QModelIndex | QPersistentModelIndex


class DepthModel(QAbstractTableModel):
    """Row i holds bid level i (columns 0-2) and ask level i (columns 3-5)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: Depth | None = None
        self._max_qty = 1

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else LEVELS

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def level(self, row: int, column: int) -> DepthLevel | None:
        """The level a cell belongs to: the bid side left of the middle, the ask side right."""
        if self.depth is None:
            return None
        side = self.depth.bids if column < ASK_PRICE else self.depth.asks
        return side[row] if 0 <= row < len(side) else None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        col = index.column()
        level = self.level(index.row(), col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if col < ASK_PRICE else LEFT
        if level is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if col in (BID_PRICE, ASK_PRICE):
                return f"{level.price:.2f}"  # no grouping: the column is narrow
            return fmt_int(level.quantity if col in (BID_QTY, ASK_QTY) else level.orders)
        if role == Qt.ItemDataRole.ForegroundRole:
            return theme.UP if col < ASK_PRICE else theme.DOWN
        if role == BAR_ROLE and col in (BID_QTY, ASK_QTY):
            return level.quantity / self._max_qty
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return CENTER
        return None

    def set_depth(self, depth: Depth | None) -> None:
        self.depth = depth
        quantities = [lv.quantity for lv in (*depth.bids, *depth.asks)] if depth else []
        # One scale for both sides, so a heavy ask side looks heavier than a thin bid side.
        self._max_qty = max([1, *quantities])
        self.dataChanged.emit(self.index(0, 0), self.index(LEVELS - 1, len(HEADERS) - 1))


class QuantityBarDelegate(QStyledItemDelegate):
    """A translucent bar behind the quantity, growing from the middle of the book outwards."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        fraction = index.data(BAR_ROLE)
        if isinstance(fraction, float) and fraction > 0:
            rect: QRect = option.rect
            width = max(1, round(rect.width() * min(fraction, 1.0)))
            bid = index.column() < ASK_PRICE
            colour = QColor(theme.UP if bid else theme.DOWN)
            colour.setAlpha(60)
            left = rect.right() - width + 1 if bid else rect.left()
            painter.fillRect(QRect(left, rect.top() + 2, width, rect.height() - 4), colour)
        super().paint(painter, option, index)


class DepthPanel(QWidget):
    priceClicked = Signal(Decimal)

    def __init__(self, facade: TerminalFacade) -> None:
        super().__init__()
        self._facade = facade
        self.key: str | None = None
        self._is_index = False
        self._price_template = "9999.99"
        self._shown: tuple[Decimal, Depth | None] | None = None
        self.model = DepthModel()
        self.table = QTableView()
        self.table.setObjectName("depthTable")
        self.table.setModel(self.model)
        self.table.setItemDelegate(QuantityBarDelegate(self.table))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setCursor(Qt.CursorShape.PointingHandCursor)
        self.table.setToolTip("Click a level to use its price in the order ticket")
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setStyleSheet("QHeaderView::section { padding: 4px 2px; }")
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(20)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.clicked.connect(self._clicked)

        self.header = QLabel("")
        self.header.setObjectName("depthHeader")
        self.totals = QLabel("")
        self.totals.setObjectName("depthTotals")
        self.empty = QLabel(WAITING_MESSAGE)
        self.empty.setObjectName("depthEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet(f"color: {theme.MUTED.name()};")

        book = QWidget()
        book_layout = QVBoxLayout(book)
        book_layout.setContentsMargins(0, 0, 0, 0)
        book_layout.setSpacing(4)
        book_layout.addWidget(self.table, 1)
        book_layout.addWidget(self.totals)
        self.stack = QStackedWidget()
        self.stack.addWidget(book)
        self.stack.addWidget(self.empty)
        self.stack.setCurrentWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.stack, 1)

    # -- state -----------------------------------------------------------------------------
    def set_instrument(self, key: str) -> None:
        self.key = key
        self._shown = None
        instrument = self._facade.instrument(key)
        self._is_index = instrument is not None and not instrument.tradable
        if self._is_index:
            self.header.setText(f"<b>{key.split(':', 1)[-1]}</b>")
            self._show_empty(INDEX_MESSAGE)
            return
        self._show(self._facade.last_tick(key))

    def apply_ticks(self, ticks: list[Tick]) -> None:
        key = self.key
        if key is None or self._is_index:
            return
        latest = None
        for tick in ticks:
            if tick.key == key:
                latest = tick
        if latest is not None:
            self._show(latest)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def showing_empty(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def bid_levels(self) -> tuple[DepthLevel, ...]:
        return () if self.model.depth is None else self.model.depth.bids

    def ask_levels(self) -> tuple[DepthLevel, ...]:
        return () if self.model.depth is None else self.model.depth.asks

    # -- drawing ---------------------------------------------------------------------------
    def _show(self, tick: Tick | None) -> None:
        symbol = (self.key or "").split(":", 1)[-1]
        if tick is None or tick.depth is None:
            self.header.setText(f"<b>{symbol}</b>")
            self._show_empty(WAITING_MESSAGE)
            return
        shown = (tick.last_price, tick.depth)
        if shown == self._shown:
            return  # nothing moved: no repaint
        self._shown = shown
        depth = tick.depth
        self.model.set_depth(depth)
        if depth.best_ask is not None:
            template = "9" * len(str(int(depth.best_ask.price))) + ".99"
            if template != self._price_template:  # refit only when the digits change
                self._price_template = template
                self._fit_columns()
        spread = ""
        if depth.best_bid and depth.best_ask:
            spread = f" · spread {fmt_price(depth.best_ask.price - depth.best_bid.price)}"
        self.header.setText(f"<b>{symbol}</b> · LTP {fmt_price(tick.last_price)}{spread}")
        bid_total = sum(lv.quantity for lv in depth.bids)
        ask_total = sum(lv.quantity for lv in depth.asks)
        self.totals.setText(
            f"Total bid qty <span style='color:{theme.UP.name()}'>{fmt_int(bid_total)}</span>"
            f" · Total ask qty <span style='color:{theme.DOWN.name()}'>{fmt_int(ask_total)}</span>"
        )
        self.stack.setCurrentIndex(0)

    def _show_empty(self, message: str) -> None:
        self.model.set_depth(None)
        self.totals.setText("")
        self.empty.setText(message)
        self.stack.setCurrentWidget(self.empty)

    def _fit_columns(self) -> None:
        """Prices and order counts get what they need, the quantities (and bars) the rest.

        The dock shares the narrow right column, where equal columns would cut the prices.
        """
        metrics = self.table.fontMetrics()
        bold = QFont(self.table.font())
        bold.setBold(True)
        orders = QFontMetrics(bold).horizontalAdvance("Orders") + 4
        price = metrics.horizontalAdvance(self._price_template) + 9
        rest = self.table.viewport().width() - 2 * (orders + price)
        qty = max(metrics.horizontalAdvance("999") + 8, rest // 2)
        for column, width in enumerate((orders, qty, price, price, qty, orders)):
            self.table.setColumnWidth(column, width)

    def _clicked(self, index: QModelIndex) -> None:
        level = self.model.level(index.row(), index.column())
        if level is not None:
            self.priceClicked.emit(level.price)
