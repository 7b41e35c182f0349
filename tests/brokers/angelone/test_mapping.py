"""Angel One's order vocabulary both ways: every variety, type, product and duration."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from services.broker import OrderRejected
from services.brokers.angelone import mapping
from services.clock import IST
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side, Validity

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=IST)


def key_of(exchange: str, symbol: str, token: str) -> str:
    return f"{exchange}:{symbol.removesuffix('-EQ')}"


def request(**kw: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "key": "NSE:SBIN", "side": Side.BUY, "quantity": 3, "order_type": OrderType.LIMIT,
        "product": Product.CNC, "price": Decimal("812.35"), "tag": "DTabc123",
    }  # fmt: skip
    base.update(kw)
    return OrderRequest(**base)


@pytest.mark.parametrize(
    ("order_type", "angel", "variety", "price", "trigger"),
    [
        (OrderType.MARKET, "MARKET", "NORMAL", "0", "0"),
        (OrderType.LIMIT, "LIMIT", "NORMAL", "812.35", "0"),
        (OrderType.SL, "STOPLOSS_LIMIT", "STOPLOSS", "812.35", "810.00"),
        (OrderType.SL_M, "STOPLOSS_MARKET", "STOPLOSS", "0", "810.00"),
    ],
)
def test_order_types_and_varieties(
    order_type: OrderType, angel: str, variety: str, price: str, trigger: str
) -> None:
    params = mapping.order_params(
        request(order_type=order_type, trigger_price=Decimal("810.00")), "SBIN-EQ", "3045", "NSE"
    )
    assert params["ordertype"] == angel
    assert params["variety"] == variety
    assert params["price"] == price and params["triggerprice"] == trigger
    assert all(isinstance(v, str) for v in params.values())
    assert params["ordertag"] == "DTabc123"


def test_amo_variety_and_every_product_and_duration() -> None:
    assert mapping.order_params(request(amo=True), "SBIN-EQ", "3045", "NSE")["variety"] == "AMO"
    for product, angel in (
        (Product.CNC, "DELIVERY"),
        (Product.MIS, "INTRADAY"),
        (Product.NRML, "CARRYFORWARD"),
    ):
        assert (
            mapping.order_params(request(product=product), "S", "1", "NSE")["producttype"] == angel
        )
    for validity in (Validity.DAY, Validity.IOC):
        assert (
            mapping.order_params(request(validity=validity), "S", "1", "NSE")["duration"]
            == validity.value
        )


@pytest.mark.parametrize(
    ("change", "exchange", "words"),
    [
        ({"validity": Validity.TTL}, "NSE", "no TTL validity"),
        ({"validity": Validity.IOC}, "MCX", "IOC orders on commodities"),
        ({"tag": "A" * 20}, "NSE", "shorter than 20"),
        ({"tag": "has space"}, "NSE", "letters and digits"),
        ({"price": None}, "NSE", "needs a price"),
        ({"order_type": OrderType.SL, "trigger_price": None}, "NSE", "needs a trigger"),
        ({}, "NCDEX", "does not trade on exchange"),
    ],
)
def test_what_angel_lacks_is_refused_before_sending(
    change: dict[str, Any], exchange: str, words: str
) -> None:
    with pytest.raises(OrderRejected, match=words):
        mapping.order_params(request(**change), "SBIN-EQ", "3045", exchange)


def test_a_nineteen_character_tag_goes_out() -> None:
    assert mapping.order_params(request(tag="A" * 19), "S", "1", "NSE")["ordertag"] == "A" * 19


def book_row(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "variety": "NORMAL", "ordertype": "LIMIT", "producttype": "DELIVERY",
        "duration": "DAY", "price": 161.7, "triggerprice": 0.0, "quantity": "10",
        "tradingsymbol": "SBIN-EQ", "transactiontype": "BUY", "exchange": "NSE",
        "symboltoken": "3045", "ordertag": "DTabc", "averageprice": 0.0, "filledshares": "0",
        "unfilledshares": "10", "orderid": "201020000000080", "text": "",
        "status": "open", "orderstatus": "open", "updatetime": "20-Oct-2026 13:10:59",
        "exchtime": "20-Oct-2026 13:10:58", "uniqueorderid": "u-1",
    }  # fmt: skip
    row.update(kw)
    return row


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("open", "0", OrderStatus.OPEN),
        ("open", "4", OrderStatus.PARTIALLY_FILLED),
        ("trigger pending", "0", OrderStatus.TRIGGER_PENDING),
        ("after market order req received", "0", OrderStatus.OPEN),
        ("modify pending", "0", OrderStatus.OPEN),
        ("complete", "10", OrderStatus.FILLED),
        ("cancelled", "4", OrderStatus.CANCELLED),
        ("rejected", "0", OrderStatus.REJECTED),
    ],
)
def test_order_book_statuses(status: str, filled: str, expected: OrderStatus) -> None:
    order = mapping.order_from_angel(book_row(orderstatus=status, filledshares=filled), key_of, NOW)
    assert order.status is expected
    assert order.filled_quantity == int(filled)


def test_order_book_row_reads_back_every_field() -> None:
    order = mapping.order_from_angel(
        book_row(
            ordertype="STOPLOSS_LIMIT",
            variety="STOPLOSS",
            triggerprice=160.5,
            producttype="CARRYFORWARD",
            duration="IOC",
        ),
        key_of,
        NOW,
    )
    assert order.key == "NSE:SBIN" and order.side is Side.BUY and order.quantity == 10
    assert order.request.order_type is OrderType.SL
    assert order.request.price == Decimal("161.7") and order.request.trigger_price == Decimal(
        "160.5"
    )
    assert order.request.product is Product.NRML and order.request.validity is Validity.IOC
    assert order.request.tag == "DTabc" and order.broker_order_id == "u-1"
    assert order.updated_at == datetime(2026, 10, 20, 13, 10, 59, tzinfo=IST)
    amo = mapping.order_from_angel(book_row(variety="AMO"), key_of, NOW)
    assert amo.request.amo
    for angel, product in (("MARGIN", Product.CNC), ("BO", Product.MIS), ("INTRADAY", Product.MIS)):
        assert (
            mapping.order_from_angel(book_row(producttype=angel), key_of, NOW).request.product
            is product
        )


@pytest.mark.parametrize(
    "change",
    [
        {"orderstatus": "teleported"},
        {"variety": "GTT"},
        {"ordertype": "ICEBERG"},
        {"producttype": "MTF"},
        {"duration": "GTC"},
        {"exchange": "NYSE"},
        {"transactiontype": "SHORT"},
        {"updatetime": "yesterday"},
    ],
)
def test_unknown_angel_values_are_refused_by_name(change: dict[str, str]) -> None:
    with pytest.raises(mapping.MappingError, match="Angel One"):
        mapping.order_from_angel(book_row(**change), key_of, NOW)


def test_protected_limit_stays_inside_the_protection_on_the_grid() -> None:
    tick = Decimal("0.05")
    buy = mapping.protected_limit(Side.BUY, Decimal("812.40"), Decimal("0.5"), tick)
    sell = mapping.protected_limit(Side.SELL, Decimal("812.40"), Decimal("0.5"), tick)
    assert buy == Decimal("816.45")  # 816.462 rounded down onto the grid
    assert sell == Decimal("808.35")  # 808.338 rounded up onto the grid
    with pytest.raises(OrderRejected):
        mapping.protected_limit(Side.BUY, Decimal("1"), Decimal("0"), tick)
