"""Nothing a sender sends runs, leaks or wedges the kernel side (issue 11, the kernel's part).

A real Jupyter server with hooknb, real subscriber services and HTTP on loopback; the kernel
side runs in the test process on the server's loop. A sender's data is data: forwarded in
requests it is sent exactly as it came and never evaluated; a callback nested 2,000 levels deep
ends its step as in any other run, in the kernel and in the hub; credential headers a sender
sends stay out of outputs unless asked for; secure steps are hidden wherever runs are shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from helpers import started_runs, until, waiting
from subscribers import Recorder

import hooknb
from hooknb.kernel.action import SECURED

SECRET = "sk-live-5ec7e7-do-not-leak"
BOMB = "@join(range(0, 100000), string(range(0, 20000)))"  # 2.3 GB when it was evaluated
#: What an attacker posts to a trigger: expressions that read another step's outputs, the
#: workflow's parameters and the trigger itself, and an expression bomb.
ATTACK = {
    "id": "@{outputs('GetSecret')?['apiKey']}",
    "whole": "@outputs('GetSecret')",
    "parameter": "@parameters('key')",
    "workflow": "@{workflow()}",
    "escaped": "@@{outputs('GetSecret')}",
    "bomb": BOMB,
    "list": ["@body('GetSecret')", {"deeper": "@{triggerOutputs()}"}],
}


async def api(jp_fetch: Any, *path: str, **params: str) -> Any:
    return json.loads((await jp_fetch("hooknb", *path, params=params)).body)


async def finished(run: Any, timeout: float = 30) -> Any:
    await until(lambda: run.done, timeout, f"run {run.id} to end")
    return await run._await()


async def test_a_trigger_body_forwarded_in_requests_is_sent_literally(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    """The issue's attack: a trigger body holding expressions, forwarded in a webhook step's
    subscribe and unsubscribe, an Http step and a Compose, is sent byte for byte as it came;
    the secret of another step never leaves, and the bomb costs nothing."""
    with Recorder() as service:
        trigger = hooknb.HttpWebhookTrigger(
            subscribe={
                "method": "POST",
                "uri": service.url + "topic",
                "body": {"callbackUrl": hooknb.CALLBACK_URL},
            }
        )

        @hooknb.workflow(trigger=trigger, hub=hub, parameters={"key": SECRET})
        async def forward(run: Any) -> Any:
            run.record("GetSecret", {"apiKey": SECRET}, secure="outputs")
            order = run.trigger.body
            await run.webhook(
                "Forward",
                subscribe={
                    "method": "POST",
                    "uri": service.url + "sub",
                    "headers": {"X-Order": order["id"]},
                    "queries": {"id": order["id"]},
                    "body": {
                        "callbackUrl": hooknb.CALLBACK_URL,
                        "order": order,
                        "subject": f"Order {order['id']}",
                    },
                },
                unsubscribe={"method": "POST", "uri": service.url + "unsub", "body": order},
                timeout="PT1M",
            )
            await run.http(
                "Notify", {"method": "POST", "uri": service.url + "notify", "body": order}
            )
            return run.compose("Copy", order)

        await forward.enable_async()
        callback_url = service.calls("POST", "/topic")[0]["body"]["callbackUrl"]
        assert (await http.post(callback_url, json=ATTACK)).status_code == 202
        (run,) = await started_runs(forward, 1)
        step = await waiting(run, "Forward")
        began = time.monotonic()
        assert (await http.post(step.callback_url, json={"done": True})).status_code == 202
        await finished(run)
        assert time.monotonic() - began < 10  # nothing was evaluated: no bomb went off
        assert run.status == "Succeeded", run.error
        await until(lambda: service.calls("POST", "/unsub"), what="the unsubscribe call")

        subscribe = service.calls("POST", "/sub")[0]
        assert subscribe["body"]["order"] == ATTACK
        assert subscribe["body"]["subject"] == f"Order {ATTACK['id']}"
        assert subscribe["body"]["callbackUrl"] == step.callback_url
        assert subscribe["headers"]["x-order"] == ATTACK["id"]
        assert service.calls("POST", "/unsub")[0]["body"] == ATTACK
        assert service.calls("POST", "/notify")[0]["body"] == ATTACK
        assert run.result == ATTACK
        assert run.actions["Forward"].inputs["subscribe"]["body"]["order"] == ATTACK
        # The secret never left the kernel: not to the service, not into the hub's views.
        assert SECRET not in json.dumps(service.requests)
        shown = json.dumps(await api(jp_fetch, "api", "runs", run.id))
        assert SECRET not in shown and SECURED in shown
        assert SECRET not in (await jp_fetch("hooknb", params={"format": "json"})).body.decode()
        # The run itself used the real value.
        assert run.outputs("GetSecret") == {"apiKey": SECRET}


async def test_definition_runs_evaluate_their_templates_once(hub: Any) -> None:
    """In a definition run, the definition's own expressions are evaluated, and what they
    return (a sender's body, another step's outputs) is never evaluated again."""
    with Recorder() as service:
        wf = hooknb.Workflow.from_definition(
            {
                "parameters": {"key": {"type": "SecureString", "defaultValue": SECRET}},
                "actions": {
                    "Copy": {"type": "Compose", "inputs": "@triggerBody()", "runAfter": {}},
                    "Send": {
                        "type": "Http",
                        "inputs": {
                            "method": "POST",
                            "uri": service.url + "send",
                            "body": {
                                "copy": "@outputs('Copy')",
                                "id": "@{triggerBody()?['id']}",
                                "mine": "@{length(parameters('key'))}",
                            },
                        },
                        "runAfter": {"Copy": ["Succeeded"]},
                    },
                },
                "outputs": {"echo": {"type": "Object", "value": "@body('Send')"}},
            },
            name="templates",
            hub=hub,
            host="kernel",
        )
        run = await finished(await wf.start_async(body=ATTACK))
        assert run.status == "Succeeded", run.error
        sent = service.calls("POST", "/send")[0]["body"]
        assert sent == {"copy": ATTACK, "id": ATTACK["id"], "mine": str(len(SECRET))}
        assert SECRET not in json.dumps(service.requests)


@pytest.mark.parametrize("depth", [129, 700, 2000])
async def test_a_deep_callback_to_a_waiting_step_ends_the_run_everywhere(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any, depth: int
) -> None:
    """A callback body nested ``depth`` levels deep (700 made the kernel's report fail: the
    kernel said Succeeded, the hub showed Waiting for ever) ends the run Succeeded in the kernel
    and in the hub's API; the body is kept exactly."""
    with Recorder() as service:

        @hooknb.workflow(hub=hub, name=f"deep{depth}")
        async def deep(run: Any) -> Any:
            reply = await run.webhook(
                "Deep",
                subscribe={
                    "method": "POST",
                    "uri": service.url + "sub",
                    "body": {"cb": hooknb.CALLBACK_URL},
                },
                timeout="PT1M",
            )
            return reply.body

        run = await deep.start_async()
        step = await waiting(run, "Deep")
        body = "[" * depth + "]" * depth
        answer = await http.post(
            step.callback_url, content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 202
        await finished(run)
        assert run.status == "Succeeded", run.error
        assert step.outputs.raw == body.encode()
        await run._await()  # its last report reached the hub
        shown = await api(jp_fetch, "api", "runs", run.id)
        assert shown["status"] == "Succeeded"
        assert shown["actions"]["Deep"]["status"] == "Succeeded"


async def test_a_report_the_hub_refuses_does_not_wedge_the_others(hub: Any, jp_fetch: Any) -> None:
    """A run report the hub answers 400 to (here one nested past what its API parses) is sent
    as the run's bare status, and the reports queued with it and after it get through."""

    gate = asyncio.Event()

    @hooknb.workflow(hub=hub, name="refused")
    async def refused(run: Any) -> Any:
        await gate.wait()
        return "fine"

    run = await refused.start_async()
    other = await refused.start_async()
    await hub.flush()
    hostile = run.to_report()
    hostile["result"] = json.loads("[" * 600 + "]" * 600)  # a report no kernel sends now
    queued = {**other.to_report(), "error": "queued with it"}

    class Reported:
        """A run as the client reads it when the sync goes out, with the report given."""

        def __init__(self, report: dict[str, Any]) -> None:
            self.id = report["id"]
            self.report = report

        def to_report(self) -> dict[str, Any]:
            return self.report

    hub._pending_reports[run.id] = Reported(hostile)
    hub._pending_reports[other.id] = Reported(queued)
    hub._request_sync()
    await asyncio.wait_for(hub.flush(), 10)
    shown = await api(jp_fetch, "api", "runs", run.id)
    assert shown["status"] == "Running" and "refused" in shown["reportProblem"]
    assert (await api(jp_fetch, "api", "runs", other.id))["error"] == "queued with it"
    # The loop goes on: the runs' next reports are taken as usual.
    gate.set()
    await finished(run)
    await finished(other)
    for ended in (run, other):
        shown = await api(jp_fetch, "api", "runs", ended.id)
        assert shown["status"] == "Succeeded" and shown["result"] == "fine"
        assert "reportProblem" not in shown


CREDENTIALS = {
    "Authorization": "Bearer sender-token-0123456789",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
    "Cookie": "session=sender-cookie",
}


@pytest.mark.parametrize("include", [False, True])
async def test_credential_headers_are_left_out_of_outputs_unless_asked_for(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any, include: bool
) -> None:
    with Recorder() as service:
        trigger = hooknb.HttpWebhookTrigger(
            subscribe={
                "method": "POST",
                "uri": service.url + "topic",
                "body": {"callbackUrl": hooknb.CALLBACK_URL},
            },
            include_authorization_headers=include,
        )

        @hooknb.workflow(trigger=trigger, hub=hub, name=f"creds{include}")
        async def creds(run: Any) -> Any:
            reply = await run.webhook(
                "Step",
                subscribe={"method": "POST", "uri": service.url + "sub"},
                timeout="PT1M",
                include_authorization_headers=include,
            )
            return {"trigger": list(run.trigger.headers), "step": list(reply.headers)}

        await creds.enable_async()
        url = service.calls("POST", "/topic")[0]["body"]["callbackUrl"]
        headers = {**CREDENTIALS, "X-Other": "kept"}
        assert (await http.post(url, json={}, headers=headers)).status_code == 202
        (run,) = await started_runs(creds, 1)
        step = await waiting(run, "Step")
        await http.post(step.callback_url, json={}, headers=headers)
        await finished(run)
        assert run.status == "Succeeded", run.error
        for seen in run.result.values():
            assert "x-other" in seen
            for name in CREDENTIALS:
                assert (name.lower() in seen) is include
        reported = run.to_report()["actions"]["Step"]["outputs"]["headers"]
        assert ("Authorization" in reported) is include
        assert ("sender-token" in json.dumps(await api(jp_fetch, "api", "runs", run.id))) is False


async def test_definition_options_credentials_and_secure_data(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    """IncludeAuthorizationHeadersInOutputs and runtimeConfiguration.secureData in a
    definition: the step sees the header; its secure inputs and outputs are hidden in the
    report, the API and the page, while the run uses them."""
    with Recorder() as service:
        wf = hooknb.Workflow.from_definition(
            {
                "actions": {
                    "Ask": {
                        "type": "HttpWebhook",
                        "inputs": {
                            "subscribe": {
                                "method": "POST",
                                "uri": service.url + "sub",
                                "body": {"cb": "@{listCallbackUrl()}", "pin": SECRET},
                            }
                        },
                        "operationOptions": "IncludeAuthorizationHeadersInOutputs",
                        "runtimeConfiguration": {
                            "secureData": {"properties": ["inputs", "outputs"]}
                        },
                        "runAfter": {},
                    },
                    "Use": {
                        "type": "Compose",
                        "inputs": "@outputs('Ask')?['headers']?['Authorization']",
                        "runAfter": {"Ask": ["Succeeded"]},
                    },
                },
            },
            name="secured",
            hub=hub,
            host="kernel",
        )
        run = await wf.start_async()
        step = await waiting(run, "Ask")
        await http.post(
            step.callback_url, json={"token": SECRET}, headers={"Authorization": "Bearer abc"}
        )
        await finished(run)
        assert run.status == "Succeeded", run.error
        assert run.outputs("Use") == "Bearer abc"  # the run had the header
        assert service.calls("POST", "/sub")[0]["body"]["pin"] == SECRET  # and the real inputs
        report = run.to_report()["actions"]["Ask"]
        assert report["inputs"] == report["outputs"] == SECURED
        assert report["secure"] == ["inputs", "outputs"]
        shown = json.dumps(await api(jp_fetch, "api", "runs", run.id))
        assert SECRET not in json.dumps(json.loads(shown)["actions"])
        from hooknb.kernel.render import action_details_html

        assert SECRET not in action_details_html(step) and SECURED in action_details_html(step)


@pytest.mark.parametrize("include", [False, True])
async def test_a_request_trigger_keeps_credential_headers_only_when_asked(
    hub: Any, include: bool
) -> None:
    trigger: dict[str, Any] = {"type": "Request", "kind": "Http", "inputs": {"schema": {}}}
    if include:
        trigger["operationOptions"] = "IncludeAuthorizationHeadersInOutputs"
    wf = hooknb.Workflow.from_definition(
        {
            "triggers": {"manual": trigger},
            "actions": {
                "Read": {
                    "type": "Compose",
                    "inputs": "@coalesce(triggerOutputs()['headers']?['Authorization'], 'none')",
                    "runAfter": {},
                }
            },
        },
        name=f"request{include}",
        hub=hub,
        host="kernel",
    )
    run = await finished(await wf.start_async(body={}, headers={"Authorization": "Bearer t"}))
    assert run.status == "Succeeded", run.error
    assert run.outputs("Read") == ("Bearer t" if include else "none")
    assert wf.to_definition()["triggers"]["manual"].get("operationOptions") == trigger.get(
        "operationOptions"
    )


async def test_secure_steps_keep_their_exact_values_in_the_history(
    hub: Any, jp_fetch: Any, jp_serverapp: Any
) -> None:
    """A secure step is hidden in what is shown, while the run's history, which a kernel
    replays after a restart and which is never shown, keeps its value exactly."""

    @hooknb.workflow(hub=hub, name="secure_history")
    async def secure_history(run: Any) -> Any:
        value = await run.step("Fetch", lambda run: {"apiKey": SECRET}, secure=("outputs",))
        run.compose("Use", {"length": len(value["apiKey"])}, secure="inputs")
        return "done"

    run = await finished(await secure_history.start_async())
    assert run.status == "Succeeded", run.error
    shown = await api(jp_fetch, "api", "runs", run.id)
    assert shown["actions"]["Fetch"]["outputs"] == SECURED
    assert shown["actions"]["Use"]["inputs"] == SECURED
    assert shown["actions"]["Use"]["outputs"] == {"length": len(SECRET)}
    assert SECRET not in json.dumps(shown)
    store = jp_serverapp.web_app.settings["hooknb_hub"].store
    (value,) = store.reader.execute(
        "SELECT value FROM steps WHERE run_id = ? AND name = 'Fetch'", (run.id,)
    ).fetchone()
    assert json.loads(value) == {"apiKey": SECRET}
