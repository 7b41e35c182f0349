"""Where the node listens: ``--listen`` parsing, the loopback rule and the TLS 1.3 context.

Binding beyond loopback needs TLS 1.3 (``--tls-cert``/``--tls-key``) or an explicit
``--insecure-bind`` for a private network; the checks run before anything is started so a bad
address is one clear line on the command line.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from app.http.server import tls_context


class ListenError(ValueError):
    """A ``--listen`` value that cannot be used; the message is shown to the user as is."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name we would have to resolve: treat as exposed


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 asks the OS for a free port."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ListenError(f"--listen {text!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ListenError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9400")
        if ":" in host:
            raise ListenError(f"--listen {text!r}: write IPv6 addresses as [ADDRESS]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenError(f"--listen {text!r}: port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise ListenError(f"--listen {text!r}: {host!r} is not a valid host") from None
    return ListenAddress(host, int(port_text))


def check_exposure(address: ListenAddress, *, insecure_bind: bool, tls: bool = False) -> None:
    if not address.loopback and not tls and not insecure_bind:
        raise ListenError(
            f"refusing to listen on {address.host} without TLS: it is not a loopback address; "
            "give --tls-cert and --tls-key, use 127.0.0.1 (and an SSH tunnel), "
            "or pass --insecure-bind if the network is private"
        )


def load_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Build the TLS 1.3 context, or ``None`` without files; ``ListenError`` if unusable."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ListenError("--tls-cert and --tls-key must be given together")
    try:
        return tls_context(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ListenError(f"cannot load TLS certificate {cert} / key {key}: {e}") from None



def bound_url(runner: web.AppRunner, *, tls: bool = False) -> str:
    sockname: Any = runner.addresses[0]
    host, port = sockname[0], sockname[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def certificate_fingerprint(cert: Path) -> str:
    """SHA-256 of the (first) certificate in a PEM file, as ``AB:CD:...``."""
    end = "-----END CERTIFICATE-----"
    first = cert.read_text().split(end)[0].strip() + "\n" + end + "\n"
    der = ssl.PEM_cert_to_DER_cert(first[first.index("-----BEGIN"):])
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))
