"""Hostile data already inside hooknb: deep, huge and odd JSON sent by callers and services,
credentials sent *to* hooknb, and rows that no hooknb code would write. The page, the JSON
snapshot and the API show all of it (raw, cut or masked) and never answer 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
from helpers import api
from subscribers import Recorder
from test_security import enabled_trigger, runs_of

from hooknb.jsonsafe import MAX_DEPTH

DEEP_ARRAYS = b"[" * 2048 + b"]" * 2048  # 4 KiB: the page-breaking callback


async def snapshot(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("hooknb/", params={"format": "json"})
    assert response.code == 200
    return json.loads(response.body)


async def test_deep_callback_bodies_are_kept_exact_and_shown_raw(
    jp_fetch: Any, http: httpx.AsyncClient
) -> None:
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "deep")
        url = record["trigger"]["callbackUrl"]
        bodies = {
            "arrays": DEEP_ARRAYS,
            "objects": b'{"a":' * 3000 + b"1" + b"}" * 3000,
            "just-over": b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
            "unbalanced": b"[" * 100_000,
        }
        for body in bodies.values():
            answer = await http.post(url, content=body, headers={"Content-Type": "text/json"})
            assert answer.status_code == 202, answer.text

    # the page, its JSON snapshot and every API reader answer, with the bodies as sent
    page = await jp_fetch("hooknb/")
    assert page.code == 200 and b"hooknb-data" in page.body
    shown = (await snapshot(jp_fetch))["callbacks"]
    by_size = {c["body"]["size"]: c["body"] for c in shown}
    assert by_size[len(DEEP_ARRAYS)] == {
        "kind": "text",
        "size": len(DEEP_ARRAYS),
        "contentType": "text/json",
        "text": DEEP_ARRAYS.decode(),
        "truncated": False,
    }
    assert by_size[2 * MAX_DEPTH + 2]["kind"] == "text"  # one level too deep to pretty-print
    listed = await jp_fetch("hooknb", "api", "callbacks", params={"target": "deep"})
    stored = json.loads(listed.body)["callbacks"]
    assert len(stored) == len(bodies)
    for callback in stored:  # a listing cuts what is long; each body starts as sent
        data = callback["body"]["data"].encode()
        assert any(body.startswith(data) for body in bodies.values())
    exact = []
    for run in await runs_of(jp_fetch, "deep"):
        one = await api(jp_fetch, "runs", run["id"])
        exact.append(one["trigger"]["body"]["data"].encode())
    assert sorted(exact) == sorted(bodies.values())  # a single view shows them whole
    assert len((await api(jp_fetch, "workflows"))["workflows"]) == 1


async def test_a_deep_run_report_is_stored_cut_and_shown(jp_fetch: Any) -> None:
    deep: Any = "bottom"
    for _ in range(400):
        deep = [deep]
    run = await api(jp_fetch, "workflows", "reported", "runs", method="POST", body={"client": "k"})
    report = {"id": run["run"], "status": "Succeeded", "ended": 1.0, "result": deep}
    assert await api(jp_fetch, "sync", method="POST", body={"client": "k", "runs": [report]})
    shown = await api(jp_fetch, "runs", run["run"])
    assert shown["status"] == "Succeeded"
    level, value = 0, shown["result"]
    while isinstance(value, list):
        level, value = level + 1, value[0]
    # the report object is level 1, its lists levels 2 to MAX_DEPTH - 1, the cut one the last
    assert level == MAX_DEPTH - 2 and value["$truncated"] and value["repr"].startswith("[[[")
    (page_run,) = (await snapshot(jp_fetch))["runs"]
    assert page_run["status"] == "Succeeded" and page_run["result"]["text"].startswith("[")

    # deeper than the API parses at all: a clear 400, never a 500
    too_deep = b'{"client": "k", "runs": ' + b"[" * 600 + b"]" * 600 + b"}"
    try:
        await jp_fetch("hooknb", "api", "sync", method="POST", body=too_deep)
    except Exception as exc:  # tornado's HTTPClientError
        assert getattr(exc, "code", None) == 400
        assert b"nested deeper than 512" in exc.response.body  # type: ignore[attr-defined]
    else:
        raise AssertionError("a 600-deep request body was accepted")


CREDENTIALS = {
    "Authorization": "Bearer inbound-token-123",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
    "Cookie": "session=inbound-cookie",
}


async def test_credentials_sent_to_hooknb_are_masked_in_every_view_and_stored_exact(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient
) -> None:
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "creds")
        answer = await http.post(
            record["trigger"]["callbackUrl"], json={"n": 1}, headers=CREDENTIALS
        )
        assert answer.status_code == 202
    run_id = answer.json()["run"]
    # an action's callback too
    run = await api(
        jp_fetch, "workflows", "creds-action", "runs", method="POST", body={"client": "c"}
    )
    wait = await api(
        jp_fetch,
        "runs",
        run["run"],
        "waits",
        method="POST",
        body={"step": "S", "client": "c", "timeout": 60},
    )
    assert (await http.post(wait["callbackUrl"], json={}, headers=CREDENTIALS)).status_code == 202
    # the kernel's run report carries the step's outputs, the callback's headers included
    outputs = {"headers": {**CREDENTIALS, "X-Other": "kept"}, "body": {}}
    report = {
        "id": run["run"],
        "status": "Succeeded",
        "actions": {"S": {"name": "S", "status": "Succeeded", "outputs": outputs}},
    }
    await api(jp_fetch, "sync", method="POST", body={"client": "c", "runs": [report]})

    listed = await jp_fetch("hooknb", "api", "callbacks")
    views = {
        "api/callbacks": json.loads(listed.body),
        "api/runs/<id>": await api(jp_fetch, "runs", run_id),
        "api/runs/<id> (action)": await api(jp_fetch, "runs", run["run"]),
        "api/waits/<id>": await api(jp_fetch, "waits", wait["id"]),
        "page": await snapshot(jp_fetch),
        "page (html)": (await jp_fetch("hooknb/")).body.decode(),
    }
    for where, view in views.items():
        text = view if isinstance(view, str) else json.dumps(view)
        for secret in ("inbound-token-123", "cHJveHk6c2VjcmV0", "inbound-cookie"):
            assert secret not in text, where
    step = views["api/runs/<id> (action)"]["actions"]["S"]["outputs"]["headers"]
    assert step == {
        "Authorization": "*****",
        "Proxy-Authorization": "*****",
        "Cookie": "*****",
        "X-Other": "kept",
    }
    shown = views["api/runs/<id>"]["trigger"]["headers"]
    assert ["Authorization", "*****"] in shown and ["Cookie", "*****"] in shown
    assert ["Proxy-Authorization", "*****"] in shown
    # the store keeps what was sent, byte for byte (the kernel's event carries it too)
    hub = jp_serverapp.web_app.settings["hooknb_hub"]
    stored = hub.store.reader.execute(
        "SELECT headers FROM callbacks WHERE run_id = ?", (run_id,)
    ).fetchone()[0]
    assert ["Authorization", "Bearer inbound-token-123"] in json.loads(stored)


async def test_a_service_echoing_the_callback_url_does_not_show_its_signature(
    jp_fetch: Any,
) -> None:
    from subscribers import HostileService

    attached = await api(
        jp_fetch, "workflows", "echo", method="PUT", body={"client": "c", "trigger": "T"}
    )
    url = attached["trigger"]["callbackUrl"]
    sig = url.split("sig=")[1]
    with HostileService() as service:
        subscribe = {"method": "POST", "uri": f"{service.url}echo", "body": {"callbackUrl": url}}
        record = await api(
            jp_fetch,
            "workflows",
            "echo",
            "trigger",
            method="PUT",
            body={"client": "c", "subscribe": subscribe},
        )
        assert sig in service.requests[0]["body"].decode()  # the service did get the URL
    assert record["trigger"]["state"] == "Enabled"
    # the subscription itself stays exact for the kernel (it computes unsubscribe from it) ...
    assert record["trigger"]["subscription"]["body"] == {"callbackUrl": url}
    # ... but wherever it is shown, the signature is masked
    calls = json.dumps(record["trigger"]["calls"])
    assert sig not in calls and "sig=*****" in calls
    shown = await snapshot(jp_fetch)  # its kernel never connected: listed with the gone ones
    page = json.dumps(shown["workflows"] + shown["goneWorkflows"])
    assert "sig=*****" in page
    assert page.count(sig) == 1  # the trigger's own URL, shown to its owner


async def test_listings_show_bodies_cut_single_views_whole(
    jp_fetch: Any, http: httpx.AsyncClient
) -> None:
    from hooknb.server.views import LISTED_BODY_BYTES

    big = ("é" * (LISTED_BODY_BYTES // 2 + 10)).encode()  # a 2-byte character at the cut
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "bodies")
        answer = await http.post(record["trigger"]["callbackUrl"], content=big)
    listed = await jp_fetch("hooknb", "api", "callbacks", params={"target": "bodies"})
    (shown,) = json.loads(listed.body)["callbacks"]
    assert shown["body"]["truncated"] is True and shown["body"]["size"] == len(big)
    assert shown["body"]["encoding"] == "utf-8"
    assert big.startswith(shown["body"]["data"].encode())
    assert len(shown["body"]["data"].encode()) >= LISTED_BODY_BYTES - 1
    whole = await api(jp_fetch, "runs", answer.json()["run"])
    assert whole["trigger"]["body"] == {"encoding": "utf-8", "data": big.decode()}
