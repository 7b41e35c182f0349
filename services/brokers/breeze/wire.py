"""Breeze's stream payloads (raw Socket.IO positional lists) decoded into domain ``Tick``s.

The SDK's own ``parse_data`` turns each list into a dict we cannot use: its ``ltt`` is
``datetime.fromtimestamp(epoch).strftime('%c')`` (the machine's local zone, in the locale's
words, without seconds' zone) and ``ttv`` is text such as ``'323.61C'``. So we read the list
as it arrives (``breeze_connect.parse_data``, the positions below): times from the epoch into
IST, prices into ``Decimal`` through the number's shortest text (``2950.4`` stays
``2950.4``).

Quote lists (token ``<exch>.1!<scrip>``):

- cash, 21 items: ``symbol, open, last, high, low, change, bPrice, bQty, sPrice, sQty, ltq,
  avgPrice, ttq, totalBuyQt, totalSellQ, ttv, trend, lowerCktLm, upperCktLm, ltt, close``
- F&O, 23 items: ``OI, CHNGOI`` inserted after ``avgPrice``.

Depth lists (token ``<exch>.2!<scrip>``): ``[symbol, epoch, levels]``, five levels of
``[bRate, bQty, bOrders, bFlag, sRate, sQty, sOrders, sFlag]`` (``[bRate, bQty, sRate,
sQty]`` on BSE, six fields on BFO).

A depth list carries no prices of the day, so it is merged into the instrument's last quote;
a depth before any quote waits for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.clock import IST
from services.domain import ZERO, Depth, DepthLevel, Tick

CASH_LENGTH = 21
FNO_LENGTH = 23


class WireError(ValueError):
    """A payload that is not a Breeze stream list; the message names what was wrong."""


# Prices repeat tick after tick: converting each float once through its text is most of the
# decode cost, so conversions are remembered (bounded: cleared when it grows past a limit).
_FLOATS: dict[float, Decimal] = {}
_FLOATS_MAX = 200_000


def dec(value: Any) -> Decimal:
    """A wire number (int, float or text) as an exact ``Decimal``."""
    if type(value) is float:
        found = _FLOATS.get(value)
        if found is None:
            if len(_FLOATS) >= _FLOATS_MAX:
                _FLOATS.clear()
            found = _FLOATS[value] = Decimal(repr(value))
        return found
    if isinstance(value, int | Decimal):
        return Decimal(value)
    try:
        return Decimal(str(value).strip() or "0")
    except InvalidOperation as exc:
        raise WireError(f"{value!r} is not a number") from exc


def turnover(text: str) -> Decimal:
    """``ttv`` as rupees: ``'323.61C'`` is 323.61 crore, ``'12.5L'`` 12.5 lakh."""
    text = str(text).strip()
    scale = {"C": Decimal(10_000_000), "L": Decimal(100_000)}.get(text[-1:].upper())
    return dec(text[:-1]) * scale if scale is not None else dec(text)


@dataclass(frozen=True, slots=True)
class Quote:
    """The fields of a quote list the Tick does not carry (best bid/ask, circuits, OI,
    turnover), read from the raw list only when asked for: most ticks are never asked."""

    raw: list[Any]
    base: int  # where ``ttq`` sits: 12 for cash, 14 for F&O

    @property
    def bid(self) -> Decimal:
        return dec(self.raw[6])

    @property
    def ask(self) -> Decimal:
        return dec(self.raw[8])

    @property
    def lower_circuit(self) -> Decimal:
        return dec(self.raw[self.base + 5])

    @property
    def upper_circuit(self) -> Decimal:
        return dec(self.raw[self.base + 6])

    @property
    def open_interest(self) -> int | None:
        return int(self.raw[12]) if self.base == 14 else None

    @property
    def turnover(self) -> Decimal:
        text = self.raw[self.base + 3]
        return turnover(text) if text not in (None, "") else ZERO


def _levels(raw: Any, exchange: str) -> Depth:
    if not isinstance(raw, list):
        raise WireError("depth levels are not a list")
    bids: list[DepthLevel] = []
    asks: list[DepthLevel] = []
    for level in raw:
        if exchange == "1":  # BSE: rate, qty, rate, qty
            b_rate, b_qty, b_orders, s_rate, s_qty, s_orders = (
                level[0],
                level[1],
                0,
                level[2],
                level[3],
                0,
            )
        elif exchange == "8":  # BFO: rate, qty, orders, rate, qty, orders
            b_rate, b_qty, b_orders, s_rate, s_qty, s_orders = level[:6]
        else:
            b_rate, b_qty, b_orders, s_rate, s_qty, s_orders = (
                level[0],
                level[1],
                level[2],
                level[4],
                level[5],
                level[6],
            )
        if dec(b_rate) > 0:
            bids.append(DepthLevel(dec(b_rate), int(b_qty), int(b_orders)))
        if dec(s_rate) > 0:
            asks.append(DepthLevel(dec(s_rate), int(s_qty), int(s_orders)))
    return Depth(tuple(bids), tuple(asks))


class StreamDecoder:
    """Decodes ``stock`` payloads for the tokens in ``keys`` (stream token -> canonical key).

    Not thread-safe: one decoder per stream, called on the loop that owns it.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)
        self._last: dict[str, Tick] = {}
        self.quotes: dict[str, Quote] = {}
        self.unknown = 0  # payloads for tokens we did not subscribe (ignored)

    def set_keys(self, keys: Mapping[str, str]) -> None:
        self._keys = dict(keys)

    def decode(self, payload: Any) -> Tick | None:
        """The Tick for one payload, or ``None`` (unknown token, depth before any quote)."""
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
            raise WireError(f"not a stream list: {type(payload).__name__}")
        token: str = payload[0]
        key = self._keys.get(token)
        if key is None:
            self.unknown += 1
            return None
        head, _, _ = token.partition("!")
        exchange, _, kind = head.partition(".")
        try:
            if kind == "1":
                return self._quote(key, payload)
            if kind == "2":
                return self._depth(key, exchange, payload)
        except (IndexError, TypeError, ValueError) as exc:
            raise WireError(f"{token}: malformed payload ({exc})") from exc
        raise WireError(f"{token}: unknown stream kind {kind!r}")

    def _quote(self, key: str, p: list[Any]) -> Tick:
        n = len(p)
        if n == CASH_LENGTH:
            base = 12
        elif n == FNO_LENGTH:
            base = 14
        else:
            raise WireError(f"quote list of {n} items (expected {CASH_LENGTH} or {FNO_LENGTH})")
        previous = self._last.get(key)
        tick = Tick(
            key=key,
            ts=datetime.fromtimestamp(int(p[base + 7]), IST),
            last_price=dec(p[2]),
            last_quantity=int(p[10]),
            volume=int(p[base]),
            open=dec(p[1]),
            high=dec(p[3]),
            low=dec(p[4]),
            close=dec(p[base + 8]),
            depth=previous.depth if previous is not None else None,
        )
        self.quotes[key] = Quote(p, base)
        self._last[key] = tick
        return tick

    def _depth(self, key: str, exchange: str, p: list[Any]) -> Tick | None:
        depth = _levels(p[2], exchange)
        previous = self._last.get(key)
        if previous is None:
            return None
        tick = replace(previous, ts=datetime.fromtimestamp(int(p[1]), IST), depth=depth)
        self._last[key] = tick
        return tick


# -- order notifications (LIVE_FEEDS_URL, event ``order``) ------------------------------------

# ``messageType`` (item 11) says which layout the rest of the list has
# (``breeze_connect.parse_data``): '4'/'5' equity, '6'/'7' F&O. Other lists on that socket
# (iClick tips: 19 items, strategies: 28) are not orders.
_EQUITY_TYPES = ("4", "5")
_FNO_TYPES = ("6", "7")
_ORDER_ID = {"4": 23, "5": 23, "6": 26, "7": 26}  # orderReference
_STATUS = {"4": 20, "5": 20, "6": 25, "7": 25}  # orderStatus (a TUX letter: O, E, C, P, J...)


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """Which order changed, on which exchange, and Breeze's one-letter status for it."""

    order_id: str
    exchange: str
    status: str


def order_notice(payload: Any) -> OrderNotice | None:
    """The order an ``order`` event is about, or None for a list that is not an order's
    (an iClick tip, a strategy). A malformed order list raises ``WireError``."""
    if not isinstance(payload, list) or len(payload) < 12:
        return None
    if not isinstance(payload[0], str) or "!" in payload[0]:
        return None
    kind = str(payload[11])
    if kind not in _EQUITY_TYPES + _FNO_TYPES:
        return None
    at = _ORDER_ID[kind]
    if len(payload) <= max(at, _STATUS[kind]):
        raise WireError(f"order notification of type {kind} has {len(payload)} items")
    order_id = str(payload[at] or "").strip()
    if not order_id:
        raise WireError("order notification without an order reference")
    exchange = str(payload[13] or "").strip().upper()
    return OrderNotice(order_id, exchange, str(payload[_STATUS[kind]]))
