"""The SDK's ``ApiClient`` pointed where we choose, and one way to call it off the loop.

``upstox_client`` is a blocking urllib3 client. Every call runs in an executor, carries a
timeout (the SDK has none by default, and drops a float one) and goes through the API
throttle (Upstox allows 50 non-order requests a second); its failure is mapped to the
taxonomy in ``errors``.

``Configuration`` is a metaclass singleton that hands out *copies* of a process default, so
setting ``host``/``order_host`` on our copy leaves any other user of the SDK alone. The SDK
routes ``/order/place|modify|cancel`` to ``order_host`` and everything else to ``host``;
both are set from ``UpstoxEndpoints``, so tests exercise the production path against a fake.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from services.broker import BrokerError
from services.brokers.errors import SessionExpired
from services.brokers.upstox.config import API_VERSION, UpstoxEndpoints
from services.brokers.upstox.errors import map_error

log = logging.getLogger(__name__)

T = TypeVar("T")


class Throttle:
    """What ``UpstoxApi`` needs of ``services.brokers.throttle.OrderThrottle``."""

    async def acquire(self) -> float:
        return 0.0


class UpstoxApi:
    """One SDK client for one access token: the API objects, and ``call`` to use them."""

    api_version = API_VERSION

    def __init__(
        self,
        access_token: str | None,
        *,
        endpoints: UpstoxEndpoints | None = None,
        timeout: float = 7.0,
        executor: Executor | None = None,
        throttle: Any = None,
        on_session_expired: Callable[[], None] | None = None,
    ) -> None:
        import upstox_client  # type: ignore[import-untyped]  # lazy: see the package docstring

        self.endpoints = endpoints or UpstoxEndpoints()
        config = upstox_client.Configuration()
        config.host = self.endpoints.host
        config.order_host = self.endpoints.order_host
        config.verify_ssl = self.endpoints.verify_tls
        config.access_token = access_token or ""
        self.configuration = config
        self.client: Any = upstox_client.ApiClient(config)
        # The SDK starts a thread pool per client for ``async_req`` calls, which we never make
        # (blocking calls go to our executor): one thread per core, idle, for each client.
        self.close()
        self.orders_v3: Any = upstox_client.OrderApiV3(self.client)
        self.orders: Any = upstox_client.OrderApi(self.client)
        self.portfolio: Any = upstox_client.PortfolioApi(self.client)
        self.user: Any = upstox_client.UserApi(self.client)
        self.websocket: Any = upstox_client.WebsocketApi(self.client)
        self.history: Any = upstox_client.HistoryV3Api(self.client)
        self.login: Any = upstox_client.LoginApi(self.client)
        self.timeout = timeout
        self._executor = executor
        self._throttle = throttle or Throttle()
        self._on_session_expired = on_session_expired

    @property
    def access_token(self) -> str:
        return str(self.configuration.access_token or "")

    def set_access_token(self, token: str) -> None:
        """A new day's token: the SDK reads it from the configuration on every call."""
        self.configuration.access_token = token

    async def raw(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the executor with our timeout; exceptions are the SDK's own.

        The SDK silently ignores a *float* ``_request_timeout`` (it accepts an int or a
        ``(connect, read)`` pair only), which would leave a call without any timeout, so we
        always pass the pair.
        """
        kwargs.setdefault("_request_timeout", (self.timeout, self.timeout))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def call(
        self, action: str, fn: Callable[..., T], *args: Any, throttled: bool = True, **kwargs: Any
    ) -> T:
        """``raw`` behind the API throttle, with failures mapped to the taxonomy."""
        if throttled:
            await self._throttle.acquire()
        try:
            return await self.raw(fn, *args, **kwargs)
        except Exception as exc:
            raise self.mapped(exc, action) from exc

    def mapped(self, exc: BaseException, action: str) -> BrokerError:
        error = map_error(exc, action)
        if isinstance(error, SessionExpired) and self._on_session_expired is not None:
            try:
                self._on_session_expired()
            except Exception:
                log.exception("session-expired callback failed")
        return error

    def close(self) -> None:
        """Stop the SDK's thread pool (done at once in ``__init__``).

        ``ApiClient.__del__`` closes and joins it again and prints any error to stdout (at
        interpreter exit, "Bad file descriptor"), so the closed pool is swapped for one with
        nothing left to close.
        """
        pool = getattr(self.client, "pool", None)
        if pool is not None and not isinstance(pool, _ClosedPool):
            pool.close()
            pool.join()
            self.client.pool = _ClosedPool()


class _ClosedPool:
    def close(self) -> None:
        return None

    def join(self) -> None:
        return None
