"""The dated rate tables and broker tariffs, read from the bundled JSON once.

A rate is looked up by the trade's IST date: the table in force is the last one whose
``effective_from`` is on or before it. A date before the first table is refused rather than
charged at a guess, because a backtest over old data must not silently use today's STT.
"""

from __future__ import annotations

import enum
import json
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

HUNDRED = Decimal(100)


class ChargesUnavailable(ValueError):
    """No rate table or tariff covers the trade (too early a date, an unknown broker)."""


class Segment(enum.StrEnum):
    EQ_DELIVERY = "EQ_DELIVERY"
    EQ_INTRADAY = "EQ_INTRADAY"
    FUTURES = "FUTURES"
    OPTIONS = "OPTIONS"


@dataclass(frozen=True, slots=True)
class RateTable:
    """Statutory rates in force from ``effective_from``; every rate is a fraction (0.001)."""

    effective_from: date
    sources: dict[str, str]
    stt: dict[tuple[Segment, str], Decimal]  # (segment, "BUY"/"SELL")
    exchange: dict[tuple[str, Segment], Decimal]  # (venue "NSE"/"BSE", segment)
    ipft: dict[tuple[str, Segment], Decimal]
    sebi: Decimal
    stamp_buy: dict[Segment, Decimal]
    gst: Decimal


@dataclass(frozen=True, slots=True)
class BrokerageRule:
    flat: Decimal | None = None
    fraction: Decimal | None = None
    cap: Decimal | None = None
    floor: Decimal | None = None

    def brokerage(self, turnover: Decimal) -> Decimal:
        """Brokerage for one executed order of ``turnover`` rupees."""
        if self.flat is not None:
            return self.flat
        assert self.fraction is not None
        amount = turnover * self.fraction
        if self.cap is not None:
            amount = min(amount, self.cap)
        if self.floor is not None:
            amount = max(amount, min(self.floor, turnover))
        return amount


@dataclass(frozen=True, slots=True)
class Tariff:
    """One broker's tariff from ``effective_from``. ``unverified`` names the figures (segment
    names, ``dp_charge``) that no stored copy of the broker's own page confirms, so a user
    (and the docs) can tell a checked rate from a best reading of third-party summaries.
    ``hypothetical`` marks an illustration (``flat20``) that is no broker's tariff at all, so
    nothing presents it as one."""

    broker: str
    effective_from: date
    source: str
    unverified: tuple[str, ...]
    rules: dict[Segment, BrokerageRule]
    dp_charge: Decimal
    stt_to_rupee: bool
    hypothetical: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    tables: tuple[RateTable, ...]
    tariffs: dict[str, tuple[Tariff, ...]]

    def rates_on(self, day: date) -> RateTable:
        starts = [t.effective_from for t in self.tables]
        i = bisect_right(starts, day)
        if i == 0:
            raise ChargesUnavailable(
                f"no statutory rates are known for {day:%d %b %Y}; the earliest table starts "
                f"{starts[0]:%d %b %Y}"
            )
        return self.tables[i - 1]

    def tariff_on(self, broker: str, day: date) -> Tariff:
        versions = self.tariffs.get(broker)
        if not versions:
            known = ", ".join(sorted(self.tariffs))
            raise ChargesUnavailable(f"no brokerage tariff for {broker!r}; known: {known}")
        i = bisect_right([t.effective_from for t in versions], day)
        if i == 0:
            raise ChargesUnavailable(
                f"the {broker} tariff starts {versions[0].effective_from:%d %b %Y}; "
                f"nothing is known for {day:%d %b %Y}"
            )
        return versions[i - 1]


def _pct(value: str) -> Decimal:
    return Decimal(value) / HUNDRED


def _table(raw: dict[str, Any]) -> RateTable:
    return RateTable(
        effective_from=date.fromisoformat(raw["effective_from"]),
        sources=dict(raw["sources"]),
        stt={
            (Segment(seg), side): _pct(rate)
            for seg, sides in raw["stt"].items()
            for side, rate in sides.items()
        },
        exchange={
            (venue, Segment(seg)): _pct(rate)
            for venue, segs in raw["exchange"].items()
            for seg, rate in segs.items()
        },
        ipft={
            (venue, Segment(seg)): _pct(rate)
            for venue, segs in raw["ipft"].items()
            for seg, rate in segs.items()
        },
        sebi=_pct(raw["sebi"]),
        stamp_buy={Segment(seg): _pct(rate) for seg, rate in raw["stamp_buy"].items()},
        gst=_pct(raw["gst"]),
    )


def _rule(raw: dict[str, str]) -> BrokerageRule:
    if "flat" in raw:
        return BrokerageRule(flat=Decimal(raw["flat"]))
    return BrokerageRule(
        fraction=_pct(raw["percent"]),
        cap=Decimal(raw["cap"]) if "cap" in raw else None,
        floor=Decimal(raw["floor"]) if "floor" in raw else None,
    )


_CHECKABLE = frozenset({*(seg.value for seg in Segment), "dp_charge"})


def _tariff(broker: str, raw: dict[str, Any]) -> Tariff:
    unverified = tuple(raw["unverified"])
    unknown = set(unverified) - _CHECKABLE
    if unknown:
        raise ValueError(f"the {broker} tariff marks unknown figures unverified: {sorted(unknown)}")
    hypothetical = raw.get("hypothetical", False)
    if hypothetical is not True and hypothetical is not False:
        raise ValueError(f"the {broker} tariff's 'hypothetical' must be true or false")
    if hypothetical and unverified:
        raise ValueError(f"the {broker} tariff is hypothetical: it has no figures to verify")
    return Tariff(
        broker=broker,
        effective_from=date.fromisoformat(raw["effective_from"]),
        source=raw["source"],
        unverified=unverified,
        rules={seg: _rule(raw[seg.value]) for seg in Segment},
        dp_charge=Decimal(raw["dp_charge"]),
        stt_to_rupee=raw["stt_rounding"] == "rupee",
        hypothetical=hypothetical,
    )


def _read(name: str) -> dict[str, Any]:
    text = resources.files("resources.charges").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def load_schedule() -> Schedule:
    """The bundled schedule, parsed once per process (it is immutable)."""
    tables = sorted(
        (_table(t) for t in _read("statutory.json")["tables"]), key=lambda t: t.effective_from
    )
    tariffs = {
        broker: tuple(sorted((_tariff(broker, v) for v in raw), key=lambda t: t.effective_from))
        for broker, raw in _read("tariffs.json")["tariffs"].items()
    }
    return Schedule(tables=tuple(tables), tariffs=tariffs)
