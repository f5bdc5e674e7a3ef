"""Logic Apps parity of triggers and workflows, against a real server and local services:
delete, concurrency, splitOn, trigger conditions and history, the trigger's 202 headers and
tracking ids, and non-JSON bodies (XML, forms, binary) read by expressions."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from helpers import until, waiting
from subscribers import Recorder
from test_definitions_run import finished, statuses

import hooknb


def webhook_trigger(service: Recorder, **extra: Any) -> dict[str, Any]:
    """An HttpWebhook trigger as the designer writes it (EventHubAPI README shape)."""
    return {
        "type": "HttpWebhook",
        "inputs": {
            "subscribe": {
                "method": "POST",
                "uri": service.url + "subscribe",
                "headers": {"content-type": "application/json"},
                "body": {"callbackUrl": "@{listCallbackUrl()}"},
            },
            "unsubscribe": {
                "method": "POST",
                "uri": service.url + "unsubscribe",
                "body": {"callbackUrl": "@{listCallbackUrl()}"},
            },
        },
        **extra,
    }


def approval(service: Recorder) -> dict[str, Any]:
    """An HttpWebhook action that waits until its callback (WH26 shape)."""
    return {
        "type": "HttpWebhook",
        "inputs": {
            "subscribe": {
                "method": "POST",
                "uri": service.url + "approve",
                "body": {"callbackUrl": "@{listCallBackUrl()}", "order": "@triggerBody()"},
            },
            "unsubscribe": {"method": "POST", "uri": service.url + "withdraw"},
        },
        "limit": {"timeout": "PT1H"},
    }


async def api(jp_fetch: Any, path: str, method: str = "GET", body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = await jp_fetch("hooknb", "api", *path.split("/"), raise_error=False, **kwargs)
    return response.code, json.loads(response.body or b"null")


# -- delete -----------------------------------------------------------------------------------


async def test_delete_unsubscribes_cancels_and_closes_every_url(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    with Recorder() as svc:
        wf = hooknb.Workflow.from_definition(
            {"triggers": {"Events": webhook_trigger(svc)}, "actions": {"Approve": approval(svc)}},
            name="doomed",
            hub=hub,
        )
        await wf.enable_async()
        trigger_url = wf.callback_url
        assert (await http.post(trigger_url, json={"n": 1})).status_code == 202
        [run] = await until(lambda: wf.runs, what="the run")
        step = await waiting(run, "Approve", timeout=20)
        action_url = step.callback_url

        answer = await wf.delete_async()
        assert answer["deleted"] is True and answer["cancelled"] == [run.id]
        assert answer["unsubscribe"]["state"] == "done"
        await until(lambda: svc.calls("POST", "/unsubscribe"), what="the trigger to unsubscribe")
        await until(lambda: svc.calls("POST", "/withdraw"), what="the action to unsubscribe")
        await finished(run)
        assert run.status == "Cancelled"
        for url in (trigger_url, action_url):
            gone = await http.post(url, json={"late": True})
            assert gone.status_code == 404, url
        # the history stays
        code, shown = await api(jp_fetch, f"runs/{run.id}")
        assert code == 200 and shown["status"] == "Cancelled"
        code, history = await api(jp_fetch, "workflows/doomed/triggers")
        assert code == 200 and history["history"][0]["status"] == "Fired"
        code, _ = await api(jp_fetch, "workflows/doomed")
        assert code == 404
        code, missing = await api(jp_fetch, "workflows/doomed", "DELETE")
        assert code == 404 and "no workflow named" in missing["error"]


async def test_redefining_without_the_webhook_trigger_unsubscribes_it(
    hub: Any, http: httpx.AsyncClient
) -> None:
    with Recorder() as svc:
        wf = hooknb.Workflow.from_definition(
            {"triggers": {"Events": webhook_trigger(svc)}, "actions": {}},
            name="reshaped",
            hub=hub,
            host="kernel",
        )
        await wf.enable_async()
        old_url = wf.callback_url
        again = hooknb.Workflow.from_definition(
            {"triggers": {"manual": {"type": "Request", "kind": "Http"}}, "actions": {}},
            name="reshaped",
            hub=hub,
            host="kernel",
        )
        await again.adopt_async()
        await until(lambda: svc.calls("POST", "/unsubscribe"), what="the old trigger to go")
        assert (await http.post(old_url, json={})).status_code == 404
        run = await finished(await again.start_async())
        assert run.status == "Succeeded"


# -- concurrency ------------------------------------------------------------------------------


async def test_concurrency_holds_runs_in_order_and_answers_429_beyond_the_queue(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    with Recorder() as svc:
        definition = {
            "triggers": {
                "Events": webhook_trigger(
                    svc,
                    runtimeConfiguration={"concurrency": {"runs": 1, "maximumWaitingRuns": 2}},
                )
            },
            "actions": {"Approve": approval(svc)},
        }
        wf = hooknb.Workflow.from_definition(definition, name="one_at_a_time", hub=hub)
        await wf.enable_async()
        answers = [await http.post(wf.callback_url, json={"n": n}) for n in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        ids = [a.headers["x-ms-workflow-run-id"] for a in answers[:3]]
        assert "x-ms-workflow-run-id" not in answers[3].headers
        assert "too many runs" in answers[3].json()["error"]
        _, shown = await api(jp_fetch, f"runs/{ids[1]}")
        assert shown["status"] == "Queued" and shown["waitingToStart"] is True
        _, record = await api(jp_fetch, "workflows/one_at_a_time")
        assert record["runsUnderWay"] == 1 and record["runsWaitingToStart"] == 2
        assert record["settings"]["runs"] == 1

        # Each approval lets the next run start, in order.
        for n in range(3):
            [subscribe] = await until(
                lambda n=n: svc.calls("POST", "/approve")[n:], timeout=20, what=f"run {n}"
            )
            assert subscribe["body"]["order"] == {"n": n}
            assert len(svc.calls("POST", "/approve")) == n + 1  # no other run started
            done = await http.post(subscribe["body"]["callbackUrl"], json={"ok": n})
            assert done.status_code == 202
        runs = await until(lambda: len(wf.runs) == 3 and wf.runs, what="the three runs")
        for run in runs:
            await finished(run, timeout=20)
        assert [run.status for run in runs] == ["Succeeded"] * 3
        _, history = await api(jp_fetch, "workflows/one_at_a_time/triggers")
        assert [e["status"] for e in history["history"]] == ["Failed", "Fired", "Fired", "Fired"]
        assert history["history"][0]["code"] == 429


async def test_single_instance_python_workflow_runs_one_at_a_time(hub: Any) -> None:
    active: list[int] = []
    most = [0]

    @hooknb.workflow(name="serial", hub=hub, single_instance=True)
    async def serial(run: Any) -> Any:
        import asyncio

        active.append(1)
        most[0] = max(most[0], len(active))
        await asyncio.sleep(0.2)
        active.pop()
        return run.trigger.body

    runs = [await serial.start_async(body={"n": n}) for n in range(4)]
    assert [run.status for run in runs[1:]] == ["Queued", "Queued", "Queued"]
    assert runs[3].cancel()  # waiting to start: cancelled in the hub, never runs
    for run in runs:
        await finished(run)
    assert [run.result for run in runs[:3]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert runs[3].status == "Cancelled" and runs[3].result is None
    assert most[0] == 1
    with pytest.raises(ValueError, match="runs must be a whole number"):
        hooknb.Workflow(lambda run: None, name="bad", runs=0, define=False)


# -- splitOn, conditions, history, headers ----------------------------------------------------


async def test_split_on_conditions_history_and_tracking_headers(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    with Recorder() as svc:
        definition = {
            "triggers": {
                "Batch": webhook_trigger(
                    svc,
                    splitOn="@triggerBody()?['orders']",
                    conditions=[{"expression": "@not(equals(triggerBody()?['kind'], 'spam'))"}],
                )
            },
            "actions": {
                "Echo": {
                    "type": "Compose",
                    "inputs": {
                        "order": "@triggerBody()",
                        "tracking": "@trigger()?['clientTrackingId']",
                    },
                }
            },
            "outputs": {"echo": {"type": "Object", "value": "@outputs('Echo')"}},
        }
        wf = hooknb.Workflow.from_definition(definition, name="batches", hub=hub)
        await wf.enable_async()
        answer = await http.post(
            wf.callback_url,
            json={"kind": "order", "orders": [{"id": 1}, {"id": 2}, {"id": 3}]},
            headers={"x-ms-client-tracking-id": "batch-77"},
        )
        assert answer.status_code == 202
        body = answer.json()
        assert len(body["runs"]) == 3 and body["run"] == body["runs"][0]
        assert answer.headers["x-ms-workflow-run-id"] == body["runs"][0]
        assert answer.headers["x-ms-client-tracking-id"] == "batch-77"
        assert answer.headers["x-ms-trigger-history-name"]
        assert answer.headers["x-ms-correlation-id"] == answer.headers["x-ms-tracking-id"]
        runs = await until(lambda: len(wf.runs) == 3 and wf.runs, what="three runs")
        results = []
        for run in runs:
            await finished(run)
            assert run.status == "Succeeded", run.error
            results.append(run.result["echo"])
        assert sorted(r["order"]["id"] for r in results) == [1, 2, 3]
        assert {r["tracking"] for r in results} == {"batch-77"}
        _, shown = await api(jp_fetch, f"runs/{body['runs'][1]}")
        assert shown["clientTrackingId"] == "batch-77"

        # A false condition: 202, no run, a Skipped entry with the request.
        skipped = await http.post(wf.callback_url, json={"kind": "spam", "orders": [{"id": 9}]})
        assert skipped.status_code == 202 and skipped.json()["status"] == "Skipped"
        assert "x-ms-workflow-run-id" not in skipped.headers
        # splitOn that is not an array: no run, Failed with the reason.
        failed = await http.post(wf.callback_url, json={"kind": "order", "orders": "x"})
        assert failed.status_code == 400 and "must give an array" in failed.json()["error"]
        _, history = await api(jp_fetch, "workflows/batches/triggers")
        latest = history["history"]
        assert [e["status"] for e in latest] == ["Failed", "Skipped", "Fired"]
        shown = latest[1]["request"]["body"]
        assert json.loads(shown["data"]) == {"kind": "spam", "orders": [{"id": 9}]}
        assert "is False" in latest[1]["reason"]
        assert latest[2]["runs"] == body["runs"]
        assert len(wf.runs) == 3
        # A tracking id that could not be echoed in a header (a control character) is not used.
        tabbed = await http.post(
            wf.callback_url,
            json={"kind": "order", "orders": [{"id": 4}]},
            headers={"x-ms-client-tracking-id": "a\tb"},
        )
        assert tabbed.status_code == 202
        assert tabbed.headers["x-ms-client-tracking-id"] == tabbed.json()["run"]


# -- non-JSON bodies --------------------------------------------------------------------------


async def test_xml_form_and_binary_bodies_in_expressions(hub: Any) -> None:
    definition = {
        "triggers": {"manual": {"type": "Request", "kind": "Http"}},
        "actions": {
            "Read": {
                "type": "Compose",
                "inputs": {
                    "kind": "@triggerBody()?['$content-type']",
                    "city": "@xpath(xml(triggerBody()), 'string(/order/city)')",
                    "json": "@json(xml(triggerBody()))",
                    "text": "@string(triggerBody())",
                },
            }
        },
        "outputs": {"read": {"type": "Object", "value": "@outputs('Read')"}},
    }
    wf = hooknb.Workflow.from_definition(definition, name="bodies", hub=hub)
    xml = '<?xml version="1.0"?><order id="7"><city>Paris</city></order>'
    run = await finished(await wf.start_async(xml.encode(), content_type="application/xml"))
    assert run.status == "Succeeded", run.error
    assert run.result["read"] == {
        "kind": "application/xml",
        "city": "Paris",
        "json": {"?xml": {"@version": "1.0"}, "order": {"@id": "7", "city": "Paris"}},
        "text": xml,
    }

    form = hooknb.Workflow.from_definition(
        {
            "actions": {
                "Fields": {
                    "type": "Compose",
                    "inputs": {
                        "name": "@triggerFormDataValue('name')",
                        "tags": "@triggerFormDataMultiValues('tag')",
                        "pairs": "@length(triggerBody()?['$formdata'])",
                    },
                }
            },
            "outputs": {"fields": {"type": "Object", "value": "@outputs('Fields')"}},
        },
        name="forms",
        hub=hub,
    )
    run = await finished(
        await form.start_async(
            b"name=Sophia+Owen&tag=a&tag=b", content_type="application/x-www-form-urlencoded"
        )
    )
    assert run.status == "Succeeded", run.error
    assert run.result["fields"] == {"name": "Sophia Owen", "tags": ["a", "b"], "pairs": 3}

    binary = hooknb.Workflow.from_definition(
        {
            "actions": {"B64": {"type": "Compose", "inputs": "@base64(triggerBody())"}},
            "outputs": {"b64": {"type": "String", "value": "@outputs('B64')"}},
        },
        name="binary",
        hub=hub,
    )
    data = bytes(range(256))
    run = await finished(await binary.start_async(data, content_type="image/png"))
    assert run.status == "Succeeded", run.error
    assert run.result["b64"] == base64.b64encode(data).decode()
    assert statuses(run) == {"B64": "Succeeded"}


# -- %hooknb triggers / delete ---------------------------------------------------------------

MAGIC_TRIGGER = """%%hooknb trigger feed
subscribe: {method: POST, uri: SVC/subscribe, body: {callbackUrl: "@{listCallbackUrl()}"}}
unsubscribe: {method: POST, uri: SVC/unsubscribe}
"""

MAGIC_FIRE = """
import httpx
answer = httpx.post(feed.callback_url, json={"n": 1}, trust_env=False)
print(answer.status_code, answer.headers["x-ms-workflow-run-id"])
# The server runs `feed` (no handler): wait until its run has ended before deleting.
import os, time
api = f"{os.environ['HOOKNB_URL'].rstrip('/')}/hooknb/api/runs/"
api += answer.headers["x-ms-workflow-run-id"]
auth = {"Authorization": f"token {os.environ['HOOKNB_TOKEN']}"}
for _ in range(200):
    if httpx.get(api, headers=auth, trust_env=False).json()["status"] == "Succeeded":
        break
    time.sleep(0.05)
"""


async def test_trigger_history_and_delete_magics(server_url: str, server_token: str) -> None:
    import os

    import nbformat
    from nbclient import NotebookClient

    with Recorder() as svc:
        sources = [
            "%load_ext hooknb",
            MAGIC_TRIGGER.replace("SVC/", svc.url),
            MAGIC_FIRE,
            "%hooknb triggers feed",
            "%hooknb delete feed",
            "%hooknb delete feed",
        ]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        nb.cells[-1].metadata["tags"] = ["raises-exception"]
        env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
        await NotebookClient(nb, kernel_name="python3", timeout=60).async_execute(env=env)

        def out(index: int) -> str:
            return "".join(o.get("text", "") for o in nb.cells[index].outputs)

        assert out(2).startswith("202")
        history = out(3).splitlines()
        assert len(history) == 1 and history[0].split()[1:3] == ["Fired", "202"]
        assert out(4).strip().startswith("workflow 'feed': deleted (0 unfinished runs cancelled")
        assert svc.calls("POST", "/unsubscribe")
        # A UsageError: shown without a traceback.
        assert "deleting workflow 'feed' failed" in out(5) and "no workflow named" in out(5)
        assert "Traceback" not in out(5)


# -- the limit is the hub's: it holds across a server crash ----------------------------------

SERIAL = """
import json, hooknb
definition = json.loads(DEFINITION)
serial = hooknb.Workflow.from_definition(definition, name="serial")
serial.enable()
print(serial.callback_url)
"""


def test_the_concurrency_limit_survives_a_server_kill(tmp_path: Any) -> None:
    """Runs waiting to start are rows of the store, not memory: after kill -9 and a restart
    (the definitions worker restarts too and adopts the running run), the queue is the same,
    and each run starts only when the one before it ends."""
    from helpers import wait_for
    from processes import Kernel, ServerProcess

    with Recorder() as svc:
        definition = {
            "triggers": {
                "Events": webhook_trigger(
                    svc, runtimeConfiguration={"concurrency": {"runs": 1, "maximumWaitingRuns": 5}}
                )
            },
            "actions": {"Approve": approval(svc)},
        }
        server = ServerProcess(tmp_path).start()
        kernel = Kernel(dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token))
        try:
            code = SERIAL.replace("DEFINITION", repr(json.dumps(definition)))
            url = kernel.run(code).strip().splitlines()[-1]
            ids = []
            for n in range(3):
                answer = httpx.post(url, json={"n": n}, trust_env=False)
                assert answer.status_code == 202
                ids.append(answer.headers["x-ms-workflow-run-id"])
            wait_for(lambda: svc.calls("POST", "/approve"), what="the first run to wait")
            server.kill()
            server.start()
            runs = {r["id"]: r for r in server.api("GET", "runs")["runs"]}
            assert [bool(runs[i].get("waitingToStart")) for i in ids] == [False, True, True]

            def steps_asked() -> list[dict[str, Any]]:
                # One per wait: a subscribe call in flight when the server was killed is made
                # again after the restart (at least once), with the same callback URL.
                by_url = {c["body"]["callbackUrl"]: c for c in svc.calls("POST", "/approve")}
                return list(by_url.values())

            for n in range(3):
                asked = wait_for(lambda n=n: steps_asked()[n:], what=f"run {n} to wait")[0]
                assert asked["body"]["order"] == {"n": n}
                assert len(steps_asked()) == n + 1  # the next run has not started
                done = httpx.post(asked["body"]["callbackUrl"], json={"ok": n}, trust_env=False)
                assert done.status_code == 202
                wait_for(
                    lambda n=n: server.api("GET", f"runs/{ids[n]}")["status"] == "Succeeded",
                    what=f"run {n} to succeed",
                )
        finally:
            kernel.shutdown()
            server.stop()
