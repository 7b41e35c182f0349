"""Find a future or option the way a trader says it: "NIFTY 26000 CE", "BANKNIFTY DEC FUT",
"RELIANCE 1500 PE 30DEC".

``parse_query`` reads the words in any order: an underlying root, a strike (or the first
digits of one, while typing), CE / PE / CALL / PUT / FUT, a month (``DEC``), a day and month
(``30DEC``, ``30 DEC``), an optional year (``30DEC26``, ``DEC 2026``) and glued forms such as
``26000CE``. ``DerivativeIndex`` keeps the derivatives by root so a keystroke looks at one
underlying's contracts, not at the whole master (Kite's NFO master has ~90,000 rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from services.domain import Instrument, InstrumentKind

MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_MONTH = "|".join(MONTHS)
_KINDS = {
    "CE": InstrumentKind.CALL,
    "CALL": InstrumentKind.CALL,
    "PE": InstrumentKind.PUT,
    "PUT": InstrumentKind.PUT,
    "FUT": InstrumentKind.FUTURE,
    "FUTURE": InstrumentKind.FUTURE,
    "FUTURES": InstrumentKind.FUTURE,
}
_DAY_MONTH = re.compile(rf"^(\d{{1,2}})({_MONTH})(\d{{2}}|\d{{4}})?$")
_MONTH_YEAR = re.compile(rf"^({_MONTH})(\d{{2}}|\d{{4}})?$")
_STRIKE_KIND = re.compile(r"^(\d+(?:\.\d+)?)(CE|PE)$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_KIND_ORDER = {InstrumentKind.FUTURE: 0, InstrumentKind.CALL: 1, InstrumentKind.PUT: 2}


@dataclass(frozen=True, slots=True)
class FnoQuery:
    root: str
    strike: str | None = None  # as typed: "26000" matches 26000 exactly, "260" by prefix
    kind: InstrumentKind | None = None
    month: int | None = None
    day: int | None = None
    year: int | None = None

    @property
    def is_derivative(self) -> bool:
        """True when the words ask for a contract, not just an underlying."""
        return any(v is not None for v in (self.strike, self.kind, self.month, self.day))


def _year(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)
    return value + 2000 if value < 100 else value


def parse_query(text: str) -> FnoQuery | None:
    """Return the parsed words, or None when there is no root to look under."""
    words = text.upper().replace(",", " ").split()
    root: list[str] = []
    strike = None
    kind = None
    month = day = year = None
    pending_day: int | None = None
    previous_strike: str | None = None
    for word in words:
        if m := _DAY_MONTH.match(word):
            day, month, year = int(m[1]), MONTHS[m[2]], _year(m[3]) or year
        elif m := _MONTH_YEAR.match(word):
            month, year = MONTHS[m[1]], _year(m[2]) or year
            if pending_day is not None:  # "30 DEC": the number before the month was a day
                day, strike, pending_day = pending_day, previous_strike, None
        elif (m := _STRIKE_KIND.match(word)) and root:
            strike, kind = m[1], _KINDS[m[2]]
        elif word in _KINDS and root:
            kind = _KINDS[word]
        elif _NUMBER.match(word) and root:
            if strike is not None and len(word) == 4 and word.startswith("20"):
                year = int(word)  # "DEC 2026" after a strike
                continue
            previous_strike, strike = strike, word
            pending_day = int(word) if len(word) <= 2 else None
        elif (root or any(c.isalpha() for c in word)) and not (strike or kind or month):
            root.append(word)
    if not root:
        return None
    return FnoQuery(" ".join(root), strike, kind, month, day, year)


def _strike_text(strike: Decimal) -> str:
    text = f"{strike.normalize():f}"
    return text


def _matches(inst: Instrument, q: FnoQuery) -> tuple[bool, bool]:
    """(matches at all, strike matched exactly)."""
    if q.kind is not None and inst.kind is not q.kind:
        return False, False
    if q.kind is None and inst.kind not in _KIND_ORDER:
        return False, False
    exp = inst.expiry
    if q.month is not None and (exp is None or exp.month != q.month):
        return False, False
    if q.day is not None and (exp is None or exp.day != q.day):
        return False, False
    if q.year is not None and (exp is None or exp.year != q.year):
        return False, False
    if q.strike is None:
        return True, False
    if inst.strike is None:
        return False, False
    try:
        exact = inst.strike == Decimal(q.strike)
    except InvalidOperation:
        exact = False
    return exact or _strike_text(inst.strike).startswith(q.strike), exact


class DerivativeIndex:
    """Futures and options by the root they are named for (``Instrument.name``)."""

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_root: dict[str, dict[str, Instrument]] = {}
        self.add(instruments)

    def add(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            if inst.is_derivative:
                self._by_root.setdefault(inst.name.upper(), {})[inst.key] = inst

    def discard(self, inst: Instrument) -> None:
        bucket = self._by_root.get(inst.name.upper())
        if bucket is not None:
            bucket.pop(inst.key, None)

    def roots(self) -> list[str]:
        return sorted(self._by_root)

    def search(self, query: FnoQuery, limit: int = 20) -> list[Instrument]:
        """Contracts matching ``query``: exact strikes first, then nearest expiry, FUT/CE/PE."""
        root = query.root.replace(" ", "")
        buckets = [self._by_root[root]] if root in self._by_root else [
            b for r, b in self._by_root.items() if r.replace(" ", "").startswith(root)
        ]
        found: list[tuple[tuple[bool, date, str, int, Decimal], Instrument]] = []
        for bucket in buckets:
            for inst in bucket.values():
                ok, exact = _matches(inst, query)
                if ok:
                    order = (
                        not exact,
                        inst.expiry or date.max,
                        inst.name,
                        _KIND_ORDER.get(inst.kind, 3),
                        inst.strike or Decimal(0),
                    )
                    found.append((order, inst))
        found.sort(key=lambda pair: pair[0])
        return [inst for _, inst in found[:limit]]


def describe(inst: Instrument) -> str:
    """The dropdown line, key first: ``NFO:NIFTY26DEC26000CE  ·  NIFTY 26000 CE  29 DEC 2026
    lot 65``; an equity or index reads ``NSE:RELIANCE  ·  Reliance Industries``."""
    if not inst.is_derivative:
        return f"{inst.key}  ·  {inst.name}"
    parts = [inst.name]
    if inst.strike is not None:
        parts.append(_strike_text(inst.strike))
    parts.append(inst.kind.value)
    expiry = f"{inst.expiry:%d %b %Y}".upper() if inst.expiry else ""
    return f"{inst.key}  ·  {' '.join(parts)}  {expiry}  lot {inst.lot_size}"
