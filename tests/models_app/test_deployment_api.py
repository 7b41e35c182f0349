"""``/v1/deployment`` on the real headless server (loopback), with a real encrypted database."""

from __future__ import annotations

from typing import Any

import aiohttp

from app.headless import ServerOptions
from services.apikeys import Scope
from services.storage import Database
from tests.api.server import running_server
from tests.api.test_api_server import auth, problem_of
from tests.models_app.conftest import SYMBOL

BASE = "/v1/deployment"
DEPLOY = {"model_id": "mom", "symbol": SYMBOL, "timeframe": "1m",
          "model_type": "logistic_regression", "environment": "staging"}


async def _post(http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any]
                ) -> aiohttp.ClientResponse:
    return await http.post(url, json=body, headers=auth(token))


async def test_every_deployment_endpoint_and_its_refusals(database: Database) -> None:
    async with running_server(ServerOptions(database=database)) as srv, \
            aiohttp.ClientSession() as http:
        models = srv.key(Scope.READ, Scope.MODELS)
        read = srv.key(Scope.READ)
        url = srv.base + BASE

        async with http.get(url + "/models", headers=auth(read)) as r:
            assert r.status == 200 and (await r.json()) == {"models": []}
        async with await _post(http, url + "/deploy", read, DEPLOY) as r:
            await problem_of(r, 403)  # a read key cannot deploy
        async with await _post(http, url + "/deploy", models, DEPLOY) as r:
            assert r.status == 201, await r.text()
            v1 = await r.json()
        assert (v1["version"], v1["stage"]) == (1, "staging")
        assert {"model", "always_up", "previous_direction"} <= set(v1["metrics"])

        bad = [
            ({**DEPLOY, "environment": "production"}, 409, "skip"),
            ({**DEPLOY, "model_type": "deep_magic"}, 422, "unknown model type"),
            ({**DEPLOY, "symbol": "NSE:NOSUCH"}, 422, "unknown symbol"),
            ({**DEPLOY, "environment": "prod"}, 422, "unknown stage"),
            ({**DEPLOY, "version": 7, "environment": "production"}, 404, "no model"),
            ({**DEPLOY, "extra": 1}, 422, None),
        ]
        for body, status, words in bad:
            async with await _post(http, url + "/deploy", models, body) as r:
                problem = await problem_of(r, status)
                if words:
                    assert words in problem["detail"], problem
        async with http.get(url + "/models", headers=auth(read)) as r:
            assert [m["version"] for m in (await r.json())["models"]] == [1]  # nothing changed

        live = {**DEPLOY, "environment": "production", "version": 1}
        async with await _post(http, url + "/deploy", models, live) as r:
            assert r.status == 200 and (await r.json())["stage"] == "production"

        async with await _post(http, url + "/predict", read, {"symbol": SYMBOL}) as r:
            assert r.status == 200, await r.text()
            prediction = await r.json()
        assert prediction["members"][0]["model_id"] == "mom"
        assert prediction["direction"] in ("up", "down")
        features = prediction["features"]
        async with await _post(http, url + "/predict", read,
                               {"symbol": SYMBOL, "features": features}) as r:
            assert (await r.json())["prob_up"] == prediction["prob_up"]
        async with await _post(http, url + "/predict", read,
                               {"model_id": "mom", "features": {"ret_1": 0.0}}) as r:
            assert "needs features" in (await problem_of(r, 422))["detail"]
        async with await _post(http, url + "/predict", read, {"symbol": "NSE:TCS"}) as r:
            await problem_of(r, 409)  # no production model for that symbol

        async with await _post(http, url + "/ab-test/start", models,
                               {"model_id": "mom", "champion": 1, "challenger": 1}) as r:
            assert "two different versions" in (await problem_of(r, 422))["detail"]
        async with await _post(http, url + "/deploy", models, DEPLOY) as r:
            assert (await r.json())["version"] == 2
        async with await _post(http, url + "/ab-test/start", models,
                               {"model_id": "mom", "champion": 1, "challenger": 2,
                                "shadow": True}) as r:
            assert r.status == 201
            test_id = (await r.json())["test_id"]
        async with http.get(f"{url}/ab-test/{test_id}/evaluate", headers=auth(read)) as r:
            evaluation = await r.json()
        assert evaluation["decision"] == "collecting"
        assert evaluation["champion"] == {"version": 1, "n": 0, "hits": 0}
        async with http.get(f"{url}/ab-test/nope/evaluate", headers=auth(read)) as r:
            await problem_of(r, 404)
        async with http.get(url + "/status", headers=auth(read)) as r:
            status = await r.json()
        assert status["ab_tests_running"] == [test_id]
        assert status["production"][0]["version"] == 1
        async with await _post(http, url + "/ab-test/promote", models,
                               {"test_id": test_id}) as r:
            assert "no verdict" in (await problem_of(r, 409))["detail"]
        async with await _post(http, url + "/ab-test/promote", models,
                               {"test_id": test_id, "force": True}) as r:
            done = await r.json()
        assert done["status"] == "stopped" and "champion v1 kept" in done["verdict"]

        async with http.get(srv.base + "/readyz") as r:
            assert (await r.json())["components"]["models"]["state"] == "loaded"
        async with http.get(srv.base + "/openapi.json") as r:
            doc = await r.json()
        for path in ("/deploy", "/ab-test/start", "/ab-test/{test_id}/evaluate",
                     "/ab-test/promote", "/predict", "/status", "/models"):
            assert BASE + path in doc["paths"]
        assert doc["components"]["schemas"]["DeployBody"]["additionalProperties"] is False
        assert srv.events("api.model_deploy")


async def test_without_a_database_the_routes_say_models_are_not_configured() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        token = srv.key(Scope.READ, Scope.MODELS)
        async with http.get(srv.base + BASE + "/status", headers=auth(token)) as r:
            assert "not configured" in (await problem_of(r, 409))["detail"]
        async with http.get(srv.base + "/readyz") as r:
            assert (await r.json())["components"]["models"]["state"] == "not configured"
