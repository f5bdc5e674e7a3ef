"""Runs outlive their kernel: a kernel that defines a workflow adopts its unfinished runs whose
kernel is gone and replays them against their history.

Here both "kernels" are hub connections in the test process on the server's loop (one is
closed, as a dead kernel's channel closes); tests/test_replay_processes.py does the same with
real kernels killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from helpers import until, waiting
from subscribers import Recorder

import hooknb
from hooknb.kernel.client import HubClient
from hooknb.kernel.discovery import HubAddress


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    return {"reconnect_grace": 0}


@pytest.fixture
def new_kernel(
    server_url: str, server_token: str, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[Callable[[], HubClient]]:
    """Make kernel-side connections (each a kernel of its own); closed at the end."""
    made: list[HubClient] = []

    def make() -> HubClient:
        made.append(HubClient(HubAddress(server_url, server_token, "test"), loop=jp_asyncio_loop))
        return made[-1]

    yield make
    for client in made:
        jp_asyncio_loop.run_until_complete(client.aclose())


class Counter:
    """How many times each step function ran (across both kernels of a test)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, name: str, value: Any = None) -> Callable[[Any], Any]:
        def step(run: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return value if value is not None else {"step": name}

        return step


def define(hub: HubClient, service: Recorder, counter: Counter, *, extra_step: bool = False) -> Any:
    """The same workflow as each kernel's defining cell would make it."""

    @hooknb.workflow(name="approve", hub=hub)
    async def approve(run: Any) -> Any:
        prepared = await run.step("Prepare", counter("Prepare", {"total": 42}))
        if extra_step:
            await run.step("Inserted", counter("Inserted"))
        noted = run.record("Noted", {"at": "first"})
        composed = run.compose("Compose", {"total": hooknb.expr("@{outputs('Prepare')['total']}")})
        reply = await run.webhook(
            "Approval",
            subscribe={
                "method": "POST",
                "uri": service.url + "subscribe",
                "body": {"callbackUrl": hooknb.CALLBACK_URL},
            },
            unsubscribe={"method": "POST", "uri": service.url + "unsubscribe"},
            timeout="PT1H",
        )
        after = await run.step("After", counter("After"))
        return {
            "prepared": prepared,
            "noted": noted,
            "composed": composed,
            "decision": reply.body,
            "after": after,
        }

    return approve


async def test_a_new_kernel_adopts_a_waiting_run_and_completes_it_once(
    new_kernel: Callable[[], HubClient], http: httpx.AsyncClient
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        assert (await flow.adopt_async())["runs"] == []
        run = await flow.start_async(body={"order": 7})
        step = await waiting(run, "Approval")
        url = step.callback_url
        await first.flush()
        await first.aclose()  # the kernel dies; its run waits on

        second = new_kernel()
        again = define(second, service, counter)
        answer = await again.adopt_async()
        assert answer["lease"] == "granted" and answer["runs"] == [run.id]
        (adopted,) = again.runs
        assert adopted.id == run.id and adopted is not run
        resumed = await waiting(adopted, "Approval")
        assert resumed.callback_url == url  # the same wait: nothing subscribed again
        assert len(service.calls("POST", "/subscribe")) == 1
        assert adopted.actions["Prepare"].status == "Succeeded"

        posted = await http.post(url, json={"decision": "yes"})
        assert posted.status_code == 202
        await asyncio.wait_for(adopted._wait(), 10)
        assert adopted.status == "Succeeded", adopted.error
        assert adopted.result == {
            "prepared": {"total": 42},
            "noted": {"at": "first"},
            "composed": {"total": "42"},
            "decision": {"decision": "yes"},
            "after": {"step": "After"},
        }
        assert counter.calls == {"Prepare": 1, "After": 1}
        await until(lambda: service.calls("POST", "/unsubscribe"))
        assert adopted.replays == 1


async def test_a_callback_that_came_while_no_kernel_ran_resumes_the_run_at_once(
    new_kernel: Callable[[], HubClient], http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        run = await flow.start_async(body={})
        url = (await waiting(run, "Approval")).callback_url
        await first.flush()
        await first.aclose()
        assert (await http.post(url, json={"decision": "later"})).status_code == 202
        listed = await jp_fetch("hooknb", "api", "runs", run.id)
        import json

        assert json.loads(listed.body)["kernel"] == "gone"

        second = new_kernel()
        again = define(second, service, counter)
        await again.adopt_async()
        (adopted,) = again.runs
        await asyncio.wait_for(adopted._wait(), 10)
        assert adopted.status == "Succeeded", adopted.error
        assert adopted.result["decision"] == {"decision": "later"}
        assert counter.calls == {"Prepare": 1, "After": 1}


async def test_code_that_asks_for_another_step_fails_the_run_naming_both(
    new_kernel: Callable[[], HubClient],
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        run = await flow.start_async(body={})
        await waiting(run, "Approval")
        await first.flush()
        await first.aclose()

        second = new_kernel()
        edited = define(second, service, counter, extra_step=True)
        await edited.adopt_async()
        (adopted,) = edited.runs
        await asyncio.wait_for(adopted._wait(), 10)
        assert adopted.status == "Failed"
        assert "'Inserted'" in adopted.error and "'Noted'" in adopted.error
        assert "changed since the run started" in adopted.error
        assert counter.calls == {"Prepare": 1}  # neither Inserted nor anything else ran
        await second.flush()
        assert len(service.calls("POST", "/subscribe")) == 1
        # The run's open wait is closed with it.
        await until(lambda: service.calls("POST", "/unsubscribe"))


async def test_a_second_live_kernel_is_told_and_adopts_nothing(
    new_kernel: Callable[[], HubClient], capsys: pytest.CaptureFixture[str]
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        await flow.adopt_async()
        await first.wait_connected()
        run = await flow.start_async(body={})
        await waiting(run, "Approval")

        second = new_kernel()
        other = define(second, service, counter)
        answer = await other.adopt_async()
        assert answer["lease"] == "held" and answer["holder"] == first.client_id
        assert other.runs == []
        assert "run by another kernel that is connected" in capsys.readouterr().out


async def test_cancel_ends_a_run_whose_kernel_is_gone_and_no_kernel_brings_it_back(
    new_kernel: Callable[[], HubClient], jp_fetch: Any
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        run = await flow.start_async(body={})
        await waiting(run, "Approval")
        await first.flush()
        await first.aclose()
        await jp_fetch("hooknb", "api", "runs", run.id, "cancel", method="POST", body="{}")
        await until(lambda: service.calls("POST", "/unsubscribe"))

        second = new_kernel()
        again = define(second, service, counter)
        assert (await again.adopt_async())["runs"] == []
        assert again.runs == []


async def test_a_kernel_whose_run_was_adopted_stops_its_copy(
    new_kernel: Callable[[], HubClient], http: httpx.AsyncClient, jp_serverapp: Any
) -> None:
    counter = Counter()
    with Recorder() as service:
        first = new_kernel()
        flow = define(first, service, counter)
        run = await flow.start_async(body={})
        url = (await waiting(run, "Approval")).callback_url
        await first.flush()
        # The kernel's channel drops (it looks gone) but the kernel lives on.
        channel = first._tasks[0]
        channel.cancel()
        await asyncio.gather(channel, return_exceptions=True)
        hub = jp_serverapp.web_app.settings["hooknb_hub"]
        await until(lambda: not hub.is_connected(first.client_id))

        second = new_kernel()
        again = define(second, service, counter)
        await again.adopt_async()
        (adopted,) = again.runs
        await waiting(adopted, "Approval")
        await http.post(url, json={"decision": "yes"})
        await asyncio.wait_for(adopted._wait(), 10)
        assert adopted.status == "Succeeded"
        # The old copy learns at its next report that the run is not its own any more.
        first.report(run)
        await until(lambda: run.done)
        assert run._fenced and "another kernel adopted" in (run.error or "")
        assert counter.calls["After"] == 1
