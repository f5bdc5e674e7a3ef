"""The extension's routes on a real Jupyter server in strict-auth mode: auth, statuses, input."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import api, api_error
from tornado.httpclient import HTTPClientError

from hooknb._version import __version__


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
