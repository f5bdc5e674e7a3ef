"""Deadlines beyond what the scheduler holds in memory (issue 15, P4/P5): a real server whose
scheduler holds only a few deadlines at a time (``DEFAULT_WINDOW`` made small), real SQLite.

The scheduler keeps the earliest deadlines in memory and reads the next ones from the store's
index as they pass; these tests check that every wait still times out exactly once, however
its deadline was placed (created live beyond the held ones, loaded at start, overdue after a
stop), that a store of the previous schema is migrated, and that a wait's sender verification
is read from its row (a million open waits hold none in memory).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import api, the_hub, until

WINDOW = 3


@pytest.fixture(autouse=True)
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from hooknb.server import deadlines

    monkeypatch.setattr(deadlines, "DEFAULT_WINDOW", WINDOW)


@pytest.fixture
def prefill(request: pytest.FixtureRequest) -> list[tuple[str, float, str | None]]:
    """Waits (id, deadline offset from now in seconds, verify JSON) to put into the store
    before the server starts; a test sets them with ``@pytest.mark.prefill([...])``."""
    marker = request.node.get_closest_marker("prefill")
    return marker.args[0] if marker else []


@pytest.fixture
def hooknb_store(tmp_path: Path, prefill: list[tuple[str, float, str | None]]) -> Iterator[Path]:
    """The store as a server of the previous schema (3) left it, with ``prefill``'s waits."""
    from hooknb.server.store import Store

    path = tmp_path / "store" / "hooknb.sqlite"
    if prefill:
        Store(path).open().close()  # the schema, made by hooknb
        conn = sqlite3.connect(path, isolation_level=None)
        now = time.time()
        conn.execute(
            "INSERT INTO workflows (name, client, created, updated) VALUES ('w', 'gone', ?, ?)",
            (now, now),
        )
        for n, (wait_id, offset, verify) in enumerate(prefill):
            run_id = f"{int(now * 1e6):014x}{n:06x}"
            conn.execute(
                "INSERT INTO runs (id, workflow, client, status, created, started)"
                " VALUES (?, 'w', 'gone', 'Waiting', ?, ?)",
                (run_id, now, now),
            )
            conn.execute(
                "INSERT INTO steps (run_id, name, kind, position, state, wait_id, started)"
                " VALUES (?, 'Approval', 'HttpWebhook', 0, 'running', ?, ?)",
                (run_id, wait_id, now),
            )
            conn.execute(
                "INSERT INTO waits (id, run_id, workflow, step, client, state, deadline,"
                " verify, created) VALUES (?, ?, 'w', 'Approval', 'gone', 'open', ?, ?, ?)",
                (wait_id, run_id, now + offset, verify, now),
            )
        # Back to schema 3: its index of open waits by deadline, not by (deadline, id).
        conn.execute("DROP INDEX waits_due")
        conn.execute(
            "CREATE INDEX waits_open ON waits (deadline)"
            " WHERE state IN ('open', 'subscribing', 'waiting')"
        )
        conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
        conn.close()
    yield path


def timedout_events(store: Path) -> dict[str, int]:
    """How many 'timedout' events the server queued for each wait (exactly one each)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT wait_id, COUNT(*) FROM deliveries WHERE event = 'timedout' GROUP BY wait_id"
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


async def states(jp_fetch: Any, ids: list[str]) -> dict[str, str]:
    return {wait_id: (await api(jp_fetch, "waits", wait_id))["state"] for wait_id in ids}


async def test_waits_created_beyond_the_held_deadlines_time_out_once(
    jp_fetch: Any, jp_serverapp: Any, hooknb_store: Path
) -> None:
    """More live waits than the scheduler holds: the later ones are only in the store (the
    heap is trimmed to the earliest, later deadlines are not pushed), and still time out."""
    await until(lambda: the_hub(jp_serverapp).is_ready, what="the hub")
    scheduler = the_hub(jp_serverapp)._deadlines
    far = []
    started = await api(jp_fetch, "workflows", "w", "runs", method="POST", body={"client": "c"})
    for step in range(3):  # a day away: they stay open, held or not
        body = {"step": f"far{step}", "client": "c", "timeout": 86400}
        far.append(await api(jp_fetch, "runs", started["run"], "waits", method="POST", body=body))
    soon = []
    for step in range(4 * WINDOW):
        body = {"step": f"s{step}", "client": "c", "timeout": 1.5 + 0.1 * step}
        soon.append(await api(jp_fetch, "runs", started["run"], "waits", method="POST", body=body))
        assert len(scheduler) <= 2 * WINDOW  # memory does not grow with the waits
    assert scheduler.trims >= 1 and not scheduler.complete
    soon_ids = [w["id"] for w in soon]

    async def all_ended() -> bool:
        return set((await states(jp_fetch, soon_ids)).values()) == {"timedout"}

    give_up = time.monotonic() + 30
    while not await all_ended():
        assert time.monotonic() < give_up, await states(jp_fetch, soon_ids)
        await asyncio.sleep(0.1)
    assert scheduler.loads >= 2  # read on from the store as the held ones passed
    await until(lambda: len(timedout_events(hooknb_store)) == len(soon_ids), what="events")
    assert timedout_events(hooknb_store) == dict.fromkeys(soon_ids, 1)
    assert set((await states(jp_fetch, [w["id"] for w in far])).values()) == {"open"}
    run = await api(jp_fetch, "runs", started["run"])
    assert run["status"] == "Waiting"


OVERDUE = [(f"overdue-wait-{n:09d}", -60.0 + n, None) for n in range(3 * WINDOW + 1)]
SOON = [(f"soon-wait-{n:09d}", 1.0 + 0.2 * n, None) for n in range(2 * WINDOW)]
LATER = [(f"later-wait-{n:09d}", 86400.0 * (n + 1), None) for n in range(2 * WINDOW)]


@pytest.mark.prefill(LATER + SOON + OVERDUE)
async def test_a_restart_reads_a_window_and_times_every_due_wait_out_once(
    jp_fetch: Any, jp_serverapp: Any, hooknb_store: Path
) -> None:
    """A store of schema 3 with waits overdue (the server was stopped past their deadlines),
    due soon and due in days: it is migrated, the start reads one window, the overdue ones
    time out a window at a time, the soon ones at their deadline, the later ones stay open."""
    hub = the_hub(jp_serverapp)
    await until(lambda: hub.is_ready, what="the hub")
    due = [wait_id for wait_id, _, _ in OVERDUE + SOON]
    await until(lambda: len(timedout_events(hooknb_store)) == len(due), 30, "the timeouts")
    assert timedout_events(hooknb_store) == dict.fromkeys(due, 1)
    assert set((await states(jp_fetch, due)).values()) == {"timedout"}
    assert set((await states(jp_fetch, [w for w, _, _ in LATER])).values()) == {"open"}
    assert len(hub._deadlines) <= 2 * WINDOW
    conn = sqlite3.connect(f"file:{hooknb_store}?mode=ro", uri=True)
    try:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        conn.close()
    assert "waits_due" in indexes and "waits_open" not in indexes
    assert int(version[0]) == 4


SIGNED = json.dumps({"type": "github", "secret": "s3", "tolerance": 300})
SIGNED_ID, PLAIN_ID, BROKEN_ID = "signed-wait-000001", "plain-wait-000001", "broken-wait-000001"


@pytest.mark.prefill([(SIGNED_ID, 1e5, SIGNED), (PLAIN_ID, 1e5, None), (BROKEN_ID, 1e5, "[[[")])
async def test_a_stored_waits_sender_check_is_read_from_its_row(
    jp_fetch: Any, jp_serverapp: Any, hooknb_store: Path
) -> None:
    """Waits opened before the start: their sender verification is read when a callback
    comes (none is loaded at start), an unreadable one refuses the URL's callbacks."""
    hub = the_hub(jp_serverapp)
    await until(lambda: hub.is_ready, what="the hub")
    assert hub._verifiers == {}
    signed_url, plain_url, broken_url = map(hub.callback_url, (SIGNED_ID, PLAIN_ID, BROKEN_ID))
    signature = "sha256=" + hmac.new(b"s3", b"{}", hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.post(signed_url, content=b"{}")).status_code == 401
        assert (await client.post(broken_url, content=b"{}")).status_code == 404
        headers = {"X-Hub-Signature-256": signature}
        assert (await client.post(signed_url, content=b"{}", headers=headers)).status_code == 202
        assert (await client.post(plain_url, content=b"{}")).status_code == 202
        # Once completed, the check still applies: an unsigned retry is refused.
        assert (await client.post(signed_url, content=b"{}")).status_code == 401
    got = await states(jp_fetch, [SIGNED_ID, PLAIN_ID, BROKEN_ID])
    assert got == {SIGNED_ID: "completed", PLAIN_ID: "completed", BROKEN_ID: "open"}
