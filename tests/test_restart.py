"""A Jupyter server killed with SIGKILL and restarted loses nothing (real processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import wait_for
from processes import Kernel, ServerProcess

WORKFLOWS = """
import hooknb
BASE = {base!r}

def topic(name):
    return hooknb.HttpWebhookTrigger(
        subscribe={{"method": "POST", "uri": BASE + f"topics/{{name}}/subscriptions",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}},
        unsubscribe={{"method": "POST", "uri": BASE + f"topics/{{name}}/unsubscribe",
                     "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}})

@hooknb.workflow(trigger=topic("orders"))
async def orders(run):
    reply = await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": BASE + "approvals",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL,
                            "subject": "order " + str(run.trigger.body["id"])}}}},
        unsubscribe=lambda sub: {{"method": "DELETE", "uri": BASE + "approvals/" + sub.body["id"]}},
        timeout=run.trigger.body.get("timeout", "PT5M"))
    return reply.body["decision"]

@hooknb.workflow(trigger=topic("later"))
async def later(run):
    return run.trigger.body["n"]
"""


@pytest.fixture
def demo() -> Iterator[Any]:
    from hooknb.demo import DemoService

    with DemoService() as service:
        yield service


def test_waits_and_queued_callbacks_survive_kill_9(tmp_path: Path, demo: Any) -> None:
    server = ServerProcess(tmp_path).start()
    env = dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token)
    kernel = Kernel(env)
    leaving = Kernel(env)
    try:
        kernel.run(WORKFLOWS.format(base=demo.url) + "\norders.enable()")
        leaving.run(WORKFLOWS.format(base=demo.url) + "\nlater.enable()")
        leaving.shutdown()  # the kernel running `later` goes away; its trigger stays subscribed
        http = httpx.Client(trust_env=False, timeout=30)
        # two runs pause on their approvals; one of them will time out after the restart
        for body in ({"id": 1}, {"id": 2, "timeout": "PT4S"}):
            published = http.post(f"{demo.url}topics/orders/events", json=body).json()
            assert published["deliveries"][0]["status"] == 202
        for n in range(3):  # queued: no kernel runs `later` now
            published = http.post(f"{demo.url}topics/later/events", json={"n": n}).json()
            assert published["deliveries"][0]["status"] == 202
        kernel.run(
            "import asyncio\n"
            "while len(orders.runs) < 2 or any(r.status != 'Waiting' for r in orders.runs):\n"
            "    await asyncio.sleep(0.05)\n",
            timeout=30,
        )

        server.kill()
        server.start()

        approvals = http.get(f"{demo.url}approvals").json()
        first = next(a for a in approvals if a["subject"] == "order 1")
        decided = http.post(
            f"{demo.url}approvals/{first['id']}/decision", json={"decision": "approve"}
        ).json()
        assert decided["callback"]["status"] == 202  # the URL handed out before the crash works
        out = kernel.run(
            "r1, r2 = sorted(orders.runs, key=lambda r: r.trigger.body['id'])\n"
            "r1.wait(timeout=30); r2.wait(timeout=30)\n"
            "print(r1.status, r1.result, r2.status, r2.actions['Approval'].status)",
            timeout=60,
        )
        assert out.split() == ["Succeeded", "Approved", "TimedOut", "TimedOut"]
        # the deadline was enforced by the restarted server, which also unsubscribed
        wait_for(
            lambda: (
                {a["status"] for a in http.get(f"{demo.url}approvals").json()}
                == {"Approved", "Withdrawn"}
            ),
            what="the timed-out approval to be withdrawn",
        )

        # a new kernel enabling `later` gets the three queued callbacks as runs
        again = Kernel(env)
        try:
            out = again.run(
                WORKFLOWS.format(base=demo.url) + "\nlater.enable()\nimport asyncio\n"
                "while len(later.runs) < 3:\n    await asyncio.sleep(0.05)\n"
                # Adoption is asked in the background and waits out the restarted hub's
                # reconnect grace: its message may come after the runs, so wait for it too.
                "await orders.adopt_async()\n"
                "print(sorted([(await r).result for r in later.runs]))",
                timeout=60,
            )
            # `orders` is still run by the first kernel, which is alive: this one is told so.
            told, result = out.strip().splitlines()
            assert "'orders' is run by another kernel that is connected" in told
            assert result == "[0, 1, 2]"
        finally:
            again.shutdown()
        runs = server.api("GET", "runs")["runs"]
        assert sorted(r["status"] for r in runs) == ["Succeeded"] * 4 + ["TimedOut"]
    finally:
        kernel.shutdown()
        server.stop()


def test_a_dead_kernels_waits_still_time_out_and_unsubscribe(tmp_path: Path, demo: Any) -> None:
    server = ServerProcess(tmp_path).start()
    kernel = Kernel(dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token))
    try:
        kernel.run(
            "import hooknb, asyncio\n"
            f"BASE = {demo.url!r}\n"
            "@hooknb.workflow\n"
            "async def orphan(run):\n"
            "    await run.webhook('Approval', timeout='PT2S',\n"
            "        subscribe={'method': 'POST', 'uri': BASE + 'approvals',\n"
            "                   'body': {'callbackUrl': hooknb.CALLBACK_URL, 'subject': 's'}},\n"
            "        unsubscribe=lambda sub: {'method': 'DELETE',\n"
            "                                 'uri': BASE + 'approvals/' + sub.body['id']})\n"
            "run = orphan.start()\n"
            "while run.status != 'Waiting':\n    await asyncio.sleep(0.02)\n"
        )
        kernel.shutdown()  # the kernel that opened the wait is gone
        http = httpx.Client(trust_env=False, timeout=30)
        assert http.get(f"{demo.url}approvals").json()[0]["status"] == "Pending"
        wait_for(
            lambda: http.get(f"{demo.url}approvals").json()[0]["status"] == "Withdrawn",
            what="the server to unsubscribe the dead kernel's timed-out step",
        )
        waits = server.api("GET", "waits")["waits"]
        assert [(w["outcome"], w["unsubscribe"]) for w in waits] == [("TimedOut", "done")]
    finally:
        server.stop()


def test_a_started_server_leaves_its_startup_objects_out_of_full_collections(
    tmp_path: Path,
) -> None:
    """A full garbage collection walks every object the server holds (~0.1 s in which nothing
    is answered, every few seconds under load): what the server started with is frozen out of
    it once it runs, unless c.HookNB.freeze_startup_objects is off."""
    said = "objects the server started with are left out of full garbage collections"
    server = ServerProcess(tmp_path / "on").start()
    try:
        line = wait_for(
            lambda: next((ln for ln in server.log().splitlines() if said in ln), None),
            30,
            "the freeze",
        )
        frozen = int(line.split("hooknb: ", 1)[1].split(" ", 1)[0].replace(",", ""))
        assert frozen > 50_000  # Jupyter Server's own modules, classes and handlers
    finally:
        server.stop()
    server = ServerProcess(
        tmp_path / "off", extra_args=("--HookNB.freeze_startup_objects=False",)
    ).start()
    try:
        wait_for(lambda: "hooknb hub ready" in server.log(), 30, "the hub")
        assert said not in server.log()
    finally:
        server.stop()
