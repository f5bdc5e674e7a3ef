"""``POST hooknb/api/forwarded``: callbacks a hooknb receiver stored for this server, ingested
as if they had arrived on their callback URL, once per receiver id."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from helpers import api, api_error, enabled_trigger
from subscribers import Recorder


def forward(forward_id: str, callback_id: str, body: bytes = b"{}", **extra: Any) -> dict:
    request = {
        "id": 0,
        "received": time.time(),
        "method": "POST",
        "headers": [["Content-Type", "application/json"], *extra.pop("headers", [])],
        "queries": {},
        "contentType": "application/json",
        "body": {"encoding": "utf-8", "data": body.decode()},
    }
    return {"id": forward_id, "callback": callback_id, "request": request, **extra}


def callback_id(url: str) -> str:
    return url.split("/hooknb/callback/")[1].split("?")[0]


async def test_a_forwarded_trigger_callback_starts_one_run(jp_fetch: Any) -> None:
    with Recorder() as service:
        trigger = callback_id(await enabled_trigger(jp_fetch, f"{service.url}s"))
    first = await api(jp_fetch, "forwarded", method="POST", body=forward("r1", trigger))
    assert first["forwarded"] == "r1" and first["status"] == 202
    run = first["answer"]["run"]
    # The receiver lost the answer and forwards again: same answer, no second run.
    again = await api(jp_fetch, "forwarded", method="POST", body=forward("r1", trigger))
    assert again == first
    runs = (await api(jp_fetch, "runs", params={"workflow": "t"}))["runs"]
    assert [r["id"] for r in runs] == [run]
    stored = (await api(jp_fetch, "callbacks", params={"target": "t"}))["callbacks"]
    assert len(stored) == 1 and stored[0]["body"]["data"] == "{}"


async def test_a_forwarded_wait_callback_resumes_its_step_once(jp_fetch: Any) -> None:
    run = await api(jp_fetch, "workflows", "w", "runs", method="POST", body={"client": "c"})
    wait = await api(
        jp_fetch, "runs", run["run"], "waits", method="POST", body={"step": "s", "client": "c"}
    )
    body = forward("r2", wait["id"], b'{"ok": true}', headers=[["X-Order", "7"]])
    answer = await api(jp_fetch, "forwarded", method="POST", body=body)
    assert answer["status"] == 202 and answer["answer"]["action"] == "s"
    stored = await api(jp_fetch, "waits", wait["id"])
    assert stored["outcome"] == "Succeeded"
    assert ["X-Order", "7"] in stored["callback"]["headers"]
    # Another receiver id with another body: the step already finished.
    late = await api(jp_fetch, "forwarded", method="POST", body=forward("r3", wait["id"]))
    assert late["status"] == 409 and late["answer"]["state"] == "Succeeded"


async def test_forwarded_sender_signatures_are_checked_and_remembered(jp_fetch: Any) -> None:
    secret = "forwarded-secret"
    await api(
        jp_fetch,
        "workflows",
        "g",
        method="PUT",
        body={"client": "c", "trigger": "T", "verify": {"type": "github", "secret": secret}},
    )
    record = await api(jp_fetch, "workflows", "g")
    trigger = callback_id(record["trigger"]["callbackUrl"])
    unsigned = await api(jp_fetch, "forwarded", method="POST", body=forward("r4", trigger))
    assert unsigned["status"] == 401
    assert await api(jp_fetch, "forwarded", method="POST", body=forward("r4", trigger)) == unsigned
    signature = "sha256=" + hmac.new(secret.encode(), b"{}", hashlib.sha256).hexdigest()
    signed = forward("r5", trigger, headers=[["X-Hub-Signature-256", signature]])
    # Verified, then refused as the trigger is disabled: the answer it would get directly.
    assert (await api(jp_fetch, "forwarded", method="POST", body=signed))["status"] == 409


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'id' is required"),
        ({"id": "r", "callback": "AAAAAAAAAAAAAAAAAAAAAA"}, "'request' must be an object"),
        ({"id": "x" * 65, "callback": "c", "request": {}}, "at most 64"),
        ({**forward("r", "AAAAAAAAAAAAAAAAAAAAAA"), "request": {"method": "POST"}}, "received"),
        (
            forward("r", "AAAAAAAAAAAAAAAAAAAAAA")
            | {
                "request": forward("r", "x")["request"]
                | {"body": {"data": "%", "encoding": "base64"}}
            },
            "not valid base64",
        ),
    ],
)
async def test_malformed_forwards_are_400(jp_fetch: Any, body: Any, message: str) -> None:
    status, error = await api_error(jp_fetch, "forwarded", method="POST", body=body)
    assert status == 400 and message in error["error"]


async def test_unknown_or_malformed_callback_ids_are_404_answers(jp_fetch: Any) -> None:
    for unknown in ("AAAAAAAAAAAAAAAAAAAAAA", "short", "../x"):
        answer = await api(jp_fetch, "forwarded", method="POST", body=forward("r9", unknown))
        assert answer["status"] == 404


async def test_forwarding_needs_jupyter_authentication(server_url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            f"{server_url}hooknb/api/forwarded",
            content=json.dumps(forward("r", "AAAAAAAAAAAAAAAAAAAAAA")),
        )
    assert response.status_code == 403
