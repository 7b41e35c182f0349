"""``GET /v1/stream``: the node's events over a WebSocket, for the desktop that trades through it.

Protocol (subprotocol ``dalal.stream.v1``, offered in ``Sec-WebSocket-Protocol``; a client
offering none that the node speaks gets 400 naming the ones it does):

1. The node sends ``{"type": "hello", "protocol", "epoch", "seq", "server_time"}``.
2. Then either the events after ``?since=SEQ`` (with ``&epoch=EPOCH`` from the last hello),
   when the node still has all of them, or one ``{"type": "snapshot", "seq": N, ...}``: the
   orders, fills, positions, funds and trading state after event N.
3. Then ``{"type": "event", "seq", "kind", "time", "data"}`` as things happen; ``kind`` is
   ``order``, ``fill``, ``position``, ``funds``, ``trading_state`` or ``killswitch``.

Sequence numbers are consecutive within an epoch, so a client sees a gap if there is one. A
client that falls too far behind, or a node that stops, closes the socket with code 1013 or
1001; the client reconnects with its last seq and resumes. Reads need the ``read`` scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from app.http.context import API_CONTEXT, request_actor
from app.http.problems import ApiProblem
from services.node.events import Closing, EventJournal, Lagged
from services.node.wire import SUPPORTED_PROTOCOLS

log = logging.getLogger("dalal.http.stream")

HEARTBEAT_SECONDS = 10.0


def _offered(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ApiProblem(400, f"since={raw!r}: expected the last sequence number seen")
    return int(raw)


async def get_stream(request: web.Request) -> web.StreamResponse:
    ctx = request.app[API_CONTEXT]
    journal: EventJournal | None = ctx.node.events
    if journal is None:
        raise ApiProblem(409, "this server has no event stream")
    since = _since(request)
    epoch = request.query.get("epoch")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiProblem(400, "this is a WebSocket endpoint: connect with Upgrade: websocket")
    offered = _offered(request)
    if not any(p in SUPPORTED_PROTOCOLS for p in offered):
        raise ApiProblem(400, "offer a stream protocol this node speaks in "
                              f"Sec-WebSocket-Protocol: {', '.join(SUPPORTED_PROTOCOLS)} "
                              f"(offered: {', '.join(offered) or 'none'})")  # fmt: skip
    ws = web.WebSocketResponse(protocols=SUPPORTED_PROTOCOLS, heartbeat=HEARTBEAT_SECONDS,
                               max_msg_size=4096)  # fmt: skip
    try:
        await ws.prepare(request)
    except web.HTTPException as e:  # not a valid upgrade after all
        raise ApiProblem(400, f"not a valid WebSocket upgrade: {e.text}") from None
    client, first = journal.attach(request_actor(request), epoch, since)
    reader = asyncio.ensure_future(_drain_incoming(ws))
    # The peer's close wakes the mailbox, so the loop below needs no second task and no
    # asyncio.wait per batch (at 1,000 events/s to several clients that was most of the
    # handler's own time).
    reader.add_done_callback(lambda _: client.close())
    try:
        for text in first:
            await ws.send_str(text)
        while True:
            for text in await client.next():
                await ws.send_str(text)
    except Lagged as e:
        log.warning("%s", e)
        await ws.close(code=1013, message=b"fell behind: reconnect with since=<last seq>")
    except Closing:
        if not reader.done():  # the node is stopping (not the client going away)
            await ws.close(code=1001, message=b"node stopping: reconnect with since=<last seq>")
    except ConnectionResetError:
        pass
    finally:
        journal.detach(client)
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _drain_incoming(ws: web.WebSocketResponse) -> None:
    """The client only listens; read to see pings answered and the close arrive."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
