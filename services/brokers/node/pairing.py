"""Pairing the desktop with an order node: every check made before anything is stored.

The desktop dialog (and ``dalal node pair``) pins what it was shown, so the order matters:
the address is checked first, then the certificate is read and shown (never trusted as is),
and only after the trader confirmed it is the API key tried, over a connection that accepts
that certificate alone. A key is stored only once the node has accepted it with the trade
scope: a wrong, revoked or read-only key is refused here, not at the first order.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import aiohttp

from services.broker import BrokerError
from services.brokers.node.execution import NodeExecution
from services.brokers.node.pinning import PinError, fetch_fingerprint, normalise

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CHECK_SECONDS = 10.0
KEY_HINT = "create one on the node: dalal apikey create --name desktop --scopes read,trade"


class PairingError(ValueError):
    """Why the node cannot be paired; the message is meant for the trader and holds no secret."""


def check_url(url: str) -> str:
    """The node's address without a trailing slash, or a ``PairingError`` saying what is wrong."""
    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise PairingError(f"{text!r} is not an address: give https://HOST:PORT") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PairingError(f"{text!r} is not an address: give https://HOST:PORT")
    if parts.path or parts.query or parts.fragment or parts.username:
        raise PairingError("give only https://HOST:PORT (no path, query or user)")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise PairingError("a node beyond this machine needs https:// (or an SSH tunnel to "
                           "http://127.0.0.1:PORT)")  # fmt: skip
    if port == 0:
        raise PairingError("port 0 is not a node's port")
    return text


async def fetch_pin(url: str) -> str | None:
    """The certificate's SHA-256 to show the trader, or None for plain http on this machine.

    For http there is nothing to pin, but the node must still answer, so an address typed
    wrong is caught here too.
    """
    url = check_url(url)
    if url.startswith("http://"):
        timeout = aiohttp.ClientTimeout(total=CHECK_SECONDS)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url + "/livez"):
                return None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise PairingError(f"cannot reach the node at {url}: {_why(e)}") from None
    try:
        return await fetch_fingerprint(url)
    except TimeoutError:
        raise PairingError(f"cannot reach the node at {url}: no answer within "
                           f"{CHECK_SECONDS:g} s") from None  # fmt: skip
    except ssl.SSLError as e:
        raise PairingError(f"{url} did not complete a TLS handshake ({e.reason or e}): is it "
                           "the node's https port?") from None  # fmt: skip
    except PinError as e:
        raise PairingError(str(e)) from None
    except OSError as e:
        raise PairingError(f"cannot reach the node at {url}: {_why(e)}") from None


async def verify_key(url: str, fingerprint: str | None, api_key: str) -> str:
    """Try the key on the node through the pinned certificate; return the key's name.

    Refuses a key that is not the node's, one the node does not accept, one without the
    trade scope, and a node whose certificate is no longer the one the trader confirmed.
    """
    url = check_url(url)
    key = api_key.strip()
    if not key.startswith("dk_"):
        raise PairingError("that is not an API key of the node (they start with dk_); " + KEY_HINT)
    if url.startswith("https://"):
        if fingerprint is None:
            raise PairingError("fetch the node's certificate and confirm its fingerprint first")
        try:
            fingerprint = normalise(fingerprint)
        except PinError as e:
            raise PairingError(str(e)) from None
    client = NodeExecution(url, key, fingerprint=fingerprint, timeout=CHECK_SECONDS, attempts=1)
    try:
        name, scopes = await client.key_info()
    except BrokerError as e:
        raise PairingError(str(e)) from None
    finally:
        await client.close()
    if "trade" not in scopes:
        held = ", ".join(sorted(scopes)) or "none"
        raise PairingError(f"the node's key {name!r} may not place orders (its scopes: {held}); "
                           + KEY_HINT)  # fmt: skip
    return name


def _why(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {CHECK_SECONDS:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
