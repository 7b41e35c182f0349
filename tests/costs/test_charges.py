"""Charges against published figures and worked examples, to the paisa."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.costs import ChargesUnavailable, OrderCharges, charges_for_order, load_schedule
from services.domain import Exchange, Instrument, InstrumentKind, Product, Side

D = Decimal

INFY = Instrument(Exchange.NSE, "INFY", "408065", "INFOSYS", InstrumentKind.EQUITY, D("0.05"), 1)
NIFTY_FUT = Instrument(
    Exchange.NFO, "NIFTY26JUNFUT", "1", "NIFTY", InstrumentKind.FUTURE, D("0.1"), 75,
    expiry=date(2026, 6, 30),
)
NIFTY_CE = Instrument(
    Exchange.NFO, "NIFTY26JUN25000CE", "2", "NIFTY", InstrumentKind.CALL, D("0.05"), 75,
    expiry=date(2026, 6, 30), strike=D(25000),
)
RELIANCE = Instrument(
    Exchange.NSE, "RELIANCE", "738561", "RELIANCE", InstrumentKind.EQUITY, D("0.05"), 1
)
SENSEX = Instrument(Exchange.BSE, "SENSEX", "3", "SENSEX", InstrumentKind.INDEX, D("0.01"), 1)


def both_sides(instrument, product, buy, sell, qty, day, broker):
    buy_c = charges_for_order(
        instrument=instrument, product=product, side=Side.BUY, turnover=buy * qty, day=day,
        broker=broker,
    )
    sell_c = charges_for_order(
        instrument=instrument, product=product, side=Side.SELL, turnover=sell * qty, day=day,
        broker=broker,
    )
    return buy_c + sell_c


def test_hypothetical_flat20_delivery_round_trip_worked_by_hand():
    # flat20 is a hypothetical tariff (no broker's): Rs 20 an order, paisa rounding. Equity
    # delivery, 100 shares bought at 1,000 and sold at 1,100 at the 2026 rates: turnover
    # 2,10,000; STT 210.00, GST 8.40, stamp 15.00, exchange 6.24, SEBI 0.21, IPFT 0.21,
    # brokerage 40.00; total 280.06.
    c = both_sides(INFY, Product.CNC, D(1000), D(1100), 100, date(2026, 6, 10), "flat20")
    assert c.brokerage == D("40.00")
    assert c.stt == D("210.00")
    assert c.exchange == D("6.24")
    assert c.sebi == D("0.21")
    assert c.ipft == D("0.21")
    assert c.stamp == D("15.00")
    assert c.gst == D("8.40")
    assert c.total == D("280.06")


def test_zerodha_option_round_trip_worked_example_2026_rates():
    # Worked by hand from Zerodha's published tariff and the 2026 rates: buy 75 @ 100, sell
    # 75 @ 110. Brokerage 20 + 20; STT 0.15% of 8,250 = 12.375, rounded to the rupee (12);
    # exchange 0.03503% = 2.63 + 2.89; SEBI 0.01 + 0.01; IPFT 0.04 + 0.04; stamp 0.003% of
    # 7,500 = 0.23; GST 18% of (20 + 2.63 + 0.01 + 0.04) = 4.08 and of (20 + 2.89 + 0.01 +
    # 0.04) = 4.13.
    c = both_sides(NIFTY_CE, Product.NRML, D(100), D(110), 75, date(2026, 6, 10), "zerodha")
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.ipft, c.stamp, c.gst) == (
        D("40.00"), D("12"), D("5.52"), D("0.02"), D("0.08"), D("0.23"), D("8.21"),
    )
    assert c.total == D("66.06")


def test_zerodha_delivery_dp_charge_is_the_published_15_34_once_per_scrip_per_day():
    ledger = OrderCharges("zerodha")
    day = date(2026, 6, 10)
    first = ledger.on_fill(
        order_id="A", instrument=INFY, product=Product.CNC, side=Side.SELL, quantity=5,
        price=D(1500), day=day,
    )
    second = ledger.on_fill(
        order_id="B", instrument=INFY, product=Product.CNC, side=Side.SELL, quantity=5,
        price=D(1500), day=day,
    )
    assert first.dp == D("15.34")
    assert second.dp == 0
    assert first.brokerage == 0  # delivery is free at Zerodha


def _dp_for_a_day(broker: str, day: date, sells: list[Instrument]) -> list[Decimal]:
    """The DP charge each delivery sell of the day adds, in order."""
    ledger = OrderCharges(broker)
    return [
        ledger.on_fill(
            order_id=f"S{i}", instrument=instrument, product=Product.CNC, side=Side.SELL,
            quantity=50, price=D(1200), day=day,
        ).dp
        for i, instrument in enumerate(sells)
    ]


def test_zerodhas_published_dp_scenarios_to_the_paisa():
    # support.zerodha.com/category/account-opening/charges-at-zerodha/articles/
    # what-do-dp-charges-mean: "50 shares of Reliance are sold at 10:00 AM, and another 50 are
    # sold at 2:00 PM. The total DP charges for the day would be Rs 13 + 18% GST"; Reliance and
    # Infosys sold the same day: "Rs 26 + 18% GST". 13 x 1.18 = 15.34.
    day = date(2026, 6, 10)
    assert _dp_for_a_day("zerodha", day, [RELIANCE, RELIANCE]) == [D("15.34"), 0]
    assert sum(_dp_for_a_day("zerodha", day, [RELIANCE, INFY])) == D("30.68")


def test_upstoxs_published_dp_charge_to_the_paisa():
    # upstox.com/help-center/account-opening/brokerage-and-account-opening-charges-account-
    # opening-1/11560-dp-transaction-charges-2/: "Rs.18.5 + GST (18%) = 21.83 ... per scrip".
    assert _dp_for_a_day("upstox", date(2026, 6, 10), [INFY, INFY]) == [D("21.83"), 0]


def test_angel_ones_published_dp_charge():
    # angelone.in/blog/pricing-update-2024-for-i-trade: "Equity ISINs: INR 20 + GST" per
    # debit (INR 3.5 CDSL + INR 16.5 Angel One). 20 x 1.18 = 23.60.
    assert _dp_for_a_day("angelone", date(2026, 6, 10), [INFY, INFY]) == [D("23.60"), 0]


def test_icici_directs_published_dp_example():
    # icicidirect.com/faqs/stocks/difference-between-prime-plan-and-ivalue-plan: Tata Motors
    # sold several times in a day is one debit instruction, "only Rs 20 will be charged"; two
    # companies' shares the same day are "Rs 20*2 = Rs 40" (plus GST: 23.60 each).
    day = date(2026, 6, 10)
    assert _dp_for_a_day("breeze", day, [RELIANCE, RELIANCE, RELIANCE]) == [D("23.60"), 0, 0]
    assert sum(_dp_for_a_day("breeze", day, [RELIANCE, INFY])) == D("47.20")


def _brokerage(broker: str, instrument: Instrument, product: Product, turnover: str) -> Decimal:
    """The brokerage of one executed order of ``turnover`` rupees on 10 Jun 2026."""
    return charges_for_order(
        instrument=instrument, product=product, side=Side.BUY, turnover=D(turnover),
        day=date(2026, 6, 10), broker=broker,
    ).brokerage


def test_zerodha_futures_and_options_brokerage_as_its_support_page_states():
    # support.zerodha.com/.../what-is-the-brokerage-for-futures-and-options: futures "0.03% or
    # Rs 20 per executed order, whichever is lower", options "Flat Rs 20 per executed order".
    assert _brokerage("zerodha", NIFTY_FUT, Product.NRML, "50000") == D("15.00")
    assert _brokerage("zerodha", NIFTY_FUT, Product.NRML, "1875000") == D("20.00")
    assert _brokerage("zerodha", NIFTY_CE, Product.NRML, "750") == D("20.00")  # not 0.03%


def test_zerodha_futures_round_trip_worked_example_2026_rates():
    # Worked by hand from Zerodha's futures brokerage and the 2026 rates: one NIFTY lot (75)
    # bought at 25,000 and sold at 25,100. Brokerage 0.03% of 18,75,000 is 562.50, so Rs 20
    # each side; STT 0.05% of 18,82,500 = 941.25 -> 941; exchange 0.00173% = 32.44 + 32.57;
    # SEBI and IPFT 1.88 a side each; stamp 0.002% of 18,75,000 = 37.50; GST 18% of
    # (20 + 32.44 + 1.88 + 1.88) = 10.12 and of (20 + 32.57 + 1.88 + 1.88) = 10.14.
    c = both_sides(NIFTY_FUT, Product.NRML, D(25000), D(25100), 75, date(2026, 6, 10),
                   "zerodha")
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.ipft, c.stamp, c.gst) == (
        D("40.00"), D("941"), D("65.01"), D("3.76"), D("3.76"), D("37.50"), D("20.26"),
    )
    assert c.total == D("1111.29")


def test_upstox_delivery_brokerage_is_2_5_percent_capped_at_rs_20_per_order():
    # upstox.com/help-center/257373: "Rs 20 or 2.5% whichever is lower on Equity Delivery".
    assert _brokerage("upstox", INFY, Product.CNC, "600") == D("15.00")
    assert _brokerage("upstox", INFY, Product.CNC, "1500") == D("20.00")
    # The cap is per executed order: two fills of one Rs 1,500 order pay Rs 20 in all.
    ledger = OrderCharges("upstox")
    parts = [
        ledger.on_fill(order_id="U", instrument=INFY, product=Product.CNC, side=Side.BUY,
                       quantity=q, price=D(150), day=date(2026, 6, 10)).brokerage
        for q in (4, 6)
    ]
    assert parts == [D("15.00"), D("5.00")]


def test_angel_one_brokerage_as_its_charges_page_states_from_november_2024():
    # angelone.in/exchange-transaction-charges: stock investments "lower of Rs 20 or 0.1% per
    # executed order, minimum Rs 2"; intraday "lower of Rs 20 or 0.03%"; futures and options
    # "Rs 20 per executed order".
    assert _brokerage("angelone", INFY, Product.CNC, "1000") == D("2.00")  # 1.00 -> minimum
    assert _brokerage("angelone", INFY, Product.CNC, "12000") == D("12.00")
    assert _brokerage("angelone", INFY, Product.CNC, "50000") == D("20.00")
    assert _brokerage("angelone", INFY, Product.MIS, "50000") == D("15.00")
    assert _brokerage("angelone", INFY, Product.MIS, "100000") == D("20.00")
    assert _brokerage("angelone", NIFTY_FUT, Product.NRML, "5000") == D("20.00")  # flat
    assert _brokerage("angelone", NIFTY_CE, Product.NRML, "750") == D("20.00")
    with pytest.raises(ChargesUnavailable, match="starts 01 Nov 2024"):
        load_schedule().tariff_on("angelone", date(2024, 10, 31))


@pytest.mark.parametrize("instrument, product", [
    (INFY, Product.MIS), (NIFTY_CE, Product.NRML), (NIFTY_FUT, Product.NRML),
])
def test_icici_ivalue_calculator_brokerage_to_the_paisa(instrument, product):
    # icicidirect.com/brokerage/ivalue-plan, its calculator for intraday equity, options and
    # futures: "Total Trade Value 11,00,000.00 ... Brokerage 40.00" (Rs 20 per order; its STT
    # and stamp lines put 5,00,000 on the buy side and 6,00,000 on the sell). Only brokerage
    # is compared: the page's statutory lines use rates of before April 2023 (exchange
    # 0.00345%, option STT 0.05%), earlier than the first table here, and its futures total
    # leaves the Rs 40 out, which its own GST line (4.16, on 22.00 + 1.10 only) shows is a
    # slip of the page, not a free futures tariff.
    c = both_sides(instrument, product, D(5000), D(6000), 100, date(2026, 6, 10), "breeze")
    assert c.brokerage == D("40.00")


# The figures the tests above (and the DP examples) pin to a broker's own page; the tariff
# file must not call them unverified, and must call everything else so.
EVERY_FIGURE = {"EQ_DELIVERY", "EQ_INTRADAY", "FUTURES", "OPTIONS", "dp_charge"}
CHECKED_AGAINST_THE_BROKER = {
    "zerodha": EVERY_FIGURE,
    "upstox": EVERY_FIGURE,
    "angelone": EVERY_FIGURE,
    # ICICI's I-Secure page gives delivery at 0.55% but its minimum per small trade is cut off
    # in the stored copy, so the delivery rule as a whole stays unverified.
    "breeze": {"EQ_INTRADAY", "FUTURES", "OPTIONS", "dp_charge"},
}


def test_the_tariff_file_marks_exactly_the_unchecked_figures_unverified():
    for broker, checked in CHECKED_AGAINST_THE_BROKER.items():
        tariff = load_schedule().tariff_on(broker, date(2026, 6, 10))
        assert set(tariff.unverified) == EVERY_FIGURE - checked, broker
        assert not tariff.hypothetical, broker


def test_every_bundled_tariff_is_a_checked_broker_or_marked_hypothetical():
    # A new broker's tariff cannot slip in without its figures being checked above, and the
    # illustration cannot pass for a broker's tariff.
    for broker, versions in load_schedule().tariffs.items():
        for tariff in versions:
            if broker in CHECKED_AGAINST_THE_BROKER:
                continue
            assert tariff.hypothetical, f"{broker} is neither checked nor hypothetical"
            assert tariff.source.startswith("Hypothetical"), broker
            assert tariff.unverified == ()
    assert load_schedule().tariff_on("flat20", date(2026, 6, 10)).hypothetical


def test_stt_on_futures_follows_the_budget_2026_change_on_1_april():
    def stt(day):
        return charges_for_order(
            instrument=NIFTY_FUT, product=Product.NRML, side=Side.SELL,
            turnover=D(2_000_000), day=day, broker="flat20",
        ).stt

    assert stt(date(2024, 9, 30)) == D("250.00")  # 0.0125%
    assert stt(date(2026, 3, 31)) == D("400.00")  # 0.02% from 1 Oct 2024
    assert stt(date(2026, 4, 1)) == D("1000.00")  # 0.05% from 1 Apr 2026


def test_nse_transaction_charges_follow_their_three_dates():
    def exchange(instrument, day):
        return charges_for_order(
            instrument=instrument, product=Product.NRML if instrument is not INFY else
            Product.MIS, side=Side.BUY, turnover=D(10_000_000), day=day, broker="flat20",
        ).exchange

    # A crore of turnover: cash 0.00325% -> 0.00322% (1 Apr 2024) -> 0.00297% (1 Oct 2024).
    assert [exchange(INFY, d) for d in (date(2024, 3, 28), date(2024, 6, 10),
                                        date(2024, 10, 1))] == [D("325.00"), D("322.00"),
                                                                 D("297.00")]
    # Options on premium: 0.05% -> 0.0495% -> 0.03503%.
    assert [exchange(NIFTY_CE, d) for d in (date(2024, 3, 28), date(2024, 6, 10),
                                            date(2024, 10, 1))] == [D("5000.00"), D("4950.00"),
                                                                     D("3503.00")]


def test_intraday_brokerage_is_capped_per_order_across_partial_fills():
    ledger = OrderCharges("zerodha")
    day = date(2026, 6, 10)
    parts = [
        ledger.on_fill(
            order_id="X", instrument=INFY, product=Product.MIS, side=Side.BUY, quantity=q,
            price=D("1500.50"), day=day,
        )
        for q in (10, 25, 65)
    ]
    whole = charges_for_order(
        instrument=INFY, product=Product.MIS, side=Side.BUY, turnover=D("1500.50") * 100,
        day=day, broker="zerodha",
    )
    total = parts[0] + parts[1] + parts[2]
    assert total == whole
    assert whole.brokerage == D("20.00")  # 0.03% of 1,50,050 is 45.02: the Rs 20 cap applies
    assert parts[0].brokerage == D("4.50")  # 0.03% of the first 15,005


def test_dates_before_the_first_table_and_unknown_brokers_are_refused():
    with pytest.raises(ChargesUnavailable, match="no statutory rates"):
        load_schedule().rates_on(date(2020, 1, 1))
    with pytest.raises(ChargesUnavailable, match="no brokerage tariff"):
        load_schedule().tariff_on("nobody", date(2026, 6, 1))
    with pytest.raises(ChargesUnavailable, match="index"):
        both_sides(SENSEX, Product.MIS, D(1), D(1), 1, date(2026, 6, 1), "zerodha")


def test_every_table_names_its_sources():
    for table in load_schedule().tables:
        assert {"stt", "exchange", "sebi", "stamp", "gst"} <= set(table.sources)
    for versions in load_schedule().tariffs.values():
        assert all(t.source for t in versions)


def test_a_hypothetical_tariff_with_figures_to_verify_is_refused():
    from services.costs.schedule import _tariff

    raw = {
        "effective_from": "2023-04-01", "source": "Hypothetical", "unverified": ["OPTIONS"],
        "hypothetical": True, "dp_charge": "0", "stt_rounding": "paisa",
        **{seg: {"flat": "20"} for seg in ("EQ_DELIVERY", "EQ_INTRADAY", "FUTURES", "OPTIONS")},
    }
    with pytest.raises(ValueError, match="hypothetical: it has no figures to verify"):
        _tariff("x", raw)
    with pytest.raises(ValueError, match="must be true or false"):
        _tariff("x", {**raw, "unverified": [], "hypothetical": "yes"})
    assert _tariff("x", {**raw, "unverified": []}).hypothetical
