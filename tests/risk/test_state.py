"""The trading state machine: REDUCING, HALTED, automatic halts, persistence and resume."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from services.broker import OrderRejected
from services.domain import Product, Side
from services.risk import (
    JsonFileStateStore,
    RiskLimits,
    StateTransitionError,
    TradingState,
)
from tests.risk.support import CALL, EQUITY, World, limit, market, position

LIMITS = RiskLimits(daily_loss_limit=Decimal(25_000), max_drawdown=Decimal(40_000))


def rule_of(engine: object, request: object, inst: object) -> str:
    with pytest.raises(OrderRejected) as info:
        engine(request, inst)  # type: ignore[operator]
    return info.value.rule


def test_active_to_reducing_to_halted(world: World) -> None:
    engine = world.engine(LIMITS)
    world.positions.append(position(EQUITY, 100))
    assert engine.state is TradingState.ACTIVE

    engine.set_state(TradingState.REDUCING, "trader", "end of day")
    assert rule_of(engine, limit(EQUITY, Side.BUY, 1, "1000"), EQUITY) == "reduce_only"
    engine(limit(EQUITY, Side.SELL, 100, "1000"), EQUITY)  # closes the long: allowed
    assert rule_of(engine, limit(EQUITY, Side.SELL, 101, "1000"), EQUITY) == "reduce_only"

    engine.halt("trader", "lunch")
    assert engine.state is TradingState.HALTED
    with pytest.raises(OrderRejected) as info:
        engine(market(EQUITY, Side.SELL, 1), EQUITY)
    assert str(info.value).startswith("trading_state: trading is HALTED (lunch)")
    assert engine.allows_cancel()
    assert world.audit_kinds() == ["risk.state", "risk.state"]


def test_reducing_counts_working_orders_that_already_reduce(world: World) -> None:
    world.positions.append(position(CALL, -150))
    world.add_open_order(limit(CALL, Side.BUY, 75, "100"))
    engine = world.engine(LIMITS)
    engine.set_state(TradingState.REDUCING, "trader", "too much risk")
    engine(limit(CALL, Side.BUY, 75, "100.05"), CALL)  # 75 working + 75 = the short 150
    with pytest.raises(OrderRejected):
        engine(limit(CALL, Side.BUY, 150, "100.10"), CALL)  # would flip to a long
    # A position in another product is another exposure.
    world.positions.append(position(CALL, 300, product=Product.NRML))
    assert rule_of(engine, limit(CALL, Side.SELL, 75, "100"), CALL) == "reduce_only"


def test_leaving_halted_needs_resume(world: World) -> None:
    engine = world.engine(LIMITS)
    engine.halt("trader", "stop")
    with pytest.raises(StateTransitionError):
        engine.set_state(TradingState.ACTIVE, "trader", "go")
    with pytest.raises(ValueError, match="who resumes and why"):
        engine.resume("trader", " ")
    assert engine.resume("alice", "checked positions") is TradingState.ACTIVE
    kind, actor, details = world.audit_log[-1]
    assert (kind, actor) == ("risk.resume", "alice")
    assert details["reason"] == "checked positions"
    assert details["from"] == "HALTED"
    engine(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)
    with pytest.raises(StateTransitionError):
        engine.resume("alice", "not halted")


def test_daily_loss_halts_by_itself_just_past_the_limit(world: World) -> None:
    engine = world.engine(LIMITS)
    assert engine.on_pnl(Decimal(-25_000)) is TradingState.ACTIVE
    assert engine.on_pnl(Decimal("-25000.01")) is TradingState.HALTED
    kind, actor, details = world.audit_log[-1]
    assert (kind, actor) == ("risk.auto_halt", "risk-engine")
    assert details["limits"] == ["daily_loss"]
    assert "₹25,000.01" in engine.state_reason
    assert engine.usage()["daily_loss"].used == Decimal("25000.01")


def test_drawdown_from_the_peak_halts_by_itself(world: World) -> None:
    engine = world.engine(LIMITS)
    engine.on_pnl(Decimal(20_000))
    engine.on_pnl(Decimal(30_000))  # the peak
    assert engine.on_pnl(Decimal(-10_000)) is TradingState.ACTIVE  # drawdown exactly 40,000
    assert engine.usage()["max_drawdown"].used == Decimal(40_000)
    assert engine.on_pnl(Decimal("-10000.05")) is TradingState.HALTED
    assert world.audit_log[-1][2]["limits"] == ["max_drawdown"]


def test_auto_halt_also_stops_reducing(world: World) -> None:
    engine = world.engine(LIMITS)
    engine.set_state(TradingState.REDUCING, "trader", "careful")
    engine.on_pnl(Decimal(-30_000))
    assert engine.state is TradingState.HALTED


def test_resume_while_breached_lands_in_reducing_and_does_not_rehalt(world: World) -> None:
    engine = world.engine(LIMITS)
    engine.on_pnl(Decimal(-30_000))
    assert engine.resume("alice", "closing out") is TradingState.REDUCING
    assert world.audit_log[-1][2]["requested"] == "ACTIVE"
    assert engine.on_pnl(Decimal(-31_000)) is TradingState.REDUCING  # same crossing
    engine.on_pnl(Decimal(-1_000))  # back inside the limit...
    assert engine.on_pnl(Decimal(-26_000)) is TradingState.HALTED  # ...and crossed again


def test_state_and_peak_survive_a_restart(world: World, tmp_path: Path) -> None:
    store = JsonFileStateStore(tmp_path / "risk-state.json")
    first = world.engine(LIMITS, store=store)
    first.on_pnl(Decimal(35_000))
    first.halt("trader", "kill switch")

    second = world.engine(LIMITS, store=JsonFileStateStore(tmp_path / "risk-state.json"))
    assert second.state is TradingState.HALTED
    assert second.state_reason == "kill switch"
    with pytest.raises(OrderRejected):
        second(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)
    second.resume("alice", "reviewed")
    # The day's peak came back too: 35,000 -> -5,001 is a 40,001 drawdown.
    assert second.on_pnl(Decimal(-5_001)) is TradingState.HALTED

    third = world.engine(LIMITS, store=JsonFileStateStore(tmp_path / "risk-state.json"))
    assert third.state is TradingState.HALTED
    assert world.audit_kinds() == [
        "risk.state", "risk.resume", "risk.auto_halt",
    ]


def test_a_new_day_resets_the_peak_but_not_a_halt(world: World, tmp_path: Path) -> None:
    engine = world.engine(LIMITS, store=JsonFileStateStore(tmp_path / "s.json"))
    engine.on_pnl(Decimal(39_000))
    engine.on_pnl(Decimal(-20_000))
    engine.halt("trader", "done for the day")
    world.clock.advance(24 * 3600)
    engine.on_pnl(Decimal(0))
    assert engine.usage()["max_drawdown"].used == 0
    assert engine.state is TradingState.HALTED


def test_an_unreadable_state_file_starts_halted(world: World, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json", "utf-8")
    engine = world.engine(LIMITS, store=JsonFileStateStore(path))
    assert engine.state is TradingState.HALTED
    assert "unreadable" in engine.state_reason
