"""No secret reaches a log line: SDK loggers are clamped and every record is masked."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from app.logs import mask_secrets

TOKEN = "s3cr3tAccessTok3n"


@pytest.mark.parametrize(
    "line",
    [
        f"wss://ws.kite.trade?api_key=kitefront&access_token={TOKEN}",
        f"Request: GET /portfolio {{}} {{'Authorization': 'token key:{TOKEN}'}}",
        f'{{"data": {{"jwtToken": "Bearer {TOKEN}", "feedToken": "{TOKEN}"}}}}',
        f"Authorization: Bearer {TOKEN}",
        f"redirect /callback?code={TOKEN}&state=x&request_token={TOKEN}",
        f"X-PrivateKey={TOKEN}",
    ],
)
def test_token_shaped_values_are_masked(line: str) -> None:
    masked = mask_secrets(line)
    assert TOKEN not in masked
    assert "***" in masked


def test_ordinary_text_is_left_alone() -> None:
    line = "order 250101000123 NSE:INFY instrument_token=408065 status code=500 qty=10"
    assert mask_secrets(line) == line


def test_sdk_debug_and_our_own_lines_never_carry_the_token() -> None:
    """In a fresh process configured as `dalal headless` is, even at DEBUG."""
    script = textwrap.dedent(
        f"""
        import logging
        from app.logs import configure_logging
        configure_logging(logging.DEBUG)
        logging.getLogger("kiteconnect.connect").debug(
            "Request: GET /user/margins {{'Authorization': 'token k:{TOKEN}'}}")
        logging.getLogger("kiteconnect.connect").warning(
            "Response: 403 %s", {{"access_token": "{TOKEN}"}})
        logging.getLogger("services.brokers.kite.feed").info(
            "connecting to wss://ws.kite.trade?api_key=k&access_token={TOKEN}")
        try:
            raise ValueError("login failed for access_token={TOKEN}")
        except ValueError:
            logging.getLogger("app").exception("unexpected")
        logging.getLogger("app").info("plain line survives")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert TOKEN not in out.stderr
    assert "plain line survives" in out.stderr
    assert "Request: GET" not in out.stderr  # SDK DEBUG is clamped
    assert "Response: 403" in out.stderr  # SDK warnings still show, masked
    assert "Traceback" in out.stderr  # the traceback is kept, masked


def test_clamp_lifts_only_with_dalal_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.logs import configure_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging(logging.DEBUG)
        assert logging.getLogger("kiteconnect").getEffectiveLevel() == logging.WARNING
        monkeypatch.setenv("DALAL_DEBUG", "1")
        configure_logging(logging.DEBUG)
        assert logging.getLogger("kiteconnect").getEffectiveLevel() == logging.DEBUG
    finally:
        for h in [h for h in root.handlers if getattr(h, "dalal", False)]:
            root.removeHandler(h)
        root.setLevel(saved[0])
        for name in ("kiteconnect",):
            logging.getLogger(name).setLevel(logging.NOTSET)
