"""Fuzz the control API from its own OpenAPI document with schemathesis: never a 5xx."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from app.headless import ServerOptions
from services.apikeys import Scope
from tests.api.server import running_server

ST = Path(sys.executable).with_name("st")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    if not ST.exists() and shutil.which("st") is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis==4.32.5)")
    options = ServerOptions(rate=10_000, burst=10_000)  # fuzz the handlers, not the limiter
    async with running_server(options) as srv:
        token = srv.key(Scope.READ, Scope.TRADE, Scope.MODELS)
        proc = await asyncio.create_subprocess_exec(
            str(ST) if ST.exists() else "st", "run", srv.base + "/openapi.json",
            "--checks", "not_a_server_error",
            "-H", f"Authorization: Bearer {token}",
            "--max-examples", "40", "--max-time", "40", "--seed", "1",
            "--request-timeout", "5", "--workers", "1",
            "--report", "junit", "--report-dir", str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={"PATH": str(ST.parent), "HOME": str(tmp_path), "NO_COLOR": "1"},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text[-4000:]
        assert "/v1/orders" in text
        async with aiohttp.ClientSession() as http, http.get(srv.base + "/metrics") as r:
            metrics = await r.text()
        assert 'code="5' not in metrics  # the server's own count agrees: no 5xx at all
        assert 'handler="/v1/orders",method="POST"' in metrics  # the fuzzer reached the handlers
