"""``/v1/deployment``: the model control API of the original design, on the embedded runtime.

Reads need the ``read`` scope, anything that trains, promotes or starts a test needs
``models``. Every refusal of the registry, the A/B harness or the inference engine becomes a
4xx problem that says what was wrong, and is raised before anything is written. Without a
profile database there is no registry: every route then answers 409 and says why.

The routes are listed in ``app.http.api.API_ENDPOINTS``, so they share the body reader
(``app.http.context``), key checks, rate limits and the generated OpenAPI document.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from app.http.context import API_CONTEXT, audit, json_response, request_actor, request_body
from app.http.endpoints import Endpoint
from app.http.problems import ApiProblem
from app.http.schemas import InstrumentKey
from services.apikeys import Scope
from services.domain import Timeframe

if TYPE_CHECKING:
    from app.models_runtime import ModelsRuntime
    from models.abtest import ABEvaluation, ABTest
    from models.registry import ModelRecord

M = TypeVar("M", bound=BaseModel)

ModelId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Version = Annotated[StrictInt, Field(ge=1, le=1_000_000)]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeployBody(_Request):
    """Train a new version (or take ``version``) and put it in ``environment``."""

    model_id: ModelId
    symbol: InstrumentKey
    timeframe: Timeframe = Timeframe.M1
    model_type: Name = Field(description="random_forest, gradient_boosting or "
                                         "logistic_regression")
    environment: Name = Field(description="dev, staging or production")
    force: StrictBool = Field(default=False, description="allow skipping a stage")
    version: Version | None = Field(default=None,
                                    description="promote this existing version, train nothing")
    horizon: Annotated[StrictInt, Field(ge=1, le=100)] = 1


class ABStartBody(_Request):
    model_id: ModelId
    champion: Version
    challenger: Version
    shadow: StrictBool = False
    split: Annotated[float, Field(gt=0, lt=1)] = 0.5
    min_samples: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 200
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    tau: Annotated[float, Field(gt=0, le=1)] = 0.05


class ABPromoteBody(_Request):
    test_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    force: StrictBool = Field(default=False, description="stop the test without a verdict")


class PredictBody(_Request):
    """Score ``features``, or the symbol's latest bars, with its production ensemble."""

    symbol: InstrumentKey | None = None
    model_id: ModelId | None = None
    version: Version | None = None
    timeframe: Timeframe | None = None
    features: dict[FeatureName, Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None, max_length=64)


class ModelOut(BaseModel):
    model_id: str
    version: int
    stage: str
    model_type: str
    symbol: str
    timeframe: str
    horizon: int
    metrics: dict[str, dict[str, float | None]]
    created_at: datetime
    stage_changed_at: datetime
    stage_changed_by: str

    @classmethod
    def of(cls, r: ModelRecord) -> ModelOut:
        return cls(
            model_id=r.model_id, version=r.version, stage=r.stage.value,
            model_type=r.model_type, symbol=r.symbol, timeframe=r.timeframe.value,
            horizon=r.horizon,
            metrics={who: {k: _finite(v) for k, v in m.items()} for who, m in r.metrics.items()},
            created_at=r.created_at, stage_changed_at=r.stage_changed_at,
            stage_changed_by=r.stage_changed_by,
        )


class ModelList(BaseModel):
    models: list[ModelOut]


class ABTestOut(BaseModel):
    test_id: str
    model_id: str
    champion: int
    challenger: int
    shadow: bool
    split: float
    min_samples: int
    status: str
    verdict: str

    @classmethod
    def of(cls, t: ABTest) -> ABTestOut:
        return cls(test_id=t.test_id, model_id=t.model_id, champion=t.champion,
                   challenger=t.challenger, shadow=t.shadow, split=t.split,
                   min_samples=t.min_samples, status=t.status, verdict=t.verdict)


class ArmOut(BaseModel):
    version: int
    n: int
    hits: int


class ABEvaluationOut(BaseModel):
    test_id: str
    model_id: str
    champion: ArmOut
    challenger: ArmOut
    difference: float | None
    std_error: float | None
    evidence: float | None = Field(description="mSPRT evidence ratio; a verdict at threshold")
    threshold: float
    prob_challenger_better: float | None
    min_samples: int
    decision: str
    status: str

    @classmethod
    def of(cls, ev: ABEvaluation) -> ABEvaluationOut:
        d = ev.as_dict()
        return cls(
            test_id=d["test_id"], model_id=d["model_id"], champion=ArmOut(**d["champion"]),
            challenger=ArmOut(**d["challenger"]), difference=_finite(d["difference"]),
            std_error=_finite(d["std_error"]), evidence=_finite(d["evidence"]),
            threshold=d["threshold"], prob_challenger_better=_finite(
                d["prob_challenger_better"]),
            min_samples=d["min_samples"], decision=d["decision"], status=d["status"],
        )


class MemberOut(BaseModel):
    model_id: str
    version: int
    weight: float
    prob_up: float


class PredictionOut(BaseModel):
    symbol: str | None
    timeframe: str | None
    direction: Literal["up", "down"]
    prob_up: float
    confidence: float
    agreement: float
    members: list[MemberOut]
    features: dict[str, float | None]


class StatusOut(BaseModel):
    enabled: bool
    signals_running: bool
    paper_trading: bool
    onnx_available: bool
    production: list[dict[str, Any]]
    ab_tests_running: list[str]
    health: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    training: str | None
    errors: int


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# -- plumbing -------------------------------------------------------------------------------


def _runtime(request: web.Request) -> ModelsRuntime:
    runtime = request.app[API_CONTEXT].models
    if runtime is None:
        raise ApiProblem(409, "models are not configured: they need the profile's encrypted "
                              "database (run headless with its key) and models_enabled",
                         title="Models not configured")  # fmt: skip
    return runtime


async def _guarded(call: Callable[[], Awaitable[M]]) -> M:
    """Run a runtime call; turn its refusals into problems that name the rule.

    A missing scikit-learn (the installed bundle ships without the ``ml`` extra) shows up as
    an ImportError when a model module is first needed: that is the deployment's state, a
    409 that says what to install, not a server error.
    """
    try:
        from app.models_runtime import (
            NoProductionModelError,
            StageOrderError,
            UnknownSymbolError,
        )
        from models.abtest import ABTestError
        from models.artifacts import ArtifactError
        from models.inference import MissingFeaturesError
        from models.registry import RegistryError
        from models.training import InsufficientDataError, UnknownModelTypeError
    except ImportError as e:
        raise _needs_ml(e) from None

    try:
        return await call()
    except ImportError as e:
        raise _needs_ml(e) from None
    except StageOrderError as e:
        raise ApiProblem(409, str(e), title="Stage order") from None
    except (UnknownModelTypeError, UnknownSymbolError, MissingFeaturesError,
            InsufficientDataError) as e:
        raise ApiProblem(422, str(e)) from None
    except NoProductionModelError as e:
        raise ApiProblem(409, str(e), title="No production model") from None
    except ArtifactError as e:
        raise ApiProblem(409, str(e), title="Model artifact refused") from None
    except RegistryError as e:
        text = str(e)
        if text.startswith("no model"):
            raise ApiProblem(404, text) from None
        if text.startswith(("unknown stage", "invalid model id", "unknown symbol", "deploy to")):
            raise ApiProblem(422, text) from None
        raise ApiProblem(409, text) from None
    except ABTestError as e:
        text = str(e)
        if text.startswith("no A/B test"):
            raise ApiProblem(404, text) from None
        if "two different versions" in text or text.startswith(("need ", "split ")):
            raise ApiProblem(422, text) from None
        raise ApiProblem(409, text) from None
    except ValueError as e:  # e.g. neither symbol nor model id
        raise ApiProblem(422, str(e)) from None


def _needs_ml(error: ImportError) -> ApiProblem:
    missing = error.name or "a module"
    return ApiProblem(409, f"models need the ml extra (scikit-learn): {missing} cannot be "
                           "imported; install dalal-terminal[ml]",
                      title="Models need the ml extra")  # fmt: skip


# -- handlers -----------------------------------------------------------------------------


async def get_models(request: web.Request) -> web.Response:
    runtime = _runtime(request)

    async def call() -> ModelList:
        return ModelList(models=[ModelOut.of(r) for r in await runtime.models()])

    return json_response(await _guarded(call))


async def get_status(request: web.Request) -> web.Response:
    runtime = _runtime(request)

    async def call() -> StatusOut:
        return StatusOut(**await runtime.status())

    return json_response(await _guarded(call))


async def post_deploy(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = await request_body(request, DeployBody)
    actor = request_actor(request)

    async def call() -> ModelOut:
        return ModelOut.of(await runtime.deploy(
            body.model_id, body.symbol, body.timeframe, body.model_type, body.environment,
            actor=actor, force=body.force, version=body.version, horizon=body.horizon))

    out = await _guarded(call)
    audit(request, "api.model_deploy", {"model_id": out.model_id, "version": out.version,
                                         "stage": out.stage, "forced": body.force})
    return json_response(out, status=201 if body.version is None else 200)


async def post_ab_start(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = await request_body(request, ABStartBody)
    actor = request_actor(request)

    async def call() -> ABTestOut:
        return ABTestOut.of(await runtime.ab_start(
            body.model_id, body.champion, body.challenger, actor=actor, split=body.split,
            shadow=body.shadow, min_samples=body.min_samples, alpha=body.alpha, tau=body.tau))

    return json_response(await _guarded(call), status=201)


async def get_ab_evaluate(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    test_id = request.match_info["test_id"]

    async def call() -> ABEvaluationOut:
        return ABEvaluationOut.of(await runtime.ab_evaluate(test_id))

    return json_response(await _guarded(call))


async def post_ab_promote(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = await request_body(request, ABPromoteBody)
    actor = request_actor(request)

    async def call() -> ABTestOut:
        return ABTestOut.of(await runtime.ab_conclude(body.test_id, actor=actor,
                                                      force=body.force))

    return json_response(await _guarded(call))


async def post_predict(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = await request_body(request, PredictBody)

    async def call() -> PredictionOut:
        result = await runtime.predict(symbol=body.symbol, features=body.features,
                                       model_id=body.model_id, version=body.version,
                                       timeframe=body.timeframe)
        s = result.signal
        return PredictionOut(
            symbol=result.symbol, timeframe=result.timeframe.value if result.timeframe else None,
            direction="up" if s.direction > 0 else "down", prob_up=s.prob_up,
            confidence=s.confidence, agreement=s.agreement,
            members=[MemberOut(model_id=m.model_id, version=m.version, weight=m.weight,
                               prob_up=m.prob_up) for m in s.members],
            features={k: _finite(v) for k, v in result.features.items()},
        )

    return json_response(await _guarded(call))


_READ_ERRORS = (401, 403, 409, 429)
_WRITE_ERRORS = (400, 401, 403, 404, 408, 409, 413, 415, 422, 429)

DEPLOYMENT_ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/v1/deployment/deploy", post_deploy, "deployModel",
             "Train a new version (or take an existing one) and put it in an environment",
             scope=Scope.MODELS, body=DeployBody, response=ModelOut, success=201,
             errors=_WRITE_ERRORS, tags=("models",)),
    Endpoint("POST", "/v1/deployment/ab-test/start", post_ab_start, "startAbTest",
             "Start an A/B test between two versions of a model", scope=Scope.MODELS,
             body=ABStartBody, response=ABTestOut, success=201, errors=_WRITE_ERRORS,
             tags=("models",)),
    Endpoint("GET", "/v1/deployment/ab-test/{test_id}/evaluate", get_ab_evaluate,
             "evaluateAbTest", "Evidence so far and the sequential test's decision",
             scope=Scope.READ, response=ABEvaluationOut, errors=(401, 403, 404, 409, 429),
             tags=("models",)),
    Endpoint("POST", "/v1/deployment/ab-test/promote", post_ab_promote, "promoteAbTest",
             "Act on the verdict: promote the winning challenger, or stop the test",
             scope=Scope.MODELS, body=ABPromoteBody, response=ABTestOut,
             errors=_WRITE_ERRORS, tags=("models",)),
    Endpoint("POST", "/v1/deployment/predict", post_predict, "predict",
             "Ensemble prediction for features or a symbol's latest bars", scope=Scope.READ,
             body=PredictBody, response=PredictionOut, errors=_WRITE_ERRORS,
             tags=("models",)),
    Endpoint("GET", "/v1/deployment/status", get_status, "deploymentStatus",
             "Production models, their live health, running A/B tests, alerts",
             scope=Scope.READ, response=StatusOut, errors=_READ_ERRORS, tags=("models",)),
    Endpoint("GET", "/v1/deployment/models", get_models, "listModels",
             "Every registered version with its stage and metrics beside the baselines",
             scope=Scope.READ, response=ModelList, errors=_READ_ERRORS, tags=("models",)),
]  # fmt: skip
