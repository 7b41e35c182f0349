"""TLS 1.3 on the real server, exposure rules, systemd readiness, /metrics off loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.headless import (
    ListenError,
    ServerOptions,
    check_exposure,
    load_tls,
    parse_listen,
    sd_notify,
)
from services.apikeys import Scope
from tests.api.server import running_server


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_13_is_served_and_older_clients_are_refused(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    tls = load_tls(cert, key)
    assert tls is not None
    async with running_server(ServerOptions(tls=tls)) as srv:
        assert srv.base.startswith("https://127.0.0.1:")
        client = ssl.create_default_context(cafile=str(cert))
        token = srv.key(Scope.READ)
        connector = aiohttp.TCPConnector(ssl=client)
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(srv.base + "/v1/positions",
                                headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
                assert r.status == 200
            async with http.get(srv.base + "/v1/positions") as r:
                assert r.status == 401

        host, port = srv.base.removeprefix("https://").split(":")
        _, writer = await asyncio.open_connection(host, int(port), ssl=client)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.close()
        old = ssl.create_default_context(cafile=str(cert))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionResetError)):  # refused in the handshake
            await asyncio.open_connection(host, int(port), ssl=old)
        async with aiohttp.ClientSession() as http:  # plain HTTP to a TLS port gets nowhere
            with pytest.raises(aiohttp.ClientError):
                await http.get(srv.base.replace("https", "http") + "/livez")


def test_exposure_needs_tls_or_an_explicit_insecure_bind(tmp_path: Path) -> None:
    exposed = parse_listen("0.0.0.0:9400")
    with pytest.raises(ListenError, match="--tls-cert"):
        check_exposure(exposed, insecure_bind=False)
    check_exposure(exposed, insecure_bind=False, tls=True)
    with pytest.raises(ListenError, match="together"):
        load_tls(tmp_path / "cert.pem", None)
    with pytest.raises(ListenError, match="cannot load"):
        load_tls(tmp_path / "missing.pem", tmp_path / "missing.key")
    assert load_tls(None, None) is None


def test_sd_notify_speaks_the_datagram_protocol(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert sd_notify("READY=1\nSTATUS=serving", environ={"NOTIFY_SOCKET": path})
        assert server.recv(4096) == b"READY=1\nSTATUS=serving"
    assert not sd_notify("READY=1", environ={})
    assert not sd_notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})


async def test_server_notifies_systemd_when_ready_and_when_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        async with running_server() as srv, aiohttp.ClientSession() as http:
            ready = sock.recv(4096).decode()
            assert ready.startswith("READY=1\n") and srv.base in ready
            async with http.get(srv.base + "/livez") as r:
                assert r.status == 200
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        sock.close()


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            ip: str = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(ip).is_loopback else ip


async def test_metrics_needs_a_read_key_from_a_non_loopback_peer() -> None:
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to test from")
    async with running_server(listen=f"{ip}:0") as srv, aiohttp.ClientSession() as http:
        async with http.get(srv.base + "/metrics") as r:
            assert r.status == 401
        async with http.get(srv.base + "/metrics",
                            headers={"Authorization": f"Bearer {srv.key(Scope.READ)}"}) as r:
            assert r.status == 200  # fmt: skip
            assert "dalal_event_loop_lag_seconds" in await r.text()
        async with http.get(srv.base + "/readyz") as r:
            assert r.status in (200, 503)  # probes stay open
