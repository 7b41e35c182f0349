"""``dalal model train|list|promote|rollback|ab start|ab evaluate``.

Registering the parser imports nothing heavy; each handler imports scikit-learn, numpy and the
storage layer only when it runs. The registry lives in the profile's encrypted database, the
artifacts in ``models/`` beside it, and artifacts are signed with a per-profile key kept
with the profile's other secrets (a trusted OS keyring, else the encrypted vault; created on
first training).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.commands.history import bars_for_training
from app.commands.vault import add_profile_args, guarded
from services.security.keys import model_signing_username

if TYPE_CHECKING:
    from models.abtest import ABHarness
    from models.registry import ModelRegistry
    from services.domain import Bar, Timeframe
    from services.storage import Database

ACTOR = "cli"
SIGNING_KEY_BYTES = 32


def signing_key(profile: str, db: Database, *, create: bool) -> Callable[[], bytes]:
    """A key provider for artifact HMACs, kept with the profile's secrets.

    A trusted OS keyring holds it when there is one, else the vault table inside the unlocked
    profile database (``ProfileSecrets``), so a machine without a keyring (a VPS with
    ``--key-fd``) can train and load models. The key is read once and then remembered.
    """
    remembered: list[bytes] = []

    def provide() -> bytes:
        if remembered:
            return remembered[0]
        from services.security.secret_store import ProfileSecrets

        store = ProfileSecrets(db)
        name = model_signing_username(profile)
        stored = store.get(name)
        if stored is None:
            if not create:
                raise ValueError(
                    f"no model signing key for profile {profile!r}: models trained elsewhere "
                    "cannot be verified here"
                )
            key = secrets.token_bytes(SIGNING_KEY_BYTES)
            store.set(name, key.hex())
        else:
            key = bytes.fromhex(stored)
        remembered.append(key)
        return key

    return provide


@contextmanager
def opened(args: argparse.Namespace, *, create_key: bool = False) -> Iterator[
    tuple[ModelRegistry, ABHarness, Database]
]:
    from app.commands.vault import unlock
    from models.abtest import ABHarness
    from models.artifacts import ArtifactStore
    from models.registry import ModelRegistry
    from models.sqlstore import SqlABStore, SqlRegistryStore
    from services.security import AuditLog

    vault, db = unlock(args)
    try:
        audit = AuditLog(db)

        def record(kind: str, actor: str, details: dict[str, Any]) -> object:
            return audit.record(kind, actor, details)

        artifacts = ArtifactStore(
            vault.paths.directory / "models",
            signing_key(vault.paths.profile, db, create=create_key),
        )
        registry = ModelRegistry(SqlRegistryStore(db.transaction), artifacts, audit=record)
        harness = ABHarness(SqlABStore(db.transaction), registry, audit=record)
        yield registry, harness, db
    finally:
        db.close()


def _errors() -> tuple[type[Exception], ...]:
    from models.abtest import ABTestError
    from models.artifacts import ArtifactError
    from models.registry import RegistryError
    from models.training import InsufficientDataError

    return (RegistryError, ABTestError, ArtifactError, InsufficientDataError)


def model_guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[
    [argparse.Namespace], int
]:
    """Registry, A/B and artifact refusals print one line and exit 2, like storage errors."""

    @guarded
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _errors() as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    run.__name__ = handler.__name__
    return run


def _progress(done: int, total: int, message: str) -> None:
    print(f"[{done}/{total}] {message}", file=sys.stderr)


@model_guarded
def train_cmd(args: argparse.Namespace) -> int:
    from models.features import BarArrays
    from models.registry import metrics_summary
    from models.synthetic import synthetic_bars
    from models.training import TrainingConfig, train
    from services.cluster import dask_cluster
    from services.domain import Timeframe

    timeframe = Timeframe(args.timeframe)
    config = TrainingConfig(
        args.model_type, horizon=args.horizon, train_size=args.train_size,
        test_size=args.test_size, max_splits=args.splits, cost_bps=args.cost_bps,
        backend="dask" if args.cluster else args.backend,
        n_jobs=-1 if args.cluster else args.n_jobs,
    )
    # Walk-forward folds on a dask cluster when one is named (services/cluster.py).
    cluster = dask_cluster(args.cluster) if args.cluster else contextlib.nullcontext()
    with opened(args, create_key=True) as (registry, _, db):
        if args.synthetic:
            bars = synthetic_bars(args.synthetic, key=args.symbol, timeframe=timeframe)
        else:
            start = datetime.fromisoformat(args.start) if args.start else datetime(
                2000, 1, 1, tzinfo=UTC)
            end = datetime.fromisoformat(args.end) if args.end else datetime.now(UTC)
            bars = db.bars.between(args.symbol, timeframe, start, end)
            bars = bars_for_training(args, db, args.symbol, timeframe, bars, _needed(args))
            if len(bars) < _needed(args) and not args.start:
                bars = simulated_history(args, db, timeframe, bars, _needed(args))
            if not bars:
                raise ValueError(f"no stored {timeframe.value} bars for {args.symbol}; "
                                 "configure a market-data provider (docs/data.md) or record "
                                 "some live bars first")
        with cluster:
            result = train(BarArrays.from_bars(bars), config, progress=_progress)
        record = registry.register(result, model_id=args.model_id, symbol=args.symbol,
                                   timeframe=timeframe, actor=ACTOR)
    print(f"registered {record.label} ({record.model_type}, stage dev)")
    print(metrics_summary(record.metrics))
    return 0


def simulated_history(
    args: argparse.Namespace, db: Database, timeframe: Timeframe, bars: list[Bar], needed: int
) -> list[Bar]:
    """With no data provider configured (the paper broker on the simulated market): the
    simulator's past sessions as this profile keeps them (made once, then read back), so a
    fresh profile trains without any flag."""
    from app.settings import load_settings  # not app.cli: app.http imports this module
    from services.marketdata.store import HistoryStore

    end = datetime.fromisoformat(args.end) if args.end else datetime.now(UTC)
    store = HistoryStore(db)
    settings = load_settings(getattr(args, "config", None))
    if settings.broker == "paper" and not settings.marketdata.providers:
        from services.bus import EventBus
        from services.clock import SystemClock
        from services.instruments import bundled_universe
        from services.simulator import MarketSimulator
        from services.simulator.backfill import persisted_history

        now = min(end, datetime.now(UTC))
        universe, references = bundled_universe(now.date())
        if args.symbol not in references:
            raise ValueError(f"unknown symbol {args.symbol!r} (no stored bars, not simulated)")
        simulator = MarketSimulator(universe, references, EventBus(), SystemClock(),
                                    seed=settings.seed)  # fmt: skip
        kept = persisted_history(store, simulator, args.symbol, timeframe, needed, now)
        first = bars[0].start if bars else now
        bars = [b for b in kept if b.start < first] + bars
        print(f"training on {len(kept)} bars of the simulated market kept in this profile "
              "(no data provider configured)", file=sys.stderr)  # fmt: skip
    return bars


def finite_json(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def dump_json(value: Any) -> str:
    return json.dumps(finite_json(value), indent=2, allow_nan=False)


def _needed(args: argparse.Namespace) -> int:
    """Bars a walk-forward fit with these sizes uses, with the features' warm-up."""
    from models.features import WARMUP

    need: int = args.train_size + args.test_size * args.splits + WARMUP + args.horizon + 50
    return need


@model_guarded
def list_cmd(args: argparse.Namespace) -> int:
    with opened(args) as (registry, _, _db):
        records = registry.records(args.model_id)
    if args.json:
        print(dump_json([
            {"model_id": r.model_id, "version": r.version, "stage": r.stage.value,
             "model_type": r.model_type, "symbol": r.symbol, "timeframe": r.timeframe.value,
             "metrics": r.metrics} for r in records
        ]))
        return 0
    if not records:
        print(f"no versions of {args.model_id} registered" if args.model_id else
              "no models registered yet: train one with `dalal model train MODEL_ID --symbol "
              "NSE:INFY`")  # fmt: skip
        return 0
    for r in records:
        acc = r.metrics.get("model", {}).get("accuracy", float("nan"))
        print(f"{r.model_id}\tv{r.version}\t{r.stage.value}\t{r.model_type}\t{r.symbol}\t"
              f"{r.timeframe.value}\tacc {acc:.3f}\t{r.stage_changed_by}@"
              f"{r.stage_changed_at.isoformat(timespec='seconds')}")
    return 0


@model_guarded
def promote_cmd(args: argparse.Namespace) -> int:
    with opened(args) as (registry, _, _db):
        rec = registry.promote(args.model_id, args.version, args.stage, actor=ACTOR,
                               force=args.force, reason=args.reason)
    print(f"{rec.label} is now {rec.stage.value}")
    return 0


@model_guarded
def rollback_cmd(args: argparse.Namespace) -> int:
    with opened(args) as (registry, _, _db):
        rec = registry.rollback(args.model_id, actor=ACTOR, reason=args.reason)
    print(f"rolled back: {rec.label} is production again")
    return 0


@model_guarded
def ab_start_cmd(args: argparse.Namespace) -> int:
    with opened(args) as (_, harness, _db):
        test = harness.start(
            args.model_id, args.champion, args.challenger, actor=ACTOR, split=args.split,
            shadow=args.shadow, min_samples=args.min_samples, alpha=args.alpha, tau=args.tau,
        )
    print(f"started A/B test {test.test_id}: {test.model_id} v{test.champion} (champion) vs "
          f"v{test.challenger} ({'shadow' if test.shadow else f'split {test.split:.0%}'})")
    return 0


@model_guarded
def ab_evaluate_cmd(args: argparse.Namespace) -> int:
    with opened(args) as (_, harness, _db):
        ev = harness.evaluate(args.test_id)
        print(dump_json(ev.as_dict()))
        if args.conclude:
            done = harness.conclude(args.test_id, actor=ACTOR, force=args.force)
            print(f"{done.status}: {done.verdict}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("model", help="prediction models: train, promote, A/B test")
    sub = parser.add_subparsers(dest="model_command", required=True)

    p = sub.add_parser("train", help="walk-forward evaluate, fit and register a new version")
    p.add_argument("model_id")
    p.add_argument("--symbol", required=True, help="instrument key, e.g. NSE:INFY")
    p.add_argument("--timeframe", default="5m", choices=["1m", "5m", "15m", "30m", "1h", "1d"])
    p.add_argument("--model-type", default="logistic_regression",
                   help="random_forest, gradient_boosting or logistic_regression")
    p.add_argument("--horizon", type=int, default=1, help="label horizon in bars")
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--test-size", type=int, default=250)
    p.add_argument("--splits", type=int, default=5, help="walk-forward folds (most recent)")
    p.add_argument("--cost-bps", type=float, default=5.0, help="cost per side, basis points")
    p.add_argument("--backend", default="loky", help="joblib backend (loky, threading, dask)")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="train the folds on dask: tcp://host:8786, or local:N processes")
    p.add_argument("--start", help="first bar (ISO time); default: all stored bars")
    p.add_argument("--end", help="last bar (ISO time); default: now")
    p.add_argument("--synthetic", type=int, metavar="N", help=argparse.SUPPRESS)
    add_profile_args(p)
    p.set_defaults(func=train_cmd)

    p = sub.add_parser("list", help="registered versions with stage and metrics")
    p.add_argument("model_id", nargs="?")
    p.add_argument("--json", action="store_true")
    add_profile_args(p)
    p.set_defaults(func=list_cmd)

    p = sub.add_parser("promote", help="move a version to a stage (dev, staging, production)")
    p.add_argument("model_id")
    p.add_argument("version", type=int)
    p.add_argument("stage")
    p.add_argument("--force", action="store_true", help="allow skipping a stage")
    p.add_argument("--reason", default="")
    add_profile_args(p)
    p.set_defaults(func=promote_cmd)

    p = sub.add_parser("rollback", help="restore the previous production version")
    p.add_argument("model_id")
    p.add_argument("--reason", default="")
    add_profile_args(p)
    p.set_defaults(func=rollback_cmd)

    ab = sub.add_parser("ab", help="A/B tests between two versions")
    ab_sub = ab.add_subparsers(dest="ab_command", required=True)
    p = ab_sub.add_parser("start", help="start a test (champion vs challenger)")
    p.add_argument("model_id")
    p.add_argument("champion", type=int)
    p.add_argument("challenger", type=int)
    p.add_argument("--split", type=float, default=0.5, help="share of bars for the challenger")
    p.add_argument("--shadow", action="store_true", help="challenger predicts, never trades")
    p.add_argument("--min-samples", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--tau", type=float, default=0.05)
    add_profile_args(p)
    p.set_defaults(func=ab_start_cmd)
    p = ab_sub.add_parser("evaluate", help="evidence so far; --conclude acts on the verdict")
    p.add_argument("test_id")
    p.add_argument("--conclude", action="store_true")
    p.add_argument("--force", action="store_true")
    add_profile_args(p)
    p.set_defaults(func=ab_evaluate_cmd)
