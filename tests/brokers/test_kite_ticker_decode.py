"""KiteTicker binary frames of every mode decode into exact rupee ticks with IST times."""

from __future__ import annotations

import struct
from datetime import datetime
from decimal import Decimal

import pytest

from services.brokers.fast_build import fast_depth, fast_level, fast_tick
from services.brokers.kite.ticker_decode import (
    TickDecoder,
    TickerDecodeError,
    build_frame,
    decode_packet,
    split_frame,
)
from services.clock import IST
from services.domain import Depth, DepthLevel, Tick

INFY = 408065  # segment 1 (NSE): paise
NIFTY = 256265  # segment 9 (indices): not tradable
USDINR = 1912 * 256 + 3  # segment 3 (CDS): 1e7
BCD = 7001 * 256 + 6  # segment 6 (BCD): 1e4
RECEIVED = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)
EPOCH = int(datetime(2026, 11, 25, 10, 41, 27, tzinfo=IST).timestamp())
KEYS = {INFY: "NSE:INFY", NIFTY: "NSE:NIFTY 50", USDINR: "CDS:USDINRFUT", BCD: "BCD:X"}


def ltp_packet(token: int, ltp: int) -> bytes:
    return struct.pack(">II", token, ltp)


def quote_packet(token: int, ltp: int) -> bytes:
    # token ltp ltq avg volume buyq sellq open high low close
    return struct.pack(
        ">11I",
        token,
        ltp,
        7,
        ltp - 3,
        1_192_471,
        256_443,
        363_009,
        ltp - 10,
        ltp + 5,
        ltp - 20,
        ltp - 50,
    )


def full_packet(token: int, ltp: int, epoch: int = EPOCH) -> bytes:
    head = quote_packet(token, ltp) + struct.pack(">5I", epoch - 2, 1500, 1600, 1400, epoch)
    depth = b"".join(
        struct.pack(">IIH2x", 10 * (i + 1), ltp - 5 * (i + 1), i + 1) for i in range(5)
    ) + b"".join(struct.pack(">IIH2x", 20 * (i + 1), ltp + 5 * (i + 1), i + 2) for i in range(5))
    packet = head + depth
    assert len(packet) == 184
    return packet


def index_packet(token: int, ltp: int, *, full: bool) -> bytes:
    body = struct.pack(">7I", token, ltp, ltp + 100, ltp - 100, ltp - 50, ltp - 70, 0)
    return body + struct.pack(">I", EPOCH) if full else body


def decoder() -> TickDecoder:
    return TickDecoder(KEYS, now=lambda: RECEIVED)


def test_ltp_mode_gives_the_price_in_rupees_and_the_receive_time() -> None:
    (tick,) = decoder().decode(build_frame([ltp_packet(INFY, 157_370)]))
    assert tick.key == "NSE:INFY"
    assert tick.last_price == Decimal("1573.70")
    assert tick.ts == RECEIVED


def test_quote_mode_fields() -> None:
    (tick,) = decoder().decode(build_frame([quote_packet(INFY, 157_315)]))
    assert tick.last_price == Decimal("1573.15")
    assert (tick.last_quantity, tick.volume) == (7, 1_192_471)
    assert (tick.open, tick.high, tick.low, tick.close) == (
        Decimal("1573.05"),
        Decimal("1573.20"),
        Decimal("1572.95"),
        Decimal("1572.65"),
    )
    assert tick.depth is None
    assert tick.ts == RECEIVED


def test_full_mode_has_exchange_time_in_ist_and_five_levels_a_side() -> None:
    (tick,) = decoder().decode(build_frame([full_packet(INFY, 157_370)]))
    assert tick.ts == datetime(2026, 11, 25, 10, 41, 27, tzinfo=IST)
    assert tick.ts.utcoffset() is not None and tick.ts.utcoffset().total_seconds() == 19_800
    assert tick.depth is not None
    assert [lv.price for lv in tick.depth.bids] == [
        Decimal("1573.65"),
        Decimal("1573.60"),
        Decimal("1573.55"),
        Decimal("1573.50"),
        Decimal("1573.45"),
    ]
    assert tick.depth.best_ask == DepthLevel(Decimal("1573.75"), 20, 2)
    assert [lv.quantity for lv in tick.depth.asks] == [20, 40, 60, 80, 100]


def test_full_packet_decoder_keeps_oi_and_last_trade_time() -> None:
    p = decode_packet(full_packet(INFY, 157_370))
    assert (p.oi, p.oi_day_high, p.oi_day_low) == (1500, 1600, 1400)
    assert p.last_trade_time == datetime(2026, 11, 25, 10, 41, 25, tzinfo=IST)
    assert p.average_price == Decimal("1573.67")


@pytest.mark.parametrize("full", [False, True])
def test_index_packets(full: bool) -> None:
    raw = index_packet(NIFTY, 2_435_015, full=full)
    p = decode_packet(raw)
    assert p.tradable is False
    assert p.mode == ("full" if full else "quote")
    (tick,) = decoder().decode(build_frame([raw]))
    assert tick.last_price == Decimal("24350.15")
    assert (tick.high, tick.low, tick.open, tick.close) == (
        Decimal("24351.15"),
        Decimal("24349.15"),
        Decimal("24349.65"),
        Decimal("24349.45"),
    )
    assert tick.ts == (datetime(2026, 11, 25, 10, 41, 27, tzinfo=IST) if full else RECEIVED)


def test_currency_and_bcd_divisors() -> None:
    usd, bcd = decoder().decode(
        build_frame([ltp_packet(USDINR, 841_250_000), ltp_packet(BCD, 841_200)])
    )
    assert usd.last_price == Decimal("84.125")
    assert bcd.last_price == Decimal("84.12")


def test_many_packets_in_one_frame_keep_their_order() -> None:
    frame = build_frame([ltp_packet(INFY, 100), full_packet(INFY, 200), quote_packet(INFY, 300)])
    assert [t.last_price for t in decoder().decode(frame)] == [
        Decimal(1),
        Decimal(2),
        Decimal(3),
    ]
    assert len(split_frame(frame)) == 3


def test_heartbeat_gives_nothing() -> None:
    assert decoder().decode(b"\x00") == []
    assert split_frame(b"\x00") == []


def test_unknown_tokens_are_counted_not_published() -> None:
    d = decoder()
    assert d.decode(build_frame([ltp_packet(123_457, 100)])) == []
    assert d.unknown == 1


def test_truncated_frame_is_an_error() -> None:
    frame = build_frame([full_packet(INFY, 157_370)])
    with pytest.raises(TickerDecodeError):
        decoder().decode(frame[:-10])
    with pytest.raises(TickerDecodeError):
        split_frame(frame[:-10])


def test_unknown_packet_length_is_an_error() -> None:
    with pytest.raises(TickerDecodeError):
        decoder().decode(build_frame([ltp_packet(INFY, 1) + b"\x00" * 4]))


def test_fast_builders_match_the_dataclass_constructors() -> None:
    # Guards the slot-writing builders against a field added to the domain types.
    level = DepthLevel(Decimal("1.5"), 3, 2)
    assert fast_level(Decimal("1.5"), 3, 2) == level
    assert fast_depth((level,), ()) == Depth((level,), ())
    args = (
        "NSE:INFY",
        RECEIVED,
        Decimal(1),
        2,
        3,
        Decimal(4),
        Decimal(5),
        Decimal(6),
        Decimal(7),
        None,
    )
    assert fast_tick(*args) == Tick(*args)  # type: ignore[arg-type]
    assert fast_tick(*args, 650) == Tick(*args, 650)  # type: ignore[arg-type]
    assert len(Tick.__dataclass_fields__) == 12
    assert len(DepthLevel.__dataclass_fields__) == 3
    assert len(Depth.__dataclass_fields__) == 2


def test_price_cache_returns_exact_values_across_frames() -> None:
    d = decoder()
    first = d.decode(build_frame([full_packet(INFY, 157_370)]))[0]
    second = d.decode(build_frame([full_packet(INFY, 157_370)]))[0]
    assert first == second
    assert second.depth is not None and second.depth.bids[0].price == Decimal("1573.65")
