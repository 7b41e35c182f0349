"""What every fake server shares: an aiohttp app on 127.0.0.1, in its own thread and loop.

The official SDKs under test are blocking (requests, websocket-client, Twisted), so a fake
cannot share the test's event loop: each runs on a thread of its own and the test talks to
it over real sockets. Subclasses build their app (routes, middleware, a Socket.IO server)
and close their open streams before the runner goes; handlers still waiting on an injected
timeout fault are cancelled so ``stop`` returns promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Self

from aiohttp import web


class LoopbackServer:
    label = "fake server"  # named in the start-up error

    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        """The app to serve; runs on the server's own loop."""
        raise NotImplementedError

    async def before_shutdown(self) -> None:
        """Close open WebSockets and streams (on the server's loop)."""

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=self.label)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.label} did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._runner = web.AppRunner(self.build_app(), shutdown_timeout=0.5,
                                         handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

        loop.run_until_complete(boot())
        ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        runner = self._runner

        async def shutdown() -> None:
            with contextlib.suppress(Exception):
                await self.before_shutdown()
            if runner is not None:
                await runner.cleanup()
            # Handlers still hanging for a timeout fault: end them before the loop stops.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def on_loop(self, coro: Coroutine[Any, Any, Any], timeout: float = 5) -> Any:
        """Run ``coro`` on the server's loop from the test's thread and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
