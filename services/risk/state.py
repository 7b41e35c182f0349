"""The trading state machine: ACTIVE, REDUCING, HALTED, and what moves it.

* ACTIVE: every order that passes the limits goes out.
* REDUCING: only orders that shrink an existing position go out (set by the trader, or the
  landing state of a resume while a loss limit is still breached).
* HALTED: no new order goes out; cancels still do (they never pass through the checks).

The daily loss limit and the maximum drawdown (from the day's peak P&L) halt trading by
themselves. They are edge-triggered: a limit halts when it is crossed, not on every P&L
update while it stays crossed, so that a deliberate resume is not undone by the next tick.
Leaving HALTED always takes an explicit ``resume(actor, reason)`` that is audited.

The state, the day's peak P&L and the crossed limits persist through a ``StateStore`` so that
restarting the terminal cannot be used (or happen by accident) to get out of a halt.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from services.clock import to_ist
from services.domain import ZERO
from services.domain import format_inr as inr

log = logging.getLogger(__name__)

AuditSink = Callable[[str, str, Mapping[str, Any]], None]
"""``audit(kind, actor, details)``: the append-only audit log's entry point."""

DAILY_LOSS = "daily_loss"
MAX_DRAWDOWN = "max_drawdown"
SYSTEM_ACTOR = "risk-engine"


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class StateTransitionError(Exception):
    """A state change that needs a different, explicit action (leaving HALTED: ``resume``)."""


@dataclass(frozen=True, slots=True)
class PersistedRiskState:
    state: TradingState = TradingState.ACTIVE
    reason: str = ""
    changed_at: datetime | None = None
    changed_by: str = ""
    day: date | None = None
    peak_pnl: Decimal = ZERO
    last_pnl: Decimal = ZERO
    breached: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["state"] = self.state.value
        raw["changed_at"] = self.changed_at.isoformat() if self.changed_at else None
        raw["day"] = self.day.isoformat() if self.day else None
        raw["peak_pnl"] = str(self.peak_pnl)
        raw["last_pnl"] = str(self.last_pnl)
        raw["breached"] = sorted(self.breached)
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PersistedRiskState:
        changed_at = raw.get("changed_at")
        day = raw.get("day")
        return cls(
            state=TradingState(raw["state"]),
            reason=str(raw.get("reason", "")),
            changed_at=datetime.fromisoformat(changed_at) if changed_at else None,
            changed_by=str(raw.get("changed_by", "")),
            day=date.fromisoformat(day) if day else None,
            peak_pnl=Decimal(raw.get("peak_pnl", "0")),
            last_pnl=Decimal(raw.get("last_pnl", "0")),
            breached=frozenset(raw.get("breached", ())),
        )


class StateStore(Protocol):
    def load(self) -> PersistedRiskState | None: ...

    def save(self, state: PersistedRiskState) -> None: ...


class MemoryStateStore:
    def __init__(self) -> None:
        self.saved: PersistedRiskState | None = None

    def load(self) -> PersistedRiskState | None:
        return self.saved

    def save(self, state: PersistedRiskState) -> None:
        self.saved = state


class JsonFileStateStore:
    """One small JSON file, replaced atomically, until the encrypted profile DB takes over.

    Writes happen on state changes and (throttled by the machine) on a new P&L peak: a few
    hundred bytes without fsync, short enough for the event loop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> PersistedRiskState | None:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        try:
            return PersistedRiskState.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            # A damaged file must not silently re-enable trading: come back HALTED.
            log.error("risk state file %s is unreadable (%s): starting HALTED", self.path, exc)
            return PersistedRiskState(
                state=TradingState.HALTED, reason=f"risk state file unreadable: {exc}"
            )

    def save(self, state: PersistedRiskState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=1), "utf-8")
        os.replace(tmp, self.path)


def _no_audit(kind: str, actor: str, details: Mapping[str, Any]) -> None:
    log.info("audit %s by %s: %s", kind, actor, dict(details))


class TradingStateMachine:
    """Holds the trading state, applies P&L limits and persists and audits every change."""

    PEAK_SAVE_INTERVAL_SECONDS = 5.0

    def __init__(
        self,
        *,
        store: StateStore | None = None,
        audit: AuditSink | None = None,
        daily_loss_limit: Decimal | None = None,
        max_drawdown: Decimal | None = None,
    ) -> None:
        self._store = store if store is not None else MemoryStateStore()
        self._audit = audit if audit is not None else _no_audit
        self.daily_loss_limit = daily_loss_limit
        self.max_drawdown = max_drawdown
        self._data = self._store.load() or PersistedRiskState()
        self._peak_saved_at: datetime | None = None

    @property
    def state(self) -> TradingState:
        return self._data.state

    @property
    def snapshot(self) -> PersistedRiskState:
        return self._data

    @property
    def day_loss(self) -> Decimal:
        return max(-self._data.last_pnl, ZERO)

    @property
    def drawdown(self) -> Decimal:
        return max(self._data.peak_pnl - self._data.last_pnl, ZERO)

    def set_state(self, state: TradingState, actor: str, reason: str, now: datetime) -> None:
        """Move between ACTIVE and REDUCING, or to HALTED; leaving HALTED needs ``resume``."""
        current = self._data.state
        if current is TradingState.HALTED and state is not TradingState.HALTED:
            raise StateTransitionError("trading is HALTED: leaving it needs resume(actor, reason)")
        if state is current:
            return
        self._change(state, actor, reason, now, kind="risk.state")

    def halt(self, actor: str, reason: str, now: datetime) -> None:
        self.set_state(TradingState.HALTED, actor, reason, now)

    def resume(
        self,
        actor: str,
        reason: str,
        now: datetime,
        to: TradingState = TradingState.ACTIVE,
    ) -> TradingState:
        """Leave HALTED on a person's explicit decision; return the state entered.

        While a loss limit is still crossed the terminal resumes into REDUCING only, so the
        trader can close positions but not add to the loss that stopped them.
        """
        if not actor.strip() or not reason.strip():
            raise ValueError("resume needs the name of who resumes and why")
        if to is TradingState.HALTED:
            raise ValueError("resume must go to ACTIVE or REDUCING")
        if self._data.state is not TradingState.HALTED:
            raise StateTransitionError(f"trading is {self._data.state}, not HALTED")
        target = to
        if self._data.breached and to is TradingState.ACTIVE:
            target = TradingState.REDUCING
        self._change(
            target,
            actor,
            reason,
            now,
            kind="risk.resume",
            extra={"requested": to.value, "breached": sorted(self._data.breached)},
        )
        return target

    def on_pnl(self, total_pnl: Decimal, now: datetime) -> TradingState:
        """Feed the day's total P&L (realised + unrealised); halt if a limit is crossed."""
        data = self._data
        today = to_ist(now).date()
        if data.day != today:  # a new trading day: the peak and the crossings start afresh
            data = replace(data, day=today, peak_pnl=ZERO, breached=frozenset())
        new_peak = total_pnl > data.peak_pnl
        peak = total_pnl if new_peak else data.peak_pnl
        data = replace(data, peak_pnl=peak, last_pnl=total_pnl)

        crossed: dict[str, str] = {}
        loss = -total_pnl
        if self.daily_loss_limit is not None and loss > self.daily_loss_limit:
            crossed[DAILY_LOSS] = (
                f"day loss {inr(loss)} exceeds the daily loss limit {inr(self.daily_loss_limit)}"
            )
        drawdown = peak - total_pnl
        if self.max_drawdown is not None and drawdown > self.max_drawdown:
            crossed[MAX_DRAWDOWN] = (
                f"drawdown {inr(drawdown)} from the day's peak P&L {inr(peak)} exceeds the "
                f"limit {inr(self.max_drawdown)}"
            )
        fresh = [name for name in crossed if name not in data.breached]
        breached_changed = frozenset(crossed) != data.breached
        data = replace(data, breached=frozenset(crossed))
        self._data = data

        if fresh and data.state is not TradingState.HALTED:
            reason = "; ".join(crossed[name] for name in fresh)
            self._change(
                TradingState.HALTED,
                SYSTEM_ACTOR,
                reason,
                now,
                kind="risk.auto_halt",
                extra={"limits": fresh, "pnl": str(total_pnl), "peak_pnl": str(peak)},
            )
        elif breached_changed or (new_peak and self._peak_save_due(now)):
            self._save(now)
        return self._data.state

    def _peak_save_due(self, now: datetime) -> bool:
        last = self._peak_saved_at
        return last is None or (now - last).total_seconds() >= self.PEAK_SAVE_INTERVAL_SECONDS

    def _save(self, now: datetime) -> None:
        self._store.save(self._data)
        self._peak_saved_at = now

    def _change(
        self,
        state: TradingState,
        actor: str,
        reason: str,
        now: datetime,
        *,
        kind: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        previous = self._data.state
        self._data = replace(
            self._data, state=state, reason=reason, changed_at=now, changed_by=actor
        )
        self._save(now)
        details: dict[str, Any] = {"from": previous.value, "to": state.value, "reason": reason}
        if extra:
            details.update(extra)
        self._audit(kind, actor, details)
        log.warning("trading state %s -> %s by %s: %s", previous, state, actor, reason)
