"""A real ``dalal headless`` order node in a child process, with its encrypted profile."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unverified() -> ssl.SSLContext:
    """Readiness only (the tests pin the certificate where it matters)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class NodeProcess:
    """One node profile on a fixed port; ``start``/``kill``/``stop`` it as often as needed."""

    root: Path
    port: int = field(default_factory=free_port)
    settings: dict[str, object] = field(default_factory=dict)
    db_key: str = field(default_factory=lambda: secrets.token_bytes(32).hex())
    proc: subprocess.Popen[str] | None = None
    starts: int = 0
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve https

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }

    def _key_file(self) -> Path:
        path = self.root / "db.key"
        if not path.exists():
            path.write_text(self.db_key)
        return path

    def create_key(self, scopes: str = "read,trade") -> str:
        with self._key_file().open() as handed:
            done = subprocess.run(
                [sys.executable, "-m", "app", "apikey", "create", "--name", "desktop",
                 "--scopes", scopes, "--key-fd", str(handed.fileno())],
                cwd=REPO, env=self.env, capture_output=True, text=True,
                pass_fds=(handed.fileno(),), timeout=60, check=False,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def start(self, timeout: float = 90.0) -> None:
        config = self.root / "settings.json"
        config.write_text(json.dumps(self.settings))
        log = (self.root / f"node-{self.starts}.log").open("w")
        self.starts += 1
        tls = ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []
        with self._key_file().open() as handed:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "headless", "--listen", f"127.0.0.1:{self.port}",
                 "--config", str(config), "--ticks-per-second", "20",
                 "--key-fd", str(handed.fileno()), *tls],
                cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True,
                pass_fds=(handed.fileno(),),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_tail()
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2,
                                            context=_unverified()) as r:  # fmt: skip
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the node did not get ready: {self.log_tail()}")

    def log_tail(self) -> str:
        logs = sorted(self.root.glob("node-*.log"))
        return logs[-1].read_text()[-3000:] if logs else ""

    def kill(self) -> None:
        """SIGKILL: the node dies mid-stream, no orderly shutdown."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=20)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
