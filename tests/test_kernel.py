"""hooknb in real IPython kernels talking to a real Jupyter server with the extension."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import notebook, stdout
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient


@pytest.fixture
def approver() -> Iterator[Any]:
    """The demo service approving every approval by itself after 0.3 s."""
    from hooknb.demo import DemoService

    with DemoService(auto_approve_after=0.3) as service:
        yield service


WORKFLOW = """
import hooknb
BASE = {base!r}

@hooknb.workflow(trigger=hooknb.HttpWebhookTrigger(
    subscribe={{"method": "POST", "uri": BASE + "topics/k/subscriptions",
               "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}},
    unsubscribe={{"method": "POST", "uri": BASE + "topics/k/unsubscribe",
                 "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}}))
async def orders(run):
    reply = await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": BASE + "approvals",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL, "subject": "order"}}}},
        unsubscribe=lambda sub: {{"method": "DELETE", "uri": BASE + "approvals/" + sub.body["id"]}},
        timeout="PT1M")
    return {{"order": run.trigger.body["id"], "decision": reply.body["decision"]}}
"""


async def test_notebook_runs_pause_and_resume_in_a_kernel(
    server_url: str, server_token: str, approver: Any
) -> None:
    nb = notebook(
        WORKFLOW.format(base=approver.url),
        "orders.enable()\nprint('enabled', orders.enabled)",
        # a manual run, blocking the cell in the kernel's own running loop until it resumes
        "run = orders.start(body={'id': 1})\nrun.wait(timeout=30)\nprint(run.status, run.result)",
        # a trigger run: the service publishes, the callback starts a run in this kernel
        "import httpx\n"
        "httpx.post(BASE + 'topics/k/events', json={'id': 2}, trust_env=False)\n"
        "import time\n"
        "deadline = time.monotonic() + 30\n"
        "while len(orders.runs) < 2 and time.monotonic() < deadline:\n"
        "    await __import__('asyncio').sleep(0.05)\n"
        "second = await orders.runs[-1]\n"
        "print(second.status, second.result)",
        "orders.disable()\nprint('disabled', orders.enabled)",
    )
    env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
    await NotebookClient(nb, kernel_name="python3", timeout=90).async_execute(env=env)
    assert stdout(nb, 1).strip() == "enabled True"
    assert stdout(nb, 2).strip() == "Succeeded {'order': 1, 'decision': 'Approved'}"
    assert stdout(nb, 3).strip() == "Succeeded {'order': 2, 'decision': 'Approved'}"
    assert stdout(nb, 4).strip() == "disabled False"


async def test_a_kernel_started_by_the_server_finds_it(
    jp_fetch: Any, jp_serverapp: Any, server_url: str
) -> None:
    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {
                "path": "d.ipynb",
                "type": "notebook",
                "name": "d.ipynb",
                "kernel": {"name": "python3"},
            }
        ),
    )
    kernel_id = json.loads(response.body)["kernel"]["id"]
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    nb = notebook(
        "import os; os.environ.pop('HOOKNB_URL', None)\n"
        "import hooknb\nhub = hooknb.connect()\n"
        "print(hub.url)\nprint(hub.address.source.endswith('.json'), hub.embedded is None)\n"
        "@hooknb.workflow\nasync def hello(run):\n    return 'hi ' + run.trigger.body\n"
        "print(hello.start('there').wait(timeout=30).result)"
    )
    await NotebookClient(nb, km=km, timeout=60).async_execute()
    lines = stdout(nb, 0).split()
    found, expected = urlsplit(lines[0]), urlsplit(server_url)
    assert (found.port, found.path) == (expected.port, expected.path)
    assert found.hostname in ("localhost", "127.0.0.1")
    assert lines[1:] == ["True", "True", "hi", "there"]
    runs = json.loads((await jp_fetch("hooknb", "api", "runs")).body)["runs"]
    assert [(r["workflow"], r["status"], r["result"]) for r in runs] == [
        ("hello", "Succeeded", "hi there")
    ]


def test_queued_cells_survive_a_blocking_wait(tmp_path: Any) -> None:
    """Run All queues cells; a cell that blocks in run.wait() must not drop the ones behind it
    (the archived nest_asyncio does on ipykernel 7)."""
    env = dict(os.environ, HOOKNB_STORE=str(tmp_path / "embedded.sqlite"))
    env.pop("HOOKNB_URL", None)
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        first = kc.execute(
            "import hooknb, asyncio\n"
            "@hooknb.workflow\n"
            "async def nap(run):\n"
            "    await asyncio.sleep(0.5)\n"
            "    return 'rested'\n"
            "print(nap.start().wait(timeout=60).result)"
        )
        ids = [first] + [kc.execute(f"print({i})") for i in range(2, 6)]
        outputs: dict[str, str] = {i: "" for i in ids}
        idle: set[str] = set()
        errors: list[str] = []
        give_up = time.monotonic() + 90
        while idle != set(ids) and time.monotonic() < give_up:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            parent = msg["parent_header"].get("msg_id")
            if parent not in outputs:
                continue
            if msg["msg_type"] == "stream":
                outputs[parent] += msg["content"]["text"]
                if "cannot enter context" in msg["content"]["text"]:
                    errors.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle.add(parent)
        assert errors == []
        assert idle == set(ids)
        assert outputs[first].strip() == "rested"
        assert [outputs[i].strip() for i in ids[1:]] == ["2", "3", "4", "5"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# A blocking call in a cell that woke up together with other ready callbacks: the first one
# applies nest_asyncio2 under the stdlib's _run_once, which has counted those callbacks; the
# nested run takes them, and unless hooknb puts entries back, that frame pops from an empty
# deque: the IndexError ends the kernel's loop and the kernel exits (tutorial 1's "Kernel
# died" after `new_orders.enable()`, now and then). Here the batch is made big on purpose.
FIRST_BLOCKING_CALL = """
import asyncio
from hooknb.kernel.aio import run_sync

async def answer():
    await asyncio.sleep(0)
    return 42

async def fails():
    await asyncio.sleep(0)
    raise ValueError("inside")

async def main():
    loop = asyncio.get_running_loop()
    woken = loop.create_future()

    def wake():
        woken.set_result(None)  # this task's next step: first in the next batch ...
        for _ in range(20):
            loop.call_soon(lambda: None)  # ... which counts these too

    loop.call_soon(wake)
    await woken
    {call}
"""


def test_the_first_blocking_call_in_a_kernel_leaves_it_alive() -> None:
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = FIRST_BLOCKING_CALL.format(call="print(run_sync(answer(), loop))")
        reply = kc.execute_interactive(code + "\nawait main()", timeout=60)
        assert reply["content"]["status"] == "ok"
        # The kernel died after that reply, when the cell's callback returned to the frame.
        try:
            reply = kc.execute_interactive("print('still here')", timeout=10)
        except TimeoutError:
            pytest.fail(f"the kernel died (exit status {km.provisioner.process.poll()})")
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize(
    "call",
    [
        "print(run_sync(answer(), loop))",
        "print(run_sync(answer(), loop, timeout=30))",
        "try:\n        run_sync(fails(), loop)\n    except ValueError:\n        print(42)",
    ],
    ids=["no-timeout", "timeout", "raises"],
)
def test_the_first_nested_run_leaves_the_enclosing_batch_whole(call: str) -> None:
    """The same in a plain process (a fresh one: nest_asyncio2's patches are for good)."""
    code = FIRST_BLOCKING_CALL.format(call=call)
    code += "\nasyncio.new_event_loop().run_until_complete(main())\nprint('alive')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.split()) == (0, ["42", "alive"]), done.stderr
