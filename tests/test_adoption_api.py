"""The hub's side of runs that outlive their kernel, through its HTTP API on a real server.

A "kernel" here is a client id with (or without) an open push channel, played by the test:
the kernel-side engine that replays runs is tested on real kernels elsewhere. What is checked
here is what the hub promises: the lease per workflow, which runs count as orphaned, the
histories it hands out, fencing of a kernel whose runs were adopted, cancel without a kernel,
and Http steps made once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import until
from tests.subscribers import Recorder


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    # Runs in these tests are made by clients the hub has never seen connected: without this,
    # the first seconds after start would answer 503 (they might still reconnect).
    return {"reconnect_grace": 0}


class PretendKernel:
    """A client id whose push channel the test opens and closes."""

    def __init__(self, server_url: str, token: str, client: str) -> None:
        self.client = client
        self.events: list[dict[str, Any]] = []
        self._http = httpx.AsyncClient(
            base_url=server_url, headers={"Authorization": f"token {token}"}, trust_env=False
        )
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        hello = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._read(hello))
        await asyncio.wait_for(hello, 10)

    async def _read(self, hello: asyncio.Future[None]) -> None:
        async with self._http.stream(
            "GET", "hooknb/api/channel", params={"client": self.client}, timeout=None
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: hello") and not hello.done():
                    hello.set_result(None)
                elif line.startswith("data:") and hello.done():
                    self.events.append(json.loads(line[5:]))

    async def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self._http.request(method, f"hooknb/api/{path}", json=body)

    async def aclose(self) -> None:
        await self.disconnect()
        await self._http.aclose()


@pytest.fixture
def kernels(
    server_url: str, server_token: str, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[dict[str, PretendKernel]]:
    """Pretend kernels by client id, made on first use."""
    made: dict[str, PretendKernel] = {}

    class Kernels(dict[str, PretendKernel]):
        def __missing__(self, client: str) -> PretendKernel:
            made[client] = self[client] = PretendKernel(server_url, server_token, client)
            return made[client]

    yield Kernels()
    for kernel in made.values():
        jp_asyncio_loop.run_until_complete(kernel.aclose())


async def start_run(kernel: PretendKernel, workflow: str, body: Any = None) -> str:
    answer = await kernel.call(
        "POST", f"workflows/{workflow}/runs", {"client": kernel.client, "body": body or {"n": 1}}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["run"])


async def open_and_subscribe(
    kernel: PretendKernel, run_id: str, step: str, service: Recorder, *, position: int = 0
) -> dict[str, Any]:
    opened = await kernel.call(
        "POST",
        f"runs/{run_id}/waits",
        {"step": step, "client": kernel.client, "timeout": 600, "position": position},
    )
    assert opened.status_code == 201, opened.text
    wait = opened.json()
    subscribed = await kernel.call(
        "POST",
        f"waits/{wait['id']}/subscribe",
        {
            "subscribe": {"method": "POST", "uri": service.url + "subscribe"},
            "unsubscribe": {"method": "POST", "uri": service.url + "unsubscribe"},
        },
    )
    assert subscribed.status_code == 200, subscribed.text
    assert subscribed.json()["state"] == "waiting"
    return dict(wait)


async def record_step(
    kernel: PretendKernel, run_id: str, step: str, value: Any, **order: Any
) -> Any:
    answer = await kernel.call(
        "POST",
        "sync",
        {
            "client": kernel.client,
            "steps": [
                {"run": run_id, "step": step, "kind": "Python", "value": json.dumps(value), **order}
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def report(kernel: PretendKernel, run_id: str, status: str) -> Any:
    answer = await kernel.call(
        "POST",
        "sync",
        {"client": kernel.client, "runs": [{"id": run_id, "status": status, "actions": {}}]},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_defining_kernel_adopts_the_runs_of_a_gone_kernel_with_their_histories(
    kernels: dict[str, PretendKernel], http: httpx.AsyncClient
) -> None:
    old, new = kernels["old-kernel"], kernels["new-kernel"]
    await old.connect()
    with Recorder() as service:
        run_id = await start_run(old, "approve", {"order": 7})
        await record_step(old, run_id, "Prepare", {"total": 42}, position=0)
        wait = await open_and_subscribe(old, run_id, "Approval", service, position=1)
        second = await start_run(old, "approve")
        second_wait = await open_and_subscribe(old, second, "Approval", service, position=0)
        await old.disconnect()
        # While no kernel runs the workflow, the approver answers the second run.
        posted = await http.post(second_wait["callbackUrl"], json={"decision": "yes"})
        assert posted.status_code == 202

        adopted = await new.call("POST", "workflows/approve/adopt", {"client": new.client})
        assert adopted.status_code == 200, adopted.text
        value = adopted.json()
        assert value["lease"] == "granted" and value["finalized"] == []
        runs = {run["id"]: run for run in value["runs"]}
        assert set(runs) == {run_id, second}
        first = runs[run_id]
        assert first["trigger"]["body"]["data"] == '{"order": 7}'
        assert [s["step"] for s in first["steps"]] == ["Prepare", "Approval"]
        prepare, approval = first["steps"]
        assert prepare["state"] == "done" and json.loads(prepare["value"]) == {"total": 42}
        assert approval["kind"] == "HttpWebhook" and approval["position"] == 1
        assert approval["wait"]["id"] == wait["id"]
        assert approval["wait"]["state"] == "waiting"
        assert approval["wait"]["callbackUrl"] == wait["callbackUrl"]
        answered = runs[second]["steps"][0]["wait"]
        assert answered["state"] == "completed"
        assert json.loads(answered["callback"]["body"]["data"]) == {"decision": "yes"}

        # The runs are the new kernel's now: the API says a kernel runs them again.
        listed = await new.call("GET", f"runs/{run_id}")
        assert listed.json()["client"] == new.client
        assert listed.json()["kernel"] == "gone"  # its channel is not open yet
        await new.connect()
        listed = await new.call("GET", f"runs/{run_id}")
        assert listed.json()["kernel"] == "connected"
        # What the old kernel never acknowledged (the callback of the second run) comes to
        # the new one.
        await until(lambda: any(e.get("wait") == second_wait["id"] for e in new.events))
        # Adopted once: a second define adopts nothing more.
        again = await new.call("POST", "workflows/approve/adopt", {"client": new.client})
        assert again.json()["runs"] == []
        assert len(service.calls("POST", "/subscribe")) == 2  # nothing subscribed again


async def test_one_live_kernel_holds_a_workflow_and_a_second_is_told_so(
    kernels: dict[str, PretendKernel],
) -> None:
    first, second = kernels["first"], kernels["second"]
    await first.connect()
    granted = await first.call("POST", "workflows/orders/adopt", {"client": first.client})
    assert granted.status_code == 200
    run_id = await start_run(first, "orders")

    refused = await second.call("POST", "workflows/orders/adopt", {"client": second.client})
    assert refused.status_code == 409
    body = refused.json()
    assert body["lease"] == "held" and body["holder"] == first.client
    assert "another kernel that is connected" in body["error"]
    assert (await second.call("GET", f"runs/{run_id}")).json()["client"] == first.client

    await first.disconnect()
    taken = await second.call("POST", "workflows/orders/adopt", {"client": second.client})
    assert taken.status_code == 200
    assert [run["id"] for run in taken.json()["runs"]] == [run_id]


async def test_a_kernel_whose_run_was_adopted_is_fenced_off(
    kernels: dict[str, PretendKernel],
) -> None:
    old, new = kernels["old"], kernels["new"]
    run_id = await start_run(old, "fenced")
    adopted = await new.call("POST", "workflows/fenced/adopt", {"client": new.client})
    assert [run["id"] for run in adopted.json()["runs"]] == [run_id]

    # The old kernel comes back (it was only slow): its reports and steps no longer count.
    answer = await report(old, run_id, "Succeeded")
    assert answer["fenced"] == [run_id]
    answer = await record_step(old, run_id, "Late", 1)
    assert answer["fenced"] == [run_id]
    run = (await new.call("GET", f"runs/{run_id}")).json()
    assert run["status"] == "Running" and run["client"] == new.client
    opened = await old.call(
        "POST", f"runs/{run_id}/waits", {"step": "Approval", "client": old.client}
    )
    assert opened.status_code == 409 and opened.json()["fenced"] is True
    history = (await new.call("POST", "workflows/fenced/adopt", {"client": new.client})).json()
    assert history["runs"] == []
    # The new kernel's own reports count.
    assert (await report(new, run_id, "Succeeded"))["fenced"] == []
    assert (await new.call("GET", f"runs/{run_id}")).json()["status"] == "Succeeded"


async def test_right_after_a_restart_runs_of_kernels_not_yet_back_are_not_adopted(
    kernels: dict[str, PretendKernel], jp_serverapp: Any
) -> None:
    hub = jp_serverapp.web_app.settings["hooknb_hub"]
    hub.reconnect_grace = 30.0  # as if the server had just started
    old, new = kernels["old"], kernels["new"]
    run_id = await start_run(old, "grace")

    pending = await new.call("POST", "workflows/grace/adopt", {"client": new.client})
    assert pending.status_code == 503
    assert pending.json()["lease"] == "pending"
    assert 1 <= int(pending.headers["Retry-After"]) <= 30

    # A kernel seen since the start is known to be gone when its channel closes.
    await old.connect()
    await old.disconnect()
    adopted = await new.call("POST", "workflows/grace/adopt", {"client": new.client})
    assert adopted.status_code == 200
    assert [run["id"] for run in adopted.json()["runs"]] == [run_id]


async def test_cancel_ends_a_run_no_kernel_runs_at_once_and_for_good(
    kernels: dict[str, PretendKernel], http: httpx.AsyncClient
) -> None:
    old, new = kernels["old"], kernels["new"]
    with Recorder() as service:
        run_id = await start_run(old, "cancelme")
        wait = await open_and_subscribe(old, run_id, "Approval", service)
        await report(old, run_id, "Waiting")
        cancelled = await new.call("POST", f"runs/{run_id}/cancel")
        assert cancelled.status_code == 202
        assert cancelled.json()["status"] == "Cancelled"
        run = (await new.call("GET", f"runs/{run_id}")).json()
        assert run["status"] == "Cancelled" and run["ended"] is not None
        assert "no kernel" in run["error"]
        assert "kernel" not in run  # only unfinished runs say whether a kernel runs them
        await until(lambda: service.calls("POST", "/unsubscribe"))
        late = await http.post(wait["callbackUrl"], json={"decision": "yes"})
        assert late.status_code == 409
        adopted = await new.call("POST", "workflows/cancelme/adopt", {"client": new.client})
        assert adopted.json()["runs"] == []


async def test_a_cancel_requested_while_the_kernel_runs_survives_that_kernel(
    kernels: dict[str, PretendKernel],
) -> None:
    old, new = kernels["old"], kernels["new"]
    await old.connect()
    run_id = await start_run(old, "survive")
    cancelled = await old.call("POST", f"runs/{run_id}/cancel")
    assert cancelled.json()["status"] == "Cancelling"
    await until(lambda: any(e.get("event") == "cancel" for e in old.events))
    await old.disconnect()  # the kernel died before it ended the run
    adopted = await new.call("POST", "workflows/survive/adopt", {"client": new.client})
    assert adopted.json()["runs"] == [] and adopted.json()["finalized"] == [run_id]
    assert (await new.call("GET", f"runs/{run_id}")).json()["status"] == "Cancelled"


async def test_orphaned_runs_end_in_bulk_and_live_ones_are_left_alone(
    kernels: dict[str, PretendKernel],
) -> None:
    gone, live = kernels["gone"], kernels["live"]
    await live.connect()
    orphans = [await start_run(gone, "bulk") for _ in range(3)]
    other = await start_run(gone, "elsewhere")
    running = await start_run(live, "bulk")

    answer = await live.call("POST", "runs/cancel", {"workflow": "bulk"})
    assert answer.status_code == 200
    assert sorted(answer.json()["cancelled"]) == sorted(orphans)
    for run_id in orphans:
        assert (await live.call("GET", f"runs/{run_id}")).json()["status"] == "Cancelled"
    assert (await live.call("GET", f"runs/{running}")).json()["status"] == "Running"
    assert (await live.call("GET", f"runs/{other}")).json()["status"] == "Running"
    everything = await live.call("POST", "runs/cancel", {})
    assert everything.json()["cancelled"] == [other]
    bad = await live.call("POST", "runs/cancel", {"orphaned": "yes"})
    assert bad.status_code == 400


async def test_a_run_that_ends_closes_the_waits_it_left_open(
    kernels: dict[str, PretendKernel],
) -> None:
    kernel = kernels["k"]
    with Recorder() as service:
        run_id = await start_run(kernel, "leftopen")
        wait = await open_and_subscribe(kernel, run_id, "Approval", service)
        await report(kernel, run_id, "Failed")
        state = (await kernel.call("GET", f"waits/{wait['id']}")).json()
        assert state["state"] == "cancelled"
        await until(lambda: service.calls("POST", "/unsubscribe"))


async def test_one_sync_ends_many_runs_and_fences_off_the_ones_it_may_not_touch(
    kernels: dict[str, PretendKernel],
) -> None:
    # The hub reads every run a sync names at once and closes the ended ones together: each
    # report must still be taken, refused or fenced as if it had come alone.
    kernel, other = kernels["k"], kernels["other"]
    with Recorder() as service:
        runs = [await start_run(kernel, "many") for _ in range(3)]
        waits = [await open_and_subscribe(kernel, run_id, "Approval", service) for run_id in runs]
        theirs = await start_run(other, "theirs")
        before = (await other.call("GET", f"runs/{theirs}")).json()["status"]
        answer = await kernel.call(
            "POST",
            "sync",
            {
                "client": kernel.client,
                "runs": [
                    {"id": runs[0], "status": "Failed", "actions": {}},
                    {"id": runs[1], "status": "Succeeded", "actions": {}},
                    {"id": runs[2], "status": "Running", "actions": {}},
                    {"id": theirs, "status": "Succeeded", "actions": {}},
                    {"id": "no-such-run", "status": "Succeeded", "actions": {}},
                ],
                "steps": [
                    {"run": runs[2], "step": "Mine", "kind": "Python", "value": "1"},
                    {"run": theirs, "step": "NotMine", "kind": "Python", "value": "2"},
                ],
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["fenced"] == sorted([theirs, "no-such-run"])
        statuses = [
            (await kernel.call("GET", f"runs/{run_id}")).json()["status"]
            for run_id in [*runs, theirs]
        ]
        assert statuses == ["Failed", "Succeeded", "Running", before]
        states = [
            (await kernel.call("GET", f"waits/{wait['id']}")).json()["state"] for wait in waits
        ]
        # The ended runs' waits are closed (and unsubscribed); the running one's stays open.
        assert states == ["cancelled", "cancelled", "waiting"]
        await until(lambda: len(service.calls("POST", "/unsubscribe")) == 2)
        history = await other.call("POST", "workflows/theirs/adopt", {"client": other.client})
        assert "NotMine" not in json.dumps(history.json())


async def test_a_sync_that_names_a_run_twice_takes_its_reports_in_order(
    kernels: dict[str, PretendKernel],
) -> None:
    # The reports a sync takes are written together (a statement per run, not per report):
    # one run named twice ends as its second report left it, with the start time its first
    # report gave; an ended run keeps its end against a later report of another status.
    kernel = kernels["k"]
    twice, ended = await start_run(kernel, "order"), await start_run(kernel, "order")
    await report(kernel, ended, "Failed")
    answer = await kernel.call(
        "POST",
        "sync",
        {
            "client": kernel.client,
            "runs": [
                {"id": twice, "status": "Running", "started": 5.0, "actions": {"a": 1}},
                {"id": twice, "status": "Succeeded", "ended": 9.0, "actions": {"a": 2}},
                {"id": ended, "status": "Succeeded", "ended": 9.0, "actions": {}},
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["fenced"] == []
    run = (await kernel.call("GET", f"runs/{twice}")).json()
    assert (run["status"], run["started"], run["ended"]) == ("Succeeded", 5.0, 9.0)
    assert run["actions"] == {"a": 2}
    assert (await kernel.call("GET", f"runs/{ended}")).json()["status"] == "Failed"
    many = [await start_run(kernel, "order") for _ in range(70)]  # statements of 32, 32, 4, 2
    answer = await kernel.call(
        "POST",
        "sync",
        {"client": kernel.client, "runs": [{"id": r, "status": "Succeeded"} for r in many]},
    )
    assert answer.json()["runs"] == 70
    statuses = {(await kernel.call("GET", f"runs/{r}")).json()["status"] for r in many}
    assert statuses == {"Succeeded"}


async def test_a_report_is_stored_as_sent_whatever_json_it_holds(
    kernels: dict[str, PretendKernel],
) -> None:
    # Reports are stored as orjson writes them, with json for what orjson does not take
    # (integers beyond 64 bits).
    kernel = kernels["k"]
    run_id = await start_run(kernel, "values")
    result = {"big": 2**70, "text": "é ✓ \U0001f600", "deep": [[[1.5]]]}
    answer = await kernel.call(
        "POST",
        "sync",
        {
            "client": kernel.client,
            "runs": [{"id": run_id, "status": "Succeeded", "result": result}],
        },
    )
    assert answer.status_code == 200, answer.text
    assert (await kernel.call("GET", f"runs/{run_id}")).json()["result"] == result


async def test_an_http_step_is_made_once_and_outlives_the_request_that_asked_for_it(
    kernels: dict[str, PretendKernel],
) -> None:
    kernel = kernels["k"]
    release = asyncio.Event()

    async def slow(recorder: Recorder, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        await asyncio.wait_for(release.wait(), 30)
        return 200, {"made": len(recorder.requests)}, {}

    with Recorder(slow) as service:
        run_id = await start_run(kernel, "httponce")
        body = {
            "step": "Call",
            "client": kernel.client,
            "request": {"method": "POST", "uri": service.url + "call"},
            "position": 0,
        }
        first = asyncio.ensure_future(kernel.call("POST", f"runs/{run_id}/http", body))
        await until(lambda: service.requests)
        first.cancel()  # the kernel goes away mid-call
        await asyncio.gather(first, return_exceptions=True)
        service._loop.call_soon_threadsafe(release.set)  # type: ignore[union-attr]
        again = await kernel.call("POST", f"runs/{run_id}/http", body)
        assert again.status_code == 200, again.text
        assert again.json()["statusCode"] == 200 and again.json()["body"] == {"made": 1}
        third = await kernel.call("POST", f"runs/{run_id}/http", body)
        assert third.json()["body"] == {"made": 1}
        assert len(service.calls("POST", "/call")) == 1
        history = await kernels["n"].call("POST", "workflows/httponce/adopt", {"client": "n"})
        (step,) = history.json()["runs"][0]["steps"]
        assert step["kind"] == "Http" and step["state"] == "done"
        assert json.loads(step["value"])["answer"]["body"] == {"made": 1}


async def test_an_http_step_under_way_stops_when_its_run_ends(
    kernels: dict[str, PretendKernel],
) -> None:
    # Runs that end in one sync stop their Http calls still under way; another run's goes on.
    kernel = kernels["k"]
    release = asyncio.Event()

    async def slow(recorder: Recorder, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        await asyncio.wait_for(release.wait(), 30)
        return 200, {"made": True}, {}

    with Recorder(slow) as service:
        ending, going_on = [await start_run(kernel, "httpstop") for _ in range(2)]
        calls = {
            run_id: asyncio.ensure_future(
                kernel.call(
                    "POST",
                    f"runs/{run_id}/http",
                    {
                        "step": "Call",
                        "client": kernel.client,
                        "request": {"method": "POST", "uri": service.url + "call"},
                        "position": 0,
                    },
                )
            )
            for run_id in (ending, going_on)
        }
        await until(lambda: len(service.requests) == 2)
        await report(kernel, ending, "Failed")
        stopped = await asyncio.wait_for(calls[ending], 10)
        assert stopped.status_code == 409, stopped.text
        assert "ended before its Http step finished" in stopped.json()["error"]
        assert not calls[going_on].done()
        service._loop.call_soon_threadsafe(release.set)  # type: ignore[union-attr]
        finished = await asyncio.wait_for(calls[going_on], 10)
        assert finished.status_code == 200 and finished.json()["body"] == {"made": True}


def test_a_store_from_hooknb_0_1_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    from hooknb.server.store import SCHEMA_VERSION, Store

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
        INSERT INTO meta VALUES ('schema_version', 1);
        CREATE TABLE runs (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, client TEXT,
            status TEXT NOT NULL, trigger_callback INTEGER, created REAL NOT NULL,
            started REAL, ended REAL, doc TEXT);
        INSERT INTO runs (id, workflow, status, created) VALUES ('0001', 'old', 'Waiting', 1.0);
        """
    )
    conn.commit()
    conn.close()
    store = Store(path).open()
    try:
        row = store.reader.execute(
            "SELECT id, status, cancel_requested, replays FROM runs"
        ).fetchone()
        assert row == ("0001", "Waiting", 0, 0)
        version = store.reader.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()[0]
        assert int(version) == SCHEMA_VERSION
        assert store.reader.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 0
    finally:
        store.close()


def test_a_store_from_a_newer_hooknb_is_refused(tmp_path: Path) -> None:
    from hooknb.server.store import Store, StoreError

    path = tmp_path / "new.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);"
        "INSERT INTO meta VALUES ('schema_version', 99);"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer hooknb"):
        Store(path).open()
