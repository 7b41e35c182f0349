"""Charges for an executed order, line by line as a contract note shows them.

Brokerage is per *executed order* (a cap of Rs 20 applies to the whole order, however many
fills it took), so ``OrderCharges`` charges each fill the difference between the order's
charges after the fill and before it. Each line is rounded to the paisa (STT to the rupee
where the broker's contract note does so) at the order level, which is how the brokers'
calculators arrive at their figures.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.costs.schedule import ChargesUnavailable, Schedule, Segment, load_schedule
from services.domain import ZERO, Exchange, Instrument, InstrumentKind, Product, Side

PAISA = Decimal("0.01")
RUPEE = Decimal(1)

_VENUES = {
    Exchange.NSE: "NSE",
    Exchange.NFO: "NSE",
    Exchange.BSE: "BSE",
    Exchange.BFO: "BSE",
}


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    brokerage: Decimal = ZERO
    stt: Decimal = ZERO
    exchange: Decimal = ZERO
    sebi: Decimal = ZERO
    ipft: Decimal = ZERO
    stamp: Decimal = ZERO
    gst: Decimal = ZERO
    dp: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return sum((getattr(self, f.name) for f in fields(self)), ZERO)

    def __add__(self, other: ChargeBreakdown) -> ChargeBreakdown:
        return ChargeBreakdown(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def __sub__(self, other: ChargeBreakdown) -> ChargeBreakdown:
        return ChargeBreakdown(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    def lines(self) -> list[tuple[str, Decimal]]:
        """(label, amount) pairs in contract-note order, for reports and the day summary."""
        labels = {
            "brokerage": "Brokerage",
            "stt": "STT",
            "exchange": "Exchange transaction charges",
            "sebi": "SEBI turnover fee",
            "ipft": "IPFT",
            "stamp": "Stamp duty",
            "gst": "GST",
            "dp": "DP charges",
        }
        return [(labels[f.name], getattr(self, f.name)) for f in fields(self)]


def segment_of(instrument: Instrument, product: Product) -> Segment:
    """The charging segment: options and futures by kind, equity by delivery or intraday."""
    if instrument.kind in (InstrumentKind.CALL, InstrumentKind.PUT):
        return Segment.OPTIONS
    if instrument.kind is InstrumentKind.FUTURE:
        return Segment.FUTURES
    if instrument.kind is InstrumentKind.INDEX:
        raise ChargesUnavailable(f"{instrument.key} is an index: it cannot be traded")
    return Segment.EQ_INTRADAY if product is Product.MIS else Segment.EQ_DELIVERY


def _venue(exchange: Exchange) -> str:
    venue = _VENUES.get(exchange)
    if venue is None:
        raise ChargesUnavailable(f"charges on {exchange} trades are not modelled")
    return venue


def _round(value: Decimal, step: Decimal = PAISA) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def charges_for_order(
    *,
    instrument: Instrument,
    product: Product,
    side: Side,
    turnover: Decimal,
    day: date,
    broker: str,
    schedule: Schedule | None = None,
) -> ChargeBreakdown:
    """Every charge on one executed order of ``turnover`` rupees (premium for options)."""
    if turnover <= 0:
        return ChargeBreakdown()
    schedule = schedule or load_schedule()
    rates = schedule.rates_on(day)
    tariff = schedule.tariff_on(broker, day)
    segment = segment_of(instrument, product)
    venue = _venue(instrument.exchange)
    brokerage = _round(tariff.rules[segment].brokerage(turnover))
    stt_step = RUPEE if tariff.stt_to_rupee else PAISA
    stt = _round(turnover * rates.stt[(segment, side.value)], stt_step)
    exchange = _round(turnover * rates.exchange[(venue, segment)])
    sebi = _round(turnover * rates.sebi)
    ipft = _round(turnover * rates.ipft[(venue, segment)])
    stamp = _round(turnover * rates.stamp_buy[segment]) if side is Side.BUY else ZERO
    gst = _round((brokerage + exchange + sebi + ipft) * rates.gst)
    return ChargeBreakdown(
        brokerage=brokerage,
        stt=stt,
        exchange=exchange,
        sebi=sebi,
        ipft=ipft,
        stamp=stamp,
        gst=gst,
    )


@dataclass(slots=True)
class _OrderState:
    day: date
    turnover: Decimal = ZERO
    charged: ChargeBreakdown = ChargeBreakdown()


class OrderCharges:
    """Charges fills as they arrive, so that an order's total equals its contract-note line.

    The state is rebuilt by replaying fills in order, so a paper session resumed from the
    journal charges exactly what it charged before the restart.
    """

    def __init__(self, broker: str, schedule: Schedule | None = None) -> None:
        self.broker = broker
        self._schedule = schedule or load_schedule()
        self._orders: dict[str, _OrderState] = {}
        self._dp_charged: set[tuple[date, str]] = set()

    def on_fill(
        self,
        *,
        order_id: str,
        instrument: Instrument,
        product: Product,
        side: Side,
        quantity: int,
        price: Decimal,
        day: date,
    ) -> ChargeBreakdown:
        """Return the charges this fill adds (the order's new total minus what it paid)."""
        state = self._orders.get(order_id)
        if state is None:
            state = self._orders[order_id] = _OrderState(day=day)
        state.turnover += price * quantity
        total = charges_for_order(
            instrument=instrument,
            product=product,
            side=side,
            turnover=state.turnover,
            day=state.day,
            broker=self.broker,
            schedule=self._schedule,
        )
        delta = total - state.charged
        state.charged = total
        if (
            side is Side.SELL
            and segment_of(instrument, product) is Segment.EQ_DELIVERY
            and (day, instrument.key) not in self._dp_charged
        ):
            # DP charges: once per scrip per day when delivery shares leave the demat account.
            self._dp_charged.add((day, instrument.key))
            tariff = self._schedule.tariff_on(self.broker, day)
            rates = self._schedule.rates_on(day)
            if tariff.dp_charge:
                dp = _round(tariff.dp_charge * (1 + rates.gst))
                delta = delta + ChargeBreakdown(dp=dp)
        return delta

    def order_total(self, order_id: str) -> ChargeBreakdown:
        state = self._orders.get(order_id)
        return state.charged if state is not None else ChargeBreakdown()

