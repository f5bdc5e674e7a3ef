"""Runs outlive their kernel, with real processes: a kernel running a workflow is killed with
SIGKILL at each point a run can be at; a new kernel runs the defining cell again; every run
completes exactly once.

Counted across both kernels (in a file the steps append to): every completed ``run.step``
function ran once, every subscribe call was made once, and the run's outputs equal those of
an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import wait_for
from processes import Kernel, ServerProcess
from subscribers import Recorder

FLOW = """
import asyncio, pathlib, hooknb
DIR = pathlib.Path({dir!r})
SERVICE = {service!r}

def counted(name):
    def step(run):
        with (DIR / "count").open("a") as out:
            out.write(name + "\\n")
        return {{"step": name}}
    return step

async def slow(run):
    with (DIR / "count").open("a") as out:
        out.write("Slow started\\n")
    while not (DIR / "slow-go").exists():
        await asyncio.sleep(0.02)
    with (DIR / "count").open("a") as out:
        out.write("Slow\\n")
    return "slow"

@hooknb.workflow
async def approve(run):
    while not (DIR / "go").exists():   # code before the first step runs again on replay
        await asyncio.sleep(0.02)
    prepared = await run.step("Prepare", counted("Prepare"))
    reply = await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": SERVICE + "subscribe",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}},
        unsubscribe={{"method": "POST", "uri": SERVICE + "unsubscribe"}},
        timeout="PT1H")
    slowed = await run.step("Slow", slow)
    after = await run.step("After", counted("After"))
    return {{"prepared": prepared, "decision": reply.body, "slowed": slowed, "after": after}}
"""

EXPECTED = {
    "prepared": {"step": "Prepare"},
    "decision": {"decision": "yes"},
    "slowed": "slow",
    "after": {"step": "After"},
}


class Gate:
    """A subscribe endpoint that can hold its answer (the call is then in flight)."""

    def __init__(self) -> None:
        self.hold = False
        self.release = False

    async def __call__(self, recorder: Recorder, request: dict[str, Any]) -> Any:
        import asyncio

        if request["path"] == "/subscribe" and self.hold:
            for _ in range(1500):  # at most 30 s
                if self.release:
                    break
                await asyncio.sleep(0.02)
        return 200, {"id": "sub-1"}, {}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "server").start()
    yield server
    server.stop()


def kill_9(kernel: Kernel) -> None:
    process = kernel.km.provisioner.process  # type: ignore[union-attr]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    kernel.kc.stop_channels()


def run_state(server: ServerProcess, run_id: str) -> dict[str, Any]:
    return dict(server.api("GET", f"runs/{run_id}"))


@pytest.mark.parametrize(
    "point",
    [
        "before the first step",
        "while the subscribe call is in flight",
        "while waiting",
        "after the callback was stored but before the kernel got it",
        "inside a run.step",
    ],
)
def test_a_run_killed_with_its_kernel_completes_exactly_once_in_the_next(
    server: ServerProcess, tmp_path: Path, point: str
) -> None:
    gate = Gate()
    work = tmp_path / "work"
    work.mkdir()
    env = dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token)
    with Recorder(gate) as service:
        code = FLOW.format(dir=str(work), service=service.url)
        first = Kernel(env)
        try:
            first.run(code)
            if point != "before the first step":
                (work / "go").touch()
            gate.hold = point == "while the subscribe call is in flight"
            run_id = first.run("run = approve.start(body={'order': 1}); print(run.id)").strip()

            if point == "before the first step":
                wait_for(lambda: run_state(server, run_id)["status"] == "Running")
            elif point == "while the subscribe call is in flight":
                wait_for(lambda: service.calls("POST", "/subscribe"))
            else:
                wait_for(lambda: run_state(server, run_id)["status"] == "Waiting")
                url = _callback_url(server, run_id)
            if point == "after the callback was stored but before the kernel got it":
                first.kc.execute("import time; time.sleep(60)")  # the kernel's loop is busy
                time.sleep(0.5)
                assert httpx.post(url, json={"decision": "yes"}, trust_env=False).status_code == 202
            if point == "inside a run.step":
                assert httpx.post(url, json={"decision": "yes"}, trust_env=False).status_code == 202
                wait_for(lambda: "Slow started" in _counts(work))
            kill_9(first)
        finally:
            first.km.shutdown_kernel(now=True)

        gate.release = True
        (work / "go").touch()
        second = Kernel(env)
        try:
            second.run(code)  # the defining cell, run again
            second.run("import asyncio\nawait asyncio.sleep(0)")
            wait_for(lambda: run_state(server, run_id)["status"] == "Waiting" or _answered(point))
            if not _answered(point):
                url = _callback_url(server, run_id)
                answer = httpx.post(url, json={"decision": "yes"}, trust_env=False)
                assert answer.status_code == 202, answer.text
            (work / "slow-go").touch()
            wait_for(lambda: run_state(server, run_id)["status"] == "Succeeded", timeout=30)
            final = run_state(server, run_id)
            assert final["result"] == EXPECTED
            counts = _counts(work)
            assert counts.count("Prepare") == 1
            assert counts.count("Slow") == 1
            assert counts.count("After") == 1
            assert len(service.calls("POST", "/subscribe")) == 1
            wait_for(lambda: len(service.calls("POST", "/unsubscribe")) == 1)
            adopted = second.run("print(len(approve.runs), approve.runs[0].replays)").split()
            assert adopted == ["1", "1"]
        finally:
            second.shutdown()


def _answered(point: str) -> bool:
    return point in (
        "after the callback was stored but before the kernel got it",
        "inside a run.step",
    )


def _callback_url(server: ServerProcess, run_id: str) -> str:
    (wait,) = server.api("GET", f"waits?run={run_id}")["waits"]
    return str(wait["callbackUrl"])


def _counts(work: Path) -> list[str]:
    path = work / "count"
    return path.read_text().splitlines() if path.exists() else []
