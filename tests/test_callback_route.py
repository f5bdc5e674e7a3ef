"""The callback route's delegate on its own tornado server (real HTTP on loopback), for what a
hub never gives it: answer headers that cannot be sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import tornado.httpserver
import tornado.web
from tornado.netutil import bind_sockets

from hooknb.server.callback_route import ANSWER_HEADERS, CallbackRoute, CallbackRouter
from hooknb.server.rows import InboundRequest


class Answers(CallbackRoute):
    """Takes every request; its answer carries one header that is fine and two that are not."""

    def __init__(self, request: Any, path_kwargs: Any) -> None:
        super().__init__(request, path_kwargs, max_body_size=1000)

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        headers = {"x-fine": "yes", "x-split": "a\r\nInjected: 1", "x-tab": "a\tb"}
        answer = {"id": self.path_kwargs["id"], "size": len(request.body)}
        return 202, {ANSWER_HEADERS: headers, **answer}


async def test_answer_headers_that_cannot_be_sent_are_left_out_not_the_answer(
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> None:
    sockets = bind_sockets(0, "127.0.0.1")
    app = tornado.web.Application([(r"/cb/(?P<id>[a-z]+)", CallbackRouter(Answers))])
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/cb/abc?sig=x"
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(url, content=b"12345")
    finally:
        server.stop()
    assert response.status_code == 202
    assert response.json() == {"id": "abc", "size": 5}
    assert response.headers["x-fine"] == "yes"
    assert "x-split" not in response.headers and "injected" not in response.headers
    assert "x-tab" not in response.headers
