"""The models runtime on a real encrypted database: deploy, predict, live signals, trading."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.models_runtime import (
    NoProductionModelError,
    StageOrderError,
    UnknownSymbolError,
)
from app.settings import Settings
from app.wiring import build_services
from models.abtest import ABTestError
from models.inference import MissingFeaturesError
from models.registry import Stage
from models.signals import SIGNALS, Signal
from models.training import UnknownModelTypeError
from services.domain import Bar, Timeframe
from services.metrics import Metrics
from services.security import AuditLog
from services.storage import Database
from tests.models_app.conftest import SMALL, SYMBOL, quiet_settings, runtime_for

M1 = Timeframe.M1


def test_services_build_models_only_with_a_database_and_never_import_sklearn_at_start(
    tmp_path, database: Database
) -> None:
    assert build_services(Settings(ticks_per_second=50)).models is None
    assert build_services(Settings(models_enabled=False), database=database).models is None
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from pathlib import Path
        from app.settings import Settings
        from app.wiring import build_services
        from services.storage import Database

        async def main():
            db = Database.open(Path({str(tmp_path / "cold" / "terminal.db")!r}),
                               os.urandom(32), create=True)
            services = build_services(Settings(ticks_per_second=50), database=db)
            assert services.models is not None
            await services.start()
            await asyncio.sleep(0.3)
            status = await services.models.status()
            await services.stop()
            db.close()
            print(status["signals_running"], any(m.startswith("sklearn") for m in sys.modules))

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True, cwd=str(__import__("pathlib").Path.cwd()))
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


async def test_deploy_promote_predict_and_every_refusal_changes_nothing(
    database: Database,
) -> None:
    services = build_services(quiet_settings(), database=database)
    rt = runtime_for(services, database)
    reports: list[tuple[int, int, str]] = []
    try:
        v1 = await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "staging",
                             progress=lambda *a: reports.append(a))
        assert (v1.version, v1.stage) == (1, Stage.STAGING)
        assert reports and reports[-1][0] == reports[-1][1]  # progress reached the end
        assert {"model", "always_up", "previous_direction"} <= set(v1.metrics)

        with pytest.raises(StageOrderError, match="skip staging"):
            await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "production")
        with pytest.raises(UnknownModelTypeError):
            await rt.deploy("mom", SYMBOL, "1m", "deep_magic", "dev")
        with pytest.raises(UnknownSymbolError):
            await rt.deploy("mom", "NSE:NOSUCH", "1m", "logistic_regression", "dev")
        with pytest.raises(Exception, match="unknown stage"):
            await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "prod")
        assert [r.version for r in await rt.models()] == [1]  # nothing was trained

        with pytest.raises(NoProductionModelError):
            await rt.predict(symbol=SYMBOL)
        live = await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "production",
                               version=1)
        assert live.stage is Stage.PRODUCTION

        result = await rt.predict(symbol=SYMBOL)
        assert [(m.model_id, m.version) for m in result.signal.members] == [("mom", 1)]
        assert 0.0 <= result.signal.prob_up <= 1.0
        assert set(result.features) == set(live.feature_names)
        same = await rt.predict(symbol=SYMBOL, features=result.features)
        assert same.signal.prob_up == pytest.approx(result.signal.prob_up)
        partial = dict(result.features)
        partial.pop("rsi_14", None) or partial.pop(next(iter(partial)))
        with pytest.raises(MissingFeaturesError):
            await rt.predict(symbol=SYMBOL, features=partial)
        with pytest.raises(ABTestError, match="two different versions"):
            await rt.ab_start("mom", 1, 1)

        kinds = [row.kind for row in AuditLog(database).rows()]
        assert kinds.count("model.register") == 1 and kinds.count("model.promote") == 2
    finally:
        await rt.stop()


def _next_bars(history: list[Bar], n: int, step: Decimal) -> list[Bar]:
    last = history[-1]
    out = []
    price = last.close
    for i in range(1, n + 1):
        price = price + (step if i % 3 else -step)
        out.append(Bar(last.key, M1, last.start + timedelta(minutes=i), price, price + step,
                       price - step, price, 1000 + i, closed=True))
    return out


async def test_closed_bars_become_signals_scored_into_ab_metrics_and_paper_orders(
    database: Database,
) -> None:
    services = build_services(quiet_settings(), database=database)
    rt = runtime_for(services, database,
                     replace(SMALL, paper_trading=True, paper_quantity=1, min_confidence=0.0))
    metrics = Metrics(version="test")
    rt.attach_metrics(metrics.model_observers)
    await services.start()
    rt.start()
    seen = services.bus.subscribe(SIGNALS, "test")
    try:
        await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "staging")
        await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "production", version=1)
        await rt.deploy("mom", SYMBOL, "1m", "logistic_regression", "staging")
        test = await rt.ab_start("mom", 1, 2, shadow=True, min_samples=2)

        # A market order needs a last price (the risk engine's price band).
        await eventually(lambda: services.last_tick(SYMBOL) is not None, 20)
        history = await asyncio.to_thread(rt.bars, SYMBOL, M1, 500)
        bars = _next_bars(history, 4, Decimal("0.50"))
        for bar in bars:
            services.bus.publish(services_bars_topic(), bar)
        signals: list[Signal] = []
        async with asyncio.timeout(20):
            while len(signals) < 8:
                signals.extend(await seen.next_batch())
        traded = [s for s in signals if not s.shadow]
        shadow = [s for s in signals if s.shadow]
        assert len(traded) == len(shadow) == 4
        assert all(s.models == (("mom", 1),) and s.ab[0] == (test.test_id, "champion")
                   for s in traded)
        assert all(s.ab[0] == (test.test_id, "challenger") for s in shadow)

        evaluation = await rt.ab_evaluate(test.test_id)
        assert evaluation.champion.n == evaluation.challenger.n == 3  # the last is pending
        count = metrics.sample("dalal_model_inference_duration_seconds_count",
                               {"model": "mom", "version": "1"})
        assert count == 4
        outcomes = sum(
            metrics.sample("dalal_model_prediction_outcomes_total",
                           {"model": "mom", "version": "1", "correct": c}) or 0
            for c in ("true", "false"))
        assert outcomes == 3
        # The confident signal went through the order path as a paper order.
        await eventually(lambda: any(o.request.source == "model:mom"
                                     for o in services.order_list()), 10)
        status = await rt.status()
        assert status["paper_trading"] and status["ab_tests_running"] == [test.test_id]
        assert status["production"][0]["loaded"] is True
    finally:
        seen.close()
        await rt.stop()
        await services.stop()


async def eventually(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true after {seconds}s")


def services_bars_topic():  # type: ignore[no-untyped-def]
    from services.bus import BARS

    return BARS


def test_the_training_backend_comes_from_the_settings(database: Database, tmp_path: Path) -> None:
    """A user whose universe outgrows one machine names a cluster backend in settings."""
    settings = Settings(
        seed=3,
        ticks_per_second=50,
        models_training_backend="loky",
        models_training_jobs=2,
    )
    services = build_services(settings, database=database, state_dir=tmp_path)
    assert services.models is not None
    assert (services.models.config.training_backend, services.models.config.training_jobs) == (
        "loky",
        2,
    )
