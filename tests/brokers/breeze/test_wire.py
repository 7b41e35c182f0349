"""The stream's raw positional lists decoded into exact, IST-stamped domain ticks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from services.brokers.breeze.wire import StreamDecoder, WireError, turnover
from services.clock import IST

EPOCH = 1_764_735_000  # 2025-12-03 09:40:00 IST

CASH = [
    "4.1!2885", 2940.0, 2950.4, 2961.15, 2931.6, 0.36, 2950.3, 500, 2950.5, 450, 25, 2948.72,
    1234567, 40000, 38000, "323.61C", "", 2360.3, 3540.5, EPOCH, 2939.85,
]  # fmt: skip
FNO = [
    "4.1!35001", 118.0, 120.55, 125.1, 110.05, 2.1, 120.5, 750, 120.6, 1500, 75, 119.4,
    5000000, 12500, 987654, 20000, 21000, "12.5L", "", 0.05, 480.0, EPOCH + 1, 118.1,
]  # fmt: skip
DEPTH = [
    "4.2!2885",
    EPOCH + 2,
    [[2950.3, 100, 3, "N", 2950.5, 90, 2, "N"], [2950.2, 200, 5, "N", 0, 0, 0, "N"]],
]


def decoder() -> StreamDecoder:
    return StreamDecoder(
        {"4.1!2885": "NSE:RELIANCE", "4.2!2885": "NSE:RELIANCE", "4.1!35001": "NFO:OPT"}
    )


def test_cash_quote_list() -> None:
    d = decoder()
    tick = d.decode(CASH)
    assert tick is not None
    assert tick.key == "NSE:RELIANCE"
    assert tick.last_price == Decimal("2950.4")  # exact, not 2950.400000000000091
    assert (tick.open, tick.high, tick.low) == (
        Decimal("2940.0"),
        Decimal("2961.15"),
        Decimal("2931.6"),
    )
    assert tick.close == Decimal("2939.85") and tick.volume == 1234567
    assert tick.last_quantity == 25
    assert tick.ts == datetime(2025, 12, 3, 9, 40, tzinfo=IST)
    assert tick.ts.utcoffset() is not None and tick.ts.tzinfo is IST
    quote = d.quotes["NSE:RELIANCE"]
    assert quote.upper_circuit == Decimal("3540.5") and quote.open_interest is None
    assert quote.turnover == Decimal("3236100000.00")


def test_fno_quote_list_has_open_interest_inserted() -> None:
    d = decoder()
    tick = d.decode(FNO)
    assert tick is not None
    assert tick.volume == 987654 and tick.close == Decimal("118.1")
    assert tick.ts == datetime(2025, 12, 3, 9, 40, 1, tzinfo=IST)
    assert d.quotes["NFO:OPT"].open_interest == 5000000
    assert d.quotes["NFO:OPT"].turnover == Decimal("1250000.0")


def test_depth_merges_into_the_last_quote() -> None:
    d = decoder()
    assert d.decode(DEPTH) is None  # no quote yet: nothing to merge into
    d.decode(CASH)
    tick = d.decode(DEPTH)
    assert tick is not None and tick.depth is not None
    assert tick.last_price == Decimal("2950.4")
    assert tick.depth.best_bid is not None and tick.depth.best_bid.price == Decimal("2950.3")
    assert tick.depth.best_bid.orders == 3
    assert len(tick.depth.bids) == 2 and len(tick.depth.asks) == 1  # a zero rate is no level
    assert tick.ts == datetime(2025, 12, 3, 9, 40, 2, tzinfo=IST)
    again = d.decode(CASH)
    assert again is not None and again.depth == tick.depth  # depth kept across quotes


def test_unknown_tokens_are_ignored_and_malformed_lists_refused() -> None:
    d = decoder()
    assert d.decode(["4.1!9999", *CASH[1:]]) is None and d.unknown == 1
    with pytest.raises(WireError, match="22 items"):
        d.decode([*CASH, 1])
    with pytest.raises(WireError, match="not a stream list"):
        d.decode({"symbol": "4.1!2885"})
    with pytest.raises(WireError, match="not a number"):
        d.decode(["4.1!2885", "x", *CASH[2:]])


def test_turnover_text() -> None:
    assert turnover("323.61C") == Decimal("3236100000.00")
    assert turnover("12.5L") == Decimal("1250000.0")
    assert turnover("950") == Decimal(950)
