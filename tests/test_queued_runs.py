"""A trigger's queued run is its own delivery (schema 4): no deliveries row per callback.

What a kernel gets on its channel, what an acknowledgement and a report do, a bulk cancel of
many queued runs, a kill -9 with queued runs in the store, and the migration of a schema 3
store whose trigger deliveries were rows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from helpers import api, the_hub, until
from processes import ServerProcess
from subscribers import Recorder
from test_security import enabled_trigger

import hooknb
import hooknb.kernel.client as client_module
from hooknb.server.rows import InboundRequest


async def channel_events(
    http: httpx.AsyncClient, url: str, token: str, client: str, count: int, quiet: float = 0.5
) -> list[dict[str, Any]]:
    """The deliveries a kernel's channel gets until ``count`` arrived, then ``quiet`` s more."""
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"token {token}"}

    async def read() -> None:
        async with http.stream(
            "GET", f"{url}hooknb/api/channel", params={"client": client}, headers=headers
        ) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and '"seq"' in line:
                    events.append(json.loads(line[6:]))

    task = asyncio.ensure_future(read())
    try:
        await until(lambda: len(events) >= count or task.done(), 20, f"{count} deliveries")
        await asyncio.sleep(quiet)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return events


async def test_a_trigger_callback_is_one_queued_run_that_is_its_delivery(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    hub = the_hub(jp_serverapp)
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "queued")
    url = record["trigger"]["callbackUrl"]
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(40)))
    assert {answer.status_code for answer in answers} == {202}
    runs = [answer.json()["run"] for answer in answers]
    for answer in answers:  # Logic Apps' headers, from the grouped write as from any other
        assert answer.headers["x-ms-workflow-run-id"] == answer.json()["run"]
        assert answer.headers["x-ms-client-tracking-id"] == answer.json()["run"]
        assert answer.headers["x-ms-workflow-name"] == "queued"
        assert len(answer.headers["x-ms-trigger-history-name"]) == 20
        assert answer.headers["x-ms-correlation-id"] == answer.headers["x-ms-tracking-id"]
    reader = hub.store.reader
    assert reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
    stored = dict(
        reader.execute(
            "SELECT r.id, c.body FROM runs r JOIN callbacks c ON c.id = r.trigger_callback"
            " WHERE r.workflow = 'queued' AND r.status = 'Queued'"
        ).fetchall()
    )
    assert sorted(stored) == sorted(runs)
    assert sorted(json.loads(body)["i"] for body in stored.values()) == list(range(40))
    history = await api(jp_fetch, "workflows", "queued", "triggers")
    assert sorted(run for entry in history["history"] for run in entry["runs"]) == sorted(runs)
    assert {entry["status"] for entry in history["history"]} == {"Fired"}
    names = {answer.headers["x-ms-trigger-history-name"] for answer in answers}
    assert {entry["name"] for entry in history["history"]} == names
    assert (await api(jp_fetch, "status"))["pendingDeliveries"] == 40

    # The kernel that runs the workflow gets every queued run, oldest first, with its request.
    events = await channel_events(http, server_url, server_token, "c", 40)
    assert [event["run"] for event in events] == sorted(runs)
    assert all(event["kind"] == "trigger" and event["seq"] < 0 for event in events)
    assert all(event["workflow"] == "queued" for event in events)
    assert {
        event["run"]: json.loads(event["callback"]["body"]["data"])["i"] for event in events
    } == {run: json.loads(body)["i"] for run, body in stored.items()}

    # Acknowledged with each run's first report (as a kernel does), half of them are taken:
    # a new connection gets the other half only.
    taken = events[:20]
    await api(
        jp_fetch,
        "sync",
        method="POST",
        body={
            "client": "c",
            "acks": [event["seq"] for event in taken],
            "runs": [{"id": event["run"], "status": "Running", "started": 1.0} for event in taken],
        },
    )
    again = await channel_events(http, server_url, server_token, "c", 20)
    assert [event["run"] for event in again] == [event["run"] for event in events[20:]]
    assert (await api(jp_fetch, "status"))["pendingDeliveries"] == 20


async def test_a_bulk_cancel_of_many_queued_runs(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    # F5: each cancelled Queued run used to delete its delivery row by run id, unindexed:
    # quadratic. Now the run is the delivery; cancelling it is one row's update.
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "many")
    url = record["trigger"]["callbackUrl"]
    runs: list[str] = []
    for _ in range(15):
        answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(100)))
        runs.extend(answer.json()["run"] for answer in answers)
    assert len(set(runs)) == 1500
    answer = await api(
        jp_fetch, "runs", "cancel", method="POST", body={"workflow": "many", "orphaned": True}
    )
    assert sorted(answer["cancelled"]) == sorted(runs)
    reader = the_hub(jp_serverapp).store.reader
    statuses = reader.execute(
        "SELECT status, COUNT(*) FROM runs WHERE workflow = 'many' GROUP BY status"
    ).fetchall()
    assert statuses == [("Cancelled", 1500)]
    assert (await api(jp_fetch, "status"))["pendingDeliveries"] == 0
    assert await channel_events(http, server_url, server_token, "c", 0) == []


def test_queued_runs_survive_kill_9_and_reach_the_kernel_that_connects(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        with Recorder() as service:
            server.api("PUT", "workflows/crashq", json={"client": "k", "trigger": "T"})
            record = server.api(
                "PUT",
                "workflows/crashq/trigger",
                json={"client": "k", "subscribe": {"method": "POST", "uri": f"{service.url}s"}},
            )
        url = record["trigger"]["callbackUrl"]
        accepted = []
        with httpx.Client(trust_env=False, timeout=30) as client:
            for i in range(200):
                answer = client.post(url, json={"i": i})
                assert answer.status_code == 202
                accepted.append(answer.json()["run"])
        server.kill()  # every 202 was answered after its commit
        server.start()

        async def connect() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
                return await channel_events(http, server.url, server.token, "k", 200)

        events = asyncio.run(connect())
        assert [event["run"] for event in events] == sorted(accepted)
        assert len({event["seq"] for event in events}) == 200
    finally:
        server.stop()


def test_a_schema_3_store_loses_its_trigger_delivery_rows_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    from hooknb.server.store import SCHEMA_VERSION, Store

    path = tmp_path / "v3.sqlite"
    store = Store(path).open()

    def schema_3(conn: sqlite3.Connection) -> None:
        # As hooknb with schema 3 left it: a queued run with its trigger delivery row, and an
        # event of a kernel's run (a delivery to a client: stays a row).
        conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
        conn.execute(
            "INSERT INTO runs (id, workflow, status, created) VALUES ('0a', 'w', 'Queued', 1)"
        )
        conn.execute(
            "INSERT INTO deliveries (route, kind, run_id, created)"
            " VALUES ('workflow:w', 'trigger', '0a', 1)"
        )
        conn.execute(
            "INSERT INTO deliveries (route, kind, event, run_id, created)"
            " VALUES ('client:k', 'run', 'cancel', '0b', 1)"
        )

    store.write_sync(schema_3)
    store.close()
    store = Store(path).open()
    try:
        reader = store.reader
        assert (
            int(reader.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            == SCHEMA_VERSION
        )
        assert reader.execute("SELECT route, kind, run_id FROM deliveries").fetchall() == [
            ("client:k", "run", "0b")
        ]
        assert reader.execute("SELECT id, status FROM runs").fetchall() == [("0a", "Queued")]
    finally:
        store.close()


async def enabled_workflow(hub: Any, service: Recorder, name: str) -> Any:
    """A trigger workflow on ``hub`` whose runs return their callback's ``i``, enabled."""

    @hooknb.workflow(
        name=name,
        trigger=hooknb.HttpWebhookTrigger(
            subscribe={"method": "POST", "uri": f"{service.url}s", "body": {"n": 1}}
        ),
        hub=hub,
    )
    async def flow(run: Any) -> Any:
        return run.trigger.body["i"]

    await flow.enable_async()
    return flow


async def test_a_busy_kernel_syncs_at_most_every_spacing_and_a_flush_goes_at_once(
    hub: Any, http: httpx.AsyncClient, monkeypatch: Any
) -> None:
    """Each sync is an authenticated request the server answers on its event loop: a kernel
    starting runs as fast as callbacks come reports them in syncs spaced _SYNC_SPACING apart,
    _SYNC_SPACING_BUSY after a sync of _BUSY_SYNC reports or more, while flush() (a caller
    waiting for the hub to know) never waits for the spacing."""
    monkeypatch.setattr(client_module, "_BUSY_SYNC", 8)  # (20 callbacks come at once)
    sent: list[tuple[float, int]] = []
    send = hub._send_sync

    async def timed(acks: Any, reports: Any, steps: Any) -> Any:
        sent.append((hub.loop.time(), len(reports)))
        return await send(acks, reports, steps)

    hub._send_sync = timed
    with Recorder() as service:
        spaced = await enabled_workflow(hub, service, "spaced")
        await hub.flush()
        sent.clear()
        for wave in range(10):
            await asyncio.gather(
                *(
                    http.post(spaced.callback_url, json={"i": i})
                    for i in range(wave * 20, wave * 20 + 20)
                )
            )
            await asyncio.sleep(0.005)
        await until(lambda: len(spaced.runs) == 200 and all(r.done for r in spaced.runs), 20)
        await until(lambda: sum(count for _, count in sent) >= 200, 10, "every run reported")
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)]
        assert gaps and min(gaps) >= client_module._SYNC_SPACING * 0.99, gaps
        after_busy = [
            later - earlier
            for (earlier, count), (later, _) in itertools.pairwise(sent)
            if count >= client_module._BUSY_SYNC
        ]
        assert after_busy and min(after_busy) >= client_module._SYNC_SPACING_BUSY * 0.99, sent

        monkeypatch.setattr(client_module, "_SYNC_SPACING", 30.0)
        for count in (201, 202):
            await http.post(spaced.callback_url, json={"i": count})
            await until(lambda n=count: len(spaced.runs) >= n and spaced.runs[-1].done, 10)
            await asyncio.wait_for(hub.flush(), 5)  # not 30 s


async def test_a_pushed_delivery_carries_text_beyond_ascii_as_sent(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    # Events are written as UTF-8 JSON (not \u escapes): what a kernel reads must be what the
    # sender sent, in the live push as in catch-up, and the sender's answer too.
    hub = the_hub(jp_serverapp)
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "accents")
    url = record["trigger"]["callbackUrl"]
    reading = asyncio.ensure_future(channel_events(http, server_url, server_token, "c", 2))
    await until(lambda: "c" in hub._channels, 10, "the kernel's channel")
    body = "héllo ✓ \U0001f600".encode()
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Name": "Zoë".encode("latin-1")}
    answers = [await http.post(url, content=body, headers=headers) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].headers["Content-Type"] == "application/json"
    assert answers[0].json()["workflow"] == "accents"
    events = await reading
    assert [event["run"] for event in events] == [answer.json()["run"] for answer in answers]
    for event in events:
        assert ["X-Name", "Zoë"] in event["callback"]["headers"]
        assert event["callback"]["body"] == {"encoding": "utf-8", "data": body.decode()}
    again = await channel_events(http, server_url, server_token, "c", 2)
    assert [event["callback"] for event in again] == [event["callback"] for event in events]


async def test_a_run_that_ends_in_its_first_step_is_reported_once(
    hub: Any, http: httpx.AsyncClient
) -> None:
    """Each report is an UPDATE of the run's row (its status moves in two indexes): a kernel
    given a batch of runs lets them take their first step before it reads their state, so a
    run that ends there is reported once, ended, not Running and then ended."""
    sent: dict[str, list[str]] = {}
    send = hub._send_sync

    async def counted(acks: Any, reports: Any, steps: Any) -> Any:
        for report in reports:
            sent.setdefault(report["id"], []).append(report["status"])
        return await send(acks, reports, steps)

    hub._send_sync = counted
    with Recorder() as service:
        at_once = await enabled_workflow(hub, service, "at_once")
        url = at_once.callback_url
        answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(40)))
        assert {answer.status_code for answer in answers} == {202}
        await until(lambda: len(at_once.runs) == 40 and all(r.done for r in at_once.runs), 20)
        await hub.flush()
    assert sorted(sent) == sorted(answer.json()["run"] for answer in answers)
    twice = {run_id: statuses for run_id, statuses in sent.items() if statuses != ["Succeeded"]}
    assert twice == {}


async def test_grouped_trigger_callbacks_among_other_writes_keep_their_rows_straight(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient
) -> None:
    """The grouped write of trigger callbacks keeps what it read (a trigger's state, the next
    row ids) only while nothing else was written: callbacks of a workflow with conditions (the
    general path, whose rows take SQLite's ids) in the same batches, a trigger disabled and
    enabled again, and a batch rolled back, never make it store a row twice, refuse one it
    should take, or take one it should refuse."""
    hub = the_hub(jp_serverapp)
    with Recorder() as service:
        fast = (await enabled_trigger(jp_fetch, service, "grouped"))["trigger"]["callbackUrl"]
        await api(jp_fetch, "workflows", "guarded", method="PUT", body={"client": "c"})
        await api(
            jp_fetch,
            "workflows",
            "guarded",
            "settings",
            method="PUT",
            body={"conditions": ["@equals(triggerBody()?['keep'], true)"]},
        )
        guarded = (await enabled_trigger(jp_fetch, service, "guarded"))["trigger"]["callbackUrl"]

        async def wave(size: int) -> list[httpx.Response]:
            return await asyncio.gather(
                *(
                    http.post(fast if i % 3 else guarded, json={"i": i, "keep": i % 2 == 0})
                    for i in range(size)
                )
            )

        answers = [answer for _ in range(5) for answer in await wave(30)]
        assert {answer.status_code for answer in answers} == {202}

        # Disabled between two callbacks: the second is refused; enabled again: taken.
        assert (await http.post(fast, json={"i": "before"})).status_code == 202
        await api(jp_fetch, "workflows", "grouped", "trigger", method="DELETE")
        refused = await http.post(fast, json={"i": "while disabled"})
        assert refused.status_code == 409, refused.text
        await enabled_trigger(jp_fetch, service, "grouped")
        fast = (await api(jp_fetch, "workflows", "grouped"))["trigger"]["callbackUrl"]
        assert (await http.post(fast, json={"i": "after"})).status_code == 202

    # In one batch with a write that fails, the callback is stored when the batch is replayed
    # one write at a time, and what the failing write changed is undone: still enabled.
    trigger_id = fast.split("/hooknb/callback/")[1].split("?")[0]

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE workflows SET trigger_state = 'disabled' WHERE name = 'grouped'")
        raise ValueError("refused")

    def request(i: str) -> InboundRequest:
        body = json.dumps({"i": i}).encode()
        return InboundRequest("POST", [], {}, "application/json", body, time.time())

    async def fail() -> None:
        await hub.store.write(failing)

    # Queued by three tasks in one turn of the loop, the writes are handed to the writer as
    # one list: one batch (other writes of the server may run in batches of their own).
    hub.store.stats.reset()
    taken, failure, after = await asyncio.gather(
        hub.ingest(trigger_id, request("beside a failure")),
        fail(),
        hub.ingest(trigger_id, request("after the failure")),
        return_exceptions=True,
    )
    assert hub.store.stats.max_batch >= 3
    assert isinstance(failure, ValueError)
    assert taken[0] == after[0] == 202, (taken, after)
    assert (await http.post(fast, json={"i": "last"})).status_code == 202

    reader = hub.store.reader
    fired = reader.execute(
        "SELECT h.runs, r.id, c.run_id FROM trigger_history h"
        " JOIN callbacks c ON c.id = h.callback JOIN runs r ON r.trigger_callback = c.id"
        " WHERE h.status = 'Fired'"
    ).fetchall()
    # Every Fired entry names the run its callback started, and no id was given twice.
    assert fired and all(
        json.loads(runs) == [run] == [callback_run] for runs, run, callback_run in fired
    )
    taken_runs = sorted(
        answer.json()["run"] for answer in answers if answer.json().get("status") == "Accepted"
    )
    assert taken_runs and set(taken_runs) <= {run for _, run, _ in fired}
    refused_rows = reader.execute(
        "SELECT COUNT(*) FROM callbacks WHERE body LIKE '%while disabled%'"
    ).fetchone()[0]
    assert refused_rows == 0
    counts = dict(reader.execute("SELECT target, COUNT(*) FROM callbacks GROUP BY target"))
    # 5 waves of 20; before, after; beside and after the failure; last.
    assert counts["grouped"] == 100 + 5
    assert counts["guarded"] == 50


async def test_a_run_its_kernel_started_but_not_yet_reported_stops_there_when_cancelled(
    hub: Any, http: httpx.AsyncClient, monkeypatch: Any
) -> None:
    """A Queued run has been pushed to the kernel that runs its workflow, which may have
    started it before its first report (the next sync) tells the hub: cancelling it on the hub
    ends it there and tells that kernel, which stops it (it went on running there, its reports
    refused, and a hosted run's viewers waited for it for ever)."""
    release = asyncio.Event()
    with Recorder() as service:

        @hooknb.workflow(
            name="early_cancel",
            trigger=hooknb.HttpWebhookTrigger(
                subscribe={"method": "POST", "uri": f"{service.url}s"}
            ),
            hub=hub,
        )
        async def flow(run: Any) -> Any:
            await release.wait()
            return "went on"

        await flow.enable_async()
        await hub.flush()
        # As if a sync had just gone: the next one waits for the spacing.
        monkeypatch.setattr(client_module, "_SYNC_SPACING", 30.0)
        monkeypatch.setattr(client_module, "_SYNC_SPACING_BUSY", 30.0)
        hub._last_sync = hub.loop.time()
        posted = await http.post(flow.callback_url, json={"i": 1})
        assert posted.status_code == 202
        run_id = posted.json()["run"]
        await until(lambda: any(r.id == run_id for r in flow.runs), 10, "the run in the kernel")
        (run,) = flow.runs
        await until(lambda: run.status == "Running", 10, "the run to start in the kernel")
        shown = await hub.request("GET", f"hooknb/api/runs/{run_id}")
        assert shown["status"] == "Queued"  # the kernel has not reported it yet

        answer = await hub.request("POST", f"hooknb/api/runs/{run_id}/cancel", {})
        assert answer["status"] == "Cancelled"
        await until(lambda: run.done, 10, "the kernel to stop the run")
        assert run.status == "Cancelled"
        release.set()
        await asyncio.wait_for(hub.flush(), 5)
        shown = await hub.request("GET", f"hooknb/api/runs/{run_id}")
        assert shown["status"] == "Cancelled"
