"""``dalal node pair``: the fingerprint is checked, the key stored, the node selected."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from app.headless import ServerOptions, load_tls
from app.headless.listen import certificate_fingerprint
from services.apikeys import Scope
from tests.api.server import running_server
from tests.api.test_tls_and_systemd import make_cert
from tests.node.node_process import REPO


async def dalal(tmp: Path, *args: str, key: str) -> tuple[int, str, str]:
    key_file = tmp / "db.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_bytes(32).hex())
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"),
           "XDG_CONFIG_HOME": str(tmp / "config"), "DALAL_NODE_KEY": key}  # fmt: skip
    with key_file.open() as handed:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", *args, "--key-fd", str(handed.fileno()), cwd=REPO,
            env=env, pass_fds=(handed.fileno(),), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_pair_pins_the_certificate_stores_the_key_and_selects_the_node(
    tmp_path: Path,
) -> None:
    cert, key = make_cert(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = make_cert(tmp_path / "other")
    config = tmp_path / "settings.json"
    async with running_server(ServerOptions(tls=load_tls(cert, key))) as srv:
        token = srv.key(Scope.READ, Scope.TRADE)
        code, _, err = await dalal(tmp_path, "node", "pair", srv.base, "--config", str(config),
                                   "--fingerprint", certificate_fingerprint(other), key=token)
        assert code == 2 and "not the fingerprint you gave" in err and not config.exists()
        code, out, err = await dalal(tmp_path, "node", "pair", srv.base, "--config",
                                     str(config), "--fingerprint",
                                     certificate_fingerprint(cert), key=token)  # fmt: skip
        assert code == 0, err
        assert certificate_fingerprint(cert) in out and "pinned" in out
        node = json.loads(config.read_text())["node"]
        assert node["venue"] == "node" and node["url"] == srv.base
        assert node["fingerprint"] == certificate_fingerprint(cert).replace(":", "").lower()
        code, out, _ = await dalal(tmp_path, "credentials", "list", key=token)
        assert code == 0 and out.startswith("node\tapi_key")
        assert token not in out
