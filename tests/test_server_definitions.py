"""Definition workflows run in the server: handed over by a kernel (or the API), run by the
server's definitions worker with no kernel connected, and on across a server kill -9."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import until, wait_for
from processes import ServerProcess
from subscribers import Recorder

import hooknb


def approval_definition(service: str, *, trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "triggers": {
            "manual": trigger or {"type": "Request", "kind": "Http", "inputs": {"schema": {}}}
        },
        "actions": {
            "Approval": {
                "type": "HttpWebhook",
                "inputs": {
                    "subscribe": {
                        "method": "POST",
                        "uri": service + "subscribe",
                        "body": {"callbackUrl": "@{listCallbackUrl()}"},
                    },
                    "unsubscribe": {"method": "POST", "uri": service + "unsubscribe"},
                },
                "runAfter": {},
            },
            "Done": {
                "type": "Compose",
                "inputs": {"decision": "@body('Approval')?['decision']", "order": "@triggerBody()"},
                "runAfter": {"Approval": ["Succeeded"]},
            },
        },
        "outputs": {"result": {"type": "Object", "value": "@outputs('Done')"}},
    }


async def test_a_definition_runs_in_the_server_and_the_kernel_shows_it_live(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    with Recorder() as service:
        flow = hooknb.Workflow.from_definition(
            approval_definition(service.url), name="approvals", hub=hub
        )
        assert flow.host == "server"
        run = await flow.start_async(body={"id": 7})
        assert isinstance(run, hooknb.Run)
        step = await until(
            lambda: (
                run.actions.get("Approval")
                and run.actions["Approval"].status == "Waiting"
                and run.actions["Approval"]
            ),
            timeout=60,
            what="the server's worker to reach the approval",
        )
        listed = json.loads((await jp_fetch("hooknb", "api", "runs", run.id)).body)
        assert listed["client"].startswith("hooknb-worker-")  # not this kernel
        assert (await http.post(step.callback_url, json={"decision": "yes"})).status_code == 202
        await asyncio.wait_for(run._wait(), 30)
        assert run.status == "Succeeded", run.error
        assert run.result == {"result": {"decision": "yes", "order": {"id": 7}}}
        assert run.actions["Done"].status == "Succeeded"
        await until(lambda: service.calls("POST", "/unsubscribe"))


async def test_a_triggered_definition_runs_with_no_kernel_connected(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    with Recorder() as service:
        trigger = {
            "type": "HttpWebhook",
            "inputs": {
                "subscribe": {
                    "method": "POST",
                    "uri": service.url + "topic/subscribe",
                    "body": {"callbackUrl": "@{listCallbackUrl()}"},
                },
                "unsubscribe": {},
            },
        }
        flow = hooknb.Workflow.from_definition(
            approval_definition(service.url, trigger=trigger), name="orders", hub=hub
        )
        await flow.enable_async()
        trigger_url = service.calls("POST", "/topic/subscribe")[0]["body"]["callbackUrl"]
        await hub.aclose()  # no kernel from here on

        assert (await http.post(trigger_url, json={"n": 1})).status_code == 202
        subscribed = await until(
            lambda: service.calls("POST", "/subscribe"), timeout=60, what="the run to subscribe"
        )
        callback = subscribed[0]["body"]["callbackUrl"]
        assert (await http.post(callback, json={"decision": "ok"})).status_code == 202

        async def runs() -> list[dict[str, Any]]:
            answer = await jp_fetch("hooknb", "api", "runs", params={"workflow": "orders"})
            return list(json.loads(answer.body)["runs"])

        for _ in range(600):
            listed = await runs()
            if listed and listed[0]["status"] == "Succeeded":
                break
            await asyncio.sleep(0.05)
        assert listed[0]["status"] == "Succeeded"
        assert listed[0]["result"] == {"result": {"decision": "ok", "order": {"n": 1}}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "server").start()
    yield server
    server.stop()


def test_a_definition_run_goes_on_across_a_server_kill_9(server: ServerProcess) -> None:
    with Recorder() as service:
        put = httpx.put(
            f"{server.url}hooknb/api/workflows/approvals/definition",
            json={"definition": approval_definition(service.url)},
            headers=server.auth,
            trust_env=False,
            timeout=30,
        )
        assert put.status_code == 200, put.text
        started = server.api(
            "POST",
            "workflows/approvals/runs",
            json={"client": "test", "queued": True, "body": {"id": 3}},
        )
        run_id = started["run"]
        wait_for(lambda: server.api("GET", f"runs/{run_id}")["status"] == "Waiting", timeout=60)
        # Killed once the subscription is on record (a run waits from its subscribe call on;
        # killed during that call, the restarted worker rightly subscribes again).
        wait_for(
            lambda: (
                [w["state"] for w in server.api("GET", f"waits?run={run_id}")["waits"]]
                == ["waiting"]
            ),
            timeout=60,
        )
        (wait,) = server.api("GET", f"waits?run={run_id}")["waits"]

        server.kill()  # the worker goes with it (its stdin closes)
        server.start()
        answer = httpx.post(wait["callbackUrl"], json={"decision": "after"}, trust_env=False)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: server.api("GET", f"runs/{run_id}")["status"] == "Succeeded", timeout=60)
        run = server.api("GET", f"runs/{run_id}")
        assert run["result"] == {"result": {"decision": "after", "order": {"id": 3}}}
        assert len(service.calls("POST", "/subscribe")) == 1  # re-attached, not subscribed again
        assert run["client"].startswith("hooknb-worker-")
