"""Headless on a VPS with no OS keyring: a passphrase profile made from the command line, its
passphrase handed on ``--key-fd``; API keys work and the model trained by the CLI loads.
Without the passphrase the server refuses to start instead of refusing every key."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.test_headless import start_headless, wait_ready
from tests.test_headless_database import env_for

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "vps passphrase 7f3a"


def dalal(
    *argv: str, env: dict[str, str], stdin: str = "", key_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with no controlling terminal (``getpass`` then reads standard input)."""
    if key_file is None:
        return subprocess.run(
            [sys.executable, "-m", "app", *argv], cwd=REPO, env=env, input=stdin,
            capture_output=True, text=True, timeout=120, check=False, start_new_session=True,
        )  # fmt: skip
    with key_file.open() as handed:
        fd = str(handed.fileno())
        return subprocess.run(
            [sys.executable, "-m", "app", *argv, "--key-fd", fd], cwd=REPO, env=env,
            input=stdin, capture_output=True, text=True, timeout=120, check=False,
            pass_fds=(handed.fileno(),), start_new_session=True,
        )  # fmt: skip


def test_vps_with_a_handed_passphrase_serves_keys_and_models(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    (tmp_path / "settings.json").write_text("{}")
    made = dalal("vault", "passphrase", "--kdf-time-cost", "1", env=env,
                 stdin=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "passphrase"
    key_file.write_text(PASSPHRASE + "\n")
    key_file.chmod(0o600)

    created = dalal("apikey", "create", "--name", "ops", "--scopes", "read", env=env,
                    key_file=key_file)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    trained = dalal("model", "train", "mom", "--symbol", "NSE:INFY", "--synthetic", "1000",
                    "--train-size", "400", "--test-size", "200", "--splits", "2",
                    env=env, key_file=key_file)
    assert trained.returncode == 0, trained.stderr
    promoted = dalal("model", "promote", "mom", "1", "production", "--force", env=env,
                     key_file=key_file)
    assert promoted.returncode == 0, promoted.stderr

    # No passphrase and no terminal: refuse to start, in one line.
    refused = subprocess.run(
        [sys.executable, "-m", "app", "headless", "--listen", "127.0.0.1:0"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False, start_new_session=True,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "passphrase-protected" in refused.stderr and "Traceback" not in refused.stderr

    with key_file.open() as handed:
        proc, base, log_path = start_headless(
            tmp_path, "--key-fd", str(handed.fileno()), env=env, pass_fds=(handed.fileno(),)
        )
    try:
        ready = wait_ready(base)
        assert ready["components"]["database"]["state"] == "open"  # type: ignore[index]
        auth = {"Authorization": f"Bearer {token}"}
        with urllib.request.urlopen(
            urllib.request.Request(base + "/v1/orders", headers=auth), timeout=10
        ) as response:
            assert response.status == 200
        # A prediction loads the production model: its signature checks out against the
        # signing key kept in the vault.
        predict = urllib.request.Request(
            base + "/v1/deployment/predict", method="POST",
            data=json.dumps({"symbol": "NSE:INFY"}).encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(predict, timeout=60) as response:
            prediction = json.loads(response.read())
        assert prediction["members"][0]["model_id"] == "mom"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log_path.read_text()[-3000:]
    assert PASSPHRASE not in log_path.read_text()
