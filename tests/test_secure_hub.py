"""Secure data in the hub's own records (issue 11: Logic Apps' runtimeConfiguration.secureData).

A real Jupyter server with hooknb, a real subscriber service and real callbacks on loopback; the
kernel side runs in the test process on the server's loop. A webhook step, an Http step and a
trigger that keep their inputs and outputs secure: the run gets every real value (and so does
a kernel that adopts it after a restart), while nothing the hub serves for people - api/waits,
api/runs/<id>, api/callbacks, api/workflows, trigger history, the page and its snapshot - shows
them: "Content not shown due to security configuration." stands in their place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import started_runs, until, waiting
from subscribers import Recorder

import hooknb
from hooknb.http_model.redaction import SECURED
from hooknb.kernel.client import HubClient
from hooknb.kernel.discovery import HubAddress

IN = "in-5ecret-of-the-requests"  # in subscribe, unsubscribe and Http requests (inputs)
OUT = "out-5ecret-of-the-answers"  # in every answer the service gives (outputs)
CB = "cb-5ecret-of-the-callbacks"  # in callbacks' body, query and headers (outputs)
BOTH = ("inputs", "outputs")
SECURE_DATA = {"secureData": {"properties": ["inputs", "outputs"]}}


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    return {"reconnect_grace": 0}


@pytest.fixture
def new_kernel(
    server_url: str, server_token: str, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[Callable[[], HubClient]]:
    """Kernel-side connections (each a kernel of its own), closed at the end."""
    made: list[HubClient] = []

    def make() -> HubClient:
        made.append(HubClient(HubAddress(server_url, server_token, "test"), loop=jp_asyncio_loop))
        return made[-1]

    yield make
    for client in made:
        jp_asyncio_loop.run_until_complete(client.aclose())


async def answers_with_a_secret(
    recorder: Recorder, request: dict[str, Any]
) -> tuple[int, Any, dict[str, str]]:
    return 200, {"id": f"sub-{len(recorder.requests)}", "token": OUT}, {}


async def api(jp_fetch: Any, *path: str, **params: str) -> Any:
    return json.loads((await jp_fetch("hooknb", *path, params=params)).body)


async def everything_shown(jp_fetch: Any, workflow: str, run_id: str) -> dict[str, str]:
    """Every view the hub serves for people of this workflow and run, as text."""
    shown = {
        "api/waits": await api(jp_fetch, "api", "waits"),
        "api/waits?run": await api(jp_fetch, "api", "waits", run=run_id),
        "api/runs/<id>": await api(jp_fetch, "api", "runs", run_id),
        "api/runs": await api(jp_fetch, "api", "runs"),
        "api/callbacks": await api(jp_fetch, "api", "callbacks"),
        "api/workflows": await api(jp_fetch, "api", "workflows"),
        "trigger history": await api(jp_fetch, "api", "workflows", workflow, "triggers"),
        "page snapshot": await api(jp_fetch, format="json"),
    }
    texts = {name: json.dumps(value) for name, value in shown.items()}
    for wait in shown["api/waits"]["waits"]:
        one = await api(jp_fetch, "api", "waits", wait["id"])
        texts[f"api/waits/{wait['id']}"] = json.dumps(one)
    texts["page"] = (await jp_fetch("hooknb")).body.decode()
    return texts


def assert_hidden(texts: dict[str, str], *secrets: str) -> None:
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} is shown in {name}"


async def test_a_python_workflow_s_secure_steps_and_trigger_are_hidden_by_the_hub(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: dict[str, Any] = {}
    with Recorder(answers_with_a_secret) as service:
        trigger = hooknb.HttpWebhookTrigger(
            subscribe={
                "method": "POST",
                "uri": service.url + "topic",
                "body": {"callbackUrl": hooknb.CALLBACK_URL, "pin": IN},
            },
            unsubscribe={"method": "POST", "uri": service.url + "untopic", "body": {"pin": IN}},
            secure=BOTH,
        )

        @hooknb.workflow(trigger=trigger, hub=hub, name="secret_py")
        async def secret_py(run: Any) -> Any:
            seen["trigger"] = run.trigger.body
            seen["trigger query"] = run.trigger.queries
            reply = await run.webhook(
                "Ask",
                subscribe={
                    "method": "POST",
                    "uri": service.url + "sub",
                    "headers": {"X-Pin": IN},
                    "body": {"callbackUrl": hooknb.CALLBACK_URL, "pin": IN},
                },
                # Made from the subscribe response: the kernel gets it as it came.
                unsubscribe=lambda sub: {
                    "method": "POST",
                    "uri": service.url + "unsub",
                    "body": {"token": sub.body["token"]},
                },
                timeout="PT1M",
                secure=BOTH,
            )
            seen["reply"] = reply.body
            seen["reply header"] = reply.headers.get("x-note")
            answer = await run.http(
                "Call",
                {"method": "POST", "uri": service.url + "call", "body": {"pin": IN}},
                secure=BOTH,
            )
            seen["answer"] = answer.body
            return "done"

        await secret_py.enable_async()
        assert trigger.to_definition()["runtimeConfiguration"] == SECURE_DATA
        trigger_url = service.calls("POST", "/topic")[0]["body"]["callbackUrl"]
        posted = await http.post(
            f"{trigger_url}&k={CB}", json={"secret": CB}, headers={"X-Note": CB}
        )
        assert posted.status_code == 202
        (run,) = await started_runs(secret_py, 1)
        step = await waiting(run, "Ask")
        posted = await http.post(
            f"{step.callback_url}&k={CB}", json={"secret": CB}, headers={"X-Note": CB}
        )
        assert posted.status_code == 202
        await until(lambda: run.done, 30, "the run to end")
        assert run.status == "Succeeded", run.error
        await until(lambda: service.calls("POST", "/unsub"), what="the unsubscribe call")

        # The run had every real value, and the services got the real requests.
        assert seen == {
            "trigger": {"secret": CB},
            "trigger query": {"k": CB},
            "reply": {"secret": CB},
            "reply header": CB,
            "answer": {"id": seen["answer"]["id"], "token": OUT},
        }
        assert service.calls("POST", "/sub")[0]["body"]["pin"] == IN
        assert service.calls("POST", "/unsub")[0]["body"] == {"token": OUT}
        assert service.calls("POST", "/call")[0]["body"] == {"pin": IN}

        await secret_py.disable_async()
        await until(lambda: service.calls("POST", "/untopic"), what="the trigger's unsubscribe")
        texts = await everything_shown(jp_fetch, "secret_py", run.id)
        assert_hidden(texts, IN, OUT, CB)
        for name in ("api/waits", "api/runs/<id>", "api/callbacks", "api/workflows", "page"):
            assert SECURED in texts[name], name
        assert IN not in caplog.text  # nor in the server's debug log of its calls

        shown = await api(jp_fetch, "api", "runs", run.id)
        (wait,) = shown["waits"]
        assert wait["secure"] == ["inputs", "outputs"]
        assert wait["subscription"] == SECURED
        assert wait["callback"]["body"] == wait["callback"]["headers"] == SECURED
        assert [(c["purpose"], c["request"], c["response"]) for c in wait["calls"]] == [
            ("subscribe", SECURED, SECURED),
            ("unsubscribe", SECURED, SECURED),
        ]
        assert shown["trigger"]["body"] == shown["trigger"]["queries"] == SECURED
        assert shown["actions"]["Call"]["inputs"] == shown["actions"]["Call"]["outputs"] == SECURED
        record = (await api(jp_fetch, "api", "workflows", "secret_py"))["trigger"]
        assert record["subscription"] == SECURED and record["secure"] == ["inputs", "outputs"]
        assert {c["purpose"] for c in record["calls"]} == {"subscribe", "unsubscribe"}
        assert all(c["request"] == SECURED for c in record["calls"])
        (event,) = (await api(jp_fetch, "api", "workflows", "secret_py", "triggers"))["history"]
        assert event["status"] == "Fired" and event["request"]["body"] == SECURED
        snapshot = await api(jp_fetch, format="json")
        assert {c["body"]["kind"] for c in snapshot["callbacks"]} == {"secured"}

        # Deleted, the workflow takes its setting with it: its callbacks stay hidden.
        await secret_py.delete_async()
        listed = json.dumps(await api(jp_fetch, "api", "callbacks"))
        assert CB not in listed and SECURED in listed


async def test_secure_data_in_a_definition_is_hidden_by_the_hub(
    hub: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    """runtimeConfiguration.secureData on a definition's HttpWebhook trigger, webhook action,
    Http action and Compose: honoured (no note), the run uses the real values, the hub's
    views show none of them."""
    with Recorder(answers_with_a_secret) as service:
        definition = {
            "triggers": {
                "hook": {
                    "type": "HttpWebhook",
                    "inputs": {
                        "subscribe": {
                            "method": "POST",
                            "uri": service.url + "topic",
                            "body": {"callbackUrl": "@{listCallbackUrl()}", "pin": IN},
                        },
                        "unsubscribe": {"method": "POST", "uri": service.url + "untopic"},
                    },
                    "runtimeConfiguration": SECURE_DATA,
                }
            },
            "actions": {
                "Ask": {
                    "type": "HttpWebhook",
                    "inputs": {
                        "subscribe": {
                            "method": "POST",
                            "uri": service.url + "sub",
                            "body": {"callbackUrl": "@{listCallbackUrl()}", "pin": IN},
                        },
                        "unsubscribe": {
                            "method": "POST",
                            "uri": service.url + "unsub",
                            "body": {"token": "@{action().outputs.body.token}"},
                        },
                    },
                    "runtimeConfiguration": SECURE_DATA,
                    "runAfter": {},
                },
                "Call": {
                    "type": "Http",
                    "inputs": {"method": "POST", "uri": service.url + "call", "body": {"pin": IN}},
                    "runtimeConfiguration": SECURE_DATA,
                    "runAfter": {"Ask": ["Succeeded"]},
                },
                "Check": {
                    "type": "Compose",
                    "inputs": [
                        f"@equals(triggerBody()?['secret'], '{CB}')",
                        f"@equals(body('Ask')?['secret'], '{CB}')",
                        f"@equals(body('Call')?['token'], '{OUT}')",
                    ],
                    "runtimeConfiguration": {"secureData": {"properties": ["inputs"]}},
                    "runAfter": {"Call": ["Succeeded"]},
                },
            },
        }
        wf = hooknb.Workflow.from_definition(definition, name="secret_wdl", hub=hub, host="kernel")
        assert not [n for n in wf.definition.notes if "secureData" in n], wf.definition.notes
        assert wf.trigger.secure == {"inputs", "outputs"}
        await wf.enable_async()
        trigger_url = service.calls("POST", "/topic")[0]["body"]["callbackUrl"]
        assert (await http.post(trigger_url, json={"secret": CB})).status_code == 202
        (run,) = await started_runs(wf, 1)
        step = await waiting(run, "Ask")
        assert (await http.post(step.callback_url, json={"secret": CB})).status_code == 202
        await until(lambda: run.done, 30, "the run to end")
        assert run.status == "Succeeded", run.error
        assert run.outputs("Check") == [True, True, True]
        await until(lambda: service.calls("POST", "/unsub"), what="the unsubscribe call")
        assert service.calls("POST", "/unsub")[0]["body"] == {"token": OUT}

        texts = await everything_shown(jp_fetch, "secret_wdl", run.id)
        assert_hidden(texts, IN, OUT, CB)
        assert SECURED in texts["api/callbacks"] and SECURED in texts["api/workflows"]
        await wf.disable_async()


async def test_a_kernel_that_adopts_the_run_replays_it_with_the_real_values(
    new_kernel: Callable[[], HubClient], http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    """The callback of a secure step that comes while no kernel runs the run is hidden from
    every view, while the history a kernel adopts the run with holds it exactly, and the
    replayed run gets it."""
    results: list[Any] = []

    def define(hub: HubClient, service: Recorder) -> Any:
        @hooknb.workflow(name="secret_replay", hub=hub)
        async def secret_replay(run: Any) -> Any:
            token = await run.step("Fetch", lambda run: {"apiKey": IN}, secure="outputs")
            reply = await run.webhook(
                "Ask",
                subscribe={
                    "method": "POST",
                    "uri": service.url + "sub",
                    "body": {"callbackUrl": hooknb.CALLBACK_URL, "key": token["apiKey"]},
                },
                timeout="PT1H",
                secure=BOTH,
            )
            results.append((token, reply.body))
            return "done"

        return secret_replay

    with Recorder(answers_with_a_secret) as service:
        first = new_kernel()
        flow = define(first, service)
        run = await flow.start_async(body={})
        url = (await waiting(run, "Ask")).callback_url
        await first.flush()
        await first.aclose()  # the kernel dies; its run waits on
        assert (await http.post(url, json={"secret": CB})).status_code == 202

        assert_hidden(await everything_shown(jp_fetch, "secret_replay", run.id), IN, OUT, CB)
        # The adopt answer is the kernel's, not a view: the history holds the real values.
        probe = await jp_fetch(
            "hooknb",
            "api",
            "workflows",
            "secret_replay",
            "adopt",
            method="POST",
            body=json.dumps({"client": "probe"}),
        )
        history = json.loads(probe.body)["runs"][0]
        steps = {step["step"]: step for step in history["steps"]}
        assert json.loads(steps["Fetch"]["value"]) == {"apiKey": IN}
        assert steps["Ask"]["wait"]["subscription"]["body"]["token"] == OUT
        assert CB in json.dumps(steps["Ask"]["wait"]["callback"])

        second = new_kernel()
        again = define(second, service)
        await again.adopt_async()
        (adopted,) = again.runs
        await asyncio.wait_for(adopted._wait(), 10)
        assert adopted.status == "Succeeded", adopted.error
        assert results == [({"apiKey": IN}, {"secret": CB})]
        assert len(service.calls("POST", "/sub")) == 1  # replayed, not subscribed again
        assert_hidden(await everything_shown(jp_fetch, "secret_replay", run.id), IN, OUT, CB)


def test_a_schema_3_store_gets_the_secure_columns(tmp_path: Path) -> None:
    """A store made before secure data (schema 3) opens: its rows are kept and are not
    secure; the new columns are there."""
    from hooknb.server.store import SCHEMA_VERSION, Store

    path = tmp_path / "v3.sqlite"
    Store(path).open().close()
    conn = sqlite3.connect(path)
    for table, column in (
        ("waits", "secure"),
        ("steps", "secure"),
        ("outbox", "secure"),
        ("callbacks", "secure"),
        ("workflows", "trigger_secure"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.executescript(
        """
        UPDATE meta SET value = 3 WHERE key = 'schema_version';
        INSERT INTO workflows (name, created, updated) VALUES ('old', 1.0, 1.0);
        INSERT INTO waits (id, run_id, workflow, step, state, created)
            VALUES ('w0000000000000000', 'r1', 'old', 'Ask', 'waiting', 1.0);
        INSERT INTO steps (run_id, name, kind, position, state)
            VALUES ('r1', 'Ask', 'HttpWebhook', 0, 'running');
        INSERT INTO outbox (owner, purpose, request, headers, state, created)
            VALUES ('wait:w0000000000000000', 'subscribe', '{}', '{}', 'done', 1.0);
        INSERT INTO callbacks (kind, target, received, method, headers, query, body)
            VALUES ('trigger', 'old', 1.0, 'POST', '[]', '{}', x'7b7d');
        """
    )
    conn.commit()
    conn.close()
    store = Store(path).open()
    try:
        read = store.reader.execute
        assert int(read("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]) == (
            SCHEMA_VERSION
        )
        assert read("SELECT id, secure FROM waits").fetchall() == [("w0000000000000000", 0)]
        assert read("SELECT name, secure FROM steps").fetchall() == [("Ask", 0)]
        assert read("SELECT purpose, secure FROM outbox").fetchall() == [("subscribe", 0)]
        assert read("SELECT target, secure FROM callbacks").fetchall() == [("old", None)]
        assert read("SELECT name, trigger_secure FROM workflows").fetchall() == [("old", 0)]
    finally:
        store.close()


def test_secure_data_on_triggers_in_definitions() -> None:
    """secureData on an HttpWebhook trigger is honoured and exported again; on a Request
    trigger it is a note."""
    from hooknb.wdl.definitions import load

    webhook = {
        "type": "HttpWebhook",
        "inputs": {"subscribe": {"method": "POST", "uri": "http://x/"}},
        "runtimeConfiguration": {"secureData": {"properties": ["outputs"]}},
    }
    loaded = load({"triggers": {"hook": webhook}, "actions": {}})
    assert loaded.trigger is not None and loaded.trigger.secure == {"outputs"}
    assert not [n for n in loaded.notes if "secureData" in n]
    trigger = hooknb.HttpWebhookTrigger(
        {"method": "POST", "uri": "http://x/"}, secure="outputs"
    ).to_definition()
    assert trigger["runtimeConfiguration"] == webhook["runtimeConfiguration"]
    with pytest.raises(ValueError, match="secure takes"):
        hooknb.HttpWebhookTrigger({"method": "POST", "uri": "http://x/"}, secure="body")
    request = {
        "type": "Request",
        "kind": "Http",
        "inputs": {"schema": {}},
        "runtimeConfiguration": {"secureData": {"properties": ["outputs"]}},
    }
    loaded = load({"triggers": {"manual": request}, "actions": {}})
    assert [n for n in loaded.notes if "HttpWebhook triggers only" in n]


async def test_a_trigger_made_not_secure_again_keeps_what_came_while_it_was_secure_hidden(
    http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    """Through the API as a kernel uses it: a new secure setting subscribes again; the calls,
    subscription and callbacks of the secure time stay secured, the new ones are shown."""

    async def put(path: str, body: dict[str, Any]) -> Any:
        answer = await jp_fetch(
            "hooknb", "api", "workflows", *path.split("/"), method="PUT", body=json.dumps(body)
        )
        return json.loads(answer.body)

    with Recorder(answers_with_a_secret) as service:
        await put("toggled", {"client": "c", "trigger": "T"})
        subscribe = {"method": "POST", "uri": service.url + "topic", "body": {"pin": IN}}
        record = await put(
            "toggled/trigger", {"client": "c", "subscribe": subscribe, "secure": ["outputs"]}
        )
        url = record["trigger"]["callbackUrl"]
        assert record["trigger"]["subscription"] == SECURED
        assert (await http.post(url, json={"secret": CB})).status_code == 202

        record = await put("toggled/trigger", {"client": "c", "subscribe": subscribe})
        assert len(service.calls("POST", "/topic")) == 2  # subscribed again
        assert record["trigger"]["subscription"]["body"]["token"] == OUT  # made without it
        calls = [
            (c["request"] == SECURED, c["response"] == SECURED) for c in record["trigger"]["calls"]
        ]
        assert calls == [(False, True), (False, False)]  # secure outputs only, then none
        assert (await http.post(url, json={"open": "shown"})).status_code == 202
        listed = json.dumps(await api(jp_fetch, "api", "callbacks", target="toggled"))
        assert CB not in listed and SECURED in listed and "shown" in listed
        with pytest.raises(Exception, match="400"):
            await put("toggled/trigger", {"client": "c", "subscribe": subscribe, "secure": ["x"]})
