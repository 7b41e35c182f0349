"""F&O search: the words traders type find the contract, on the bundled universe."""

from __future__ import annotations

from datetime import date

import pytest

from services.domain import InstrumentKind
from services.instruments import InstrumentRegistry, bundled_universe
from services.options.search import FnoQuery, describe, parse_query

SESSION = date(2026, 12, 1)


@pytest.fixture(scope="module")
def registry() -> InstrumentRegistry:
    return InstrumentRegistry(bundled_universe(SESSION)[0])


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("NIFTY 26000 CE", FnoQuery("NIFTY", "26000", InstrumentKind.CALL)),
        ("nifty 26000ce", FnoQuery("NIFTY", "26000", InstrumentKind.CALL)),
        ("BANKNIFTY DEC FUT", FnoQuery("BANKNIFTY", None, InstrumentKind.FUTURE, 12)),
        ("RELIANCE 1500 PE 30DEC", FnoQuery("RELIANCE", "1500", InstrumentKind.PUT, 12, 30)),
        ("RELIANCE 1500 PE 30 DEC", FnoQuery("RELIANCE", "1500", InstrumentKind.PUT, 12, 30)),
        ("NIFTY 30DEC26 26000 PUT", FnoQuery("NIFTY", "26000", InstrumentKind.PUT, 12, 30, 2026)),
        ("REL", FnoQuery("REL")),
    ],
)
def test_parse(text: str, query: FnoQuery) -> None:
    assert parse_query(text) == query


def test_parse_needs_a_root() -> None:
    query = parse_query("26000 CE")  # no underlying named: a plain text search
    assert query is None or not query.is_derivative
    assert parse_query("   ") is None


def test_nifty_strike_and_kind_finds_the_nearest_expiry_first(registry: InstrumentRegistry) -> None:
    atm = next(
        i for i in registry if i.name == "NIFTY" and i.kind is InstrumentKind.CALL and i.strike
    )
    assert atm.strike is not None
    found = registry.search(f"NIFTY {atm.strike} CE", 5)
    assert found, "no match"
    assert all(
        i.kind is InstrumentKind.CALL and i.strike == atm.strike and i.name == "NIFTY"
        for i in found
    )
    expiries = [i.expiry for i in found]
    assert expiries == sorted(expiries)  # type: ignore[type-var]


def test_month_future(registry: InstrumentRegistry) -> None:
    found = registry.search("BANKNIFTY DEC FUT", 5)
    assert [i.kind for i in found] == [InstrumentKind.FUTURE] * len(found) and found
    assert all(i.name == "BANKNIFTY" and i.expiry and i.expiry.month == 12 for i in found)


def test_day_month_option(registry: InstrumentRegistry) -> None:
    found = registry.search("RELIANCE 1500 PE 29DEC", 5)
    assert [i.tradingsymbol for i in found] == ["RELIANCE26DEC1500PE"]
    assert registry.search("RELIANCE 1500 PE 30DEC", 5) == []  # no such expiry


def test_partial_strike_while_typing(registry: InstrumentRegistry) -> None:
    found = registry.search("RELIANCE 15", 20)
    assert {i.tradingsymbol for i in found} >= {"RELIANCE26DEC1500CE", "RELIANCE26DEC1520PE"}
    assert all(str(i.strike).startswith("15") for i in found)


def test_plain_search_still_finds_the_index_and_equities(registry: InstrumentRegistry) -> None:
    assert registry.search("NIFTY 50", 3)[0].key == "NSE:NIFTY 50"
    assert registry.search("RELI", 1)[0].key == "NSE:RELIANCE"


def test_expired_contracts_leave_the_index(registry: InstrumentRegistry) -> None:
    local = InstrumentRegistry(list(registry))
    local.remove_expired(date(2027, 6, 1))
    assert local.search("RELIANCE 1500 PE", 5) == []


def test_describe_shows_exchange_expiry_and_lot(registry: InstrumentRegistry) -> None:
    inst = registry.get("NFO:RELIANCE26DEC1500PE")
    assert inst is not None
    assert describe(inst) == "NFO:RELIANCE26DEC1500PE  ·  RELIANCE 1500 PE  29 DEC 2026  lot 500"
