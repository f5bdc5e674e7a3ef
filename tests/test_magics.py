"""``%load_ext hooknb`` in a real kernel against the test server and real subscribers."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def approver() -> Iterator[Any]:
    """The demo service approving every approval by itself after 0.3 s."""
    from hooknb.demo import DemoService

    with DemoService(auto_approve_after=0.3) as service:
        yield service


def cell(source: str, *, fails: bool = False) -> nbformat.NotebookNode:
    node = nbformat.v4.new_code_cell(source)
    if fails:
        node.metadata["tags"] = ["raises-exception"]
    return node


def stdout(nb: nbformat.NotebookNode, index: int) -> str:
    return "".join(
        o.get("text", "")
        for o in nb.cells[index].outputs
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def usage_error(nb: nbformat.NotebookNode, index: int) -> str:
    """The text of the UsageError a cell raised (IPython shows it without a traceback)."""
    outputs = nb.cells[index].outputs
    errors = [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert not [e for e in errors if e["ename"] != "UsageError"], errors
    assert "Traceback" not in text and not any(e.get("traceback") for e in errors), outputs
    return text + "".join(f"{e['ename']}: {e['evalue']}" for e in errors)


def requests(service: Any, kind: str) -> list[str]:
    """``METHOD path`` of the requests of one kind the demo service recorded."""
    log = httpx.get(f"{service.url}requests", params={"kind": kind}, trust_env=False).json()
    return [f"{entry['method']} {entry['path']}" for entry in log]


SETUP = """
%load_ext hooknb
import asyncio, time, httpx, hooknb
AUTO, MANUAL = AUTO_URL, MANUAL_URL

async def until(predicate, timeout=20):
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "timed out"
        await asyncio.sleep(0.05)
"""

HANDLER_BEFORE = """
@hooknb.handler("orders")
async def handle_orders(run):
    return {"handled": run.trigger.body["id"]}
"""

TRIGGER_JSON = """%%hooknb trigger orders           # defined, enabled, shown
{
  "type": "HttpWebhook",
  "inputs": {
    "subscribe": {
      "method": "POST",
      "uri": "AUTO/topics/orders/subscriptions",
      "body": {"callbackUrl": "@{listCallbackUrl()}"}
    },
    "unsubscribe": {
      "method": "POST",
      "uri": "AUTO/topics/orders/unsubscribe",
      "body": {"callbackUrl": "@{listCallbackUrl()}"}
    }
  }
}"""

TRIGGER_YAML_INPUTS = """%%hooknb trigger tally
# just the inputs, in YAML
subscribe:
  method: POST
  uri: AUTO/topics/tally/subscriptions
  body:
    callbackUrl: "@{listCallbackUrl()}"
unsubscribe:
  method: POST
  uri: AUTO/topics/tally/unsubscribe
  body: {callbackUrl: "@{listCallbackUrl()}"}
"""

TRIGGER_YAML_WHOLE = """%%hooknb trigger plain
type: HttpWebhook
inputs:
  subscribe: {method: POST, uri: AUTO/topics/plain/subscriptions,
              body: {callbackUrl: "@{listCallbackUrl()}"}}
  unsubscribe: {method: POST, uri: AUTO/topics/plain/unsubscribe,
                body: {callbackUrl: "@{listCallbackUrl()}"}}
"""

HANDLER_AFTER = """
@hooknb.handler("tally")
def tally_run(run):  # a plain def works too
    return run.trigger.body["n"] * 2
"""

PUBLISH = """
for topic, body in [("orders", {"id": 1}), ("tally", {"n": 21}), ("plain", {"p": True})]:
    httpx.post(f"{AUTO}topics/{topic}/events", json=body, trust_env=False).raise_for_status()
flows = (orders, tally, plain)
await until(lambda: all(len(w.runs) == 1 and w.runs[0].done for w in flows))
for w in flows:
    print(w.name, w.runs[0].status, w.runs[0].result)
"""

ACTION_INPUTS = """%%hooknb action Approval --timeout PT1M   # a comment, as in the README
{"subscribe": {"method": "POST", "uri": "AUTO/approvals",
               "body": {"callbackUrl": "@{listCallbackUrl()}", "subject": "ship it?"}},
 "unsubscribe": {"method": "DELETE", "uri": "AUTO/approvals/@{action().outputs.body.id}"}}
"""

ACTION_RESUMED = """
run = hooknb.connect().runs_of("adhoc")[-1]
first = run.status
await run
print(first, run.status, run.result["decision"], run.actions["Approval"].status)
"""

ACTION_WHOLE_YAML = """%%hooknb action Hold --workflow holds
type: HttpWebhook
inputs:
  subscribe:
    method: POST
    uri: MANUAL/approvals
    body: {callbackUrl: "@{listCallbackUrl()}", subject: hold}
  unsubscribe:
    method: DELETE
    uri: "MANUAL/approvals/@{action().outputs.body.id}"
limit:
  timeout: PT5M
"""

CANCEL = """
held = hooknb.connect().runs_of("holds")[-1]
await until(lambda: held.status == "Waiting")
# The unsubscribe template uses the subscribe response, so the engine hands it to the hub just
# after the step starts waiting; a cancel in between would leave the hub nothing to call.
hub, wait = hooknb.connect(), held.actions["Hold"].wait_id
while (await hub.request("GET", f"hooknb/api/waits/{wait}"))["unsubscribe"] == "pending":
    await asyncio.sleep(0.02)
print(round(held.actions["Hold"].deadline - held.actions["Hold"].started))
get_ipython().run_line_magic("hooknb", f"cancel {held.id}")
"""

BAD_JSON = """%%hooknb trigger bad
{
  "type": "HttpWebhook",
  "inputs": {
    "subscribe": {"method": "POST" "uri": "AUTO/topics/bad/subscriptions"}
  }
}"""

BAD_YAML = """%%hooknb trigger bad
subscribe:
  method: POST
  uri: AUTO/topics/bad/subscriptions: now
"""

MISSING_URI = """%%hooknb trigger bad
type: HttpWebhook
inputs:
  subscribe:
    method: POST
    body: {callbackUrl: "@{listCallbackUrl()}"}
"""

TYPO = """%%hooknb trigger bad
{"type": "HttpWebhook",
 "inputs": {
   "subscribe": {"method": "POST", "uri": "AUTO/topics/bad/subscriptions"},
   "unsubscibe": {}}}
"""

BAD_TIMEOUT = """%%hooknb action Nope --timeout soon
subscribe: {method: POST, uri: AUTO/topics/bad/subscriptions}
"""


ENABLE_FAILS = """%%hooknb trigger broken
subscribe: {method: POST, uri: AUTO/no/such/route, retryPolicy: {type: none}}
"""


async def test_cell_and_line_magics(
    server_url: str, server_token: str, approver: Any, demo: Any
) -> None:
    auto, manual = approver.url, demo.url

    def fill(text: str) -> str:
        return text.replace("AUTO/", auto).replace("MANUAL/", manual)

    sources = [
        (SETUP.replace("AUTO_URL", repr(auto)).replace("MANUAL_URL", repr(manual)), False),
        (HANDLER_BEFORE, False),
        (fill(TRIGGER_JSON), False),  # 2
        (fill(TRIGGER_YAML_INPUTS), False),  # 3
        (fill(TRIGGER_YAML_WHOLE), False),  # 4
        (HANDLER_AFTER, False),
        (PUBLISH, False),  # 6
        (fill(ACTION_INPUTS), False),  # 7
        (ACTION_RESUMED, False),  # 8
        (fill(ACTION_WHOLE_YAML), False),  # 9
        (CANCEL, False),  # 10
        ("%hooknb list  # every workflow, with its owner", False),  # 11
        ("%hooknb runs orders # a comment after a name", False),  # 12
        ("url = %hooknb url orders\nprint(url == orders.callback_url, 'callback' in url)", False),
        ("%hooknb disable plain\nprint(plain.enabled)\n%hooknb enable plain", False),  # 14
        ("%hooknb status", False),  # 15
        (fill(BAD_JSON), True),  # 16
        (fill(BAD_YAML), True),  # 17
        (fill(MISSING_URI), True),  # 18
        (fill(TYPO), True),  # 19
        (fill(BAD_TIMEOUT), True),  # 20
        ("%hooknb frobnicate", True),  # 21
        ("%hooknb url", True),  # 22
        ("print('bad' in dir(), len(hooknb.connect().runs_of('adhoc')))", False),  # 23
        (fill(ENABLE_FAILS), True),  # 24
        (fill(ACTION_INPUTS).replace("Approval", "Approval --workflow orders"), True),  # 25
        ("%hooknb cancel --orphaned   # none here: every run's kernel is this one", False),  # 26
        ("%hooknb cancel --orphaned orders", False),  # 27
    ]
    nb = nbformat.v4.new_notebook(cells=[cell(s, fails=f) for s, f in sources])
    env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
    await NotebookClient(nb, kernel_name="python3", timeout=60).async_execute(env=env)

    # The trigger cells show the workflow's live view (and their text for nbconvert).
    for index in (2, 3, 4):
        data = next(o["data"] for o in nb.cells[index].outputs if "data" in o)
        assert {"text/plain", "text/html", WIDGET_VIEW} <= set(data)
    assert requests(approver, "subscribe")[:3] == [
        "POST /topics/orders/subscriptions",
        "POST /topics/tally/subscriptions",
        "POST /topics/plain/subscriptions",
    ]
    # Handlers found at run time: one defined before its trigger cell, one after; none.
    assert stdout(nb, 6).splitlines() == [
        "orders Succeeded {'handled': 1}",
        "tally Succeeded 42",
        "plain Succeeded {'p': True}",
    ]
    # %%hooknb action: the cell returned at once with the run's view; it resumed later.
    action_view = next(o for o in nb.cells[7].outputs if "data" in o)
    assert action_view["output_type"] == "execute_result"
    assert "Run " in action_view["data"]["text/plain"]
    first, *rest = stdout(nb, 8).split()
    assert first in ("Running", "Waiting") and rest == ["Succeeded", "Approved", "Succeeded"]
    assert [r for r in requests(approver, "unsubscribe") if r.startswith("DELETE /approvals/")]
    # limit.timeout from the definition; %hooknb cancel unsubscribed the waiting step.
    cancel_out = stdout(nb, 10).splitlines()
    assert cancel_out[0] == "300" and cancel_out[1].endswith(": Cancelled")
    assert requests(demo, "subscribe") == ["POST /approvals"]
    assert requests(demo, "unsubscribe")[0].startswith("DELETE /approvals/apr")

    listing = stdout(nb, 11).splitlines()
    owners = {line.split()[0]: line for line in listing if not line.startswith(" ")}
    # `plain` has no handler: the server runs it; the others run in this kernel.
    assert owners.pop("plain").endswith("the server (its definitions worker)")
    assert all("this kernel (" in line for line in owners.values()), owners
    urls = [line.split()[-1] for line in listing if line.lstrip().startswith("callback URL")]
    assert len(urls) == 3 and all("/hooknb/callback/" in url for url in urls)
    listing = [line for line in listing if not line.startswith(" ")]
    assert [line.split()[:2] for line in listing] == [
        ["adhoc", "Manual"],
        ["holds", "Manual"],
        ["orders", "Enabled"],
        ["plain", "Enabled"],
        ["tally", "Enabled"],
    ]
    runs = stdout(nb, 12).splitlines()
    assert len(runs) == 1 and runs[0].split()[1:3] == ["orders", "Succeeded"]
    assert stdout(nb, 13).strip() == "True True"
    disabled, enabled_flag, enabled = stdout(nb, 14).splitlines()
    assert (disabled, enabled_flag) == ("workflow 'plain': Disabled (unsubscribed)", "False")
    assert enabled.startswith("workflow 'plain': Enabled, callback URL http")
    assert "POST /topics/plain/unsubscribe" in requests(approver, "unsubscribe")
    status = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in stdout(nb, 15).splitlines())
    assert status["hub"] == f"{server_url} (HOOKNB_URL)"
    assert status["store"].endswith("hooknb.sqlite") and status["public base URL"]
    assert status["workflows"] == "5 (3 with an enabled trigger)"
    # Connected: this kernel and the server's definitions worker, which runs `plain` (it has
    # no handler).
    assert (status["runs"], status["open waits"], status["connected kernels"]) == ("5", "0", "2")
    # A loopback callback base: outside services cannot reach it, and the status says so.
    assert status["callback base"].endswith("/hooknb/callback/") and status["reachable"] == "no"
    assert "outside services cannot reach" in status["warning"]
    assert "receiver" not in status  # no JupyterHub receiver here

    # Mistakes point at the line (of the cell, as the editor counts) and the field, without a
    # traceback; nothing was subscribed.
    assert "line 5 column 36: not valid JSON: Expecting ',' delimiter" in usage_error(nb, 16)
    bad_yaml = usage_error(nb, 17)
    assert "line 4 column " in bad_yaml  # the column depends on the service's URL
    assert "not valid YAML: mapping values are not allowed here" in bad_yaml
    assert "line 4: inputs.subscribe.uri: missing: the URL to call" in usage_error(nb, 18)
    assert (
        "line 5: inputs: unknown property 'unsubscibe' of HttpWebhook inputs; "
        "did you mean 'unsubscribe'?"
    ) in usage_error(nb, 19)
    assert "--timeout: 'soon' is not an ISO 8601 duration" in usage_error(nb, 20)
    assert "unknown %hooknb command 'frobnicate'" in usage_error(nb, 21)
    assert usage_error(nb, 22).endswith(
        "the following arguments are required: name\nusage: %hooknb url name\n"
    )
    assert stdout(nb, 23).strip() == "False 1"
    assert "enabling workflow 'broken' failed: " in usage_error(nb, 24)
    assert "404" in usage_error(nb, 24)
    assert "workflow 'orders' has a trigger" in usage_error(nb, 25)
    assert stdout(nb, 26).strip() == "no runs wait without a kernel"
    assert stdout(nb, 27).strip() == "no runs of 'orders' wait without a kernel"
    every_request = requests(approver, "subscribe") + requests(approver, "unsubscribe")
    assert not [r for r in every_request if "/bad/" in r]


ORPHAN_MAKER = """
import hooknb
BASE = {base!r}

@hooknb.workflow
async def approve(run):
    reply = await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": BASE + "approvals",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL, "subject": "left behind"}}}},
        unsubscribe=lambda sub: {{"method": "DELETE",
                                  "uri": BASE + f"approvals/{{sub.body['id']}}"}})
    return reply.body

run = approve.start(body={{}})
"""


def test_runs_whose_kernel_is_gone_in_the_magics(tmp_path: Any, demo: Any) -> None:
    """A run waits and its kernel goes away: another kernel's ``%hooknb runs`` and ``list`` say
    no kernel runs it and how to continue; ``%hooknb cancel --orphaned NAME`` ends it with no
    kernel, and the server unsubscribes its step."""
    import time

    from processes import Kernel, ServerProcess

    server = ServerProcess(tmp_path).start()
    env = dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token)
    leaving = Kernel(env)
    other = Kernel(env)
    try:
        leaving.run(ORPHAN_MAKER.format(base=demo.url))
        give_up = time.monotonic() + 30
        # The hub shows the run Waiting once its wait is open; the unsubscribe request (the
        # lambda, made from the subscribe response) is registered by the kernel a moment later.
        # A kernel gone before that leaves nothing the hub could send (a busy CI saw it).
        while not [w for w in server.api("GET", "waits")["waits"] if w["unsubscribe"] == "ready"]:
            assert time.monotonic() < give_up, "the run never waited with its unsubscribe"
            time.sleep(0.1)
        leaving.shutdown()
        while server.api("GET", "workflows/approve")["kernel"] != "gone":
            assert time.monotonic() < give_up, "the kernel never went"
            time.sleep(0.1)

        other.run("%load_ext hooknb")
        runs = other.run("%hooknb runs approve").splitlines()
        assert len(runs) == 1
        assert runs[0].endswith(
            "waiting, no kernel: run the cell that defines `approve` to continue"
        )
        listing = other.run("%hooknb list").splitlines()
        assert listing[0].startswith("approve")
        assert "no kernel: its kernel is gone, last seen " in listing[0]
        assert listing[0].endswith("run the cell that defines it to take it")

        ended = other.run("%hooknb cancel --orphaned approve  # ends them").splitlines()
        run_id = runs[0].split()[0]
        assert ended == ["cancelled 1 run of 'approve' whose kernel was gone:", f"  {run_id}"]
        assert server.api("GET", f"runs/{run_id}")["status"] == "Cancelled"
        assert other.run("%hooknb runs approve").split()[2] == "Cancelled"
        while not requests(demo, "unsubscribe"):
            assert time.monotonic() < give_up + 30, "no unsubscribe"
            time.sleep(0.1)
        assert requests(demo, "unsubscribe")[0].startswith("DELETE /approvals/apr")
    finally:
        other.shutdown()
        server.stop()


def test_a_workflow_view_tells_of_runs_left_with_no_kernel(tmp_path: Any, demo: Any) -> None:
    """Kernel A runs `approve`; kernel B defines it too (told A runs it), starts a run of its
    own and goes away: A's live view of the workflow says a run waits with no kernel and how to
    continue or end it."""
    import time

    from processes import Kernel, ServerProcess

    server = ServerProcess(tmp_path).start()
    env = dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token)
    owner = Kernel(env)
    leaving = Kernel(env)
    try:
        definition = ORPHAN_MAKER.format(base=demo.url).split("run = approve.start")[0]
        owner.run(definition + "\napprove.adopt()\nfrom hooknb.kernel.widgets import view\n")
        assert owner.run("shown = view(approve)\nprint(repr(shown.orphans.value))").strip() == "''"
        told = leaving.run(ORPHAN_MAKER.format(base=demo.url))
        assert "is run by another kernel that is connected" in told
        give_up = time.monotonic() + 30
        while not server.api("GET", "runs", params={"status": "Waiting"})["runs"]:
            assert time.monotonic() < give_up, "the run never waited"
            time.sleep(0.1)
        leaving.shutdown()
        while [r.get("kernel") for r in server.api("GET", "runs")["runs"]] != ["gone"]:
            assert time.monotonic() < give_up, server.api("GET", "runs")
            time.sleep(0.1)
        shown = owner.run(
            "import asyncio\n"
            "shown.refresh()\n"
            "for _ in range(100):\n"
            "    if shown.orphans.value:\n"
            "        break\n"
            "    await asyncio.sleep(0.1)\n"
            "print(shown.orphans.value, shown.orphans.layout.display)"
        ).strip()
        assert shown == (
            "1 run of this workflow waits with no kernel: run the cell that defines "
            "`approve` to continue, or %hooknb cancel --orphaned approve None"
        )
    finally:
        owner.shutdown()
        server.stop()
