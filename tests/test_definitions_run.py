"""Logic Apps definitions running on hooknb: a real Jupyter server, real local services.

The real public definitions (../shared/reference/logicapps-definitions, see INDEX.md) call
placeholder or unreachable endpoints (``<RunbookWebhookUrl>``, ``https://<external-service>
.com/subscribe``, an ARM ``[listCallbackUrl(...)]``): ``endpoints=`` maps them to local
subscribers that play the real services, then the tests check the calls those services get
and the runs' outputs. Tests that need the files skip when the folder is absent.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from helpers import until
from subscribers import Recorder

import hooknb
from hooknb.kernel.run import Run
from hooknb.kernel.triggers import RecurrenceTrigger

REFERENCE = Path("/work/shared/reference/logicapps-definitions")
_local = Path(__file__).resolve().parents[2] / "shared" / "reference" / "logicapps-definitions"
if _local.is_dir():
    REFERENCE = _local
WORKFLOWS = REFERENCE / "workflows"
SCHEMA_FILE = REFERENCE / "schema" / "workflowdefinition-2016-06-01.wdl-schema.cgillum.json"
needs_reference = pytest.mark.skipif(
    not WORKFLOWS.is_dir(), reason="the shared reference definitions are not available"
)
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04-logic-apps-definitions.ipynb"

Answer = tuple[int, Any, dict[str, str]]


def real(name: str) -> Path:
    return WORKFLOWS / name


def fragment(name: str) -> Any:
    return json.loads("{" + real(name).read_text() + "}")


_tasks: set[asyncio.Task[Any]] = set()


def post_later(url: str, payload: Any = None, *, delay: float = 0.05) -> None:
    """POST to a callback URL shortly (from the subscriber's loop), as a service would."""

    async def post() -> None:
        await asyncio.sleep(delay)
        async with httpx.AsyncClient(trust_env=False) as client:
            if payload is None:
                await client.post(url)  # Invoke-RestMethod -Method Post: no body
            else:
                await client.post(url, json=payload)

    task = asyncio.get_running_loop().create_task(post())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def service(
    routes: dict[str, Callable[[dict[str, Any]], Answer | Awaitable[Answer]]],
) -> Recorder:
    """A Recorder answering per path (unknown paths: 200 {})."""

    async def respond(recorder: Recorder, request: dict[str, Any]) -> Answer:
        handler = routes.get(request["path"])
        if handler is None:
            return 200, {}, {}
        answer = handler(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer  # type: ignore[return-value]

    return Recorder(respond)


def calls_back(payload: Any = None, *, key: str = "callbackUrl", delay: float = 0.05) -> Any:
    """A webhook subscriber that calls the callback URL in the body back with ``payload``."""

    def handler(request: dict[str, Any]) -> Answer:
        body = request["body"]
        url = body if isinstance(body, str) else (body or {}).get(key)
        if url:
            post_later(url, payload, delay=delay)
        return 202, {"id": "job-1"}, {}

    return handler


async def finished(run: Run, timeout: float = 15) -> Run:
    return await asyncio.wait_for(run._await(), timeout)


def statuses(run: Run) -> dict[str, str]:
    return {name: action.status for name, action in run.actions.items()}


# -- the real definitions ----------------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize(
    "name",
    [
        "eulogious__AzureRunbooks__autoscalewvd.json",
        "RayPering__WindowsVirtualDesktop__autoscalewvd.json",
    ],
)
async def test_autoscale_runbook_definitions(hub: Any, name: str) -> None:
    """#2 and #7: a Recurrence-triggered HttpWebhook action to an Azure Automation runbook,
    which calls back with an empty POST (Invoke-RestMethod -Method Post -Uri $callbackurl)."""
    with service({"/runbook": calls_back(None)}) as runbook:
        wf = hooknb.Workflow.from_definition(
            real(name), hub=hub, endpoints={"<RunbookWebhookUrl>": runbook.url + "runbook"}
        )
        assert isinstance(wf.trigger, RecurrenceTrigger)
        run = await finished(await wf.start_async())  # the portal's "Run trigger"
        assert run.status == "Succeeded", run.error
        action = run.actions["HTTP_Webhook"]
        assert action.status == "Succeeded" and action.outputs.body is None
        [subscribe] = runbook.calls("POST", "/runbook")
        body = subscribe["body"]
        assert body["callbackUrl"] == action.callback_url
        assert body["peakday"] == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
        assert body["hostpoolname"] == "<WVDHostPoolName>"  # placeholders stay data
        assert subscribe["headers"]["x-ms-workflow-operation-name"] == "HTTP_Webhook"
        await asyncio.sleep(0.1)
        assert len(runbook.requests) == 1  # "unsubscribe": {} makes no call


@needs_reference
async def test_fullimagedeploy_trigger_and_action(hub: Any, http: httpx.AsyncClient) -> None:
    """#3: an HttpWebhook trigger without a callback URL in its subscribe request, and an
    action whose body uses listCallbackURL() (upper-case URL)."""
    with service({"/runbook": calls_back({"image": "done"})}) as runbook:
        wf = hooknb.Workflow.from_definition(
            real("RayPering__WindowsVirtualDesktop__fullimagedeploy.json"),
            name="fullimagedeploy",
            hub=hub,
            endpoints={"<RunbookWebhookUrl>": runbook.url + "runbook"},
        )
        await wf.enable_async()
        [subscribe] = runbook.calls("POST", "/runbook")
        assert subscribe["body"] is None  # method and uri only: the service is never told
        # ... so a service that knows the URL another way starts runs with it
        answer = await http.post(wf.callback_url, json={"build": 7})
        assert answer.status_code == 202
        [run] = await until(lambda: wf.runs, what="a trigger run")
        await finished(run)
        assert run.status == "Succeeded", run.error
        assert run.trigger.body == {"build": 7}
        action_sub = runbook.calls("POST", "/runbook")[1]
        assert action_sub["body"]["callbackUrl"] == run.actions["HTTP_Webhook"].callback_url
        assert action_sub["body"]["templateFilePath"] == "<TemplateName>"
        assert run.actions["HTTP_Webhook"].outputs.body == {"image": "done"}
        await wf.disable_async()
        assert len(runbook.requests) == 2  # "unsubscribe": {}: nothing to call


@needs_reference
async def test_trigger_only_definition_starts_runs(hub: Any) -> None:
    """#4: the HttpWebhook trigger's body carries listCallbackURL(); "actions": {}."""
    with service({"/runbook": calls_back({"event": 1})}) as runbook:
        wf = hooknb.Workflow.from_definition(
            real("RayPering__WindowsVirtualDesktop__fullimagedeploy-97218b7-trigger.json"),
            name="trigger_only",
            hub=hub,
            endpoints={"<RunbookWebhookUrl>": runbook.url + "runbook"},
        )
        await wf.enable_async()
        assert runbook.requests[0]["body"]["callbackUrl"] == wf.callback_url
        [run] = await until(lambda: wf.runs, what="the run the service started")
        await finished(run)
        assert run.status == "Succeeded" and run.actions == {}
        # A definition that is only a trigger records what the trigger received as its result.
        assert run.result == run.trigger.body == {"event": 1}
        await wf.disable_async()


@needs_reference
async def test_definition_without_callback_waits_until_cancelled(hub: Any) -> None:
    """#5: the subscribe body has no callback URL, so nothing can resume the run (the
    RDS-Templates#431 symptom); cancelling it ends it."""
    with service({"/runbook": lambda request: (202, {"id": "job"}, {})}) as runbook:
        wf = hooknb.Workflow.from_definition(
            real("RayPering__WindowsVirtualDesktop__fullimagedeploy-aef2544-nocallback.json"),
            hub=hub,
            endpoints={"<RunbookWebhookUrl>": runbook.url + "runbook"},
        )
        run = await wf.start_async()
        await until(lambda: run.actions.get("HTTP_Webhook", None) and run.status == "Waiting")
        assert "callbackUrl" not in runbook.requests[0]["body"]
        run.cancel()
        await finished(run)
        assert run.status == "Cancelled" and statuses(run) == {"HTTP_Webhook": "Cancelled"}


@needs_reference
async def test_docs_action_with_timeout_limit(hub: Any) -> None:
    """#10: limit.timeout PT1H becomes the step's deadline; listCallBackUrl() (capital B)."""
    with service({"/subscribe": calls_back({"ok": True}, delay=0.3)}) as external:
        wf = hooknb.Workflow.from_definition(
            real("MicrosoftDocs__azure-docs__connectors-native-webhook-action.json"),
            name="docs_action",
            hub=hub,
            endpoints={"https://<external-service>.com/subscribe": external.url + "subscribe"},
        )
        run = await wf.start_async()
        action = await until(lambda: run.actions.get("Run_HTTP_Webhook_action"))
        await until(lambda: action.deadline)
        assert abs(action.deadline - time.time() - 3600) < 30
        await finished(run)
        assert run.status == "Succeeded" and action.outputs.body == {"ok": True}


@needs_reference
async def test_secondary_key_trigger_sends_its_url_as_a_text_body(hub: Any) -> None:
    """#11 (wrapped as a trigger): the subscribe body is "@listCallbackUrl()", a string."""
    bare = json.loads(
        real(
            "MicrosoftDocs__azure-docs__connectors-native-webhook-trigger-secondary-key.json"
        ).read_text()
    )
    with service({}) as subscriber:
        wf = hooknb.Workflow.from_definition(
            {"triggers": {"HTTP_Webhook": bare}},
            name="secondary",
            hub=hub,
            endpoints={"<subscription-URL>": subscriber.url + "subscribe"},
        )
        assert wf.trigger.access_key_type == "Secondary"
        await wf.enable_async()
        [subscribe] = subscriber.requests
        assert subscribe["body"] == wf.callback_url
        assert subscribe["headers"]["content-type"].startswith("text/plain")


@needs_reference
async def test_eventhub_trigger_subscribes_and_unsubscribes(hub: Any) -> None:
    """#1: both requests send callbackUrl and a content-type header; a URI prefix mapping."""
    with service({}) as api:
        wf = hooknb.Workflow.from_definition(
            real("logicappsio__EventHubAPI__readme-ehubtrigger.json"),
            name="ehub",
            hub=hub,
            endpoints={"https://eventhubapiapp.azurewebsites.net:443/": api.url},
        )
        await wf.enable_async()
        await wf.disable_async()
        subscribe, unsubscribe = api.requests
        assert (subscribe["path"], unsubscribe["path"]) == ("/Subscribe", "/Unsubscribe")
        assert subscribe["body"]["callbackUrl"] == wf.callback_url
        assert subscribe["body"]["eventHubName"] == "[hubname]"
        assert unsubscribe["body"] == {"callbackUrl": wf.callback_url}
        assert unsubscribe["headers"]["content-type"] == "application/json"


@needs_reference
async def test_pubsubhubbub_trigger_with_url_alias(hub: Any) -> None:
    """#12, its trailing comma removed: unsubscribe uses "url" and workflow().endpoint."""
    text = real("MicrosoftDocs__azure-docs__workflow-actions-triggers-httpwebhook-example.json")
    repaired = text.read_text().replace("},\n      },", "}\n      },", 1)
    with service({}) as hub_service:
        wf = hooknb.Workflow.from_definition(
            {"triggers": json.loads("{" + repaired + "}")},
            name="pubsub",
            hub=hub,
            endpoints={"https://pubsubhubbub.appspot.com/": hub_service.url},
        )
        await wf.enable_async()
        await wf.disable_async()
        subscribe, unsubscribe = hub_service.requests
        assert subscribe["body"]["hub.callback"] == wf.callback_url
        assert subscribe["body"]["hub.mode"] == "subscribe"
        assert (
            unsubscribe["path"] == "/subscribe" and unsubscribe["body"]["hub.mode"] == "unsubscribe"
        )
        callback = unsubscribe["body"]["hub.callback"]
        assert callback == f"{hub.url}hooknb/api/workflows/pubsub{wf.callback_url}"


@needs_reference
@pytest.mark.parametrize(
    ("backend", "resolution", "run_status"),
    [
        (500, {"Status": "Failed", "code": "E42", "description": "backend down"}, "Failed"),
        (500, {"Status": "Succeeded"}, "Succeeded"),
        (200, None, "Succeeded"),
    ],
    ids=["resolved-as-failed", "resolved-as-succeeded", "nothing-to-handle"],
)
async def test_invictus_exception_handler_scope(
    hub: Any, backend: int, resolution: Any, run_status: str
) -> None:
    """#9: the fragment is the exception handler of a Scope; its HttpWebhook calls another
    logic app (an ARM listCallbackUrl(...) URI) that resolves the exception and calls back;
    Terminate then ends the run with that status."""
    member = fragment("invictus-integration__docs-ifa__exceptionhandler-scope.json")
    arm_uri = member["Scope_ExceptionHandling"]["actions"]["ResolveException"]["inputs"][
        "subscribe"
    ]["uri"]
    routes = {
        "/backend": lambda request: (backend, {"status": backend}, {}),
        "/resolve": calls_back(resolution, key="callbackurl"),
    }
    with service(routes) as services:
        definition = {
            "parameters": {
                "resourceGroupName": {"type": "String"},
                "subscriptionId": {"type": "String", "defaultValue": "sub-1"},
            },
            "triggers": {"manual": {"type": "Request", "kind": "Http"}},
            "actions": {
                "Scope": {
                    "type": "Scope",
                    "runAfter": {},
                    "actions": {
                        "Call_backend": {
                            "type": "Http",
                            "inputs": {
                                "method": "POST",
                                "uri": services.url + "backend",
                                "retryPolicy": {"type": "none"},
                            },
                        }
                    },
                },
                **member,
            },
        }
        wf = hooknb.Workflow.from_definition(
            definition,
            {"resourceGroupName": "rg-int"},
            name="invictus",
            hub=hub,
            endpoints={arm_uri: services.url + "resolve"},
        )
        run = await finished(await wf.start_async(body={"order": 1}))
        assert run.status == run_status, run.error
        if backend == 200:
            assert statuses(run) == {
                "Scope": "Succeeded",
                "Call_backend": "Succeeded",
                "Scope_ExceptionHandling": "Skipped",
                "ResolveException": "Skipped",
                "Terminate": "Skipped",
            }
            return
        assert statuses(run) == {
            "Call_backend": "Failed",
            "Scope": "Failed",
            "ResolveException": "Succeeded",
            "Terminate": "Succeeded",
            # a Terminate inside a Scope ends the run: the Scope ends with the run's status
            "Scope_ExceptionHandling": run_status,
        }
        assert run.actions["Call_backend"].outputs.status_code == 500
        assert run.actions["ResolveException"].scope == "Scope_ExceptionHandling"
        [resolve] = services.calls("POST", "/resolve")
        assert resolve["body"] == {
            "callbackurl": run.actions["ResolveException"].callback_url,
            "logicApp": "invictus",
            "resourceGroup": "rg-int",
            "run": run.id,
            "subscription": "sub-1",
            "correlationId": run.id,
        }
        if run_status == "Failed":
            assert run.error == "the run was terminated (Failed): E42: backend down"
        else:
            assert run.error is None


@needs_reference
async def test_arm_template_definition_reports_what_cannot_run(hub: Any) -> None:
    """#14: the webhook URI and body and the recurrence interval are ARM expressions."""
    path = real("Azure__RDS-Templates__wvd-scaling-azurelogicappcreation.json")
    wf = hooknb.Workflow.from_definition(path, name="arm", hub=hub)
    with pytest.raises(hooknb.HookNBError, match="interval is the expression"):
        await wf.enable_async()
    run = await finished(await wf.start_async())
    assert run.status == "Failed"
    assert (
        "ARM template expression \"[parameters('webhookURI')]\""
        in run.actions["HTTP_Webhook"].error
    )
    with service({"/scale": calls_back(None)}) as scaler:
        mapped = hooknb.Workflow.from_definition(
            path,
            name="arm2",
            hub=hub,
            endpoints={"[parameters('webhookURI')]": scaler.url + "scale"},
        )
        run = await mapped.start_async()
        await until(lambda: scaler.requests, what="the subscribe call")
        # the body is the ARM string, sent as the text it is (and no callback URL: it waits)
        assert scaler.requests[0]["body"] == "[parameters('actionSettingsBody')]"
        run.cancel()
        await finished(run)


# -- the HTTP action ----------------------------------------------------------------------------


def polling(rounds: int, retry_after: str | None = "0.05") -> Any:
    """POST /jobs answers 202 + a relative location; the location answers 202 ``rounds``
    times, then 200."""
    seen = {"polls": 0}

    def start(request: dict[str, Any]) -> Answer:
        headers = {"Location": "/jobs/1/status"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return 202, {"accepted": True}, headers

    def status(request: dict[str, Any]) -> Answer:
        seen["polls"] += 1
        if seen["polls"] <= rounds:
            headers = {"Location": "/jobs/1/status"}
            if retry_after is not None:
                headers["Retry-After"] = retry_after
            return 202, {"progress": seen["polls"]}, headers
        return 200, {"done": True, "polls": seen["polls"]}, {"X-Job": "1"}

    return {"/jobs": start, "/jobs/1/status": status}


async def test_http_action_polls_202_location_until_done(hub: Any) -> None:
    with service(polling(2)) as jobs:
        wf = hooknb.Workflow.declare("polling", hub=hub)
        wf.add_http("Start_job", {"method": "POST", "uri": jobs.url + "jobs", "body": {"n": 1}})
        wf.add_compose("Result", "@body('Start_job')")
        run = await finished(await wf.start_async())
        assert run.status == "Succeeded", run.error
        action = run.actions["Start_job"]
        assert action.outputs.status_code == 200
        assert action.outputs.headers["x-job"] == "1"
        assert run.outputs("Result") == {"done": True, "polls": 3}
        methods = [(r["method"], r["path"]) for r in jobs.requests]
        assert methods == [("POST", "/jobs")] + [("GET", "/jobs/1/status")] * 3
        assert jobs.requests[1]["headers"]["x-ms-workflow-operation-name"] == "Start_job"


async def test_http_action_async_pattern_off_and_default_interval(hub: Any) -> None:
    with service(polling(0, retry_after=None)) as jobs:
        wf = hooknb.Workflow.declare("polling_off", hub=hub)
        wf.add_http("No_async", {"method": "POST", "uri": jobs.url + "jobs"}, async_pattern=False)
        wf.add_http("Default_interval", {"method": "POST", "uri": jobs.url + "jobs"})
        started = time.monotonic()
        run = await finished(await wf.start_async())
        assert run.status == "Succeeded", run.error
        assert run.actions["No_async"].outputs.status_code == 202  # 2xx: Succeeded as is
        assert run.actions["Default_interval"].outputs.status_code == 200
        assert time.monotonic() - started >= 0.95  # no retry-after: poll after 1 s
        assert [r["method"] for r in jobs.requests] == ["POST", "POST", "GET"]


async def test_http_action_failures_timeouts_retries_and_cancel(hub: Any) -> None:
    attempts = {"n": 0}

    def flaky(request: dict[str, Any]) -> Answer:
        attempts["n"] += 1
        return 503, {"try": attempts["n"]}, {"Retry-After": "0"}

    routes = {
        "/fail": lambda request: (500, {"error": "boom"}, {}),
        "/flaky": flaky,
        "/forever": lambda request: (202, {}, {"Location": "/forever", "Retry-After": "0.05"}),
    }
    with service(routes) as backend:
        definition = {
            "triggers": {"manual": {"type": "Request", "kind": "Http"}},
            "actions": {
                "Fails": {
                    "type": "Http",
                    "inputs": {
                        "method": "GET",
                        "uri": backend.url + "fail",
                        "retryPolicy": {"type": "none"},
                    },
                    "runAfter": {},
                },
                "Handle_failure": {
                    "type": "Compose",
                    "inputs": "@outputs('Fails')['statusCode']",
                    "runAfter": {"Fails": ["Failed"]},
                },
                "Retries": {
                    "type": "Http",
                    "inputs": {
                        "method": "GET",
                        "uri": backend.url + "flaky",
                        "retryPolicy": {"type": "fixed", "count": 2, "interval": "PT0.05S"},
                    },
                    "runAfter": {},
                },
                "Handle_retries": {
                    "type": "Compose",
                    "inputs": "@body('Retries')",
                    "runAfter": {"Retries": ["Failed"]},
                },
                "Slow": {
                    "type": "Http",
                    "inputs": {"method": "GET", "uri": backend.url + "forever"},
                    "limit": {"timeout": "PT0.4S"},
                    "runAfter": {},
                },
                "Handle_timeout": {
                    "type": "Compose",
                    "inputs": "timed out",
                    "runAfter": {"Slow": ["TimedOut"]},
                },
                "Refused": {
                    "type": "Http",
                    "inputs": {
                        "method": "GET",
                        "uri": "http://127.0.0.1:9/",
                        "retryPolicy": {"type": "none"},
                    },
                    "runAfter": {},
                },
                "Handle_refused": {
                    "type": "Compose",
                    "inputs": "ok",
                    "runAfter": {"Refused": ["Failed"]},
                },
            },
        }
        wf = hooknb.Workflow.from_definition(definition, name="http_failures", hub=hub)
        run = await finished(await wf.start_async())
        assert run.status == "Succeeded", run.error  # every failure was handled
        assert statuses(run) == {
            "Fails": "Failed",
            "Retries": "Failed",
            "Slow": "TimedOut",
            "Refused": "Failed",
            "Handle_failure": "Succeeded",
            "Handle_retries": "Succeeded",
            "Handle_timeout": "Succeeded",
            "Handle_refused": "Succeeded",
        }
        assert run.outputs("Handle_failure") == 500
        assert run.outputs("Handle_retries") == {"try": 3}  # the first try and 2 retries
        assert attempts["n"] == 3
        assert run.actions["Fails"].code == "InternalServerError"
        assert "no final response within 0.4 s" in run.actions["Slow"].error
        assert (
            "connection" in run.actions["Refused"].error.lower()
            or "refused" in run.actions["Refused"].error.lower()
        )

        # cancelling a run stops its polling
        wf2 = hooknb.Workflow.declare("http_cancel", hub=hub)
        wf2.add_http("Poll", {"method": "GET", "uri": backend.url + "forever"})
        before = len(backend.calls("GET", "/forever"))
        run2 = await wf2.start_async()
        await until(lambda: len(backend.calls("GET", "/forever")) >= before + 2, what="polling")
        run2.cancel()
        await finished(run2)
        assert run2.status == "Cancelled" and statuses(run2) == {"Poll": "Cancelled"}
        await asyncio.sleep(0.2)
        seen = len(backend.calls("GET", "/forever"))
        await asyncio.sleep(0.3)
        assert len(backend.calls("GET", "/forever")) == seen


async def test_http_api_errors(hub: Any, jp_fetch: Any) -> None:
    from tornado.httpclient import HTTPClientError

    wf = hooknb.Workflow.declare("http_api", hub=hub)
    run = await wf.start_async()
    await finished(run)
    for body, status in (
        ({"step": "X", "request": {"method": "GET", "uri": "http://127.0.0.1:9/"}}, 409),
        ({"step": "X"}, 400),
    ):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "hooknb", "api", "runs", run.id, "http", method="POST", body=json.dumps(body)
            )
        assert caught.value.code == status
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "hooknb",
            "api",
            "runs",
            "0123456789abcdef",
            "http",
            method="POST",
            body=json.dumps({"step": "X", "request": {}}),
        )
    assert caught.value.code == 404


# -- runAfter, Skipped, Scope, If: real runs ------------------------------------------------------


def http_step(url: str, run_after: dict[str, list[str]] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Http",
        "inputs": {"method": "GET", "uri": url, "retryPolicy": {"type": "none"}},
    }
    if run_after is not None:
        action["runAfter"] = run_after
    return action


def compose_step(
    run_after: dict[str, list[str]] | None = None, inputs: Any = "done"
) -> dict[str, Any]:
    return {"type": "Compose", "inputs": inputs, "runAfter": run_after or {}}


def run_after_cases(
    ok: str, fail: str, hang: str
) -> list[tuple[str, dict[str, Any], dict[str, str], str]]:
    """(case, actions, expected action statuses, expected run status). EXC22's rules."""
    return [
        (
            "unhandled failure skips successors and fails the run",
            {"A": http_step(fail, {}), "B": compose_step({"A": ["Succeeded"]})},
            {"A": "Failed", "B": "Skipped"},
            "Failed",
        ),
        (
            "runAfter Failed handles it",
            {"A": http_step(fail, {}), "B": compose_step({"A": ["Failed"]})},
            {"A": "Failed", "B": "Succeeded"},
            "Succeeded",
        ),
        (
            "an unneeded handler is skipped, the run succeeds",
            {"A": http_step(ok, {}), "B": compose_step({"A": ["Failed"]})},
            {"A": "Succeeded", "B": "Skipped"},
            "Succeeded",
        ),
        (
            "runAfter Skipped",
            {
                "A": http_step(fail, {}),
                "B": compose_step({"A": ["Succeeded"]}),
                "C": compose_step({"B": ["Skipped"]}),
            },
            {"A": "Failed", "B": "Skipped", "C": "Succeeded"},
            "Succeeded",
        ),
        (
            "runAfter TimedOut",
            {
                "A": {**http_step(hang, {}), "limit": {"timeout": "PT0.3S"}},
                "B": compose_step({"A": ["TimedOut"]}),
            },
            {"A": "TimedOut", "B": "Succeeded"},
            "Succeeded",
        ),
        (
            "an unhandled timeout times the run out",
            {"A": {**http_step(hang, {}), "limit": {"timeout": "PT0.3S"}}},
            {"A": "TimedOut"},
            "TimedOut",
        ),
        (
            "a failing branch fails the run though the other succeeds",
            {"A": http_step(ok, {}), "B": http_step(fail, {})},
            {"A": "Succeeded", "B": "Failed"},
            "Failed",
        ),
        (
            "a Scope fails with its actions and its handler runs",
            {
                "S": {
                    "type": "Scope",
                    "actions": {"X": http_step(fail, {}), "Y": compose_step({"X": ["Succeeded"]})},
                },
                "H": compose_step({"S": ["Failed", "TimedOut"]}),
            },
            {"X": "Failed", "Y": "Skipped", "S": "Failed", "H": "Succeeded"},
            "Succeeded",
        ),
        (
            "a Scope whose failure was handled inside succeeds",
            {
                "S": {
                    "type": "Scope",
                    "actions": {"X": http_step(fail, {}), "Y": compose_step({"X": ["Failed"]})},
                }
            },
            {"X": "Failed", "Y": "Succeeded", "S": "Succeeded"},
            "Succeeded",
        ),
        (
            # EXC22: "if a branch ends with a Skipped action, that branch's completion status
            # is based on that skipped action's predecessor status": the A -> S branch failed,
            # although the parallel H handled A's failure.
            "a skipped Scope skips its actions; its branch still counts as failed",
            {
                "A": http_step(fail, {}),
                "S": {
                    "type": "Scope",
                    "actions": {"X": compose_step()},
                    "runAfter": {"A": ["Succeeded"]},
                },
                "H": compose_step({"A": ["Failed"]}),
            },
            {"A": "Failed", "S": "Skipped", "X": "Skipped", "H": "Succeeded"},
            "Failed",
        ),
        (
            "If takes the else branch; the other is skipped",
            {
                "I": {
                    "type": "If",
                    "expression": {
                        "or": [{"equals": [1, 2]}, {"greater": ["@triggerBody()?['n']", 10]}]
                    },
                    "actions": {"Big": compose_step()},
                    "else": {"actions": {"Small": compose_step(inputs="@triggerBody()?['n']")}},
                }
            },
            {"I": "Succeeded", "Big": "Skipped", "Small": "Succeeded"},
            "Succeeded",
        ),
        (
            "If with a string expression takes the true branch",
            {
                "I": {
                    "type": "If",
                    "expression": "@less(triggerBody()?['n'], 10)",
                    "actions": {"Small": http_step(fail, {})},
                },
                "After": compose_step({"I": ["Failed"]}),
            },
            {"I": "Failed", "Small": "Failed", "After": "Succeeded"},
            "Succeeded",
        ),
        (
            "an If whose expression is not boolean fails",
            {
                "I": {
                    "type": "If",
                    "expression": "@triggerBody()?['n']",
                    "actions": {"X": compose_step()},
                }
            },
            {"I": "Failed", "X": "Skipped"},
            "Failed",
        ),
    ]


async def test_run_after_skipped_and_scope_statuses(hub: Any) -> None:
    """Table-driven: real runs over HTTP steps that succeed, fail or never answer."""
    routes = {
        "/ok": lambda request: (200, {"ok": True}, {}),
        "/fail": lambda request: (500, {"ok": False}, {}),
        "/hang": lambda request: (202, {}, {"Location": "/hang", "Retry-After": "0.05"}),
    }
    with service(routes) as backend:
        cases = run_after_cases(backend.url + "ok", backend.url + "fail", backend.url + "hang")
        runs = []
        for index, (_case, actions, _, _) in enumerate(cases):
            # In this kernel: the test reads the interpreter's result() lists (_scope_results).
            wf = hooknb.Workflow.from_definition(
                {"actions": actions}, name=f"case{index}", hub=hub, host="kernel"
            )
            runs.append(await wf.start_async(body={"n": 7}))
        mismatches = []
        for (case, _, expected, run_status), run in zip(cases, runs, strict=True):
            await finished(run)
            got = statuses(run)
            if got != expected or run.status != run_status:
                mismatches.append(f"{case}: {got} run {run.status} ({run.error})")
        assert not mismatches, "\n".join(mismatches)
        # Scope/If children carry their container; result() lists a scope's actions
        assert runs[7].actions["X"].scope == "S" and runs[7].actions["H"].scope is None
        assert [a["name"] for a in runs[7]._scope_results["S"]] == ["X", "Y"]
        assert runs[10].outputs("Small") == 7


async def test_run_records_reach_the_hub(hub: Any, jp_fetch: Any) -> None:
    wf = hooknb.Workflow.from_definition(
        {
            "actions": {
                "S": {
                    "type": "Scope",
                    "actions": {"C": compose_step(inputs={"n": "@triggerBody()?['n']"})},
                },
                "Skip": compose_step({"S": ["Failed"]}),
            },
            "outputs": {"n": {"type": "Int", "value": "@outputs('C')['n']"}},
        },
        name="recorded",
        hub=hub,
    )
    run = await finished(await wf.start_async(body={"n": 3}))
    assert run.status == "Succeeded" and run.result == {"n": 3}
    record = json.loads((await jp_fetch("hooknb", "api", "runs", run.id)).body)
    assert record["status"] == "Succeeded" and record["result"] == {"n": 3}
    actions = record["actions"]
    assert actions["C"]["scope"] == "S" and actions["C"]["outputs"] == {"n": 3}
    assert actions["Skip"]["status"] == "Skipped" and actions["Skip"]["code"] == "ActionSkipped"


async def test_parallel_webhooks_timeouts_and_scope_results(hub: Any) -> None:
    """Two webhook steps wait in parallel; one resumes, one times out (limit.timeout) and
    unsubscribes; the Scope times out and result() lists its actions for the handler."""
    routes = {
        "/a": calls_back({"a": 1}, delay=0.4),
        "/b": lambda request: (200, {"id": "b-1"}, {}),
    }
    with service(routes) as services:

        def webhook(path: str, timeout: str) -> dict[str, Any]:
            return {
                "type": "HttpWebhook",
                "inputs": {
                    "subscribe": {
                        "method": "POST",
                        "uri": services.url + path.strip("/"),
                        "body": {"callbackUrl": "@{listCallbackUrl()}"},
                    },
                    "unsubscribe": {
                        "method": "DELETE",
                        "uri": services.url + path.strip("/") + "/@{action().outputs.body.id}",
                    },
                },
                "limit": {"timeout": timeout},
            }

        wf = hooknb.Workflow.from_definition(
            {
                "actions": {
                    "Work": {
                        "type": "Scope",
                        "actions": {"A": webhook("/a", "PT1M"), "B": webhook("/b", "PT1.2S")},
                    },
                    "Report": compose_step(
                        {"Work": ["TimedOut"]},
                        {"count": "@length(result('Work'))", "b": "@result('Work')[1]['status']"},
                    ),
                }
            },
            name="parallel",
            hub=hub,
        )
        run = await wf.start_async()
        await until(
            lambda: statuses(run).get("A") == "Waiting" and statuses(run).get("B") == "Waiting"
        )
        assert run.status == "Waiting"
        await until(lambda: statuses(run).get("A") == "Succeeded", what="A to resume")
        assert run.status == "Waiting"  # B still waits
        await finished(run)
        assert run.status == "Succeeded", run.error
        assert statuses(run) == {
            "Work": "TimedOut",
            "A": "Succeeded",
            "B": "TimedOut",
            "Report": "Succeeded",
        }
        assert run.outputs("Report") == {"count": 2, "b": "TimedOut"}
        await until(lambda: services.calls("DELETE"), what="B to unsubscribe on timeout")
        paths = sorted(r["path"] for r in services.calls("DELETE"))
        assert paths[-1] == "/b/b-1"


# -- Wait, Terminate, Response, trigger conditions ----------------------------------------------


async def test_wait_terminate_response_and_conditions(hub: Any, demo: Any) -> None:
    short = hooknb.Workflow.from_definition(
        {
            "triggers": {"manual": {"type": "Request", "kind": "Http"}},
            "actions": {
                "Nap": {"type": "Wait", "inputs": {"interval": {"count": 0.2, "unit": "Second"}}},
                "Capped": {
                    "type": "Wait",
                    "inputs": {"interval": {"count": 1, "unit": "Hour"}},
                    "limit": {"timeout": "PT0.2S"},
                },
                "Reply": {
                    "type": "Response",
                    "inputs": {
                        "statusCode": "201",
                        "headers": {"x-id": "@{triggerBody()?['id']}"},
                        "body": {"got": "@triggerBody()"},
                    },
                    "runAfter": {"Nap": ["Succeeded"]},
                },
                "After_cap": compose_step({"Capped": ["TimedOut"]}),
            },
        },
        name="waits",
        hub=hub,
    )
    started = time.monotonic()
    run = await finished(await short.start_async(body={"id": 5}))
    assert run.status == "Succeeded", run.error
    assert 0.2 <= time.monotonic() - started < 5
    assert statuses(run) == {
        "Nap": "Succeeded",
        "Capped": "TimedOut",
        "Reply": "Succeeded",
        "After_cap": "Succeeded",
    }
    assert run.response == {"statusCode": 201, "headers": {"x-id": "5"}, "body": {"got": {"id": 5}}}

    # Terminate ends the run at once and cancels what is still going: a waiting webhook
    # step unsubscribes, a long Wait stops.
    stop = hooknb.Workflow.from_definition(
        {
            "actions": {
                "Approval": {
                    "type": "HttpWebhook",
                    "inputs": {
                        "subscribe": {
                            "method": "POST",
                            "uri": demo.url + "approvals",
                            "body": {"callbackUrl": "@{listCallbackUrl()}", "subject": "x"},
                        },
                        "unsubscribe": {
                            "method": "DELETE",
                            "uri": demo.url + "approvals/@{action().outputs.body.id}",
                        },
                    },
                },
                "Long": {"type": "Wait", "inputs": {"interval": {"count": 1, "unit": "Day"}}},
                "Stop": {
                    "type": "Terminate",
                    "inputs": {"runStatus": "@triggerBody()?['status']"},
                    "runAfter": {},
                },
            }
        },
        name="terminated",
        hub=hub,
    )
    # let the webhook subscribe before Terminate runs: start Stop after a short Wait
    stop.remove_step("Stop")
    stop.add_action(
        "Nap",
        {"type": "Wait", "inputs": {"interval": {"count": 0.3, "unit": "Second"}}},
        run_after={},
    )
    stop.add_action(
        "Stop", {"type": "Terminate", "inputs": {"runStatus": "@triggerBody()?['status']"}}
    )
    run = await finished(await stop.start_async(body={"status": "Cancelled"}))
    assert run.status == "Cancelled" and run.error == "the run was terminated (Cancelled)"
    assert statuses(run) == {
        "Approval": "Cancelled",
        "Long": "Cancelled",
        "Nap": "Succeeded",
        "Stop": "Succeeded",
    }

    async def withdrawn() -> bool:
        async with httpx.AsyncClient(trust_env=False) as client:
            approvals = (await client.get(demo.url + "approvals")).json()
        return len(approvals) == 1 and approvals[0]["status"] == "Withdrawn"

    for _ in range(200):  # the hub unsubscribes after the run has ended
        if await withdrawn():
            break
        await asyncio.sleep(0.02)
    assert await withdrawn()

    # trigger conditions: false means no run (the trigger history says Skipped)
    guarded = hooknb.Workflow.from_definition(
        {
            "triggers": {
                "manual": {
                    "type": "Request",
                    "conditions": [{"expression": "@equals(triggerBody()?['kind'], 'order')"}],
                }
            },
            "actions": {"C": compose_step()},
        },
        name="guarded",
        hub=hub,
    )
    yes = await guarded.start_async(body={"kind": "order"})
    with pytest.raises(hooknb.TriggerSkipped, match="is False"):
        await guarded.start_async(body={"kind": "spam"})
    await finished(yes)
    assert yes.status == "Succeeded" and [run.id for run in guarded.runs] == [yes.id]


# -- Python steps mixed in -----------------------------------------------------------------------


async def test_python_steps_and_expressions_read_each_other(hub: Any) -> None:
    with service({"/echo": lambda request: (200, {"echo": request["body"]}, {})}) as echo:
        wf = hooknb.Workflow.from_definition(
            {
                "actions": {
                    "Order": compose_step(inputs={"id": "@triggerBody()?['id']", "qty": 3}),
                    "Send": {
                        "type": "Http",
                        "inputs": {
                            "method": "POST",
                            "uri": echo.url + "echo",
                            "body": "@outputs('Price')",
                        },
                        "runAfter": {"Order": ["Succeeded"]},
                    },
                }
            },
            name="mixed",
            hub=hub,
        )

        async def price(run: Run) -> dict[str, Any]:
            order = run.outputs("Order")  # a Compose's value
            await asyncio.sleep(0)
            return {"id": order["id"], "total": order["qty"] * 2.5}

        wf.add_step("Price", price, run_after="Order")
        wf.remove_step("Send")
        wf.add_http(
            "Send", {"method": "POST", "uri": echo.url + "echo", "body": "@outputs('Price')"}
        )
        run = await finished(await wf.start_async(body={"id": 9}))
        assert run.status == "Succeeded", run.error
        assert run.outputs("Price") == {"id": 9, "total": 7.5}
        assert run.outputs("Send").body == {"echo": {"id": 9, "total": 7.5}}
        assert run.actions["Price"].type == "Python"
        with pytest.raises(hooknb.HookNBError, match="'Price'"):
            wf.to_definition()

        @hooknb.workflow(hub=hub)
        async def code_first(run: Run) -> Any:
            order = run.compose("Order", {"id": hooknb.expr("@triggerBody()?['id']")})
            run.record("Lookup", {"customer": f"c-{order['id']}"})
            note = run.compose("Note", hooknb.expr("for @{outputs('Lookup')?['customer']}"))
            reply = await run.http(
                "Send",
                {
                    "method": "POST",
                    "uri": echo.url + "echo",
                    "body": hooknb.expr("@outputs('Note')"),
                },
            )
            with pytest.raises(hooknb.ActionFailed):
                await run.http(
                    "Broken",
                    {
                        "method": "GET",
                        "uri": echo.url + "missing",
                        "retryPolicy": {"type": "none"},
                        "headers": {"bad header": "x"},
                    },
                )
            return note, reply.body

        run = await finished(await code_first.start_async(body={"id": 4}))
        assert run.status == "Succeeded", run.error
        assert run.result == ("for c-4", {"echo": "for c-4"})
        assert run.actions["Broken"].status == "Failed" and "header" in run.actions["Broken"].error


# -- export round trip, recurrence ---------------------------------------------------------------


async def test_declared_workflow_round_trips_through_its_export(hub: Any) -> None:
    from hooknb.demo import DemoService

    with DemoService(auto_approve_after=0.1) as demo:
        endpoints = {"https://approvals.example/": demo.url}
        wf = hooknb.Workflow.declare("declared", hub=hub, endpoints=endpoints)
        wf.add_webhook(
            "Approval",
            {
                "method": "POST",
                "uri": "https://approvals.example/approvals",
                "body": {
                    "callbackUrl": "@{listCallbackUrl()}",
                    "subject": "@{triggerBody()?['item']}",
                },
            },
            {
                "method": "DELETE",
                "uri": "https://approvals.example/approvals/@{action().outputs.body.id}",
            },
            timeout="PT1M",
        )
        wf.add_condition(
            "Approved",
            {"and": [{"equals": ["@body('Approval')?['decision']", "Approved"]}]},
            actions={"Yes": {"type": "Compose", "inputs": "@triggerBody()?['item']"}},
            else_actions={"No": {"type": "Compose", "inputs": "refused"}},
        )
        exported = wf.to_definition()
        if SCHEMA_FILE.is_file():
            import jsonschema

            jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text())).validate(exported)
        again = hooknb.Workflow.from_definition(
            exported, name="declared_again", hub=hub, endpoints=endpoints
        )
        first = await finished(await wf.start_async(body={"item": "beans"}))
        second = await finished(await again.start_async(body={"item": "beans"}))
        for run in (first, second):
            assert run.status == "Succeeded", run.error
            assert statuses(run) == {
                "Approval": "Succeeded",
                "Approved": "Succeeded",
                "Yes": "Succeeded",
                "No": "Skipped",
            }
            assert run.outputs("Yes") == "beans"
            assert run.outputs("Approval").body["decision"] == "Approved"
        async with httpx.AsyncClient(trust_env=False) as client:
            approvals = (await client.get(demo.url + "approvals")).json()
        assert [a["subject"] for a in approvals] == ["beans", "beans"]


async def test_recurrence_trigger_starts_runs_until_disabled(hub: Any) -> None:
    wf = hooknb.Workflow.from_definition(
        {
            "triggers": {
                "Every": {
                    "type": "Recurrence",
                    "recurrence": {"frequency": "Second", "interval": 1, "count": 2},
                }
            },
            "actions": {"Tick": compose_step(inputs="@utcNow()")},
        },
        name="ticks",
        hub=hub,
    )
    await wf.enable_async()
    assert wf.enabled
    runs = await until(lambda: len(wf.runs) >= 2 and wf.runs, timeout=10, what="two runs")
    for run in runs:
        await finished(run)
        assert run.status == "Succeeded"
    assert runs[1].started - runs[0].started == pytest.approx(1.0, abs=0.5)
    await until(lambda: not wf.enabled, what="the count to end the recurrence")
    assert len(wf.runs) == 2

    forever = hooknb.Workflow.declare("forever", trigger=RecurrenceTrigger("Second", 1), hub=hub)
    await forever.enable_async()
    await until(lambda: forever.runs, what="the first run at once")
    await forever.disable_async()
    assert not forever.enabled
    await asyncio.sleep(1.3)
    assert len(forever.runs) == 1


# -- the tutorial ------------------------------------------------------------------------------


def cell_stdout(nb: nbformat.NotebookNode, tag: str) -> str:
    for cell in nb.cells:
        if tag in cell.get("metadata", {}).get("tags", []):
            return "".join(
                o.get("text", "")
                for o in cell.get("outputs", [])
                if o.get("output_type") == "stream"
            )
    raise AssertionError(f"no cell tagged {tag!r}")


async def test_tutorial_notebook_runs_pauses_resumes_and_exports(
    server_url: str, server_token: str, tmp_path: Path
) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs cleared"
    env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
    env.pop("HOOKNB_DEMO_URL", None)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    )
    await client.async_execute(env=env)
    assert cell_stdout(nb, "paused").split() == ["Waiting", "Waiting"]
    assert cell_stdout(nb, "resumed").splitlines() == [
        "Succeeded {'decision': 'Approved'}",
        "{'by': 'ann', 'order': 1042, 'status': 'confirmed'}",
    ]
    assert cell_stdout(nb, "cancelled").split() == ["Cancelled", "Withdrawn"]
    exported = cell_stdout(nb, "exported").splitlines()
    assert exported[1:] == [
        "subject: Order 1044: grinder",
        "same statuses: True",
        "{'decision': 'Approved'}",
    ]
    definition = json.loads((tmp_path / "orders.definition.json").read_text())
    if SCHEMA_FILE.is_file():
        import jsonschema

        jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text())).validate(definition)
    assert list(definition["actions"]) == ["Ask_for_approval", "Decision"]
    assert cell_stdout(nb, "python-step").startswith(
        "workflow 'orders' cannot be exported: the Python step(s) 'Estimate' have no WDL form"
    )
    assert cell_stdout(nb, "loop").splitlines() == [
        "Succeeded 37.0",
        "item,qty,price",
        "espresso beans,2,12.5",
        "filters,3,4",
        "['Add_line#0', 'Add_line#1']",
    ]
    assert cell_stdout(nb, "disabled").strip() == "enabled: False"
