"""A small shared aiohttp client for the key-authenticated JSON providers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from services.marketdata.errors import (
    CredentialsMissing,
    GarbageAnswer,
    ProviderRateLimited,
    ProviderUnavailable,
)

KeySource = Callable[[], str | None]


class JsonClient:
    def __init__(self, provider: str, timeout: float = 20.0) -> None:
        self.provider = provider
        self._timeout = timeout
        self._session: Any = None

    async def get(
        self, url: str, *, params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET and decode JSON; the URL is never put in a message (it may carry a key)."""
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout))
        try:
            async with self._session.get(url, params=params, headers=headers) as response:
                status = int(response.status)
                body = await response.read()
                retry = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(self.provider,
                                      f"cannot reach the service: {type(exc).__name__}") from None
        if status == 429:
            raise ProviderRateLimited(self.provider, "too many requests (HTTP 429)",
                                      float(retry) if retry and retry.isdigit() else None)
        if status >= 500:
            raise ProviderUnavailable(self.provider, f"the service answered HTTP {status}")
        try:
            return status, json.loads(body)
        except ValueError:
            what = "an HTML page" if body.lstrip()[:1] == b"<" else "not JSON"
            raise GarbageAnswer(self.provider, f"{what} (HTTP {status})") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def need_key(provider: str, source: KeySource, command: str) -> str:
    key = source()
    if not key:
        raise CredentialsMissing(provider, f"no API key: store one with `{command}`")
    return key
