"""Process logging for the desktop and headless: one format, secrets masked, SDKs kept quiet.

Broker SDKs log their requests at DEBUG with the headers attached (kiteconnect's
``Request: … {'Authorization': 'token key:ACCESS_TOKEN'}``), and their WebSocket URLs carry
the access token in the query string. Two guards, because one is not enough:

- the SDKs' and transport libraries' loggers are clamped to WARNING, whatever the root level
  (``DALAL_DEBUG=1`` lifts the clamp on a developer's machine, still masked);
- every record that reaches our handler passes through ``SecretMask``, which rewrites
  token-shaped values (query parameters, ``Authorization`` headers, JSON token fields) to
  ``***`` before formatting, so a secret that slips past the clamp or is logged by our own
  code is still not written.
"""

from __future__ import annotations

import logging
import os
import re
import sys

DEBUG_ENV = "DALAL_DEBUG"

# Loggers of libraries that log request URLs, headers or payloads below WARNING.
NOISY_LIBRARIES = (
    "kiteconnect",
    "upstox_client",
    "breeze_connect",
    "SmartApi",
    "logzero_default",
    "urllib3",
    "requests",
    "websocket",
    "socketio",
    "engineio",
    "twisted",
    "autobahn",
    "aiohttp.access",
    "yfinance",
    "peewee",
)

_MASKED_FIELDS = (
    r"access_token|accessToken|refresh_token|refreshToken|feed_token|feedToken|jwtToken|"
    r"session_token|sessionToken|api_session|apisession|api_secret|apiSecret|secret_key|"
    r"secretKey|api_key|apiKey|apikey|X-PrivateKey|enctoken|password|totp|request_token|"
    r"auth_code|"
    r"token"
)
_PATTERNS = (
    # key=value in query strings and form bodies: ?access_token=abc&...
    re.compile(rf"(?i)\b({_MASKED_FIELDS})=([^&\s'\",;]+)"),
    # "key": "value" or 'key': 'value' in logged JSON or dict reprs
    re.compile(rf"(?i)([\"']({_MASKED_FIELDS})[\"']\s*:\s*[\"'])([^\"']+)"),
    # Authorization: token key:secret / Bearer xyz (header lines and dict reprs)
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)((?:token|bearer|basic)\s+)?([^\s\"',}]+)"),
    # an OAuth authorization code in a redirect's query string (not "status code=500")
    re.compile(r"([?&]code=)([^&\s'\"]+)"),
)
MASK = "***"


def mask_secrets(text: str) -> str:
    """``text`` with every token-shaped value replaced by ``***``."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    return _PATTERNS[3].sub(lambda m: f"{m.group(1)}{MASK}", text)


class SecretMask(logging.Filter):
    """Masks secrets in the formatted message (and traceback text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr at ``level`` through the secret mask, with SDK loggers at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(SecretMask())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "dalal", False)]:
        root.removeHandler(old)
    handler.dalal = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet = os.environ.get(DEBUG_ENV) != "1"
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
