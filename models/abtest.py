"""A/B tests between two versions of one model, evaluated with a test valid under peeking.

Traffic split: a bar of a symbol goes to the challenger when a salted SHA-256 of (salt, test id,
symbol, bar start) falls under the split. The same bar always lands in the same arm, in this
process, the next one, and a replay (Python's ``hash()`` is salted per process: never used).
In shadow mode both versions score every bar but only the champion trades: the two arms are
then compared on identical bars.

Evaluation: a mixture sequential probability ratio test (mSPRT) on the difference of hit
rates. Its evidence ratio can be looked at after every bar: the chance that it ever crosses
1/alpha when the two versions are equally good is at most alpha (Ville's inequality), so
watching the dashboard does not inflate false alarms the way repeated z-tests do. No verdict is
given before ``min_samples`` resolved predictions per arm.
"""

from __future__ import annotations

import enum
import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from models.registry import AuditFn, ModelRegistry, Stage

Now = Callable[[], datetime]


class Arm(enum.StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


class Decision(enum.StrEnum):
    COLLECTING = "collecting"  # below the minimum sample: no verdict allowed
    CONTINUE = "continue"
    CHALLENGER_BETTER = "challenger_better"
    CHAMPION_BETTER = "champion_better"
    NO_DIFFERENCE = "no_difference"  # reached max_samples without evidence


class ABTestError(Exception):
    """An A/B request that was refused; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ABTest:
    test_id: str
    model_id: str
    champion: int
    challenger: int
    split: float  # share of bars whose trades go to the challenger (0 in shadow mode)
    shadow: bool
    min_samples: int
    max_samples: int
    alpha: float
    tau: float  # prior spread of the hit-rate difference, fixed before the test starts
    salt: str
    status: str  # running | promoted | stopped
    created_at: datetime
    created_by: str
    concluded_at: datetime | None = None
    verdict: str = ""

    def version(self, arm: Arm) -> int:
        return self.champion if arm is Arm.CHAMPION else self.challenger


@dataclass(frozen=True, slots=True)
class ArmStats:
    n: int
    hits: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.n if self.n else float("nan")


class ABStore(Protocol):
    def save_test(self, test: ABTest) -> None: ...

    def get_test(self, test_id: str) -> ABTest | None: ...

    def tests(self) -> list[ABTest]: ...

    def record_prediction(
        self, test_id: str, arm: Arm, symbol: str, bar_start: datetime, prob_up: float,
        traded: bool,
    ) -> bool:
        """Store a prediction once (a replayed bar is ignored); True if it was new."""
        ...

    def resolve(self, test_id: str, symbol: str, bar_start: datetime, went_up: bool) -> int:
        """Set the outcome of that bar's pending predictions; returns how many were resolved."""
        ...

    def arm_stats(self, test_id: str) -> dict[Arm, ArmStats]: ...


@dataclass(frozen=True, slots=True)
class MsprtResult:
    log_evidence: float  # log of the mixture likelihood ratio
    difference: float  # challenger hit rate minus champion hit rate
    std_error: float
    prob_challenger_better: float  # normal approximation of the posterior, for display


def msprt(champion: ArmStats, challenger: ArmStats, tau: float) -> MsprtResult:
    """Normal-mixture SPRT for the difference of two hit rates (Johari et al. 2017).

    With difference estimate d, its variance v and a N(0, tau^2) mixing prior:
    Lambda = sqrt(v / (v + tau^2)) * exp(d^2 tau^2 / (2 v (v + tau^2))).
    """
    if champion.n == 0 or challenger.n == 0:
        return MsprtResult(0.0, float("nan"), float("inf"), 0.5)
    pa = (champion.hits + 1) / (champion.n + 2)  # smoothed, so a 0 % or 100 % arm has variance
    pb = (challenger.hits + 1) / (challenger.n + 2)
    v = pa * (1 - pa) / champion.n + pb * (1 - pb) / challenger.n
    d = challenger.hit_rate - champion.hit_rate
    t2 = tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + d * d * t2 / (2 * v * (v + t2))
    se = math.sqrt(v)
    prob = 0.5 * (1 + math.erf(d / (se * math.sqrt(2))))
    return MsprtResult(log_lambda, d, se, prob)


@dataclass(frozen=True, slots=True)
class ABEvaluation:
    test: ABTest
    champion: ArmStats
    challenger: ArmStats
    result: MsprtResult
    decision: Decision

    @property
    def evidence(self) -> float:
        return math.exp(min(self.result.log_evidence, 700.0))

    @property
    def threshold(self) -> float:
        return 1.0 / self.test.alpha

    def as_dict(self) -> dict[str, Any]:
        return {
            "test_id": self.test.test_id, "model_id": self.test.model_id,
            "champion": {"version": self.test.champion, "n": self.champion.n,
                         "hits": self.champion.hits},
            "challenger": {"version": self.test.challenger, "n": self.challenger.n,
                           "hits": self.challenger.hits},
            "difference": self.result.difference, "std_error": self.result.std_error,
            "evidence": self.evidence, "threshold": self.threshold,
            "prob_challenger_better": self.result.prob_challenger_better,
            "min_samples": self.test.min_samples, "decision": self.decision.value,
            "status": self.test.status,
        }


def decide(
    champion: ArmStats, challenger: ArmStats, *, tau: float, alpha: float, min_samples: int,
    max_samples: int,
) -> tuple[Decision, MsprtResult]:
    result = msprt(champion, challenger, tau)
    smallest = min(champion.n, challenger.n)
    if smallest < min_samples:
        return Decision.COLLECTING, result
    if result.log_evidence >= math.log(1.0 / alpha):
        better = Decision.CHALLENGER_BETTER if result.difference > 0 else Decision.CHAMPION_BETTER
        return better, result
    if smallest >= max_samples:
        return Decision.NO_DIFFERENCE, result
    return Decision.CONTINUE, result


def assign(test: ABTest, symbol: str, bar_start: datetime) -> Arm:
    """Sticky, deterministic arm for one (symbol, bar): the same inputs give the same arm."""
    if bar_start.tzinfo is None:
        raise ValueError("bar start must be timezone-aware")
    text = f"{test.salt}|{test.test_id}|{symbol}|{bar_start.astimezone(UTC).isoformat()}"
    bucket = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 10_000
    return Arm.CHALLENGER if bucket < round(test.split * 10_000) else Arm.CHAMPION


@dataclass(frozen=True, slots=True)
class Routing:
    trading_arm: Arm
    trading_version: int
    scored: dict[Arm, int]  # arms that predict this bar -> their versions


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _no_audit(kind: str, actor: str, details: dict[str, Any]) -> object:
    return None


class ABHarness:
    def __init__(
        self,
        store: ABStore,
        registry: ModelRegistry,
        *,
        audit: AuditFn = _no_audit,
        now: Now = _utc_now,
    ) -> None:
        self.store = store
        self.registry = registry
        self._audit = audit
        self._now = now

    def start(
        self,
        model_id: str,
        champion: int,
        challenger: int,
        *,
        actor: str,
        split: float = 0.5,
        shadow: bool = False,
        min_samples: int = 200,
        max_samples: int = 20_000,
        alpha: float = 0.05,
        tau: float = 0.05,
        test_id: str | None = None,
    ) -> ABTest:
        if champion == challenger:
            raise ABTestError(
                f"an A/B test needs two different versions; got v{champion} twice"
            )
        if not 0.0 < split < 1.0 and not shadow:
            raise ABTestError("split must be strictly between 0 and 1")
        if not 0.0 < alpha < 0.5 or tau <= 0 or min_samples < 1 or max_samples < min_samples:
            raise ABTestError("need 0 < alpha < 0.5, tau > 0 and 1 <= min_samples <= max_samples")
        for v in (champion, challenger):
            self.registry.get(model_id, v)  # raises RegistryError if unknown
        test_id = test_id or f"ab-{secrets.token_hex(4)}"
        if self.store.get_test(test_id) is not None:
            raise ABTestError(f"A/B test {test_id} already exists")
        test = ABTest(
            test_id=test_id, model_id=model_id, champion=champion, challenger=challenger,
            split=0.0 if shadow else split, shadow=shadow, min_samples=min_samples,
            max_samples=max_samples, alpha=alpha, tau=tau, salt=secrets.token_hex(16),
            status="running", created_at=self._now(), created_by=actor,
        )
        self.store.save_test(test)
        self._audit("model.ab_start", actor, {
            "test_id": test_id, "model_id": model_id, "champion": champion,
            "challenger": challenger, "split": test.split, "shadow": shadow,
            "min_samples": min_samples, "alpha": alpha, "tau": tau,
        })
        return test

    def get(self, test_id: str) -> ABTest:
        test = self.store.get_test(test_id)
        if test is None:
            raise ABTestError(f"no A/B test {test_id!r}")
        return test

    def _running(self, test_id: str) -> ABTest:
        test = self.get(test_id)
        if test.status != "running":
            raise ABTestError(f"A/B test {test_id} is {test.status}")
        return test

    def route(self, test_id: str, symbol: str, bar_start: datetime) -> Routing:
        test = self._running(test_id)
        if test.shadow:
            return Routing(Arm.CHAMPION, test.champion,
                           {Arm.CHAMPION: test.champion, Arm.CHALLENGER: test.challenger})
        arm = assign(test, symbol, bar_start)
        return Routing(arm, test.version(arm), {arm: test.version(arm)})

    def record_prediction(
        self, test_id: str, arm: Arm, symbol: str, bar_start: datetime, prob_up: float
    ) -> bool:
        routing = self.route(test_id, symbol, bar_start)
        if arm not in routing.scored:
            raise ABTestError(f"bar {symbol} {bar_start.isoformat()} is not routed to {arm}")
        return self.store.record_prediction(
            test_id, arm, symbol, bar_start, prob_up, routing.trading_arm is arm
        )

    def resolve(self, test_id: str, symbol: str, bar_start: datetime, went_up: bool) -> int:
        """The bar's outcome is known (its label horizon has closed): score both arms."""
        self._running(test_id)
        return self.store.resolve(test_id, symbol, bar_start, went_up)

    def evaluate(self, test_id: str) -> ABEvaluation:
        test = self.get(test_id)
        stats = self.store.arm_stats(test_id)
        a, b = stats[Arm.CHAMPION], stats[Arm.CHALLENGER]
        decision, result = decide(a, b, tau=test.tau, alpha=test.alpha,
                                  min_samples=test.min_samples, max_samples=test.max_samples)
        return ABEvaluation(test, a, b, result, decision)

    def conclude(self, test_id: str, *, actor: str, force: bool = False) -> ABTest:
        """Act on the verdict: promote the challenger if it won, otherwise stop the test.

        Without a verdict (collecting or continue) this refuses unless ``force``; a forced
        conclusion stops the test and keeps the champion.
        """
        self._running(test_id)
        ev = self.evaluate(test_id)
        test = ev.test
        if ev.decision in (Decision.COLLECTING, Decision.CONTINUE) and not force:
            raise ABTestError(
                f"A/B test {test_id} has no verdict yet ({ev.decision.value}: champion "
                f"n={ev.champion.n}, challenger n={ev.challenger.n}, evidence "
                f"{ev.evidence:.2f} < {ev.threshold:.0f}); pass force to stop it anyway"
            )
        if ev.decision is Decision.CHALLENGER_BETTER:
            self.registry.promote(
                test.model_id, test.challenger, Stage.PRODUCTION, actor=actor, force=True,
                reason=f"won A/B test {test_id}",
            )
            status, verdict = "promoted", f"challenger v{test.challenger} promoted"
        else:
            status, verdict = "stopped", f"{ev.decision.value}: champion v{test.champion} kept"
        done = replace(test, status=status, verdict=verdict, concluded_at=self._now())
        self.store.save_test(done)
        self._audit("model.ab_conclude", actor, {
            "test_id": test_id, "model_id": test.model_id, "decision": ev.decision.value,
            "verdict": verdict, "forced": force and ev.decision in (
                Decision.COLLECTING, Decision.CONTINUE),
            "champion_n": ev.champion.n, "champion_hits": ev.champion.hits,
            "challenger_n": ev.challenger.n, "challenger_hits": ev.challenger.hits,
            "evidence": round(ev.evidence, 6),
        })
        return done
