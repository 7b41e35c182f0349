from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models.abtest import (
    ABHarness,
    ABTest,
    ABTestError,
    Arm,
    ArmStats,
    Decision,
    assign,
    decide,
)
from models.registry import ModelRegistry, RegistryError, Stage
from models.sqlstore import SqlABStore
from models.training import TrainingResult
from services.domain import Timeframe
from tests.models.conftest import AuditSpy

T0 = datetime(2026, 3, 2, 3, 45, tzinfo=UTC)


@pytest.fixture
def harness(
    registry: ModelRegistry, ab_store: SqlABStore, audit: AuditSpy,
    trained: dict[str, TrainingResult],
) -> ABHarness:
    for _ in range(2):
        registry.register(trained["logistic_regression"], model_id="mom", symbol="NSE:SYNTH",
                          timeframe=Timeframe.M5, actor="t")
    registry.promote("mom", 1, "production", actor="t", force=True)
    registry.promote("mom", 2, "staging", actor="t")
    return ABHarness(ab_store, registry, audit=audit)


def _test(split: float = 0.3, test_id: str = "t1") -> ABTest:
    return ABTest(test_id, "m", 1, 2, split, False, 10, 100, 0.05, 0.05, "salt", "running",
                  T0, "x")


def test_a_b_test_on_one_version_or_unknown_versions_is_refused(
    harness: ABHarness, ab_store: SqlABStore
) -> None:
    with pytest.raises(ABTestError, match="two different versions"):
        harness.start("mom", 2, 2, actor="t")
    with pytest.raises(RegistryError, match="no model mom v7"):
        harness.start("mom", 1, 7, actor="t")
    with pytest.raises(ABTestError, match="split"):
        harness.start("mom", 1, 2, actor="t", split=1.0)
    assert ab_store.tests() == []


def test_split_is_deterministic_sticky_and_close_to_the_requested_share() -> None:
    test = _test(0.3)
    bars = [T0 + timedelta(minutes=5 * i) for i in range(4000)]
    arms = [assign(test, "NSE:INFY", b) for b in bars]
    assert arms == [assign(test, "NSE:INFY", b) for b in bars]
    share = arms.count(Arm.CHALLENGER) / len(arms)
    assert 0.27 < share < 0.33
    other = [assign(_test(0.3, "t2"), "NSE:INFY", b) for b in bars]
    assert other != arms  # the test id salts the split: tests are independent


def test_split_does_not_depend_on_the_process_hash_seed() -> None:
    code = (
        "from datetime import datetime, UTC, timedelta;"
        "from tests.models.test_abtest import _test, T0;"
        "from models.abtest import assign;"
        "print(''.join(assign(_test(), 'NSE:TCS', T0 + timedelta(minutes=i)).value[1]"
        " for i in range(64)))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_shadow_mode_scores_both_arms_but_only_the_champion_trades(
    harness: ABHarness, conn: object
) -> None:
    test = harness.start("mom", 1, 2, actor="t", shadow=True)
    for i in range(20):
        bar = T0 + timedelta(minutes=5 * i)
        routing = harness.route(test.test_id, "NSE:SYNTH", bar)
        assert routing.trading_arm is Arm.CHAMPION and set(routing.scored) == set(Arm)
        for arm in Arm:
            assert harness.record_prediction(test.test_id, arm, "NSE:SYNTH", bar, 0.6)
        assert not harness.record_prediction(test.test_id, Arm.CHAMPION, "NSE:SYNTH", bar, 0.6)
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT arm, SUM(traded), COUNT(*) FROM ml_ab_predictions GROUP BY arm ORDER BY arm"
    ).fetchall()
    assert rows == [("challenger", 0, 20), ("champion", 20, 20)]


def test_good_challenger_beats_random_champion_and_is_promoted(
    harness: ABHarness, registry: ModelRegistry, audit: AuditSpy
) -> None:
    rng = np.random.default_rng(7)
    test = harness.start("mom", 1, 2, actor="alice", shadow=True, min_samples=100)
    verdicts = []
    for i in range(800):
        bar = T0 + timedelta(minutes=5 * i)
        went_up = bool(rng.random() < 0.5)
        good = 0.7 if (went_up if rng.random() < 0.62 else not went_up) else 0.3
        harness.record_prediction(test.test_id, Arm.CHAMPION, "NSE:SYNTH", bar,
                                  float(rng.random()))
        harness.record_prediction(test.test_id, Arm.CHALLENGER, "NSE:SYNTH", bar, good)
        assert harness.resolve(test.test_id, "NSE:SYNTH", bar, went_up) == 2
        if i % 50 == 49:
            verdicts.append(harness.evaluate(test.test_id).decision)
    assert verdicts[0] is Decision.COLLECTING  # 50 per arm: below the minimum, no verdict
    ev = harness.evaluate(test.test_id)
    assert ev.decision is Decision.CHALLENGER_BETTER, ev.as_dict()
    assert ev.result.prob_challenger_better > 0.99
    done = harness.conclude(test.test_id, actor="alice")
    assert done.status == "promoted"
    assert registry.production("mom").version == 2  # type: ignore[union-attr]
    assert registry.get("mom", 1).stage is Stage.ARCHIVED
    assert audit.kinds()[-1] == "model.ab_conclude"
    assert audit.rows[-1][2]["decision"] == "challenger_better"
    with pytest.raises(ABTestError, match="promoted"):
        harness.resolve(test.test_id, "NSE:SYNTH", T0, True)


def test_no_verdict_before_the_minimum_sample(harness: ABHarness) -> None:
    test = harness.start("mom", 1, 2, actor="t", shadow=True, min_samples=100)
    for i in range(60):
        bar = T0 + timedelta(minutes=5 * i)
        harness.record_prediction(test.test_id, Arm.CHAMPION, "NSE:SYNTH", bar, 0.9)
        harness.record_prediction(test.test_id, Arm.CHALLENGER, "NSE:SYNTH", bar, 0.1)
        harness.resolve(test.test_id, "NSE:SYNTH", bar, False)  # challenger always right
    assert harness.evaluate(test.test_id).decision is Decision.COLLECTING
    with pytest.raises(ABTestError, match="no verdict yet"):
        harness.conclude(test.test_id, actor="t")
    stopped = harness.conclude(test.test_id, actor="t", force=True)
    assert stopped.status == "stopped"


def _simulate(p_a: float, p_b: float, seeds: int, n_max: int = 3000, look_every: int = 25,
              min_samples: int = 200, alpha: float = 0.05) -> list[Decision]:
    """Stop at the first verdict, looking every ``look_every`` outcomes per arm."""
    out = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        a = np.cumsum(rng.random(n_max) < p_a)
        b = np.cumsum(rng.random(n_max) < p_b)
        decision = Decision.CONTINUE
        for n in range(look_every, n_max + 1, look_every):
            decision, _ = decide(ArmStats(n, int(a[n - 1])), ArmStats(n, int(b[n - 1])),
                                 tau=0.05, alpha=alpha, min_samples=min_samples,
                                 max_samples=n_max)
            if decision not in (Decision.COLLECTING, Decision.CONTINUE):
                break
        out.append(decision)
    return out


def test_a_a_tests_declare_a_winner_no_more_often_than_alpha() -> None:
    """120 looks per test, 200 tests with equal arms: false winners stay under 5 %."""
    decisions = _simulate(0.53, 0.53, seeds=200)
    false_winners = sum(d in (Decision.CHALLENGER_BETTER, Decision.CHAMPION_BETTER)
                        for d in decisions)
    assert false_winners / len(decisions) <= 0.05


def test_a_real_difference_is_found_in_most_tests() -> None:
    decisions = _simulate(0.50, 0.58, seeds=50)
    assert sum(d is Decision.CHALLENGER_BETTER for d in decisions) >= 40
    assert Decision.CHAMPION_BETTER not in decisions
