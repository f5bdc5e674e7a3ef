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


class HostileService:
    """A service that answers subscribe, unsubscribe and Http requests the way a hostile or
    broken one would, chosen by the request path's first segment:

    ``deep`` 200 with 100,000-deep JSON; ``huge`` 200 with 24 MiB of JSON; ``invalid`` 200
    "JSON" that is not UTF-8; ``slow`` a body trickled one byte a second; ``endless`` a
    chunked body that never ends; ``redirect`` 302 to ``ok``; ``accepted`` 202 with a
    ``Location`` on another origin (``other``); ``echo`` 200 with the request's body; anything
    else 200 ``{"id": ...}``. Raw asyncio sockets, so that it can send what tornado would not.
    Records every request: method, path, lower-cased headers, body.
    """

    DEEP_LEVELS = 100_000
    HUGE_BYTES = 24 * 1024 * 1024

    def __init__(self, other: str = "") -> None:
        self.other = other  # the origin that ``accepted`` points its Location at
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> HostileService:
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

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(path)]

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        loop.call_soon(ready.set)
        loop.run_forever()
        server.close()
        for writer in list(self._writers):
            writer.close()
        # Connections still open end on their own once closed; what is left (a slow answer
        # sleeping) is cancelled, quietly: asyncio's streams report a cancelled handler.
        loop.set_exception_handler(lambda _loop, _context: None)
        loop.run_until_complete(asyncio.sleep(0.05))
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                self.requests.append(
                    {"method": method, "path": target, "headers": headers, "body": body}
                )
                if not await self._answer(target.lstrip("/").split("/")[0], body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, mode: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is done with."""

        def send(status: str, content: bytes, *extra: str, kind: str = "application/json") -> None:
            head = [f"HTTP/1.1 {status}", f"Content-Type: {kind}", *extra]
            head.append(f"Content-Length: {len(content)}")
            writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + content)

        if mode == "deep":
            levels = self.DEEP_LEVELS
            send("200 OK", b"[" * levels + b"]" * levels)
        elif mode == "huge":
            item = b'{"k":"' + b"x" * 1000 + b'"},'
            count = self.HUGE_BYTES // len(item)
            send("200 OK", b"[" + item * count + b'{"k":"end"}]')
        elif mode == "invalid":
            send("200 OK", b'\xff\xfe{"id": \x00"')
        elif mode == "slow":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: 1000\r\n\r\n")
            for _ in range(1000):  # ~17 minutes at most; the caller's timeout ends it first
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(1)
            return False
        elif mode == "endless":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" * 65536
            for _ in range(100_000):  # 6.5 GB at most; the response limit ends it first
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            return False
        elif mode == "redirect":
            send("302 Found", b"", "Location: /ok/redirected")
        elif mode == "accepted":
            send("202 Accepted", b"", f"Location: {self.other}done", "Retry-After: 0")
        elif mode == "echo":
            send("200 OK", body)
        else:
            send("200 OK", json.dumps({"id": f"sub-{len(self.requests)}"}).encode())
        await writer.drain()
        return True
