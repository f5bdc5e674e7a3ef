"""Live views in real kernels: nbclient executes the notebook against the test server and
keeps the widget state the views reached, which is what these tests read back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from helpers import notebook, stdout
from nbclient import NotebookClient

import hooknb

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def approver() -> Iterator[Any]:
    """The demo service approving every approval by itself after 0.3 s."""
    from hooknb.demo import DemoService

    with DemoService(auto_approve_after=0.3) as service:
        yield service


def displayed(nb: nbformat.NotebookNode, index: int) -> dict[str, Any]:
    """The data of the (single) rich output of a cell."""
    rich = [o for o in nb.cells[index].outputs if "data" in o]
    assert len(rich) == 1, nb.cells[index].outputs
    return rich[0]["data"]


class Widgets:
    """The widget state nbclient saved, navigable by model id and DOM class."""

    def __init__(self, nb: nbformat.NotebookNode) -> None:
        saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
        self.state: dict[str, Any] = {k: v["state"] for k, v in saved["state"].items()}

    def tree(self, model_id: str) -> Iterator[dict[str, Any]]:
        model = self.state[model_id]
        yield model
        for child in model.get("children", []):
            yield from self.tree(child.removeprefix("IPY_MODEL_"))

    def with_class(self, model_id: str, css: str) -> list[dict[str, Any]]:
        return [m for m in self.tree(model_id) if css in m.get("_dom_classes", [])]

    def one(self, model_id: str, css: str) -> dict[str, Any]:
        found = self.with_class(model_id, css)
        assert len(found) == 1, (css, found)
        return found[0]

    def rows(self, model_id: str) -> dict[str, str]:
        """Step name -> the model id of its ``hooknb-step`` row, in display order."""
        rows = {}
        for row_id in self.ids_with_class(model_id, "hooknb-step"):
            rows[self.one(row_id, "hooknb-step-name")["value"]] = row_id
        return rows

    def ids_with_class(self, model_id: str, css: str) -> list[str]:
        found = [model_id] if css in self.state[model_id].get("_dom_classes", []) else []
        for child in self.state[model_id].get("children", []):
            found += self.ids_with_class(child.removeprefix("IPY_MODEL_"), css)
        return found

    def steps(self, model_id: str) -> list[tuple[str, str]]:
        """(name, status) of each step row, as the page shows them."""
        return [
            (name, self.one(row_id, "hooknb-step-status")["value"])
            for name, row_id in self.rows(model_id).items()
        ]


SETUP = """
import asyncio, time
import hooknb
from hooknb.kernel.widgets import view
AUTO, MANUAL = AUTO_URL, MANUAL_URL

@hooknb.workflow(trigger=hooknb.HttpWebhookTrigger(
    subscribe={"method": "POST", "uri": AUTO + "topics/w/subscriptions",
               "body": {"callbackUrl": hooknb.CALLBACK_URL}},
    unsubscribe={"method": "POST", "uri": AUTO + "topics/w/unsubscribe",
                 "body": {"callbackUrl": hooknb.CALLBACK_URL}}))
async def orders(run):
    base = run.trigger.body.get("approvals", AUTO)
    reply = await run.webhook(
        "Approval",
        subscribe={"method": "POST", "uri": base + "approvals",
                   "body": {"callbackUrl": hooknb.CALLBACK_URL, "subject": "order"}},
        unsubscribe=lambda sub: {"method": "DELETE", "uri": base + "approvals/" + sub.body["id"]},
        timeout="PT1M")
    return {"order": run.trigger.body["id"], "decision": reply.body.get("decision")}

async def until(predicate, timeout=20):
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "timed out"
        await asyncio.sleep(0.05)
"""


async def test_views_update_live_and_their_buttons_act(
    server_url: str, server_token: str, approver: Any, demo: Any
) -> None:
    nb = notebook(
        SETUP.replace("AUTO_URL", repr(approver.url)).replace("MANUAL_URL", repr(demo.url)),
        # 1: the workflow view
        "orders.enable()\norders",
        # 2: a run view, displayed while the run has not even subscribed yet
        "run = orders.start(body={'id': 1})\nrun",
        # 3: the run resumes (the approver calls back) while *this* cell awaits
        "first = view(run).status.value\n"
        "await run\n"
        "print(first.split()[0], '->', view(run).status.value.split()[0])",
        # 4: Disable / Enable buttons
        "wv = view(orders)\n"
        "wv.disable_button.click()\n"
        "await until(lambda: not orders.enabled and not wv._busy)\n"
        "print(wv.trigger_state.value, wv.message.value)\n"
        "wv.enable_button.click()\n"
        "await until(lambda: orders.enabled and not wv._busy)\n"
        "print(wv.trigger_state.value, wv.message.value)",
        # 5: Send test callback on the trigger: the POST starts a run
        "wv.test_body.value = '{\"id\": 7}'\n"
        "wv.send_button.click()\n"
        "await until(lambda: len(orders.runs) == 2 and wv.send_result.value.startswith('HTTP'))\n"
        "second = await orders.runs[-1]\n"
        "print(wv.send_result.value, '|', second.status, second.result)",
        # 6: a run waiting on a service that never answers: countdown ticks, then Cancel
        "held = orders.start(body={'id': 3, 'approvals': MANUAL})\n"
        "hv = view(held)\n"
        "await until(lambda: held.status == 'Waiting')\n"
        "row = hv.steps['Approval']\n"
        "before = row.countdown.value\n"
        "await asyncio.sleep(1.5)\n"
        "print(before != row.countdown.value, row.countdown.value.endswith('s left'))\n"
        "hv.cancel_button.click()\n"
        "await held\n"
        "print(held.status, row.status.value, hv.status.value.split()[0])",
        # 7: Send test callback on a waiting step: the step resumes with the typed body
        "typed = orders.start(body={'id': 4, 'approvals': MANUAL})\n"
        "await until(lambda: typed.status == 'Waiting')\n"
        "step = view(typed).steps['Approval']\n"
        "step.test_body.value = '{\"decision\": '\n"
        "step.send_button.click()\n"
        "await until(lambda: step.send_result.value.startswith('not sent'))\n"
        "print(step.send_result.value)\n"
        'step.test_body.value = \'{"decision": "typed by hand"}\'\n'
        "step.send_button.click()\n"
        "await typed\n"
        "await until(lambda: not step.send_button.disabled)\n"
        "print(typed.status, typed.result, '|', repr(step.send_result.value))\n"
        "typed",
        # 8: nothing runs any more, so the shared ticker has stopped
        "from hooknb.kernel import widgets\n"
        "await asyncio.sleep(0.1)\n"
        "print([t.task is None or t.task.done() for t in widgets._tickers.values()])",
    )
    env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
    await NotebookClient(nb, kernel_name="python3", timeout=60).async_execute(env=env)

    first, arrow, last = stdout(nb, 3).split()
    assert (arrow, last) == ("->", "Succeeded") and first in ("Running", "Waiting")
    assert stdout(nb, 4).splitlines() == ["Disabled unsubscribed", "Enabled subscribed"]
    assert stdout(nb, 5).strip() == (
        "HTTP 202 Accepted | Succeeded {'order': 7, 'decision': 'Approved'}"
    )
    assert stdout(nb, 6).splitlines() == ["True True", "Cancelled Cancelled Cancelled"]
    # A send error shows (on its own line, see the browser test) and goes when the step ends.
    assert stdout(nb, 7).strip().splitlines() == [
        "not sent: the body is not JSON: Expecting value: line 1 column 13 (char 12)",
        "Succeeded {'order': 4, 'decision': 'typed by hand'} | ''",
    ]
    assert stdout(nb, 8).strip() == "[True]"

    saved = Widgets(nb)
    # The run view (cell 2) was displayed before the run subscribed; the state saved is the
    # one it reached after that cell had finished.
    run_output = displayed(nb, 2)
    assert {"text/plain", "text/html", WIDGET_VIEW} <= set(run_output)
    assert "Running" in run_output["text/plain"]  # the snapshot for consoles and nbconvert
    run_id = run_output[WIDGET_VIEW]["model_id"]
    assert "hooknb-run" in saved.state[run_id]["_dom_classes"]
    assert saved.one(run_id, "hooknb-status")["value"].startswith("Succeeded")
    assert saved.steps(run_id) == [("HTTP_Webhook", "Succeeded"), ("Approval", "Succeeded")]
    assert saved.one(run_id, "hooknb-cancel")["description"] == "Cancel"

    # The workflow view (cell 1): state label, buttons, and every run of this kernel in it.
    workflow_output = displayed(nb, 1)
    assert {"text/plain", "text/html", WIDGET_VIEW} <= set(workflow_output)
    workflow_id = workflow_output[WIDGET_VIEW]["model_id"]
    assert "hooknb-workflow" in saved.state[workflow_id]["_dom_classes"]
    assert saved.one(workflow_id, "hooknb-trigger-state")["value"] == "Enabled"
    assert saved.one(workflow_id, "hooknb-enable")["description"] == "Enable"
    assert saved.one(workflow_id, "hooknb-disable")["description"] == "Disable"
    statuses = [m["value"].split()[0] for m in saved.with_class(workflow_id, "hooknb-status")]
    assert statuses == ["Succeeded", "Cancelled", "Succeeded", "Succeeded"]  # newest first

    # The step of the run resumed by hand shows the typed body in its outputs.
    typed_id = displayed(nb, 7)[WIDGET_VIEW]["model_id"]
    assert saved.steps(typed_id) == [("HTTP_Webhook", "Succeeded"), ("Approval", "Succeeded")]
    details = saved.one(saved.rows(typed_id)["Approval"], "hooknb-step-details")
    assert "typed by hand" in details["value"]


async def test_plain_python_gets_text_and_html(hub: Any, demo: Any) -> None:
    """No kernel: the display bundle is text and HTML only, bodies cut and escaped."""
    big = {"note": "<script>alert(1)</script>", "items": ["x" * 100] * 1000}

    async def echo(run: Any) -> Any:
        return run.trigger.body

    flow = hooknb.Workflow(echo, name="plain", hub=hub)
    run = await (await flow.start_async(body=big))
    bundle = run._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"].startswith(f"Run {run.id} of plain: Succeeded")
    page = bundle["text/html"]
    assert "<script>" not in page and "&lt;script&gt;" in page
    size = len(run.trigger.raw)
    assert f"showing the first 4,096 characters of {size:,} bytes, application/json" in page

    binary = await (await flow.start_async(body=bytes(range(256)) * 8, content_type="image/png"))
    assert "binary body: 2,048 bytes, image/png" in binary._repr_mimebundle_()["text/html"]
    assert set(flow._repr_mimebundle_()) == {"text/plain", "text/html"}


async def test_closed_views_stop_following_their_run_and_workflow(hub: Any) -> None:
    from hooknb.kernel.widgets import view

    async def echo(run: Any) -> Any:
        return run.trigger.body

    flow = hooknb.Workflow(echo, name="closing", hub=hub)
    run = await (await flow.start_async(body={"a": 1}))
    flow_view, run_view = view(flow), view(run)
    assert view(run) is run_view  # one view per run, shared by every display
    assert len(run._observers) == len(flow._observers) == 1

    run_view.close()
    flow_view.close()
    assert run._observers == [] and flow._observers == []
    reopened = view(run)  # displaying the run again makes a new view that follows it
    assert reopened is not run_view and run._observers == [reopened._observed]
    reopened.close()
