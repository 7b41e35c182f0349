"""The binary decoder against the layout, against the SDK's own parser, and against the fake.

Packets are built by ``tests.fakes.angelone.packets`` (``pack_into`` at each documented
offset); the SDK's ``_parse_binary_data`` reads the same bytes as a third opinion.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from services.brokers.angelone.sdk import load_sdk
from services.brokers.angelone.wire import (
    AngelTickDecoder,
    WireDecodeError,
    decode_packet,
)
from services.clock import IST
from tests.fakes.angelone.packets import LTP, QUOTE, SNAP_QUOTE, encode, sample_quote

MS = 1_764_745_200_123  # 2025-12-03 12:30:00.123 IST


def sdk_parse(data: bytes) -> dict[str, object]:
    cls = load_sdk().SmartWebSocketV2
    sock = cls.__new__(cls)  # the parser needs no connection state
    parsed: dict[str, object] = sock._parse_binary_data(data)
    return parsed


def test_packet_sizes_match_the_layout() -> None:
    quote = sample_quote(1, "3045", "812.40", MS)
    assert [len(encode(quote, m)) for m in (LTP, QUOTE, SNAP_QUOTE)] == [51, 123, 379]


@pytest.mark.parametrize("mode", [LTP, QUOTE, SNAP_QUOTE])
def test_every_field_agrees_with_the_sdk_parser(mode: int) -> None:
    quote = sample_quote(2, "43650", "24210.55", MS)
    quote.oi, quote.oi_change, quote.sequence = 1_234_500, 7, 99
    data = encode(quote, mode)
    mine = decode_packet(data)
    sdk = sdk_parse(data)
    paise = lambda d: int(d * 100)  # noqa: E731
    assert mine.mode == sdk["subscription_mode"] == mode
    assert mine.exchange_type == sdk["exchange_type"] == 2
    assert mine.token == sdk["token"] == "43650"
    assert mine.sequence == sdk["sequence_number"] == 99
    assert int(mine.exchange_timestamp.timestamp() * 1000) == sdk["exchange_timestamp"] == MS
    assert paise(mine.last_price) == sdk["last_traded_price"] == 2421055
    if mode == LTP:
        return
    assert mine.last_quantity == sdk["last_traded_quantity"]
    assert paise(mine.average_price) == sdk["average_traded_price"]
    assert mine.volume == sdk["volume_trade_for_the_day"]
    assert mine.total_buy_quantity == sdk["total_buy_quantity"]
    assert mine.total_sell_quantity == sdk["total_sell_quantity"]
    for field, name in (
        ("open", "open_price_of_the_day"),
        ("high", "high_price_of_the_day"),
        ("low", "low_price_of_the_day"),
        ("close", "closed_price"),
    ):
        assert paise(getattr(mine, field)) == sdk[name], field
    if mode == QUOTE:
        return
    assert mine.oi == sdk["open_interest"] == 1_234_500
    assert mine.oi_change_percent == sdk["open_interest_change_percentage"]
    assert mine.last_trade_time is not None
    assert int(mine.last_trade_time.timestamp() * 1000) == sdk["last_traded_timestamp"]
    assert paise(mine.upper_circuit) == sdk["upper_circuit_limit"]
    assert paise(mine.lower_circuit) == sdk["lower_circuit_limit"]
    assert paise(mine.week52_high) == sdk["52_week_high_price"]
    assert paise(mine.week52_low) == sdk["52_week_low_price"]
    assert mine.depth is not None
    sdk_bids = sdk["best_5_buy_data"]
    sdk_asks = sdk["best_5_sell_data"]
    assert [(paise(lv.price), lv.quantity, lv.orders) for lv in mine.depth.bids] == [
        (b["price"], b["quantity"], b["no of orders"])
        for b in sdk_bids  # type: ignore[attr-defined]
    ]
    assert [(paise(lv.price), lv.quantity, lv.orders) for lv in mine.depth.asks] == [
        (a["price"], a["quantity"], a["no of orders"])
        for a in sdk_asks  # type: ignore[attr-defined]
    ]


def test_snap_quote_becomes_an_exact_tick_with_depth_in_ist() -> None:
    quote = sample_quote(1, "3045", "812.40", MS)
    quote.oi = 1_250_000
    decoder = AngelTickDecoder({(1, "3045"): "NSE:SBIN"})
    tick = decoder.decode(encode(quote, SNAP_QUOTE))
    assert tick is not None
    assert tick.key == "NSE:SBIN"
    assert tick.last_price == Decimal("812.40") and isinstance(tick.last_price, Decimal)
    assert tick.ts == datetime(2025, 12, 3, 12, 30, 0, 123000, tzinfo=IST)
    assert tick.ts.utcoffset() == IST.utcoffset(tick.ts)
    assert (tick.open, tick.high, tick.low, tick.close) == (
        Decimal("807.40"),
        Decimal("819.65"),
        Decimal("803.00"),
        Decimal("809.05"),
    )
    assert tick.volume == 100_000 and tick.last_quantity == 25
    assert tick.depth is not None
    assert tick.depth.best_bid is not None and tick.depth.best_ask is not None
    assert tick.depth.best_bid.price == Decimal("812.35")
    assert tick.depth.best_ask.price == Decimal("812.45")
    assert [lv.quantity for lv in tick.depth.bids] == [100, 200, 300, 400, 500]
    assert [lv.orders for lv in tick.depth.asks] == [3, 4, 5, 6, 7]
    # The fast path builds the same record as the complete one.
    full = decode_packet(encode(quote, SNAP_QUOTE))
    assert full.depth == tick.depth
    assert tick.oi == full.oi == quote.oi


def test_quote_and_ltp_ticks() -> None:
    quote = sample_quote(3, "500112", "0.05", MS)
    quote.open = quote.high = quote.low = quote.close = Decimal("0.05")
    decoder = AngelTickDecoder({(3, "500112"): "BSE:SBIN"})
    q = decoder.decode(encode(quote, QUOTE))
    ltp = decoder.decode(encode(quote, LTP))
    assert q is not None and ltp is not None
    assert q.last_price == Decimal("0.05") and q.depth is None and q.close == Decimal("0.05")
    assert ltp.last_price == Decimal("0.05") and ltp.volume == 0


def test_unknown_instruments_are_counted_not_published() -> None:
    decoder = AngelTickDecoder({(1, "3045"): "NSE:SBIN"})
    other_exchange = encode(sample_quote(3, "3045", "1", MS), LTP)
    other_token = encode(sample_quote(1, "30450", "1", MS), LTP)
    assert decoder.decode(other_exchange) is None
    assert decoder.decode(other_token) is None
    assert decoder.unknown == 2


def test_garbage_after_the_token_terminator_is_ignored() -> None:
    data = bytearray(encode(sample_quote(1, "3045", "812.40", MS), LTP))
    data[20:27] = b"\xffjunk\x00\x01"
    decoder = AngelTickDecoder({(1, "3045"): "NSE:SBIN"})
    tick = decoder.decode(bytes(data))
    assert tick is not None and tick.key == "NSE:SBIN"


def test_short_and_unknown_packets_are_refused() -> None:
    decoder = AngelTickDecoder({(1, "3045"): "NSE:SBIN"})
    with pytest.raises(WireDecodeError):
        decoder.decode(b"\x01\x01" + b"3045".ljust(25, b"\0"))
    with pytest.raises(WireDecodeError):
        decode_packet(encode(sample_quote(1, "3045", "1", MS), QUOTE)[:100])
    depth_mode = bytearray(encode(sample_quote(1, "3045", "1", MS), LTP))
    depth_mode[0] = 4
    assert decoder.decode(bytes(depth_mode)) is None
    assert decoder.unsupported == 1


def test_depth_sides_follow_the_flags_not_the_positions() -> None:
    """Angel sends five bids then five asks; a packet in another order is still read by flag."""
    data = bytearray(encode(sample_quote(1, "3045", "812.40", MS), SNAP_QUOTE))
    data[147:149] = (0).to_bytes(2, "little")  # first level now an ask
    data[147 + 5 * 20 : 149 + 5 * 20] = (1).to_bytes(2, "little")  # sixth now a bid
    sdk = sdk_parse(bytes(data))
    tick = AngelTickDecoder({(1, "3045"): "NSE:SBIN"}).decode(bytes(data))
    full = decode_packet(bytes(data))
    assert tick is not None and tick.depth is not None and tick.depth == full.depth
    assert [int(lv.price * 100) for lv in tick.depth.bids] == [
        b["price"] for b in sdk["best_5_buy_data"]  # type: ignore[attr-defined]
    ]
    assert [int(lv.price * 100) for lv in tick.depth.asks] == [
        a["price"] for a in sdk["best_5_sell_data"]  # type: ignore[attr-defined]
    ]
    assert tick.depth.bids[0].price == Decimal("812.30")  # the old second bid
    assert tick.depth.bids[-1].price == Decimal("812.45")  # the old first ask
