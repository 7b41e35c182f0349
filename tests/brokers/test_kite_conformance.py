"""Zerodha's own sample responses and ticker packets, read by our decoder and mapping.

The samples (github.com/zerodha/kiteconnect-mocks) are not vendored: this module reads them
from ``../shared/kiteconnect-mocks`` beside the repository and is skipped where they are absent.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.brokers.kite import mapping
from services.brokers.kite.instruments import parse_instruments
from services.brokers.kite.ticker_decode import (
    TickDecoder,
    build_frame,
    decode_packet,
)
from services.clock import IST
from services.domain import (
    Exchange,
    InstrumentKind,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Timeframe,
    Validity,
)

MOCKS = Path(__file__).resolve().parents[2].parent / "shared" / "kiteconnect-mocks"
pytestmark = pytest.mark.skipif(not MOCKS.is_dir(), reason=f"{MOCKS} not present")


def load(name: str) -> Any:
    return json.loads((MOCKS / name).read_text())


def data(name: str) -> Any:
    body = load(name)
    assert body["status"] == "success"
    return body["data"]


def packet(name: str) -> bytes:
    return base64.b64decode((MOCKS / name).read_text())


def D(value: float | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@pytest.mark.parametrize("mode", ["quote", "full"])
def test_ticker_packets_decode_to_the_published_values(mode: str) -> None:
    raw = packet(f"ticker_{mode}.packet")
    expected = load(f"ticker_{mode}.json")
    p = decode_packet(raw)
    assert p.mode == expected["mode"]
    assert p.tradable is expected["tradable"]
    assert p.token == expected["instrument_token"]
    assert p.last_price == D(expected["last_price"])
    assert p.last_quantity == expected["last_quantity"]
    assert p.average_price == D(expected["average_price"])
    assert p.volume == expected["volume"]
    assert p.buy_quantity == expected["buy_quantity"]
    assert p.sell_quantity == expected["sell_quantity"]
    for field in ("open", "high", "low", "close"):
        assert getattr(p, field) == D(expected["ohlc"][field]), field
    # The fixture's "change" is absolute (Go/JS clients), not pykiteconnect's percentage.
    assert p.last_price - p.close == D(expected["last_price"]) - D(expected["ohlc"]["close"])
    if mode == "full":
        ts = datetime.fromisoformat(expected["timestamp"])
        assert p.exchange_timestamp == ts
        assert p.exchange_timestamp is not None and p.exchange_timestamp.tzinfo is not None
        assert p.exchange_timestamp.utcoffset() == ts.utcoffset()  # IST, +05:30
        assert p.last_trade_time == datetime.fromisoformat(expected["last_trade_time"])
        assert (p.oi, p.oi_day_high, p.oi_day_low) == (
            expected["oi"],
            expected["oi_day_high"],
            expected["oi_day_low"],
        )
        assert p.depth is not None
        for side, levels in (("buy", p.depth.bids), ("sell", p.depth.asks)):
            assert [(lv.price, lv.quantity, lv.orders) for lv in levels] == [
                (D(e["price"]), e["quantity"], e["orders"]) for e in expected["depth"][side]
            ]


@pytest.mark.parametrize("mode", ["quote", "full"])
def test_tick_decoder_agrees_with_packet_decoder_on_the_samples(mode: str) -> None:
    raw = packet(f"ticker_{mode}.packet")
    p = decode_packet(raw)
    received = datetime(2021, 7, 5, 10, 41, 30, tzinfo=IST)
    (tick,) = TickDecoder({p.token: "NSE:INFY"}, now=lambda: received).decode(build_frame([raw]))
    assert tick.key == "NSE:INFY"
    assert (tick.last_price, tick.last_quantity, tick.volume) == (
        p.last_price,
        p.last_quantity,
        p.volume,
    )
    assert (tick.open, tick.high, tick.low, tick.close) == (p.open, p.high, p.low, p.close)
    assert tick.ts == (p.exchange_timestamp or received)
    assert tick.depth == p.depth


def test_ticker_ltp_sample_round_trips_through_a_built_packet() -> None:
    # There is no ltp .packet sample: build one from the JSON and decode it back.
    expected = load("ticker_ltp.json")
    raw = expected["instrument_token"].to_bytes(4, "big") + round(
        expected["last_price"] * 100
    ).to_bytes(4, "big")
    p = decode_packet(raw)
    assert (p.mode, p.token, p.last_price) == ("ltp", 408065, D(expected["last_price"]))


def test_orders_sample_maps_every_order() -> None:
    records = data("orders.json")
    orders = [mapping.order_from_kite(r) for r in records]
    assert len(orders) == len(records) == 10
    by_id = {o.order_id: o for o in orders}
    cancelled = by_id["100000000000000"]
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.key == "CDS:USDINR21JUNFUT"
    assert cancelled.request.price == Decimal(72)
    assert cancelled.request.product is Product.NRML
    assert cancelled.placed_at == datetime(2021, 5, 31, 9, 18, 57, tzinfo=IST)
    rejected = [o for o in orders if o.status is OrderStatus.REJECTED]
    assert len(rejected) == 1 and "Insufficient funds" in rejected[0].status_message
    assert rejected[0].request.validity is Validity.TTL
    tagged = [o for o in orders if o.request.tag == "connect test order1"]
    assert len(tagged) == 1 and tagged[0].status is OrderStatus.FILLED
    assert all(o.placed_at.tzinfo is not None for o in orders)
    assert {o.request.order_type for o in orders} <= set(OrderType)


def test_order_history_sample_maps_every_state() -> None:
    states = [mapping.order_from_kite(r).status for r in data("order_info.json")]
    assert states[0] is OrderStatus.PENDING
    assert states[-1] is OrderStatus.OPEN


def test_postback_sample_maps() -> None:
    order = mapping.order_from_kite(load("postback.json"))
    assert order.status is OrderStatus.FILLED
    assert order.average_price == Decimal(470)
    assert order.request.order_type is OrderType.MARKET


@pytest.mark.parametrize("name", ["order_response.json", "order_modify.json", "order_cancel.json"])
def test_order_ack_samples_carry_an_order_id(name: str) -> None:
    assert data(name)["order_id"] == "151220000000000"


@pytest.mark.parametrize("name", ["trades.json", "order_trades.json"])
def test_trades_samples_map_to_fills(name: str) -> None:
    records = data(name)
    fills = [mapping.fill_from_kite(r) for r in records]
    assert len(fills) == len(records)
    cds = [f for f in fills if f.key == "CDS:USDINR21JUNFUT"]
    if cds:
        assert cds[0].price == Decimal("72.755")
        assert cds[0].side is Side.BUY
        assert cds[0].ts == datetime(2021, 5, 31, 11, 18, 27, tzinfo=IST)


def test_positions_sample_maps_net_positions() -> None:
    body = data("positions.json")
    positions = mapping.positions_from_kite(body)
    assert len(positions) == len(body["net"])
    lead = positions[0]
    assert lead.key == "MCX:LEADMINI17DECFUT"
    assert (lead.quantity, lead.multiplier, lead.average_price) == (1, 1000, Decimal("161.05"))
    # A cover-order (CO) position is intraday: it maps to MIS rather than failing.
    assert any(p.product is Product.MIS for p in positions if p.key == "NSE:SBIN")


@pytest.mark.parametrize("name", ["holdings.json", "holdings_compact.json"])
def test_holdings_samples_map(name: str) -> None:
    records = data(name)
    holdings = [mapping.holding_from_kite(r) for r in records]
    assert len(holdings) == len(records)
    assert all(h.quantity >= 0 for h in holdings)


def test_holdings_sample_values() -> None:
    sbin = next(
        h for h in map(mapping.holding_from_kite, data("holdings.json")) if h.key == "BSE:SBIN"
    )
    assert (sbin.quantity, sbin.average_price, sbin.last_price) == (
        16,
        Decimal("801.78125"),
        Decimal("762.45"),
    )


@pytest.mark.parametrize(
    ("name", "segment", "net", "opening"),
    [
        ("margins.json", "equity", "99725.05", "245431.60"),
        ("margins.json", "commodity", "100661.70", "100661.70"),
        ("margins_equity.json", "equity", "99725.05", "245431.60"),
        ("margin_commodity.json", "commodity", "96426.33", "97297.50"),
    ],
)
def test_margins_samples_map_to_funds(name: str, segment: str, net: str, opening: str) -> None:
    funds = mapping.funds_from_kite(data(name), segment)
    assert funds.available_cash == Decimal(net)  # float noise rounded to the paisa
    assert funds.opening_balance == Decimal(opening)


def test_quote_sample_maps_to_a_tick() -> None:
    quotes = data("quote.json")
    tick = mapping.tick_from_quote("NSE:INFY", quotes["NSE:INFY"])
    assert tick.last_price == Decimal("1412.95")
    assert tick.close == Decimal("1389.65")
    assert tick.ts == datetime(2021, 6, 8, 15, 45, 56, tzinfo=IST)
    assert tick.depth is not None
    assert tick.depth.bids == ()  # all-zero levels are empty, not price-0 bids
    assert tick.depth.best_ask is not None and tick.depth.best_ask.quantity == 5191


def test_ltp_and_ohlc_samples_map() -> None:
    for name in ("ltp.json", "ohlc.json"):
        for key, record in data(name).items():
            tick = mapping.tick_from_quote(key, record)
            assert tick.last_price > 0


def test_historical_sample_maps_to_bars() -> None:
    bars = mapping.bars_from_kite("NSE:INFY", Timeframe.M1, data("historical_minute.json"))
    assert len(bars) == 6
    assert bars[0].start == datetime(2017, 12, 15, 9, 15, tzinfo=IST)
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        Decimal("1704.5"),
        Decimal(1705),
        Decimal("1699.25"),
        Decimal("1702.8"),
        2499,
    )


def test_historical_oi_sample_maps() -> None:
    assert mapping.bars_from_kite("NFO:X", Timeframe.M1, data("historical_oi.json"))


@pytest.mark.parametrize("name", ["instruments_all.csv", "instruments_nse.csv"])
def test_instrument_master_samples_parse(name: str) -> None:
    raw = (MOCKS / name).read_bytes()
    rows = len(raw.decode().strip().splitlines()) - 1
    parsed = parse_instruments(raw)
    assert len(parsed.instruments) + sum(parsed.skipped.values()) == rows
    assert all(i.tick_size > 0 and i.lot_size >= 1 for i in parsed.instruments)
    if name == "instruments_all.csv":
        ce = next(i for i in parsed.instruments if i.tradingsymbol == "BANKNIFTY18JAN23500CE")
        assert ce.exchange is Exchange.NFO and ce.kind is InstrumentKind.CALL
        assert (ce.tick_size, ce.lot_size, ce.strike) == (Decimal("0.05"), 40, Decimal(23500))
        assert ce.expiry is not None and ce.expiry.isoformat() == "2018-01-25"
