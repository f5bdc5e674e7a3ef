"""Trigger and action end to end: a real Jupyter server, real subscribers, HTTP on loopback.

The kernel side runs in the test process on the server's loop (the async API); the tests in
test_kernel.py do the same from real kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from helpers import started_runs, until, waiting
from subscribers import Recorder, calls_back_during_subscribe, failing

import hooknb


def topic_trigger(demo: Any, topic: str = "orders") -> hooknb.HttpWebhookTrigger:
    return hooknb.HttpWebhookTrigger(
        subscribe={
            "method": "POST",
            "uri": f"{demo.url}topics/{topic}/subscriptions",
            "body": {"callbackUrl": hooknb.CALLBACK_URL},
        },
        unsubscribe={
            "method": "POST",
            "uri": f"{demo.url}topics/{topic}/unsubscribe",
            "body": {"callbackUrl": hooknb.CALLBACK_URL},
        },
    )


def approval(demo: Any, subject: str = "ok?") -> dict[str, Any]:
    return {
        "method": "POST",
        "uri": f"{demo.url}approvals",
        "body": {"callbackUrl": hooknb.CALLBACK_URL, "subject": subject},
    }


def withdraw(demo: Any) -> Any:
    return lambda sub: {"method": "DELETE", "uri": f"{demo.url}approvals/{sub.body['id']}"}


def requests_of(demo: Any, kind: str) -> list[dict[str, Any]]:
    """The demo service's request log of one kind, with header names lower-cased."""
    entries = httpx.get(f"{demo.url}requests", params={"kind": kind}, trust_env=False).json()
    for entry in entries:
        entry["headers"] = {k.lower(): v for k, v in entry["headers"].items()}
    return entries


async def test_trigger_subscribe_callbacks_runs_disable(
    hub: Any, demo: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    @hooknb.workflow(trigger=topic_trigger(demo), hub=hub)
    async def orders(run: Any) -> Any:
        return {"got": run.trigger.body, "topic": run.trigger.headers["x-demo-topic"]}

    await orders.enable_async()
    assert orders.enabled
    url = orders.callback_url
    subscribed = requests_of(demo, "subscribe")
    assert len(subscribed) == 1
    assert subscribed[0]["body"] == {"callbackUrl": url}
    assert subscribed[0]["headers"]["x-ms-workflow-operation-name"] == "HTTP_Webhook"

    # enabling again with the same inputs does not subscribe twice
    await orders.enable_async()
    assert len(requests_of(demo, "subscribe")) == 1

    for i in range(3):
        published = (await http.post(f"{demo.url}topics/orders/events", json={"n": i})).json()
        delivery = published["deliveries"][0]
        assert delivery["status"] == 202
        assert delivery["response"]["workflow"] == "orders"
        assert delivery["response"]["run"]
    runs = await started_runs(orders, 3)
    for run in runs:
        await run
    assert sorted(run.result["got"]["n"] for run in runs) == [0, 1, 2]
    assert {run.status for run in runs} == {"Succeeded"}
    assert all(run.result["topic"] == "orders" for run in runs)

    # the server has the runs, reported by the kernel side
    listed = json.loads(
        (await jp_fetch("hooknb", "api", "runs", params={"workflow": "orders"})).body
    )
    assert {r["status"] for r in listed["runs"]} == {"Succeeded"}
    assert {r["id"] for r in listed["runs"]} == {run.id for run in runs}

    await orders.disable_async()
    assert not orders.enabled
    unsubscribed = requests_of(demo, "unsubscribe")
    assert [u["body"] for u in unsubscribed] == [{"callbackUrl": url}]
    assert (await http.post(url, json={})).status_code == 409

    # enabling again subscribes again, with the same (stable) callback URL
    await orders.enable_async()
    assert orders.callback_url == url
    assert len(requests_of(demo, "subscribe")) == 2


async def test_action_pauses_and_resumes_with_exact_outputs(
    hub: Any, demo: Any, http: httpx.AsyncClient
) -> None:
    @hooknb.workflow(hub=hub)
    async def approve(run: Any) -> Any:
        reply = await run.webhook(
            "Approval",
            subscribe=approval(demo, "Order 7"),
            unsubscribe=withdraw(demo),
            timeout="PT1M",
        )
        return reply

    run = await approve.start_async(body={"id": 7})
    assert run.trigger.body == {"id": 7}
    action = await waiting(run, "Approval")
    assert run.status == "Waiting"
    assert action.callback_url and "sig=" in action.callback_url
    assert action.subscription.status_code == 201
    pending = (await http.get(f"{demo.url}approvals")).json()
    assert pending[0]["callbackUrl"] == action.callback_url and pending[0]["subject"] == "Order 7"

    decided = await http.post(
        f"{demo.url}approvals/{pending[0]['id']}/decision",
        json={"decision": "approve", "by": "ann", "comment": "fine"},
    )
    assert decided.json()["callback"]["status"] == 202
    await run
    assert run.status == "Succeeded"
    reply = run.result
    assert reply.status_code == 200
    assert reply.body["decision"] == "Approved" and reply.body["by"] == "ann"
    assert reply.headers["content-type"] == "application/json"
    assert json.loads(reply.raw) == reply.body
    assert run.actions["Approval"].status == "Succeeded"
    assert run.actions["Approval"].outputs is reply

    # the step unsubscribed after it completed (server side, after the callback)
    await until(lambda: requests_of(demo, "unsubscribe"), what="unsubscribe")
    unsubscribe = requests_of(demo, "unsubscribe")[0]
    assert unsubscribe["method"] == "DELETE"
    assert unsubscribe["path"] == f"/approvals/{pending[0]['id']}"
    assert unsubscribe["headers"]["x-ms-client-tracking-id"] == run.id
    assert unsubscribe["headers"]["x-ms-workflow-operation-name"] == "Approval"


async def test_timeout_unsubscribes_and_ends_timed_out(
    hub: Any, demo: Any, http: httpx.AsyncClient
) -> None:
    @hooknb.workflow(hub=hub)
    async def slow(run: Any) -> Any:
        await run.webhook(
            "Approval", subscribe=approval(demo), unsubscribe=withdraw(demo), timeout="PT0.5S"
        )

    run = await slow.start_async()
    await asyncio.wait_for(run._await(), 10)
    assert run.status == "TimedOut"
    assert run.actions["Approval"].status == "TimedOut"
    assert "timed out" in run.error
    await until(lambda: requests_of(demo, "unsubscribe"), what="unsubscribe on timeout")
    items = (await http.get(f"{demo.url}approvals")).json()
    assert items[0]["status"] == "Withdrawn"


async def test_timeout_can_be_caught(hub: Any, demo: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def fallback(run: Any) -> Any:
        try:
            await run.webhook("Approval", subscribe=approval(demo), timeout=0.3)
        except hooknb.ActionTimedOut as exc:
            return f"fallback after {exc.action}"

    run = await (await fallback.start_async())._await()
    assert run.status == "Succeeded" and run.result == "fallback after Approval"
    assert run.actions["Approval"].status == "TimedOut"


async def test_cancel_unsubscribes_and_ends_cancelled(hub: Any, demo: Any, jp_fetch: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def cancellable(run: Any) -> Any:
        await run.webhook("Approval", subscribe=approval(demo), unsubscribe=withdraw(demo))

    run = await cancellable.start_async()
    action = await waiting(run, "Approval")
    # A wait that times out says which run, how it stands and what it waits on.
    with pytest.raises(TimeoutError) as timed_out:
        run.wait(timeout=0.2)
    assert str(timed_out.value) == (
        f"run {run.id} of 'cancellable' is still Waiting after 0.2 s, on step 'Approval' (Waiting)"
    )
    # When cancel() returns, the run has ended Cancelled (the next line of a cell sees it).
    assert run.cancel()
    assert run.status == "Cancelled" and action.status == "Cancelled"
    assert not run.cancel()  # already ended
    await until(lambda: requests_of(demo, "unsubscribe"), what="unsubscribe on cancel")
    wait = json.loads((await jp_fetch("hooknb", "api", "waits", action.wait_id)).body)
    assert wait["outcome"] == "Cancelled"
    async with httpx.AsyncClient(trust_env=False) as client:
        late = await client.post(action.callback_url, json={"too": "late"})
    assert late.status_code == 409 and late.json()["state"] == "Cancelled"


async def test_cancel_from_outside_the_kernel(hub: Any, demo: Any, jp_fetch: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def remote(run: Any) -> Any:
        await run.webhook("Approval", subscribe=approval(demo), unsubscribe=withdraw(demo))

    run = await remote.start_async()
    await waiting(run, "Approval")
    await jp_fetch("hooknb", "api", "runs", run.id, "cancel", method="POST", body="{}")
    await asyncio.wait_for(run._await(), 10)
    assert run.status == "Cancelled"
    await until(lambda: requests_of(demo, "unsubscribe"), what="unsubscribe on remote cancel")


async def test_duplicate_and_racing_callbacks_resume_once(hub: Any, demo: Any) -> None:
    resumed = []

    @hooknb.workflow(hub=hub)
    async def once(run: Any) -> Any:
        reply = await run.webhook("Step", subscribe=approval(demo), timeout="PT1M")
        resumed.append(reply.body)
        return reply.body

    run = await once.start_async()
    action = await waiting(run, "Step")
    async with httpx.AsyncClient(
        trust_env=False, limits=httpx.Limits(max_connections=100)
    ) as client:
        answers = await asyncio.gather(
            *(client.post(action.callback_url, json={"n": n}) for n in range(100))
        )
        statuses = [a.status_code for a in answers]
        assert statuses.count(202) == 1 and statuses.count(409) == 99
        winner = answers[statuses.index(202)].json()
        assert winner["run"] == run.id and winner["action"] == "Step"
        assert all(a.json()["state"] == "Succeeded" for a in answers if a.status_code == 409)
        await run
        n = run.result["n"]
        # the sender retries the callback that won: same answer, no second resume
        again = await client.post(action.callback_url, json={"n": n})
        assert again.status_code == 202 and again.json()["duplicate"] is True
    await asyncio.sleep(0.2)
    assert resumed == [{"n": n}]


async def test_callback_during_subscribe_is_kept_and_delivered(hub: Any) -> None:
    with Recorder(calls_back_during_subscribe({"early": True})) as service:

        @hooknb.workflow(hub=hub)
        async def early(run: Any) -> Any:
            reply = await run.webhook(
                "Step",
                subscribe={
                    "method": "POST",
                    "uri": f"{service.url}sub",
                    "body": {"callbackUrl": hooknb.CALLBACK_URL},
                },
                unsubscribe={"method": "POST", "uri": f"{service.url}unsub"},
            )
            return reply.body

        run = await (await early.start_async())._await()
        assert run.status == "Succeeded" and run.result == {"early": True}
        assert service.requests[0]["early_callback_status"] == 202
        await until(
            lambda: service.calls("POST", "/unsub"), what="unsubscribe after early callback"
        )


async def test_failing_subscribe_retries_then_fails_the_action(hub: Any, jp_fetch: Any) -> None:
    with Recorder(failing(503, times=100)) as service:

        @hooknb.workflow(hub=hub)
        async def broken(run: Any) -> Any:
            await run.webhook(
                "Step",
                subscribe={
                    "method": "POST",
                    "uri": f"{service.url}sub",
                    "retryPolicy": {"type": "fixed", "count": 2, "interval": "PT0.05S"},
                },
            )

        run = await (await broken.start_async())._await()
        assert run.status == "Failed"
        assert "ActionFailed" in run.error and "503" in run.error
        assert len(service.calls("POST", "/sub")) == 3  # first try + 2 retries
        wait = json.loads(
            (await jp_fetch("hooknb", "api", "waits", run.actions["Step"].wait_id)).body
        )
        assert wait["outcome"] == "Failed"
        assert len(wait["calls"][0]["attempts"]) == 3


async def test_subscribe_recovers_within_the_retry_policy(hub: Any) -> None:
    with Recorder(failing(429, times=2)) as service:

        @hooknb.workflow(hub=hub)
        async def flaky(run: Any) -> Any:
            reply = await run.webhook(
                "Step",
                subscribe={
                    "method": "POST",
                    "uri": f"{service.url}sub",
                    "body": {"cb": hooknb.CALLBACK_URL},
                },
                timeout=0.5,
            )
            return reply

        run = await (await flaky.start_async())._await()
        assert run.status == "TimedOut"  # subscribed on the third attempt, then nobody called back
        assert run.actions["Step"].subscription.body == {"id": "finally"}
        assert len(service.calls("POST", "/sub")) == 3


async def test_basic_auth_reaches_the_subscriber(hub: Any) -> None:
    with Recorder() as service:

        @hooknb.workflow(hub=hub)
        async def authed(run: Any) -> Any:
            await run.webhook(
                "Step",
                subscribe={
                    "method": "PUT",
                    "uri": f"{service.url}sub",
                    "queries": {"a": "1"},
                    "headers": {"X-Custom": "yes"},
                    "authentication": {"type": "Basic", "username": "u", "password": "p@ss"},
                },
                timeout=0.2,
            )

        run = await (await authed.start_async())._await()
        request = service.calls("PUT", "/sub")[0]
        assert request["headers"]["authorization"] == "Basic dTpwQHNz"
        assert request["headers"]["x-custom"] == "yes"
        assert run.actions["Step"].inputs["subscribe"]["authentication"]["password"] != "p@ss"


async def test_unsubscribe_template_can_use_the_subscribe_result(hub: Any) -> None:
    with Recorder() as service:

        @hooknb.workflow(hub=hub)
        async def templated(run: Any) -> Any:
            await run.webhook(
                "Step",
                subscribe={"method": "POST", "uri": f"{service.url}sub"},
                unsubscribe={
                    "method": "DELETE",
                    "uri": hooknb.expr(f"{service.url}sub/@{{action().outputs.body.id}}"),
                },
                timeout=0.2,
            )

        run = await (await templated.start_async())._await()
        assert run.status == "TimedOut", run.error
        await until(lambda: service.calls("DELETE"), what="unsubscribe")
        assert service.calls("DELETE")[0]["path"] == "/sub/sub-1"


async def test_trigger_callbacks_wait_for_a_kernel(
    hub: Any, demo: Any, http: httpx.AsyncClient, server_url: str, server_token: str
) -> None:
    """Callbacks that arrive while no kernel runs the workflow start runs when one enables it."""
    from hooknb.kernel.client import HubClient
    from hooknb.kernel.discovery import HubAddress

    @hooknb.workflow(trigger=topic_trigger(demo, "later"), hub=hub)
    async def later(run: Any) -> Any:
        return run.trigger.body

    await later.enable_async()
    await hub.aclose()  # this "kernel" goes away; the trigger stays subscribed
    for i in range(3):
        published = (await http.post(f"{demo.url}topics/later/events", json={"i": i})).json()
        assert published["deliveries"][0]["status"] == 202

    second = HubClient(
        HubAddress(server_url, server_token, "test"), loop=asyncio.get_running_loop()
    )
    try:
        again = hooknb.Workflow(
            later.fn, name="later", trigger=topic_trigger(demo, "later"), hub=second
        )
        await again.enable_async()
        runs = await started_runs(again, 3)
        for run in runs:
            await run
        assert sorted(run.result["i"] for run in runs) == [0, 1, 2]
        assert len(requests_of(demo, "subscribe")) == 1  # unchanged inputs: no new subscription
    finally:
        await second.aclose()


async def test_enabling_a_workflow_whose_subscribe_fails_raises(hub: Any) -> None:
    with Recorder(failing(400, times=10)) as service:

        @hooknb.workflow(
            trigger=hooknb.HttpWebhookTrigger(
                subscribe={"method": "POST", "uri": f"{service.url}s"}
            ),
            hub=hub,
        )
        async def refused(run: Any) -> None:
            pass

        with pytest.raises(hooknb.HookNBError, match="400"):
            await refused.enable_async()
        assert not refused.enabled
        assert len(service.requests) == 1  # 400 is not retried


async def test_callback_bodies_are_kept_byte_exact(hub: Any, demo: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def raw(run: Any) -> Any:
        first = await run.webhook("Binary", subscribe=approval(demo), timeout="PT1M")
        second = await run.webhook("Form", subscribe=approval(demo), timeout="PT1M")
        return first, second

    run = await raw.start_async()
    payload = bytes(range(256)) * 4
    async with httpx.AsyncClient(trust_env=False) as client:
        action = await waiting(run, "Binary")
        answer = await client.post(
            action.callback_url + "&page=2",
            content=payload,
            headers={"Content-Type": "application/octet-stream", "X-Trace": "a"},
        )
        assert answer.status_code == 202
        action = await waiting(run, "Form")
        await client.post(action.callback_url, data={"name": "Zoë", "n": "1"})
    await run
    binary, form = run.result
    assert binary.raw == payload and binary.body == payload
    assert binary.content_type == "application/octet-stream"
    assert binary.headers["x-trace"] == binary.headers["X-TRACE"] == "a"
    assert binary.queries == {"page": "2"}  # the signature is not an output
    assert form.body == "name=Zo%C3%AB&n=1" and form.raw == form.body.encode()


async def test_text_json_bodies_arrive_parsed(hub: Any, demo: Any) -> None:
    # text/json is JSON on both sides of the hub, as it is for HTTP responses and Logic Apps.
    @hooknb.workflow(hub=hub)
    async def legacy(run: Any) -> Any:
        return await run.webhook("Legacy", subscribe=approval(demo), timeout="PT1M")

    run = await legacy.start_async(body=b'{"order": 7}', content_type="text/json")
    async with httpx.AsyncClient(trust_env=False) as client:
        action = await waiting(run, "Legacy")
        await client.post(
            action.callback_url,
            content=b'{"decision": "Approved"}',
            headers={"Content-Type": "text/json; charset=utf-8"},
        )
    await run
    assert run.trigger.body == {"order": 7}
    assert run.result.body == {"decision": "Approved"}
    assert run.result.raw == b'{"decision": "Approved"}'


async def test_callback_url_placeholder_expression_and_the_url_alias(hub: Any) -> None:
    with Recorder() as service:

        @hooknb.workflow(hub=hub)
        async def bare(run: Any) -> Any:
            await run.webhook(
                "Step",
                subscribe={
                    "method": "POST",
                    "uri": f"{service.url}sub",
                    "body": hooknb.CALLBACK_URL,
                },
                unsubscribe={
                    "method": "POST",
                    "url": f"{service.url}unsub",
                    "body": hooknb.expr("@listCallBackUrl()"),
                },
                timeout=0.3,
            )

        run = await (await bare.start_async())._await()
        url = run.actions["Step"].callback_url
        assert service.calls("POST", "/sub")[0]["body"] == url
        await until(lambda: service.calls("POST", "/unsub"), what="unsubscribe via 'url'")
        assert service.calls("POST", "/unsub")[0]["body"] == url


async def test_unsubscribe_failures_are_retried_and_visible(hub: Any, jp_fetch: Any) -> None:
    async def respond(
        recorder: Recorder, request: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if request["path"] == "/flaky-unsub" and len(recorder.calls("DELETE", "/flaky-unsub")) <= 2:
            return 503, {"error": "busy"}, {"Retry-After": "0"}
        if request["path"] == "/broken-unsub":
            return 500, {"error": "down"}, {}
        return 200, {"id": "s"}, {}

    with Recorder(respond) as service:
        retry = {"type": "fixed", "count": 3, "interval": "PT0.05S"}

        @hooknb.workflow(hub=hub)
        async def flaky(run: Any) -> Any:
            for path in ("flaky-unsub", "broken-unsub"):
                with contextlib.suppress(hooknb.ActionTimedOut):
                    await run.webhook(
                        path,
                        subscribe={"method": "POST", "uri": f"{service.url}sub"},
                        unsubscribe={
                            "method": "DELETE",
                            "uri": f"{service.url}{path}",
                            "retryPolicy": retry,
                        },
                        timeout=0.2,
                    )

        run = await (await flaky.start_async())._await()

        async def unsubscribe_outcomes() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
            waits = json.loads((await jp_fetch("hooknb", "api", "runs", run.id)).body)["waits"]
            found = {}
            for wait in waits:
                calls = [c for c in wait["calls"] if c["purpose"] == "unsubscribe"]
                if calls and calls[-1]["state"] != "pending":
                    found[wait["step"]] = (wait, calls[-1])
            return found

        for _ in range(200):
            outcomes = await unsubscribe_outcomes()
            if len(outcomes) == 2:
                break
            await asyncio.sleep(0.05)
        flaky_wait, flaky_call = outcomes["flaky-unsub"]
        broken_wait, broken_call = outcomes["broken-unsub"]
    assert (flaky_wait["unsubscribe"], flaky_call["state"]) == ("done", "done")
    assert [a["statusCode"] for a in flaky_call["attempts"]] == [503, 503, 200]
    assert (broken_wait["unsubscribe"], broken_call["state"]) == ("failed", "failed")
    assert [a["statusCode"] for a in broken_call["attempts"]] == [500] * 4
    assert "500" in broken_wait["error"]


async def test_resubmitting_a_manual_run_runs_it_again(hub: Any, jp_fetch: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def again(run: Any) -> Any:
        return run.trigger.body["n"] * 2

    first = await (await again.start_async(body={"n": 21}))._await()
    response = await jp_fetch(
        "hooknb", "api", "runs", first.id, "resubmit", method="POST", body="{}"
    )
    resubmitted = json.loads(response.body)["run"]
    runs = await started_runs(again, 2)
    second = next(run for run in runs if run.id == resubmitted)
    await second
    assert (second.status, second.result) == ("Succeeded", 42)


async def test_hundreds_of_steps_subscribing_at_once(hub: Any, jp_fetch: Any) -> None:
    """A burst of 600 webhook steps in one kernel all get their waits (requests to the hub are
    gated, so none times out queueing for a connection)."""
    with Recorder() as service:

        @hooknb.workflow(hub=hub)
        async def burst(run: Any) -> Any:
            return await run.webhook(
                "Step", subscribe={"method": "POST", "uri": f"{service.url}sub"}, timeout=120
            )

        runs = await asyncio.gather(*(burst.start_async() for _ in range(600)))
        await until(lambda: all(r.status == "Waiting" for r in runs), 90, "600 waiting steps")
        assert not [r for r in runs if r.status == "Failed"]
        assert len(service.calls("POST", "/sub")) == 600
        for run in runs:
            run.cancel()
        for run in runs:
            await run


async def test_a_kernel_keeps_its_last_finished_runs_and_the_hub_keeps_them_all(
    hub: Any, jp_fetch: Any
) -> None:
    """A kernel lets go of a workflow's oldest finished runs beyond ``keep_finished_runs``
    once the hub has their last report (memory, and the garbage collector's walks, stay
    bounded in a long session); runs under way always stay, and the hub keeps every run."""
    hub.keep_finished_runs = 3
    gate = asyncio.Event()

    @hooknb.workflow(hub=hub)
    async def kept(run):
        if run.trigger.body.get("hold"):
            await gate.wait()
        return run.trigger.body["n"]

    held = await kept.start_async(body={"n": 0, "hold": True})
    done = [await kept.start_async(body={"n": n}) for n in range(1, 9)]
    for run in done:
        await run
    await hub.flush()
    assert [r.trigger.body["n"] for r in kept.runs] == [0, 6, 7, 8]  # the held run stays
    assert hub.get_run(done[0].id) is None and hub.get_run(done[-1].id) is done[-1]
    assert done[0].result == 1  # a run let go is still whole for whoever holds it
    response = await jp_fetch("hooknb", "api", "runs", params={"workflow": "kept"})
    assert len(json.loads(response.body)["runs"]) == 9

    gate.set()
    await held
    await hub.flush()
    assert [(r.trigger.body["n"], r.status) for r in kept.runs] == [
        (0, "Succeeded"),
        (7, "Succeeded"),
        (8, "Succeeded"),
    ]
    assert held._task is None  # a finished run holds no task, coroutine or context
