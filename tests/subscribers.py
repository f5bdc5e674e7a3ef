"""Small real subscriber services for cases the demo service does not play.

Each runs a tornado app on 127.0.0.1 on its own thread and records what it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import tornado.httpserver
import tornado.web
from tornado.netutil import bind_sockets

Responder = Callable[["Recorder", dict[str, Any]], Awaitable[tuple[int, Any, dict[str, str]]]]


class Recorder:
    """A subscriber whose answer to each request is decided by ``respond``."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond = respond or _ok
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None

    def __enter__(self) -> Recorder:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        recorder = self

        class Handler(tornado.web.RequestHandler):
            async def _any(self, path: str) -> None:
                body: Any = self.request.body.decode("utf-8", "replace")
                with contextlib.suppress(ValueError):
                    body = json.loads(body) if body else None
                entry = {
                    "method": self.request.method,
                    "path": "/" + path,
                    "headers": {k.lower(): v for k, v in self.request.headers.get_all()},
                    "body": body,
                }
                recorder.requests.append(entry)
                status, answer, headers = await recorder.respond(recorder, entry)
                self.set_status(status)
                for name, value in headers.items():
                    self.set_header(name, value)
                if answer is not None:
                    self.set_header("Content-Type", "application/json")
                    self.finish(json.dumps(answer))

            get = post = put = delete = patch = _any

        sockets = bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/"
        self._server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/(.*)", Handler)]))
        self._server.add_sockets(sockets)
        loop.call_soon(ready.set)
        loop.run_forever()
        self._server.stop()
        loop.close()

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if (method is None or r["method"] == method) and (path is None or r["path"] == path)
        ]


async def _ok(recorder: Recorder, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    return 200, {"id": f"sub-{len(recorder.requests)}"}, {}


def calls_back_during_subscribe(payload: Any) -> Responder:
    """A subscriber that POSTs to the callback URL before answering the subscribe request."""

    async def respond(
        recorder: Recorder, request: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        body = request["body"]
        if request["method"] == "POST" and isinstance(body, dict) and "callbackUrl" in body:
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = await client.post(body["callbackUrl"], json=payload)
            request["early_callback_status"] = answer.status_code
            request["early_callback_answer"] = answer.json()
        return 200, {"id": "early"}, {}

    return respond


def failing(status: int, times: int, retry_after: str = "0") -> Responder:
    """Answer ``status`` (with Retry-After) to the first ``times`` requests, then 200."""

    async def respond(
        recorder: Recorder, request: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if len(recorder.requests) <= times:
            return status, {"error": "try later"}, {"Retry-After": retry_after}
        return 200, {"id": "finally"}, {}

    return respond
