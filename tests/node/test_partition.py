"""A partition in the middle of an order: the node placed it, the answer never arrived.

A proxy between the desktop's node client and a real node forwards the first order and then
cuts the connection instead of answering. The client sends the same Idempotency-Key again and
gets the first order back; the node holds exactly one.
"""

from __future__ import annotations

from decimal import Decimal

import aiohttp
from aiohttp import web

from services.apikeys import Scope
from services.brokers.errors import OutcomeUnknown
from services.brokers.node.execution import NodeExecution
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side
from tests.api.server import running_server
from tests.node.test_node_api import settings


async def test_a_lost_answer_is_resolved_by_the_idempotency_key() -> None:
    async with running_server(settings=settings()) as srv:
        token = srv.key(Scope.TRADE, Scope.READ)
        cut = {"left": 1}
        upstream = aiohttp.ClientSession()

        async def proxy(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            async with upstream.request(request.method, srv.base + request.path_qs,
                                        data=body, headers=headers) as r:  # fmt: skip
                answer = await r.read()
                if request.method == "POST" and cut["left"] > 0:
                    cut["left"] -= 1
                    assert request.transport is not None
                    request.transport.close()  # the order is placed; its answer is lost
                    raise ConnectionResetError("partition")
                return web.Response(status=r.status, body=answer,
                                    content_type=r.content_type)  # fmt: skip

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        client = NodeExecution(base, token)
        request = OrderRequest("NSE:RELIANCE", Side.BUY, 1, OrderType.LIMIT, Product.CNC,
                               price=Decimal("100.00"), tag="dtpartition1")  # fmt: skip
        try:
            order = await client.place_order(request)
            assert order.status is OrderStatus.OPEN and order.request.tag == "dtpartition1"
            assert [o.order_id for o in await client.orders()] == [order.order_id]
            assert cut["left"] == 0  # the first answer really was lost
            # Nobody answers at all: the outcome is unknown, and says how it resolves.
            await runner.cleanup()
            try:
                await client.place_order(request)
            except OutcomeUnknown as e:
                assert "idempotency key" in str(e)
            else:
                raise AssertionError("a silent node must give OutcomeUnknown")
        finally:
            await client.close()
            await upstream.close()
            await runner.cleanup()
