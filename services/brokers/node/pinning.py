"""Trust on first use for the node's TLS certificate: fetch its fingerprint, then pin it.

A node on a VPS usually has a self-signed certificate, so there is no CA to ask. The desktop
shows the SHA-256 fingerprint of the certificate the node presents the first time, the trader
compares it with the one ``dalal headless`` printed on the VPS and confirms, and from then on
only that certificate is accepted (aiohttp's ``Fingerprint``): a different one, even a valid
one for the name, is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from urllib.parse import urlsplit

import aiohttp


class PinError(ValueError):
    """A fingerprint or node address that cannot be used; the message says why."""


def normalise(fingerprint: str) -> str:
    """``AB:CD:...`` or ``abcd...`` to 64 lower-case hex digits."""
    text = fingerprint.replace(":", "").strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise PinError(f"{fingerprint!r} is not a SHA-256 fingerprint (64 hex digits)")
    return text


def pretty(fingerprint: str) -> str:
    """Colon-separated upper-case pairs, the way ``openssl x509 -fingerprint`` prints it."""
    text = normalise(fingerprint).upper()
    return ":".join(text[i : i + 2] for i in range(0, 64, 2))


def ssl_for(url: str, fingerprint: str | None) -> aiohttp.Fingerprint | bool:
    """The ``ssl=`` argument for requests to the node: the pin for https, nothing for http."""
    if urlsplit(url).scheme != "https":
        return True  # plain http: loopback or an SSH tunnel (the node refuses it elsewhere)
    if fingerprint is None:
        raise PinError(
            f"{url}: the node's certificate is not pinned yet; connect once and confirm its "
            "fingerprint"
        )
    return aiohttp.Fingerprint(bytes.fromhex(normalise(fingerprint)))


FETCH_SECONDS = 10.0


async def fetch_fingerprint(url: str) -> str:
    """The SHA-256 of the certificate the node presents now (to show, never to trust as is)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        raise PinError(f"{url}: only an https:// node has a certificate to pin")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we read the certificate to show it; nothing is sent
    async with asyncio.timeout(FETCH_SECONDS):
        _, writer = await asyncio.open_connection(parts.hostname, parts.port or 443,
                                                  ssl=context)  # fmt: skip
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise PinError(f"{url}: the node presented no certificate")
        return hashlib.sha256(der).hexdigest()
    finally:
        writer.close()
