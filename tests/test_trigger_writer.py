"""``c.HookNB.trigger_writer_process``: plain trigger callbacks stored by a process of their own.

Real server, real child process, real SQLite: what the sender gets, what is stored (with the
writer thread's own writes interleaved: no id is taken twice), the kernel's deliveries, a
trigger disabled meanwhile, the child killed, and a ``kill -9`` of the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import api, the_hub, until
from processes import ServerProcess
from subscribers import Recorder
from test_queued_runs import channel_events
from test_security import enabled_trigger

import hooknb.server.hub as hub_module
from hooknb.server.app import HookNB
from hooknb.server.trigger_writer import MAX_BODY


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    return {"trigger_writer_process": True}


async def _ready_trigger(
    jp_fetch: Any, hub: Any, http: httpx.AsyncClient, name: str, service: Recorder | None = None
) -> str:
    """Enable ``name``'s trigger (subscribed at ``service``, else a service gone by then),
    send it a first callback (which starts the child) and wait until the child takes
    callbacks: the callback URL."""
    if service is None:
        with Recorder() as gone:
            record = await enabled_trigger(jp_fetch, gone, name)
    else:
        record = await enabled_trigger(jp_fetch, service, name)
    url = str(record["trigger"]["callbackUrl"])
    assert (await http.post(url, json={"first": True})).status_code == 202
    await until(lambda: hub._trigger_writer is not None and hub._trigger_writer.ready, 30, "ready")
    return url


def _child_pids(store: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hooknb.server.trigger_writer" in command and str(store).encode() in command:
            pids.append(int(entry.name))
    return pids


async def test_callbacks_are_stored_by_the_child_alongside_the_writer_threads_own(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "tw")
    ops_before = hub.store.stats.ops
    # Small bodies go to the child, large ones to the writer thread: both write the same
    # tables at once, each in turn under the write lock.
    large = "x" * (MAX_BODY + 1)
    bodies = [{"i": i, "pad": large if i % 5 == 0 else ""} for i in range(60)]
    answers = await asyncio.gather(*(http.post(url, json=body) for body in bodies))
    assert {answer.status_code for answer in answers} == {202}, [a.text for a in answers]
    for answer in answers:  # Logic Apps' headers, as from the writer thread
        assert answer.headers["x-ms-workflow-run-id"] == answer.json()["run"]
        assert answer.headers["x-ms-client-tracking-id"] == answer.json()["run"]
        assert answer.headers["x-ms-workflow-name"] == "tw"
        assert len(answer.headers["x-ms-trigger-history-name"]) == 20
    # The writer thread stored the 12 large ones (and no more); the child the 48 others.
    assert 1 <= hub.store.stats.ops - ops_before <= 12
    reader = hub.store.latest
    stored = reader.execute(
        "SELECT r.id, r.rowid, c.id, c.body, h.id, h.runs FROM runs r"
        " JOIN callbacks c ON c.id = r.trigger_callback"
        " JOIN trigger_history h ON h.callback = c.id WHERE r.workflow = 'tw'"
    ).fetchall()
    assert len(stored) == 61  # with the first
    assert len({row[1] for row in stored}) == len({row[2] for row in stored}) == 61
    assert all(json.loads(row[5]) == [row[0]] for row in stored)
    by_run = {row[0]: json.loads(row[3]) for row in stored}
    for body, answer in zip(bodies, answers, strict=True):
        assert by_run[answer.json()["run"]] == body
    # The history names in the answers are the stored entries'.
    names = {answer.headers["x-ms-trigger-history-name"] for answer in answers}
    assert len(names) == 60 and names <= {f"{row[4]:020d}" for row in stored}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one usable core: never started")
@pytest.mark.parametrize("hooknb_config", [{}])
async def test_by_default_the_child_starts_once_callbacks_come_as_a_stream(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient, hooknb_store: Path
) -> None:
    hub = the_hub(jp_serverapp)
    assert hub.trigger_writer_process is None  # the default: automatic
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "twa")
    url = record["trigger"]["callbackUrl"]
    hub.trigger_stream_rate = 20  # (500 by default: more than a test should send)
    for i in range(5):  # a few, one at a time: the writer thread stores them
        assert (await http.post(url, json={"i": i})).status_code == 202
    assert hub._trigger_writer is None and _child_pids(hooknb_store) == []
    # 40 at once: at least 20 of them within one second, whatever second they fall in.
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(40)))
    assert {answer.status_code for answer in answers} == {202}
    await until(lambda: hub._trigger_writer is not None and hub._trigger_writer.ready, 30, "ready")
    ops_before = hub.store.stats.ops
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(10)))
    assert {answer.status_code for answer in answers} == {202}
    assert hub.store.stats.ops == ops_before  # stored by the child


@pytest.mark.parametrize("hooknb_config", [{}])
async def test_by_default_a_server_pinned_to_one_core_keeps_storing_them_itself(
    jp_fetch: Any,
    jp_serverapp: Any,
    http: httpx.AsyncClient,
    hooknb_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = the_hub(jp_serverapp)
    monkeypatch.setattr(hub_module, "_usable_cores", lambda: 1)
    with Recorder() as service:
        record = await enabled_trigger(jp_fetch, service, "tw1")
    url = record["trigger"]["callbackUrl"]
    hub.trigger_stream_rate = 20
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(60)))
    assert {answer.status_code for answer in answers} == {202}
    await asyncio.sleep(0.5)
    assert hub._trigger_writer is None and _child_pids(hooknb_store) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("auto", None), ("1", True), ("yes", True), ("0", False), ("false", False)],
)
def test_the_options_environment_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool | None
) -> None:
    if value is None:
        monkeypatch.delenv("HOOKNB_TRIGGER_WRITER_PROCESS", raising=False)
    else:
        monkeypatch.setenv("HOOKNB_TRIGGER_WRITER_PROCESS", value)
    assert HookNB().trigger_writer_process is expected


async def test_the_childs_runs_are_delivered_to_the_workflows_kernel(
    jp_fetch: Any, jp_serverapp: Any, server_url: str, server_token: str, http: httpx.AsyncClient
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "twk")
    reading = asyncio.ensure_future(channel_events(http, server_url, server_token, "c", 21))
    await asyncio.sleep(0.5)  # the channel is open: the deliveries below are pushed live
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(20)))
    assert {answer.status_code for answer in answers} == {202}
    events = await reading
    delivered = {event["run"] for event in events if event.get("kind") == "trigger"}
    assert {answer.json()["run"] for answer in answers} <= delivered
    sent = [event for event in events if event["run"] == answers[0].json()["run"]]
    assert sent[0]["workflow"] == "twk"


async def test_a_trigger_disabled_meanwhile_is_refused_as_without_the_child(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient
) -> None:
    hub = the_hub(jp_serverapp)
    with Recorder() as service:
        url = await _ready_trigger(jp_fetch, hub, http, "twd", service)
        await api(jp_fetch, "workflows", "twd", "trigger", method="DELETE")
    answer = await http.post(url, json={"late": True})
    assert answer.status_code == 409
    assert answer.json()["state"] == "Disabled"
    assert hub._trigger_writer.alive  # the child asked the server to decide; it goes on


async def test_ctrl_c_in_the_servers_terminal_leaves_the_child_storing(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient, hooknb_store: Path
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "twi")
    (pid,) = _child_pids(hooknb_store)
    os.kill(pid, signal.SIGINT)  # what the terminal sends the server's process group
    await asyncio.sleep(0.3)
    assert _child_pids(hooknb_store) == [pid]
    ops_before = hub.store.stats.ops
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(5)))
    assert {answer.status_code for answer in answers} == {202}
    assert hub.store.stats.ops == ops_before  # stored by the child, not the writer thread


async def test_when_the_child_dies_the_server_stores_callbacks_itself(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient, hooknb_store: Path
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "twx")
    (pid,) = _child_pids(hooknb_store)
    os.kill(pid, signal.SIGKILL)
    await until(lambda: not hub._trigger_writer.alive, 10, "the child's exit seen")
    answers = await asyncio.gather(*(http.post(url, json={"i": i}) for i in range(10)))
    assert {answer.status_code for answer in answers} == {202}
    runs = {answer.json()["run"] for answer in answers}
    stored = {
        row[0] for row in hub.store.latest.execute("SELECT id FROM runs WHERE workflow = 'twx'")
    }
    assert runs <= stored
    assert _child_pids(hooknb_store) == []  # not restarted


async def test_callbacks_sent_while_the_childs_pipe_is_full_wait_and_are_stored(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient, hooknb_store: Path
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "twp")
    (pid,) = _child_pids(hooknb_store)
    os.kill(pid, signal.SIGSTOP)  # the pipe to it fills: the rest waits in the server
    body = "y" * (MAX_BODY - 1024)
    try:
        posting = asyncio.gather(*(http.post(url, json={"i": i, "b": body}) for i in range(8)))
        await until(lambda: len(hub._trigger_writer._pending) == 8, 10, "8 sent to the child")
        await until(lambda: hub._trigger_writer._outgoing, 10, "bytes the pipe did not take")
    finally:
        os.kill(pid, signal.SIGCONT)
    answers = await posting
    assert {answer.status_code for answer in answers} == {202}
    stored = {
        row[0]: json.loads(row[1]).get("i")
        for row in hub.store.latest.execute(
            "SELECT r.id, c.body FROM runs r JOIN callbacks c ON c.id = r.trigger_callback"
            " WHERE r.workflow = 'twp'"
        )
    }
    assert sorted(stored[answer.json()["run"]] for answer in answers) == list(range(8))
    assert not hub._trigger_writer._outgoing


async def test_callbacks_the_child_had_not_answered_when_it_died_get_a_503(
    jp_fetch: Any, jp_serverapp: Any, http: httpx.AsyncClient, hooknb_store: Path
) -> None:
    hub = the_hub(jp_serverapp)
    url = await _ready_trigger(jp_fetch, hub, http, "tw503")
    (pid,) = _child_pids(hooknb_store)
    os.kill(pid, signal.SIGSTOP)  # it reads nothing more: the next callbacks wait for it
    try:
        posting = asyncio.gather(*(http.post(url, json={"i": i}) for i in range(5)))
        await until(lambda: len(hub._trigger_writer._pending) == 5, 10, "5 sent to the child")
    finally:
        os.kill(pid, signal.SIGKILL)
    answers = await posting
    assert {answer.status_code for answer in answers} == {503}
    assert all(answer.headers["Retry-After"] for answer in answers)
    assert "retry later" in answers[0].json()["error"]
    assert (await http.post(url, json={"after": True})).status_code == 202


def test_every_202_survives_a_kill_9_and_the_child_ends_with_the_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"HOOKNB_TRIGGER_WRITER_PROCESS": "1"}).start()
    try:
        with Recorder() as service:
            server.api("PUT", "workflows/twk9", json={"client": "k", "trigger": "T"})
            record = server.api(
                "PUT",
                "workflows/twk9/trigger",
                json={"client": "k", "subscribe": {"method": "POST", "uri": f"{service.url}s"}},
            )
        url = record["trigger"]["callbackUrl"]

        async def post_all() -> list[str]:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                answers = await asyncio.gather(
                    *(client.post(url, json={"i": i}) for i in range(300))
                )
            assert {answer.status_code for answer in answers} == {202}
            return [answer.json()["run"] for answer in answers]

        accepted = asyncio.run(post_all())
        assert len(_child_pids(server.store)) == 1
        accepted += asyncio.run(post_all())
        server.kill()
        deadline = time.monotonic() + 10
        while _child_pids(server.store) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _child_pids(server.store) == []  # its input closed with the server: it ended
        server.start()

        async def connect() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
                return await channel_events(http, server.url, server.token, "k", len(accepted))

        events = asyncio.run(connect())
        assert sorted(event["run"] for event in events) == sorted(accepted)
        assert len({event["seq"] for event in events}) == len(accepted)
    finally:
        server.stop()
