"""kill -9 under load: every callback answered 202 reaches a run exactly once, 10 of 10 times,
and action waits opened before the crashes are still resumable, with deadlines enforced."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from processes import Kernel, ServerProcess
from subscribers import Recorder

TRIALS = 10
RATE = 1000
COUNT = 30000  # an upper bound: each trial stops 1.5 s after the server is back
HERE = Path(__file__).parent

SETUP = """
import asyncio, collections, json, time
import hooknb
SEEN = collections.defaultdict(list)
BASE = {base!r}
CB = {{"cb": hooknb.CALLBACK_URL}}

def crash_workflow(n):
    @hooknb.workflow(name=f"crash{{n}}", trigger=hooknb.HttpWebhookTrigger(
        subscribe={{"method": "POST", "uri": BASE + "s", "body": CB}}))
    async def flow(run):
        SEEN[n].append(run.trigger.body["id"])
    return flow

@hooknb.workflow
async def holder(run):
    reply = await run.webhook(
        "Hold",
        subscribe={{"method": "POST", "uri": BASE + "hold", "body": CB}},
        unsubscribe={{"method": "POST", "uri": BASE + "unhold", "body": CB}},
        timeout=run.trigger.body["timeout"])
    return reply.body

async def delivered(n, path, limit=60):
    accepted = set(json.load(open(path))["accepted"])
    give_up = time.monotonic() + limit
    while not accepted <= set(SEEN[n]) and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
    seen = SEEN[n]
    return {{"accepted": len(accepted), "missing": len(accepted - set(seen)),
            "delivered": len(seen), "distinct": len(set(seen))}}
"""


def test_kill_9_under_load_loses_nothing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    with Recorder() as service:
        kernel = Kernel(dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token))
        try:
            kernel.run(SETUP.format(base=service.url))
            # waits opened before any crash: 30 long ones to resume later, 10 that must time out
            kernel.run(
                "held = [holder.start(body={'timeout': 'PT10M'}) for _ in range(30)]\n"
                "short = [holder.start(body={'timeout': 'PT4S'}) for _ in range(10)]\n"
                "while any(r.status != 'Waiting' for r in held + short):\n"
                "    await asyncio.sleep(0.02)\n"
            )
            results = []
            for n in range(TRIALS):
                url = kernel.run(f"wf = crash_workflow({n}); wf.enable(); print(wf.callback_url)")
                out = tmp_path / f"accepted-{n}.json"
                restarted = tmp_path / f"restarted-{n}"
                load = subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "loadgen.py"),
                        url.strip(),
                        "--rate",
                        str(RATE),
                        "--count",
                        str(COUNT),
                        "--out",
                        str(out),
                        "--until-file",
                        str(restarted),
                    ],
                    env=server.env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert load.stdout is not None
                assert load.stdout.readline().strip() == "started"
                time.sleep(0.8)
                server.kill()
                t_restart = time.monotonic()
                server.start()
                restarted.touch()
                print("restart", round(time.monotonic() - t_restart, 2))
                assert load.wait(120) == 0
                report = json.loads(out.read_text())
                assert report["offered_per_second"] >= RATE * 0.9, report
                assert report["statuses"].get("500") is None, report
                counted = json.loads(
                    kernel.run(f"print(json.dumps(await delivered({n}, {str(out)!r})))", timeout=90)
                )
                results.append((report["statuses"], counted))
                print(n, report["statuses"], counted, round(report["offered_per_second"]))
                assert counted["accepted"] > 100, (n, report["statuses"])
                assert counted["missing"] == 0, (n, counted)
                assert counted["delivered"] == counted["distinct"], (n, counted)  # exactly once

            # after ten crashes the early waits still work, and the short ones timed out
            urls = json.loads(
                kernel.run("print(json.dumps([r.actions['Hold'].callback_url for r in held]))")
            )
            with httpx.Client(trust_env=False, timeout=30) as client:
                for i, wait_url in enumerate(urls):
                    assert client.post(wait_url, json={"resumed": i}).status_code == 202
            states = kernel.run(
                "for r in held + short:\n    await r\n"
                "print(sorted({(r.status, r.actions['Hold'].status) for r in held}),"
                " sorted({r.status for r in short}))",
                timeout=60,
            )
            assert states.strip() == ("[('Succeeded', 'Succeeded')] ['TimedOut']"), states
            give_up = time.monotonic() + 30
            while len(service.calls("POST", "/unhold")) < 40 and time.monotonic() < give_up:
                time.sleep(0.1)
            assert len(service.calls("POST", "/unhold")) == 40  # every wait unsubscribed once
        finally:
            kernel.shutdown()
            server.stop()
