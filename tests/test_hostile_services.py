"""Hostile subscribe services and bad items in the hub's background work.

Whatever a subscribed service answers (deep, huge, invalid, slow, never-ending, a redirect),
enabling a trigger or subscribing a step ends within the outbound timeout and the retry policy,
with the trigger or step Failed and the reason shown when the call failed; and one bad item in
the outbox or the deadline scheduler fails by itself while the others go on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from helpers import api, the_hub
from subscribers import HostileService

OUTBOUND_TIMEOUT = 2.0


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    return {"outbound_timeout": OUTBOUND_TIMEOUT}


@pytest.fixture
def hostile() -> Any:
    with HostileService() as service:
        yield service


async def enable(jp_fetch: Any, name: str, uri: str, **extra: Any) -> tuple[dict[str, Any], float]:
    await api(jp_fetch, "workflows", name, method="PUT", body={"client": "c", "trigger": "T"})
    started = time.monotonic()
    subscribe = {"method": "POST", "uri": uri, "retryPolicy": {"type": "none"}, **extra}
    record = await api(
        jp_fetch,
        "workflows",
        name,
        "trigger",
        method="PUT",
        body={"client": "c", "subscribe": subscribe},
    )
    return record["trigger"], time.monotonic() - started


# What each answer does to the trigger: a 2xx enables it (its answer kept, shown raw when it
# cannot be parsed safely), anything else fails the call with the reason.
CASES = {
    "deep": ("Enabled", None),
    "huge": ("Enabled", None),
    "invalid": ("Enabled", None),
    "slow": ("Disabled", f"no complete response within {OUTBOUND_TIMEOUT:g} s"),
    "endless": ("Disabled", "endless/subscribe failed: "),  # its timeout or its size limit
    "redirect": ("Disabled", "HTTP 302"),
}


@pytest.mark.parametrize("mode", list(CASES))
async def test_a_hostile_subscribe_answer_never_wedges_enable(
    mode: str, hostile: HostileService, jp_fetch: Any, jp_serverapp: Any
) -> None:
    state, error = CASES[mode]
    trigger, took = await enable(jp_fetch, f"h-{mode}", f"{hostile.url}{mode}/subscribe")
    assert took < 2 * OUTBOUND_TIMEOUT + 5  # bounded by the timeout, never indefinite
    assert trigger["state"] == state, trigger
    (call,) = trigger["calls"]
    if error is None:
        assert call["state"] == "done" and trigger["error"] is None
    else:
        assert call["state"] == "failed" and error in trigger["error"]
    if mode == "deep":
        # kept exactly, as text: too deep to parse safely
        body = trigger["subscription"]["body"]
        assert body == "[" * HostileService.DEEP_LEVELS + "]" * HostileService.DEEP_LEVELS
    if mode == "huge":
        # too big to show whole in a view: a marker with its start and size
        assert trigger["subscription"]["$truncated"] and trigger["subscription"]["size"] > 2**24
        assert call["response"]["$truncated"]
    if mode == "redirect":
        assert not hostile.calls("/ok/")  # never followed

    # the outbox goes on: the next trigger subscribes at once
    ok, _ = await enable(jp_fetch, "h-fine", f"{hostile.url}ok/subscribe")
    assert ok["state"] == "Enabled"
    # and every view answers
    page = await jp_fetch("hooknb/", params={"format": "json"})
    data = json.loads(page.body)  # no kernel ever connected: the workflows are the gone ones
    shown = {w["name"]: w for w in data["workflows"] + data["goneWorkflows"]}
    assert shown[f"h-{mode}"]["trigger"]["state"] == state
    assert (await jp_fetch("hooknb/")).code == 200
    assert (await the_hub(jp_serverapp).status())["pendingCalls"] == 0


async def test_a_step_subscribing_to_a_slow_service_fails_with_the_reason(
    hostile: HostileService, jp_fetch: Any
) -> None:
    run = await api(jp_fetch, "workflows", "steps", "runs", method="POST", body={"client": "c"})
    wait = await api(
        jp_fetch,
        "runs",
        run["run"],
        "waits",
        method="POST",
        body={"step": "Approval", "client": "c", "timeout": 600},
    )
    started = time.monotonic()
    state = await api(
        jp_fetch,
        "waits",
        wait["id"],
        "subscribe",
        method="POST",
        body={
            "subscribe": {
                "method": "POST",
                "uri": f"{hostile.url}slow",
                "retryPolicy": {"type": "none"},
            }
        },
    )
    assert time.monotonic() - started < 2 * OUTBOUND_TIMEOUT + 5
    assert state["state"] == "failed" and state["outcome"] == "Failed"
    assert "no complete response within" in state["error"]


async def test_one_call_that_raises_fails_alone_and_the_queue_goes_on(
    hostile: HostileService, jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbound = the_hub(jp_serverapp).outbox.outbound
    real_call = outbound.call

    async def call(spec: Any, **kwargs: Any) -> Any:
        if "boom" in spec["uri"]:
            raise RecursionError("maximum recursion depth exceeded")  # what 100,000 levels did
        return await real_call(spec, **kwargs)

    monkeypatch.setattr(outbound, "call", call)
    broken, took = await enable(jp_fetch, "broken", f"{hostile.url}boom")
    assert took < 5
    assert broken["state"] == "Disabled"
    assert "internal error (RecursionError" in broken["error"]
    assert broken["calls"][0]["state"] == "failed"
    fine, _ = await enable(jp_fetch, "fine", f"{hostile.url}ok")
    assert fine["state"] == "Enabled"


async def test_a_wait_that_cannot_time_out_fails_alone(jp_fetch: Any, jp_serverapp: Any) -> None:
    hub = the_hub(jp_serverapp)
    run = await api(jp_fetch, "workflows", "timeouts", "runs", method="POST", body={"client": "c"})
    waits = [
        await api(
            jp_fetch,
            "runs",
            run["run"],
            "waits",
            method="POST",
            body={"step": step, "client": "c", "timeout": 0.5},
        )
        for step in ("Bad", "Good")
    ]
    # a row no hooknb code writes: an unsubscribe request that is not JSON
    hub.store.write_sync(
        lambda conn: conn.execute(
            "UPDATE waits SET unsubscribe = '{not json', unsub_state = 'ready' WHERE id = ?",
            (waits[0]["id"],),
        )
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [(await api(jp_fetch, "waits", w["id"]))["state"] for w in waits]
        if "waiting" not in states and "open" not in states:
            break
        await _sleep(0.05)
    bad = await api(jp_fetch, "waits", waits[0]["id"])
    good = await api(jp_fetch, "waits", waits[1]["id"])
    assert good["state"] == "timedout"
    assert bad["state"] == "failed" and "the timeout could not be applied" in bad["error"]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def http_action(jp_fetch: Any, uri: str) -> dict[str, Any]:
    run = await api(jp_fetch, "workflows", "polling", "runs", method="POST", body={"client": "c"})
    request = {
        "method": "POST",
        "uri": uri,
        "headers": {"Cookie": "session=s3cret", "X-Trace": "t1"},
        "authentication": {"type": "Basic", "username": "u", "password": "p4ss"},
        "retryPolicy": {"type": "none"},
    }
    body = {"step": "Get", "request": request, "timeout": 20}
    return await api(jp_fetch, "runs", run["run"], "http", method="POST", body=body)


async def test_a_202_location_on_another_origin_is_polled_without_credentials(
    jp_fetch: Any,
) -> None:
    with HostileService() as elsewhere, HostileService() as service:
        service.other = elsewhere.url
        answer = await http_action(jp_fetch, f"{service.url}accepted")
        assert answer["statusCode"] == 200 and answer["polls"] == 1
        (first,) = service.requests
        assert first["headers"]["authorization"].startswith("Basic ")
        assert first["headers"]["cookie"] == "session=s3cret"
        (poll,) = elsewhere.requests
        assert poll["method"] == "GET" and poll["path"] == "/done"
        assert "authorization" not in poll["headers"] and "cookie" not in poll["headers"]
        assert "s3cret" not in json.dumps(poll["headers"]) and "p4ss" not in str(poll)


async def test_a_202_location_on_the_same_origin_is_polled_with_credentials(
    jp_fetch: Any,
) -> None:
    with HostileService() as service:
        service.other = service.url
        answer = await http_action(jp_fetch, f"{service.url}accepted")
        assert answer["statusCode"] == 200 and answer["polls"] == 1
        first, poll = service.requests
        assert poll["path"] == "/done"
        assert poll["headers"]["authorization"] == first["headers"]["authorization"]
        assert poll["headers"]["cookie"] == "session=s3cret"
        assert "x-trace" not in poll["headers"]  # only credentials follow, as before


def test_calls_left_pending_by_a_restart_cannot_crash_the_next_start(tmp_path: Any) -> None:
    """What used to kill the outbox at every start: pending calls whose answer (100,000 levels
    of JSON) or whose stored row (damaged) could not be handled. Now each fails or succeeds
    by itself, visibly, and the server starts and works."""
    import sqlite3

    from helpers import wait_for
    from processes import ServerProcess

    server = ServerProcess(tmp_path).start()
    try:
        with HostileService() as service:
            for name in ("deep", "damaged", "fine"):
                server.api("PUT", f"workflows/{name}", json={"client": "c", "trigger": "T"})
            server.api(
                "PUT",
                "workflows/verified",
                json={"client": "c", "trigger": "T", "verify": {"type": "github", "secret": "s"}},
            )
            server.stop()
            conn = sqlite3.connect(server.store, isolation_level=None)
            for name, request in (
                ("deep", {"method": "POST", "uri": f"{service.url}deep"}),
                ("damaged", "{not json"),
                ("fine", {"method": "POST", "uri": f"{service.url}ok"}),
            ):
                conn.execute(
                    "UPDATE workflows SET trigger_state = 'enabling' WHERE name = ?", (name,)
                )
                conn.execute(
                    "INSERT INTO outbox (owner, purpose, request, headers, state, created)"
                    " VALUES (?, 'subscribe', ?, '{}', 'pending', 0)",
                    (
                        f"trigger:{name}",
                        request if isinstance(request, str) else json.dumps(request),
                    ),
                )
            conn.execute("UPDATE workflows SET verify = '[[[' WHERE name = 'verified'")
            conn.close()
            server.start()

            def states() -> dict[str, Any]:
                shown = server.api("GET", "workflows")["workflows"]
                return {w["name"]: w["trigger"] for w in shown}

            wait_for(lambda: all(t["state"] != "Enabling" for t in states().values()), 30, "calls")
            shown = states()
            assert shown["deep"]["state"] == "Enabled"  # its answer kept as text
            assert shown["fine"]["state"] == "Enabled"
            assert shown["damaged"]["state"] == "Disabled"
            assert "the stored request cannot be read" in shown["damaged"]["error"]
            # an unreadable sender check refuses its URL's callbacks instead of skipping it
            url = shown["verified"]["callbackUrl"]
            assert httpx.post(url, json={}, trust_env=False, timeout=10).status_code == 404
            assert server.api("GET", "status")["pendingCalls"] == 0
    finally:
        server.stop()


HTTP_CASES = {
    # mode: (API status, what the answer holds)
    "deep": (200, "text"),
    "huge": (200, "text"),
    "invalid": (200, "binary"),
    "slow": (502, "timeout"),
    "endless": (502, None),
    "redirect": (200, 302),
}


@pytest.mark.parametrize("mode", list(HTTP_CASES))
async def test_an_http_action_against_a_hostile_service_ends_cleanly(
    mode: str, hostile: HostileService, jp_fetch: Any
) -> None:
    from tornado.httpclient import HTTPClientError

    status, holds = HTTP_CASES[mode]
    run = await api(jp_fetch, "workflows", "http", "runs", method="POST", body={"client": "c"})
    request = {"method": "GET", "uri": f"{hostile.url}{mode}", "retryPolicy": {"type": "none"}}
    started = time.monotonic()
    try:
        response = await jp_fetch(
            "hooknb",
            "api",
            "runs",
            run["run"],
            "http",
            method="POST",
            body=json.dumps({"step": "Get", "request": request, "timeout": 30}),
        )
        code, answer = response.code, json.loads(response.body)
    except HTTPClientError as exc:
        assert exc.response is not None
        code, answer = exc.code, json.loads(exc.response.body)
    assert time.monotonic() - started < 2 * OUTBOUND_TIMEOUT + 5
    assert code == status, answer
    if holds == "text":  # kept as the exact text: too deep or too big to parse safely
        assert isinstance(answer["body"], str) and answer["body"][:3] in ("[[[", '[{"')
        assert len(answer["body"]) >= 200_000
    elif holds == "binary":
        assert set(answer["body"]) == {"$content-type", "$content"}
    elif holds == "timeout":
        assert answer["kind"] == "timeout"
    elif holds == 302:
        assert answer["statusCode"] == 302 and not hostile.calls("/ok/")
    else:
        assert answer["kind"] in ("timeout", "connection")


async def test_an_unreadable_delivery_fails_its_run_and_the_channel_opens(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    from subscribers import Recorder
    from test_security import enabled_trigger

    hub = the_hub(jp_serverapp)
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "events")
    runs = []
    for i in range(2):
        answer = await http.post(record["trigger"]["callbackUrl"], json={"i": i})
        runs.append(answer.json()["run"])
    # a queued run (its own delivery) whose stored request no hooknb code writes: its
    # headers are not JSON
    hub.store.write_sync(
        lambda conn: conn.execute(
            "UPDATE callbacks SET headers = '{not json' WHERE run_id = ?", (runs[0],)
        )
    )
    events = []
    headers = {"Authorization": f"token {server_token}"}
    async with http.stream(
        "GET", f"{server_url}hooknb/api/channel", params={"client": "c"}, headers=headers
    ) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and '"seq"' in line:
                events.append(json.loads(line[6:]))
                break  # the readable delivery arrived
    assert [event["run"] for event in events] == [runs[1]]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        failed = await api(jp_fetch, "runs", runs[0])
        if failed["status"] == "Failed":
            break
        await _sleep(0.05)
    assert failed["status"] == "Failed"
    assert failed["error"]["code"] == "DeliveryUnreadable"
