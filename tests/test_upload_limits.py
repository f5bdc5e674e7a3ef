"""Memory and time bounds of the public callback route, on a real Jupyter server.

Small limits here (a 256 KiB body limit, 600 KiB held at once, 2 large uploads per URL, a
1.5 s body deadline) so that the refusals can be reached with a few raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import api
from subscribers import Recorder
from test_security import enabled_trigger

KIB = 1024
LIMIT = 256 * KIB


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    return {
        "max_body_size": LIMIT,
        "max_buffered_bytes": 600 * KIB,
        "max_uploads_per_url": 2,
        "body_timeout": 1.5,
    }


@pytest.fixture
def urls(jp_fetch: Any, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[list[str]]:
    """Three enabled triggers' callback URLs."""
    with Recorder() as service:
        found = [
            jp_asyncio_loop.run_until_complete(enabled_trigger(jp_fetch, service, f"up{i}"))
            for i in range(3)
        ]
    yield [record["trigger"]["callbackUrl"] for record in found]


class Upload:
    """A POST sent by hand: headers now, the body when the test says."""

    def __init__(
        self, url: str, *, length: int | None = None, chunked: bool = False, expect: bool = False
    ) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
        if expect:
            framing += "\r\nExpect: 100-continue"
        head = (
            f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.chunked = chunked

    def send(self, size: int) -> None:
        data = b"x" * size
        self.sock.sendall(b"%x\r\n%s\r\n" % (size, data) if self.chunked else data)

    def end(self) -> None:
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")

    async def answer(self, timeout: float = 10) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, headers and JSON body of the answer (read off the event loop's thread)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._read, timeout)

    def _read(self, timeout: float) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(lines[0].split()[1]), headers, json.loads(rest[:length] or b"{}")

    def close(self) -> None:
        self.sock.close()


async def uploads_status(jp_fetch: Any) -> dict[str, int]:
    return (await api(jp_fetch, "status"))["uploads"]


async def test_a_body_that_does_not_fit_is_refused_before_it_is_read(
    urls: list[str], jp_fetch: Any
) -> None:
    first = Upload(urls[0], length=LIMIT)
    first.send(1000)  # under way, and holding its declared 256 KiB
    second = Upload(urls[1], length=LIMIT)
    second.send(1000)
    try:
        await asyncio.sleep(0.2)
        assert (await uploads_status(jp_fetch))["bufferedBytes"] == 2 * LIMIT
        # 512 KiB of 600 held: a third 256 KiB body is refused. A sender that waits to be
        # told (Expect: 100-continue) is answered before it sends anything ...
        third = Upload(urls[2], length=LIMIT, expect=True)
        status, headers, body = await third.answer()
        third.close()
        assert status == 503 and headers["retry-after"] == "2"
        assert "try again" in body["error"]
        # ... one that sends at once gets the answer after its body, which is dropped
        fourth = Upload(urls[2], length=LIMIT)
        fourth.send(LIMIT)
        status, headers, _ = await fourth.answer()
        fourth.close()
        assert status == 503 and headers["retry-after"] == "2"
        assert (await uploads_status(jp_fetch))["bufferedBytes"] == 2 * LIMIT
        # a small one still fits, on any URL
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.post(urls[2], content=b"{}")).status_code == 202
        # the held uploads finish normally and give their share back
        for upload in (first, second):
            upload.send(LIMIT - 1000)
            assert (await upload.answer())[0] == 202
    finally:
        first.close()
        second.close()
    await asyncio.sleep(0.1)
    assert await uploads_status(jp_fetch) == {
        "bufferedBytes": 0,
        "maxBufferedBytes": 600 * KIB,
        "largeUploads": 0,
    }


async def test_large_uploads_to_one_url_are_bounded_small_ones_are_not(
    urls: list[str], jp_fetch: Any
) -> None:
    held = [Upload(urls[0], length=100 * KIB) for _ in range(2)]
    try:
        for upload in held:
            upload.send(10)
        await asyncio.sleep(0.2)
        third = Upload(urls[0], length=100 * KIB, expect=True)
        status, _, body = await third.answer()
        third.close()
        assert status == 503 and "2 uploads to this callback URL" in body["error"]
        async with httpx.AsyncClient(trust_env=False) as client:
            small = await asyncio.gather(*(client.post(urls[0], json={"i": i}) for i in range(20)))
            assert {r.status_code for r in small} == {202}
            # another URL is not affected
            assert (await client.post(urls[1], content=b"y" * 100 * KIB)).status_code == 202
    finally:
        for upload in held:
            upload.close()
    await asyncio.sleep(0.1)
    assert (await uploads_status(jp_fetch))["largeUploads"] == 0


async def test_a_chunked_body_is_refused_as_soon_as_it_does_not_fit(
    urls: list[str], jp_fetch: Any
) -> None:
    held = [Upload(urls[0], length=LIMIT), Upload(urls[0], length=200 * KIB)]
    for upload in held:
        upload.send(10)
    chunked = Upload(urls[1], chunked=True)
    try:
        chunked.send(100 * KIB)  # fits: 456 + 100 of 600
        await asyncio.sleep(0.2)
        assert (await uploads_status(jp_fetch))["bufferedBytes"] == 556 * KIB
        chunked.send(100 * KIB)  # would hold 656: refused now, the rest is read and dropped
        await asyncio.sleep(0.2)
        assert (await uploads_status(jp_fetch))["bufferedBytes"] == 456 * KIB
        chunked.send(10 * KIB)
        chunked.end()
        status, headers, _ = await chunked.answer()
        assert status == 503 and headers["retry-after"] == "2"
    finally:
        for upload in held:
            upload.close()
        chunked.close()


async def test_a_chunked_body_over_the_limit_is_a_413(urls: list[str]) -> None:
    async def body() -> Any:
        for _ in range(2 * LIMIT // (16 * KIB)):
            yield b"z" * 16 * KIB

    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.post(urls[0], content=body())
        assert answer.status_code == 413
        assert answer.json() == {"error": f"body larger than the limit of {LIMIT} bytes"}
        assert (await client.post(urls[0], json={"after": True})).status_code == 202


async def test_a_body_not_received_in_time_is_a_408(urls: list[str], jp_fetch: Any) -> None:
    slow = Upload(urls[0], length=1000)
    try:
        slow.send(10)
        started = time.monotonic()
        status, _, body = await slow.answer()
        assert status == 408 and "within 1.5 seconds" in body["error"]
        assert 1.4 < time.monotonic() - started < 5
        slow.sock.settimeout(5)
        assert slow.sock.recv(100) == b""  # and the connection is closed
    finally:
        slow.close()
    assert (await uploads_status(jp_fetch))["bufferedBytes"] == 0
    runs = await api(jp_fetch, "runs")
    assert runs["runs"] == []  # nothing of it was stored
