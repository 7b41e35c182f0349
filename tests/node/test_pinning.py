"""Trust on first use: the node's certificate fingerprint is shown, pinned, and enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.headless import ServerOptions, load_tls
from app.headless.listen import certificate_fingerprint
from services.apikeys import Scope
from services.brokers.errors import PermissionDenied
from services.brokers.node.execution import NodeExecution
from services.brokers.node.pinning import PinError, fetch_fingerprint, normalise, pretty
from tests.api.server import running_server
from tests.api.test_tls_and_systemd import make_cert


async def test_the_pinned_certificate_is_the_only_one_accepted(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = make_cert(tmp_path / "other")  # a valid certificate for the same name
    async with running_server(ServerOptions(tls=load_tls(cert, key))) as srv:
        token = srv.key(Scope.READ, Scope.TRADE)
        seen = await fetch_fingerprint(srv.base)
        # What the desktop shows is what the node logged at start (and openssl prints).
        assert pretty(seen) == certificate_fingerprint(cert)
        pinned = NodeExecution(srv.base, token, fingerprint=seen)
        try:
            assert await pinned.orders() == []
        finally:
            await pinned.close()
        wrong = NodeExecution(srv.base, token,
                              fingerprint=normalise(certificate_fingerprint(other)))
        try:
            with pytest.raises(PermissionDenied, match="different TLS certificate"):
                await wrong.orders()
        finally:
            await wrong.close()
    with pytest.raises(PinError, match="not pinned yet"):
        NodeExecution("https://203.0.113.9:9443", token)
