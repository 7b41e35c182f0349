"""``dalal charges``: a contract-note-like summary of one day's paper orders and their charges."""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from app.commands.vault import add_profile_args, guarded, unlock
from services.domain import Exchange, Instrument, InstrumentKind


@guarded
def day_cmd(args: argparse.Namespace) -> int:
    from services.clock import IST
    from services.costs import ChargeBreakdown, OrderCharges, load_schedule
    from services.instruments import InstrumentRegistry, bundled_universe

    try:
        day = date.fromisoformat(args.date) if args.date else datetime.now(IST).date()
    except ValueError:
        raise ValueError(f"--date wants a date like 2026-11-02, not {args.date!r}") from None
    start = datetime.combine(day, time(0), tzinfo=IST)
    _vault, db = unlock(args)
    try:
        orders = {
            o.order_id: o for o in db.orders.placed_between(start, start + timedelta(days=1))
        }
        fills = sorted(db.fills.between(start, start + timedelta(days=1)),
                       key=lambda f: (f.ts, f.fill_id))
    finally:
        db.close()
    if not fills:
        print(f"no fills on {day:%d %b %Y}")
        return 0
    registry = InstrumentRegistry(bundled_universe(day)[0])
    ledger = OrderCharges(args.tariff)
    per_order: dict[str, ChargeBreakdown] = {}
    turnover: dict[str, tuple[int, Decimal]] = {}
    for f in fills:
        instrument = registry.get(f.key) or _guess_instrument(f.key)
        paid = ledger.on_fill(order_id=f.order_id, instrument=instrument, product=f.product,
                              side=f.side, quantity=f.quantity, price=f.price, day=day)
        per_order[f.order_id] = per_order.get(f.order_id, ChargeBreakdown()) + paid
        qty, value = turnover.get(f.order_id, (0, Decimal(0)))
        turnover[f.order_id] = (qty + f.quantity, value + f.price * f.quantity)
    print(f"Charges for {day:%d %b %Y} at the {args.tariff} tariff (₹)")
    tariff = load_schedule().tariff_on(args.tariff, day)
    if tariff.hypothetical:
        print(f"({args.tariff} is a hypothetical tariff, no broker's: see docs/backtesting.md)")
    elif tariff.unverified:
        print(f"(not checked against {args.tariff}'s own published tariff: "
              f"{', '.join(tariff.unverified)})")
    head = ("order", "symbol", "side", "qty", "turnover", "brokerage", "STT", "exch", "SEBI",
            "IPFT", "stamp", "GST", "DP", "total")
    print(f"{head[0]:10} {head[1]:22} {head[2]:4} {head[3]:>6} {head[4]:>12} " +
          " ".join(f"{h:>9}" for h in head[5:]))
    total = ChargeBreakdown()
    for order_id, c in per_order.items():
        order = orders.get(order_id)
        key = order.key if order else "?"
        side = order.side.value if order else "?"
        qty, value = turnover[order_id]
        total = total + c
        amounts = (c.brokerage, c.stt, c.exchange, c.sebi, c.ipft, c.stamp, c.gst, c.dp,
                   c.total)
        print(f"{order_id:10} {key:22} {side:4} {qty:>6} {value:>12,.2f} " +
              " ".join(f"{a:>9,.2f}" for a in amounts))
    print(f"{'total':10} {'':22} {'':4} {'':>6} {'':>12} " + " ".join(
        f"{a:>9,.2f}" for a in (total.brokerage, total.stt, total.exchange, total.sebi,
                                total.ipft, total.stamp, total.gst, total.dp, total.total)))
    return 0


def _guess_instrument(key: str) -> Instrument:
    """An instrument for charging only, from its key: a contract no longer in today's master
    (expired, or of a strike the bundled list does not carry) still paid its charges."""
    exchange, _, symbol = key.partition(":")
    kind = (
        InstrumentKind.CALL if symbol.endswith("CE")
        else InstrumentKind.PUT if symbol.endswith("PE")
        else InstrumentKind.FUTURE if symbol.endswith("FUT")
        else InstrumentKind.EQUITY
    )
    return Instrument(Exchange(exchange), symbol, key, symbol, kind, Decimal("0.05"), 1)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("charges", help="what a day's paper orders paid in charges")
    sub = parser.add_subparsers(dest="charges_command", required=True)
    p = sub.add_parser("day", help="a contract-note-like summary per order for one day")
    p.add_argument("--date", help="the IST day (YYYY-MM-DD); default today")
    p.add_argument("--tariff", default="zerodha", help="whose brokerage (default zerodha)")
    add_profile_args(p)
    p.set_defaults(func=day_cmd)
