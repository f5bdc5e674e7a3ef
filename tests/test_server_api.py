"""The extension's routes on a real Jupyter server in strict-auth mode: auth, statuses, input."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import api, api_error, enabled_trigger
from tornado import routing, web
from tornado.httpclient import HTTPClientError

from hooknb._version import __version__
from hooknb.server import log_scrub
from hooknb.server.callback_route import CallbackRouter
from hooknb.server.handlers import CallbackHandler


async def test_extension_is_loaded_and_versioned(jp_fetch: Any) -> None:
    assert await api(jp_fetch, "version") == {"version": __version__, "api": 1}
    status = await api(jp_fetch, "status")
    assert status["workflows"] == 0 and status["openWaits"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "version"),
        ("GET", "status"),
        ("GET", "channel?client=x"),
        ("POST", "sync"),
        ("GET", "workflows"),
        ("PUT", "workflows/w"),
        ("PUT", "workflows/w/trigger"),
        ("DELETE", "workflows/w/trigger"),
        ("POST", "workflows/w/runs"),
        ("GET", "runs"),
        ("GET", "runs/0123456789abcdef"),
        ("POST", "runs/0123456789abcdef/cancel"),
        ("POST", "runs/0123456789abcdef/waits"),
        ("GET", "waits"),
        ("POST", "waits/AAAAAAAAAAAAAAAAAAAAAA/subscribe"),
        ("GET", "callbacks"),
    ],
)
async def test_management_api_refuses_without_the_jupyter_token(
    server_url: str, method: str, path: str
) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.request(method, f"{server_url}hooknb/api/{path}", content=b"{}")
    assert response.status_code == 403


async def test_every_route_is_decorated(jp_serverapp: Any) -> None:
    """jupyter_server's own checker: no hooknb handler method without an auth decorator."""
    web_app = jp_serverapp.web_app
    undecorated = []
    for rule in web_app.wildcard_router.rules + web_app.default_router.rules:
        for inner in getattr(rule.target, "rules", [rule]):
            handler = inner.target
            if isinstance(handler, type) and handler.__module__.startswith("hooknb"):
                undecorated += web_app._check_handler_auth(inner.matcher, handler)
    assert undecorated == []
    found = [
        inner.target
        for rule in web_app.wildcard_router.rules + web_app.default_router.rules
        for inner in getattr(rule.target, "rules", [rule])
        if isinstance(inner.target, type) and inner.target.__module__.startswith("hooknb")
    ]
    assert len(found) >= 15
    # The one hooknb route that is not a RequestHandler (so not checked above) is the public
    # callback route, whose credential is its signed URL.
    routers = [
        inner.target
        for rule in web_app.wildcard_router.rules + web_app.default_router.rules
        for inner in getattr(rule.target, "rules", [rule])
        if isinstance(inner.target, CallbackRouter)
    ]
    assert [router.route for router in routers] == [CallbackHandler]


def test_no_auth_warning_when_loading_strictly(tmp_path: Path) -> None:
    """As the extension template's check_auth.py: loading with strict auth warns about nothing."""
    from jupyter_server.serverapp import JupyterServerAuthWarning, ServerApp
    from traitlets.config import Config

    app = ServerApp(
        allow_unauthenticated_access=False,
        jpserver_extensions={"hooknb": True},
        reraise_server_extension_failures=True,
        config=Config({"HookNB": {"store_path": str(tmp_path / "s.sqlite")}}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", JupyterServerAuthWarning)
        try:
            app.initialize(argv=[], find_extensions=False, new_httpserver=False)
        finally:
            asyncio.get_event_loop().run_until_complete(app.extension_manager.stop_all_extensions())
            ServerApp.clear_instance()


async def test_store_is_private(jp_fetch: Any, hooknb_store: Path) -> None:
    await api(jp_fetch, "status")
    assert stat.S_IMODE(os.stat(hooknb_store).st_mode) == 0o600


async def test_bad_json_and_missing_fields_are_400(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("hooknb", "api", "sync", method="POST", body=b"\xff\xfe not json")
    assert info.value.code == 400
    assert "not valid JSON" in json.loads(info.value.response.body)["error"]

    code, body = await api_error(jp_fetch, "sync", method="POST", body=[1, 2])
    assert code == 400 and "JSON object" in body["error"]

    code, body = await api_error(jp_fetch, "sync", method="POST", body={"acks": [1]})
    assert code == 400 and "'client' is required" in body["error"]

    code, body = await api_error(
        jp_fetch, "sync", method="POST", body={"client": "c", "acks": ["x"]}
    )
    assert code == 400

    code, body = await api_error(
        jp_fetch,
        "sync",
        method="POST",
        body={"client": "c", "runs": [{"id": "r", "status": "Nope"}]},
    )
    assert code == 400 and "status" in body["error"]


async def test_bad_trigger_definition_is_400_naming_the_field(jp_fetch: Any) -> None:
    await api(jp_fetch, "workflows", "w", method="PUT", body={"client": "c", "trigger": "T"})
    code, body = await api_error(
        jp_fetch,
        "workflows",
        "w",
        "trigger",
        method="PUT",
        body={"client": "c", "subscribe": {"method": "POST", "uri": "ftp://example"}},
    )
    assert code == 400
    assert body["error"].startswith("subscribe")
    code, body = await api_error(
        jp_fetch,
        "workflows",
        "w",
        "trigger",
        method="PUT",
        body={"client": "c", "subscribe": {"method": "TELEPORT", "uri": "http://127.0.0.1:9/"}},
    )
    assert code == 400 and "method" in body["error"]
    workflow = await api(jp_fetch, "workflows", "w")
    assert workflow["trigger"]["state"] == "Disabled"


async def test_unknown_things_are_404(jp_fetch: Any) -> None:
    assert (await api_error(jp_fetch, "runs", "0123456789abcdef"))[0] == 404
    assert (await api_error(jp_fetch, "workflows", "nope"))[0] == 404
    assert (await api_error(jp_fetch, "waits", "AAAAAAAAAAAAAAAAAAAAAA"))[0] == 404
    code, body = await api_error(
        jp_fetch,
        "runs",
        "0123456789abcdef",
        "waits",
        method="POST",
        body={"step": "s", "client": "c"},
    )
    assert code == 404 and "no run" in body["error"]


# -- the public callback route ------------------------------------------------------------


async def _trigger_url(jp_fetch: Any) -> str:
    record = await api(
        jp_fetch, "workflows", "t", method="PUT", body={"client": "c", "trigger": "T"}
    )
    return record["trigger"]["callbackUrl"]


async def test_the_callback_route_is_matched_before_every_other_route(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    """Callbacks are the busiest requests a server gets: their route is tornado's first rule,
    so a callback is not matched against each extension's routes first, and no route of an
    extension loaded before hooknb, however broad, takes its requests."""
    url = await _trigger_url(jp_fetch)
    table = jp_serverapp.web_app.default_router
    assert isinstance(table.rules[0].target, CallbackRouter)

    class Everything(web.RequestHandler):
        def get(self, *args: Any) -> None:
            self.set_status(418)

    broad = table.process_rule(routing.Rule(routing.PathMatches(r"/.*"), Everything))
    table.rules.insert(1, broad)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(url, json={"a": 1})
            assert response.status_code == 409 and response.json()["state"] == "Disabled"
            elsewhere = await client.get(url.replace("/hooknb/callback/", "/hooknb/elsewhere/"))
            assert elsewhere.status_code == 418  # the broad route is in the table, after ours
    finally:
        table.rules.remove(broad)


async def test_callback_route_statuses(jp_fetch: Any, server_url: str) -> None:
    url = await _trigger_url(jp_fetch)
    assert urlsplit(url).path.startswith(urlsplit(server_url).path + "hooknb/callback/")
    assert "token" not in url
    base, _, sig = url.partition("?sig=")
    async with httpx.AsyncClient(trust_env=False) as client:
        # disabled trigger: the signature is right, so the sender may learn the state
        response = await client.post(url, json={"a": 1})
        assert response.status_code == 409
        assert response.json()["state"] == "Disabled"
        # wrong signature and unknown id look the same
        bad_sig = await client.post(f"{base}?sig={sig[:-2]}xx", json={})
        unknown = await client.post(
            base.rsplit("/", 1)[0] + "/AAAAAAAAAAAAAAAAAAAAAA?sig=" + sig, json={}
        )
        no_sig = await client.post(base, json={})
        assert bad_sig.status_code == unknown.status_code == no_sig.status_code == 404
        assert bad_sig.json() == unknown.json() == {"error": "not found"}
        # methods other than POST
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            response = await client.request(method, url)
            assert response.status_code == 405, method
            assert response.headers["Allow"] == "POST"
            assert response.headers["Content-Type"] == "application/json"
        # a foreign Origin or Host must not matter on the callback route
        response = await client.post(
            url,
            json={},
            headers={"Origin": "https://hooks.example.org", "Host": "hooks.example.org"},
        )
        assert response.status_code == 409


async def _exchange(host: str, port: int, requests: list[bytes]) -> list[bytes]:
    """Send ``requests`` one after the other on one connection; the raw answers, and b"" for
    each one the server did not answer because it had closed the connection."""
    reader, writer = await asyncio.open_connection(host, port)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            answers.append(head + await asyncio.wait_for(reader.readexactly(length), 10))
        answers.append(await asyncio.wait_for(reader.read(), 10))  # b"" once closed
    finally:
        writer.close()
    return answers


async def test_callback_answers_keep_the_connection_and_speak_http(
    jp_fetch: Any, server_url: str
) -> None:
    """The callback route answers at tornado's HTTP layer: keep-alive, HTTP/1.0, HEAD and the
    headers every answer carries, as a sender's HTTP client sees them on the wire."""
    url = await _trigger_url(jp_fetch)
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}".encode()
    body = b'{"a": 1}'
    post = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % target
    post += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    close = b"POST %s HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}" % target
    host, port = parts.hostname or "", parts.port or 80
    answers = await _exchange(host, port, [post, post, close])
    for answer in answers[:3]:
        head, _, payload = answer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert lines[0].endswith(" 409 Conflict"), lines[0]  # the trigger is disabled
        assert headers["Content-Type"] == "application/json"
        assert headers["Date"].endswith(" GMT")
        assert json.loads(payload)["state"] == "Disabled"
    assert answers[3] == b""  # HTTP/1.0 without keep-alive: closed after its answer
    head = b"HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 405 ") and b"Allow: POST" in answer
    assert answer.endswith(b"\r\n\r\n")  # no body to a HEAD request


async def test_callbacks_are_logged_and_counted_as_jupyter_requests(
    jp_fetch: Any, server_url: str
) -> None:
    """Jupyter's access log (refusals as warnings, the signature scrubbed) and its request
    metric see the callback route as they saw it when it was a RequestHandler."""
    from tornado.log import access_log

    url = await _trigger_url(jp_fetch)
    base, _, sig = url.partition("?sig=")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(log_scrub.ScrubSignatures())
    access_log.addHandler(handler)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.post(f"{base}?sig={sig[:-2]}xx", json={})).status_code == 404
            assert (await client.post(url, json={})).status_code == 409
    finally:
        access_log.removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("404 POST /") and "sig=[secret]" in messages[0]
    assert messages[1].startswith("409 POST /")
    assert not any(sig[:-2] in message for message in messages)
    assert all(record.levelno == logging.WARNING for record in records)
    metrics = (await jp_fetch("metrics")).body.decode()
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_request_duration_seconds_count{")
        and 'handler="hooknb.server.handlers.CallbackHandler"' in line
    ]
    assert any('status_code="404"' in line for line in counted), counted
    assert any('status_code="409"' in line for line in counted), counted


@pytest.mark.parametrize("taken", ["at once", "by a task"])
async def test_an_error_of_ours_is_a_json_500_to_the_sender(
    jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch, taken: str
) -> None:
    url = await _trigger_url(jp_fetch)
    hub = jp_serverapp.web_app.settings["hooknb_hub"]

    def broken_at_once(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the hub")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the hub")

    if taken == "at once":
        monkeypatch.setattr(hub, "ingest_at_once", broken_at_once)
    else:
        monkeypatch.setattr(hub, "ingest_at_once", lambda *args: None)
        monkeypatch.setattr(hub, "ingest", broken)
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, json={})
        assert response.status_code == 500
        assert response.json() == {"error": "Internal Server Error"}
        assert "a bug" not in response.text
        monkeypatch.undo()
        # the server answers the next callback as before
        assert (await client.post(url, json={})).status_code == 409


@pytest.mark.parametrize("hooknb_config", [{"max_body_size": 1000}])
async def test_body_over_the_limit_is_413(jp_fetch: Any, hooknb_config: Any) -> None:
    url = await _trigger_url(jp_fetch)
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(url, content=b"x" * 1001)
        assert response.status_code == 413
        assert "limit" in response.json()["error"]

        async def chunks() -> Any:
            for _ in range(10):
                yield b"y" * 500

        response = await client.post(url, content=chunks())
        assert response.status_code == 413
        response = await client.post(url, content=b"x" * 1000)
        assert response.status_code == 409  # within the limit; the trigger is just disabled
    status = await api(jp_fetch, "callbacks")
    assert status["callbacks"] == []  # nothing stored from refused requests


@pytest.mark.parametrize("hooknb_config", [{"public_url": "https://hooks.example.org/user/x"}])
async def test_public_url_is_the_base_of_callback_urls(jp_fetch: Any, hooknb_config: Any) -> None:
    url = await _trigger_url(jp_fetch)
    assert url.startswith("https://hooks.example.org/user/x/hooknb/callback/")
    assert (await api(jp_fetch, "status"))["publicBase"] == "https://hooks.example.org/user/x/"


@pytest.fixture
def env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKNB_PUBLIC_URL", "https://env.example.org/")
    monkeypatch.setenv("HOOKNB_MAX_BODY_SIZE", "10")
    monkeypatch.setenv("HOOKNB_ACTION_TIMEOUT", "PT30S")


async def test_settings_come_from_the_environment(env_settings: None, jp_fetch: Any) -> None:
    url = await _trigger_url(jp_fetch)
    assert url.startswith("https://env.example.org/hooknb/callback/")
    local = url.replace("https://env.example.org/", "")
    response = await jp_fetch(
        local.split("?")[0],
        params={"sig": url.split("sig=")[1]},
        method="POST",
        body=b"x" * 11,
        raise_error=False,
        headers={"Authorization": ""},
    )
    assert response.code == 413
    started = await api(jp_fetch, "workflows", "m", "runs", method="POST", body={"client": "c"})
    wait = await api(
        jp_fetch, "runs", started["run"], "waits", method="POST", body={"step": "s", "client": "c"}
    )
    assert 29 < wait["deadline"] - started["callback"]["received"] < 31


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="the store syncs with fdatasync")
async def test_a_disk_that_fails_under_the_server_answers_callbacks_503_not_500(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store's fsync fails (EIO): the callback whose commit it covered, and every one
    after, is answered 503 with Retry-After (the sender retries) and logged without a
    traceback; nothing after the failure is taken."""
    from subscribers import Recorder

    with Recorder() as service:
        url = await enabled_trigger(jp_fetch, service.url)
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            assert (await client.post(url, json={"n": 1})).status_code == 202

            def failing_fsync(fd: int) -> None:
                raise OSError(errno.EIO, "Input/output error")

            monkeypatch.setattr(os, "fdatasync", failing_fsync)
            caplog.clear()
            for n in (2, 3):
                response = await client.post(url, json={"n": n})
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"].isdigit()
                assert "retry later" in response.json()["error"]
    ours = [r for r in caplog.records if r.getMessage().startswith("hooknb")]
    assert len(ours) == 2 and all("to disk failed" in r.getMessage() for r in ours)
    assert not any(r.exc_info for r in caplog.records)
