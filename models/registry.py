"""The model registry: versions, stages, lineage and an append-only history of stage changes.

A version moves dev -> staging -> production; skipping a stage needs ``force=True``. There is
at most one production version per model id: promoting a new one archives the old one, which
becomes the rollback target. Every stage change is an event that is never rewritten, so "which
version was in production on 3 March at 10:15" has an answer.

Storage goes through the small ``RegistryStore`` protocol (``models.sqlstore`` implements it on
any DB-API connection); artifacts go through ``ArtifactStore``, which checks signatures before
anything is unpickled.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from models.artifacts import ArtifactRef, ArtifactStore
from models.drift import DriftReference, drift_reference
from models.features import feature_hash
from models.training import TrainingResult, check_model_type
from services.domain import Timeframe

AuditFn = Callable[[str, str, dict[str, Any]], object]  # AuditLog.record(kind, actor, details)
ProductionHook = Callable[["ModelRecord"], object]
Now = Callable[[], datetime]

log = logging.getLogger(__name__)

CHECK_ROWS = 512  # training rows kept with an artifact for conversion parity checks

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Stage(enum.StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


_ORDER = (Stage.DEV, Stage.STAGING, Stage.PRODUCTION)


class RegistryError(Exception):
    """A registry request that was refused; nothing was changed."""


def parse_stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        raise RegistryError(
            f"unknown stage {value!r}; choose one of {', '.join(s.value for s in Stage)}"
        ) from None


@dataclass(frozen=True, slots=True)
class ModelRecord:
    model_id: str
    version: int
    model_type: str
    symbol: str
    timeframe: Timeframe
    horizon: int
    data_start: datetime
    data_end: datetime
    feature_names: tuple[str, ...]
    feature_hash: str
    metrics: dict[str, dict[str, float]]
    artifact: ArtifactRef
    stage: Stage
    created_at: datetime
    created_by: str
    stage_changed_at: datetime
    stage_changed_by: str
    reference: DriftReference = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model_id} v{self.version}"


@dataclass(frozen=True, slots=True)
class StageEvent:
    model_id: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    at: datetime
    reason: str = ""
    previous_production: int | None = None  # set when to_stage is production
    seq: int = 0  # assigned by the store


class RegistryStore(Protocol):
    def next_version(self, model_id: str) -> int: ...

    def get(self, model_id: str, version: int) -> ModelRecord | None: ...

    def records(self, model_id: str | None = None) -> list[ModelRecord]: ...

    def events(self, model_id: str | None = None) -> list[StageEvent]: ...

    def commit(self, records: Sequence[ModelRecord], events: Sequence[StageEvent]) -> None:
        """Upsert ``records`` and append ``events`` in one transaction."""
        ...


@dataclass(frozen=True, slots=True)
class LoadedModel:
    record: ModelRecord
    estimator: Any
    # The last training rows, kept in the artifact: the parity batch for the ONNX conversion
    # (tree thresholds sit on training values, the hardest case for float32). None in artifacts
    # written before they were kept.
    check_rows: Any = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_audit(kind: str, actor: str, details: dict[str, Any]) -> object:
    return None


class ModelRegistry:
    def __init__(
        self,
        store: RegistryStore,
        artifacts: ArtifactStore,
        *,
        audit: AuditFn = _no_audit,
        now: Now = _utc_now,
        symbol_known: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self._audit = audit
        self._now = now
        self._symbol_known = symbol_known
        # Called after a version reaches production (promotion or rollback), e.g. to build its
        # ONNX serving artifact. A failing hook is logged and never undoes the stage change.
        self.production_hooks: list[ProductionHook] = []

    # -- reading ---------------------------------------------------------------------------

    def get(self, model_id: str, version: int) -> ModelRecord:
        record = self.store.get(model_id, version)
        if record is None:
            raise RegistryError(f"no model {model_id} v{version}")
        return record

    def records(self, model_id: str | None = None) -> list[ModelRecord]:
        return self.store.records(model_id)

    def production(self, model_id: str) -> ModelRecord | None:
        live = [r for r in self.store.records(model_id) if r.stage is Stage.PRODUCTION]
        return live[0] if live else None

    def productions(self, symbol: str | None = None) -> list[ModelRecord]:
        return [
            r for r in self.store.records()
            if r.stage is Stage.PRODUCTION and (symbol is None or r.symbol == symbol)
        ]

    def history(self, model_id: str | None = None) -> list[StageEvent]:
        return self.store.events(model_id)

    def production_at(self, model_id: str, when: datetime) -> int | None:
        """Which version was in production at ``when`` (from the event history)."""
        current: int | None = None
        for e in self.store.events(model_id):
            if e.at > when:
                break
            if e.to_stage is Stage.PRODUCTION:
                current = e.version
            elif e.version == current:
                current = None
        return current

    def load(self, model_id: str, version: int) -> LoadedModel:
        """Verify the artifact's signature and hash, then unpickle it."""
        record = self.get(model_id, version)
        payload = self.artifacts.load(record.artifact)
        if not isinstance(payload, dict) or payload.get("feature_names") != list(
            record.feature_names
        ):
            raise RegistryError(f"{record.label}: artifact does not match its record's features")
        return LoadedModel(record, payload["estimator"], payload.get("check_rows"))

    # -- writing ---------------------------------------------------------------------------

    def register(
        self,
        result: TrainingResult,
        *,
        model_id: str,
        symbol: str,
        timeframe: Timeframe,
        actor: str,
    ) -> ModelRecord:
        if not _MODEL_ID.match(model_id):
            raise RegistryError(
                f"invalid model id {model_id!r}: letters, digits, _ and - (at most 64)"
            )
        check_model_type(result.config.model_type)
        if self._symbol_known is not None and not self._symbol_known(symbol):
            raise RegistryError(f"unknown symbol {symbol!r}")
        version = self.store.next_version(model_id)
        names = tuple(result.feature_names)
        artifact_name = f"{model_id}-v{version}.joblib"
        if self.artifacts.exists(artifact_name):
            # No record has this version (next_version said so): the file is what an earlier,
            # failed registration left. It must not block the model id for good.
            log.warning("removing orphan artifact %s (no registry record)", artifact_name)
            self.artifacts.discard(artifact_name)
        ref = self.artifacts.save(
            {"estimator": result.estimator, "feature_names": list(names),
             "model_type": result.config.model_type,
             "check_rows": result.reference[-CHECK_ROWS:]},
            artifact_name,
        )
        now = self._now()
        record = ModelRecord(
            model_id=model_id, version=version, model_type=result.config.model_type,
            symbol=symbol, timeframe=timeframe, horizon=result.config.horizon,
            data_start=result.data_start, data_end=result.data_end, feature_names=names,
            feature_hash=feature_hash(names), metrics=result.metrics, artifact=ref,
            stage=Stage.DEV, created_at=now, created_by=actor, stage_changed_at=now,
            stage_changed_by=actor, reference=drift_reference(result.reference, names),
        )
        try:
            self.store.commit([record], [StageEvent(model_id, version, None, Stage.DEV, actor,
                                                    now, "registered")])
        except BaseException:
            self.artifacts.discard(artifact_name)  # the artifact and its record, or neither
            raise
        self._audit("model.register", actor, {
            "model_id": model_id, "version": version, "model_type": record.model_type,
            "symbol": symbol, "timeframe": timeframe.value, "sha256": ref.sha256,
        })
        return record

    def promote(
        self,
        model_id: str,
        version: int,
        stage: str | Stage,
        *,
        actor: str,
        force: bool = False,
        reason: str = "",
    ) -> ModelRecord:
        target = parse_stage(stage) if isinstance(stage, str) else stage
        record = self.get(model_id, version)
        if record.stage is target:
            raise RegistryError(f"{record.label} is already {target.value}")
        step_ok = target is Stage.ARCHIVED or (
            record.stage in _ORDER
            and _ORDER.index(target) == _ORDER.index(record.stage) + 1
        )
        if not step_ok and not force:
            raise RegistryError(
                f"{record.label}: {record.stage.value} -> {target.value} skips or reverses a "
                "stage; pass force=True (--force) to do it anyway"
            )
        now = self._now()
        records: list[ModelRecord] = []
        events: list[StageEvent] = []
        previous: int | None = None
        if target is Stage.PRODUCTION:
            old = self.production(model_id)
            if old is not None:
                previous = old.version
                records.append(self._moved(old, Stage.ARCHIVED, actor, now))
                events.append(StageEvent(model_id, old.version, old.stage, Stage.ARCHIVED, actor,
                                         now, f"superseded by v{version}"))
        records.append(self._moved(record, target, actor, now))
        events.append(StageEvent(model_id, version, record.stage, target, actor, now,
                                 reason or ("forced" if not step_ok else ""), previous))
        self.store.commit(records, events)
        self._audit("model.promote", actor, {
            "model_id": model_id, "version": version, "from": record.stage.value,
            "to": target.value, "forced": not step_ok, "previous_production": previous,
            "reason": reason,
        })
        if target is Stage.PRODUCTION:
            self._run_production_hooks(records[-1])
        return records[-1]

    def _run_production_hooks(self, record: ModelRecord) -> None:
        for hook in self.production_hooks:
            try:
                hook(record)
            except Exception:
                log.exception("production hook failed for %s", record.label)

    def rollback(self, model_id: str, *, actor: str, reason: str = "") -> ModelRecord:
        """Put back the version that was in production before the current one."""
        current = self.production(model_id)
        if current is None:
            raise RegistryError(f"{model_id} has no production version to roll back")
        events = self.store.events(model_id)
        target_version = self._previous_production(events, current.version)
        if target_version is None:
            raise RegistryError(
                f"{current.label} has no previous production version to roll back to"
            )
        target = self.get(model_id, target_version)
        now = self._now()
        before_target = self._previous_production(events, target_version)
        why = f"rolled back: {reason}" if reason else "rolled back"
        self.store.commit(
            [self._moved(current, Stage.ARCHIVED, actor, now),
             self._moved(target, Stage.PRODUCTION, actor, now)],
            [StageEvent(model_id, current.version, Stage.PRODUCTION, Stage.ARCHIVED, actor, now,
                        why),
             StageEvent(model_id, target_version, target.stage, Stage.PRODUCTION, actor, now,
                        f"restored by rollback of v{current.version}", before_target)],
        )
        self._audit("model.rollback", actor, {
            "model_id": model_id, "from_version": current.version, "to_version": target_version,
            "reason": reason,
        })
        restored = self.get(model_id, target_version)
        self._run_production_hooks(restored)
        return restored

    @staticmethod
    def _previous_production(events: Sequence[StageEvent], version: int) -> int | None:
        for e in reversed(events):
            if e.version == version and e.to_stage is Stage.PRODUCTION:
                return e.previous_production
        return None

    @staticmethod
    def _moved(record: ModelRecord, stage: Stage, actor: str, now: datetime) -> ModelRecord:
        return replace(record, stage=stage, stage_changed_at=now, stage_changed_by=actor)


def metrics_summary(metrics: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for who in ("model", "always_up", "previous_direction"):
        m = metrics.get(who)
        if m:
            parts.append(f"{who} acc {m['accuracy']:.3f} net {m['net_return']:+.4f}")
    return "; ".join(parts)
