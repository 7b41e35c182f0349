"""Headless with its encrypted profile: API keys from the CLI, orders journaled, state kept."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from services.storage import Database, ProfilePaths
from tests.test_headless import get, start_headless, wait_ready

REPO = Path(__file__).resolve().parents[1]


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


def test_headless_journals_api_orders_in_the_profile_database(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    key_file = tmp_path / "db.key"
    key_file.write_text(key.hex())
    env = env_for(tmp_path)

    with key_file.open() as handed:
        created = subprocess.run(
            [sys.executable, "-m", "app", "apikey", "create", "--name", "ops",
             "--scopes", "read,trade", "--key-fd", str(handed.fileno())],
            cwd=REPO, env=env, capture_output=True, text=True, pass_fds=(handed.fileno(),),
            timeout=60, check=False,
        )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("dk_")

    with key_file.open() as handed:
        proc, base, log_path = start_headless(
            tmp_path, "--key-fd", str(handed.fileno()), env=env, pass_fds=(handed.fileno(),)
        )
    try:
        ready = wait_ready(base)
        database = ready["components"]["database"]  # type: ignore[index]
        assert database["state"] == "open" and database["ready"] is True

        body = json.dumps(
            {"key": "NSE:INFY", "side": "BUY", "quantity": 3, "order_type": "LIMIT",
             "product": "MIS", "price": "1000.00"}
        ).encode()  # fmt: skip
        request = urllib.request.Request(
            base + "/v1/orders",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "Idempotency-Key": "headless-db-test-1"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201)
            placed = json.loads(response.read())
        assert get(base + "/v1/orders")[0] == 401  # a key is needed to read
        metrics_text = get(base + "/metrics")[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log_path.read_text()[-3000:]

    # No secret in the logs or the metrics: neither the API token nor the database key.
    secret_part = token.split("_", 2)[2]  # dk_<hex id>_<secret>; the secret may contain "_"
    assert len(secret_part) >= 40
    for text in (log_path.read_text(), metrics_text, created.stdout.replace(token, "")):
        assert secret_part not in text
        assert key.hex() not in text

    paths = ProfilePaths.for_profile("default", tmp_path / "data" / "dalal-terminal")
    db = Database.open(paths.database, key)
    try:
        stored = {o.order_id: o for o in db.orders.all()}
        order_id = placed.get("order_id") or placed["order"]["order_id"]
        assert stored[order_id].request.source == "api"
        kinds = [row.kind for row in db.audit.rows()]
        assert "unlock" in kinds and "order_placed" in kinds
    finally:
        db.close()


def test_a_wrong_handed_key_is_a_one_line_error(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    good = tmp_path / "good.key"
    good.write_text(secrets.token_bytes(32).hex())
    with good.open() as handed:  # creates the profile with the good key
        subprocess.run(
            [sys.executable, "-m", "app", "apikey", "list", "--key-fd", str(handed.fileno())],
            cwd=REPO, env=env, capture_output=True, pass_fds=(handed.fileno(),), timeout=60,
            check=True,
        )  # fmt: skip
    bad = tmp_path / "bad.key"
    bad.write_text(secrets.token_bytes(32).hex())
    with bad.open() as handed:
        result = subprocess.run(
            [sys.executable, "-m", "app", "headless", "--listen", "127.0.0.1:0",
             "--key-fd", str(handed.fileno())],
            cwd=REPO, env=env, capture_output=True, text=True, pass_fds=(handed.fileno(),),
            timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert "wrong passphrase or key" in result.stderr
    assert "Traceback" not in result.stderr
