"""The page and the API read whatever the store holds: rows no hooknb code would write,
inserted straight into a running server's SQLite file (deep JSON, invalid UTF-8, NULs, lone
surrogates, huge headers, wrong types...). Every reader answers, never 500, its output
bounded by what was stored."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import ServerProcess

KIB = 1024


class Store:
    """A running server and a second connection to its store, for writing hostile rows."""

    def __init__(self, root: Path) -> None:
        self.server = ServerProcess(root).start()
        self.api = httpx.Client(
            base_url=self.server.url,
            headers=self.server.auth,
            trust_env=False,
            timeout=60,
        )
        # Made by the hub through its API first, so that every table exists.
        self.api.put("hooknb/api/workflows/seed", json={"client": "c"}).raise_for_status()
        self.conn = sqlite3.connect(self.server.store, timeout=30, isolation_level=None)
        self.inserted = 0

    def close(self) -> None:
        self.conn.close()
        self.api.close()
        self.server.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    value = Store(tmp_path_factory.mktemp("rows"))
    yield value
    value.close()


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# What a column may hold: text of any kind (invalid UTF-8 and lone surrogates go in as BLOBs,
# as text cannot hold them), JSON of the wrong shape, deep or huge JSON, numbers, NULL.
odd_text = st.one_of(
    st.text(max_size=50),
    st.text(max_size=50).map(lambda t: t + "\x00" + t),
    st.binary(max_size=50),
    st.sampled_from([b"\xff\xfe\xfd", "\udcff".encode("utf-8", "surrogatepass"), b"\x00"]),
    st.integers(min_value=1, max_value=6).map(lambda k: "w" * 10**k),
)
odd_json = st.one_of(
    odd_text,
    st.sampled_from(
        [
            "null",
            "[]",
            "{}",
            "1e999",
            '"just a string"',
            "[1, 2, 3]",
            '{"a": {"b": [1, 2]}}',
            '[["X-A", "b"], ["Authorization", "Bearer leaked-token-1"]]',
            '[["only-one"], 5, null, ["a", "b", "c"]]',
            '{"body": {"callbackUrl": "http://h/hooknb/callback/x?sig=leaked-sig-2"}}',
            '{"statusCode": "x", "headers": 5, "body": [1]}',
            '{"$truncated": true}',
            '{"actions": {"S": {"status": 5, "outputs": [1], "wait": 7}}, "trigger": [1]}',
            '{"actions": [1, 2], "result": {"a": 1}}',
            '{"type": "github", "secret": "s3cret-verify"}',
        ]
    ),
    st.integers(min_value=100, max_value=5000).map(deep),
    st.integers(min_value=10, max_value=300).map(
        lambda n: json.dumps([{"k" * n: "v" * n} for _ in range(n)])
    ),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=10,
    ).map(json.dumps),
)
odd_number = st.one_of(
    st.none(), st.floats(allow_nan=False), st.integers(-(2**62), 2**62), st.text(max_size=5)
)
odd_body = st.one_of(
    st.binary(max_size=2000),
    st.integers(min_value=1, max_value=20_000).map(lambda n: deep(n).encode()),
    st.sampled_from([b"", b"\x00" * 100, "h\u00e9\udcff".encode("utf-8", "surrogatepass")]),
    st.just(b"x" * (300 * KIB)),
)


@st.composite
def rows(draw: st.DrawFn) -> dict[str, list[tuple[Any, ...]]]:
    """A few hostile rows for each table the readers join."""
    run_id = f"{draw(st.integers(0, 2**40)):014x}bad{draw(st.integers(0, 999)):03d}"
    wait_id = draw(st.sampled_from(["A" * 22, "bad-wait-id-000000000"]))
    workflow = draw(st.one_of(odd_text, st.just("seed")))
    return {
        "workflows": [
            (
                workflow,
                draw(odd_text),
                draw(st.one_of(st.none(), st.just("T" * 22))),
                draw(odd_text),
                draw(st.sampled_from(["enabled", "enabling", "none", "weird"])),
                draw(odd_json),
                draw(odd_json),
                draw(odd_json),
                draw(odd_text),
                draw(st.sampled_from(["primary", "secondary", "bogus"])),
                draw(st.one_of(st.none(), odd_json)),
                draw(odd_number),
                draw(odd_number),
            )
        ],
        "runs": [
            (
                run_id,
                workflow,
                draw(odd_text),
                draw(st.sampled_from(["Running", "Waiting", "Succeeded", "Odd"])),
                draw(st.one_of(st.none(), st.just(-1))),
                draw(odd_number),
                draw(odd_number),
                draw(odd_number),
                draw(odd_json),
            )
        ],
        "waits": [
            (
                wait_id + str(draw(st.integers(0, 10**6))),
                run_id,
                workflow,
                draw(odd_text),
                draw(odd_text),
                draw(st.sampled_from(["open", "waiting", "completed", "failed", "odd"])),
                draw(odd_number),
                draw(odd_json),
                draw(odd_text),
                draw(odd_json),
                draw(st.one_of(st.none(), st.just(-1))),
                draw(st.sampled_from(["primary", "secondary", "bogus"])),
                draw(st.one_of(st.none(), odd_json)),
                draw(odd_text),
                draw(odd_number),
                draw(odd_number),
            )
        ],
        "callbacks": [
            (
                draw(st.sampled_from(["trigger", "wait", "manual", "odd"])),
                workflow,
                run_id,
                draw(odd_number),
                draw(odd_text),
                draw(odd_json),
                draw(odd_json),
                draw(st.one_of(st.none(), odd_text)),
                draw(odd_body),
            )
        ],
        "outbox": [
            (
                draw(st.sampled_from([f"trigger:{workflow!s}", "wait:" + wait_id, "odd"])),
                draw(st.sampled_from(["subscribe", "unsubscribe", "odd"])),
                draw(odd_json),
                draw(odd_json),
                draw(st.sampled_from(["done", "failed", "skipped"])),
                draw(odd_json),
                draw(odd_json),
                draw(odd_text),
                draw(odd_number),
            )
        ],
    }


INSERTS = {
    "workflows": "INSERT OR REPLACE INTO workflows (name, client, trigger_id, trigger_name,"
    " trigger_state, subscribe, unsubscribe, subscription, last_error, key_type, verify,"
    " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "runs": "INSERT OR REPLACE INTO runs (id, workflow, client, status, trigger_callback,"
    " created, started, ended, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "waits": "INSERT OR REPLACE INTO waits (id, run_id, workflow, step, client, state, deadline,"
    " unsubscribe, unsub_state, subscription, callback, key_type, verify, error, created, ended)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "callbacks": "INSERT INTO callbacks (kind, target, run_id, received, method, headers, query,"
    " content_type, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "outbox": "INSERT INTO outbox (owner, purpose, request, headers, state, attempts, response,"
    " error, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
}

# NOT NULL columns get a placeholder when the drawn value is NULL (SQLite would refuse it).
NOT_NULL = {
    "workflows": (0, 4, 9, 11, 12),
    "runs": (0, 1, 3, 5),
    "waits": (0, 1, 2, 3, 5, 8, 11, 14),
    "callbacks": (0, 1, 3, 4, 5, 6, 8),
    "outbox": (0, 1, 2, 3, 4, 8),
}


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else 8


def insert(store: Store, drawn: dict[str, list[tuple[Any, ...]]]) -> int:
    total = 0
    for table, values in drawn.items():
        for row in values:
            row = tuple(
                (0 if value is None else value) if index in NOT_NULL[table] else value
                for index, value in enumerate(row)
            )
            store.conn.execute(INSERTS[table], row)
            total += sum(_size(value) for value in row)
    # the callback a wait or a run names: the last one inserted
    last = store.conn.execute("SELECT MAX(id) FROM callbacks").fetchone()[0]
    store.conn.execute("UPDATE runs SET trigger_callback = ? WHERE trigger_callback = -1", (last,))
    store.conn.execute("UPDATE waits SET callback = ? WHERE callback = -1", (last,))
    return total


READERS = [
    "hooknb/?format=json",
    "hooknb/",
    "hooknb/api/workflows",
    "hooknb/api/runs",
    "hooknb/api/waits",
    "hooknb/api/callbacks",
    "hooknb/api/status",
]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
)
@given(rows())
def test_readers_survive_hostile_rows(store: Store, drawn: dict[str, Any]) -> None:
    store.inserted += insert(store, drawn)
    run_id = drawn["runs"][0][0]
    wait_id = drawn["waits"][0][0]
    paths = [*READERS, f"hooknb/api/runs/{run_id}", f"hooknb/api/waits/{wait_id}"]
    names = [row[0] for row in store.conn.execute("SELECT name FROM workflows")]
    paths += [
        f"hooknb/api/workflows/{n}"
        for n in names
        if isinstance(n, str) and n.isalnum() and len(n) < 200
    ]
    # What the readers may answer: what is stored (everything is listed), shown at most a few
    # times over (JSON escapes), plus a fixed part. Anything more is a blow-up.
    bound = 8 * store.inserted + 4 * 1024 * 1024
    for path in paths:
        started = time.monotonic()
        answer = store.api.get(path, params={"limit": "1000"} if "runs" in path else None)
        assert answer.status_code < 500, (path, answer.text[-2000:])
        assert answer.status_code in (200, 404), (path, answer.status_code, answer.text[:500])
        assert len(answer.content) <= bound, (path, len(answer.content), bound)
        assert time.monotonic() - started < 20, path
        if answer.status_code == 200 and ("format=json" in path or "/api/" in path):
            answer.json()  # valid JSON, whatever the rows held
    snapshot = store.api.get("hooknb/", params={"format": "json"}).json()
    page = json.dumps(snapshot)
    for secret in ("leaked-token-1", "leaked-sig-2", "s3cret-verify"):
        assert secret not in page
    for callback in snapshot["callbacks"]:
        body = callback["body"]
        assert body.get("text") is None or len(body["text"]) <= 2 * 4096 + 4096 * 8


def test_the_server_still_works_after_the_hostile_rows(store: Store) -> None:
    """Runs after the hypothesis test: the hub still takes callbacks and starts runs."""
    api = store.api
    api.put("hooknb/api/workflows/after", json={"client": "c"}).raise_for_status()
    run = api.post("hooknb/api/workflows/after/runs", json={"client": "c", "body": {"a": 1}})
    assert run.status_code == 201
    assert api.get(f"hooknb/api/runs/{run.json()['run']}").status_code == 200
    assert api.get("hooknb/", params={"format": "json"}).status_code == 200
