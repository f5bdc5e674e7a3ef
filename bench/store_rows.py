"""What the rows of a trigger callback cost in SQLite, as the writer stores them (evidence for P1).

    taskset -c 0 python bench/store_rows.py [--n 32000] [--batch 16] [--rounds 3]

A fresh store with hooknb's schema and migrations (WAL, ``synchronous=FULL``), one thread, the
rows ``Hub._op_insert_trigger_callbacks`` writes for a batch of ``--batch`` callbacks (as group
commit gives under ``wrk -c16``): the largest ids, then one multi-row ``INSERT`` into the
writer's ``trigger_callback_rows`` view, whose trigger writes each callback's three rows (as
shipped), or a multi-row ``INSERT`` per table (``store.execute_rows``; the seventh round), one
COMMIT per batch. Other variants leave out one part at a time; prints
the median CPU (user + system, fsync included) and wall microseconds per callback over the
rounds, the variants interleaved. The Python that makes the rows' values is included in
every variant, so the differences are what SQLite does with them.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from hooknb.server.rows import new_run_id
from hooknb.server.store import _SCHEMA, _WRITER_SCHEMA, _migrate, execute_rows

HEADERS = [
    ("Host", "127.0.0.1:8888"),
    ("Content-Length", "40"),
    ("Content-Type", "application/json"),
    ("User-Agent", "wrk"),
]
BODY = b'{"id":42,"msg":"hello","tags":["a","b"]}'

#: B-trees written per callback: callbacks + callbacks_by_target; runs + its id index +
#: runs_by_status_id + runs_by_workflow_status; trigger_history + its index.
VARIANTS = {
    "as shipped: one view row, its trigger writes the 8": {"view"},
    "three multi-row INSERTs (seventh round; 8 B-trees)": {"run", "history"},
    "with the index runs (workflow, created) again (9)": {"run", "history", "runs_by_workflow"},
    "without the Fired history row (6)": {"run"},
    "callback row only (2)": set(),
    "the durable floor's row instead (floorext: 1 B-tree)": {"floor"},
}


def measure(parts: set[str], n: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "s.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        _migrate(conn)
        conn.execute(
            "CREATE TABLE cb (id INTEGER PRIMARY KEY, route TEXT, body BLOB, headers TEXT)"
        )
        conn.executescript(_WRITER_SCHEMA)
        if "runs_by_workflow" in parts:  # (dropped in issue 15)
            conn.execute("CREATE INDEX runs_by_workflow ON runs (workflow, created)")
        headers = json.dumps(HEADERS)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n // batch):
            conn.execute("BEGIN IMMEDIATE")
            if "floor" in parts:
                # What ../shared/reference/p1-floor/floorext.py stores per request.
                conn.executemany(
                    "INSERT INTO cb (route, body, headers) VALUES (?, ?, ?)",
                    [("bench", BODY, "application/json") for _ in range(batch)],
                )
                conn.execute("COMMIT")
                continue
            callback_id, rowid, history_id = (
                value or 0
                for value in conn.execute(
                    "SELECT (SELECT MAX(id) FROM callbacks), (SELECT MAX(rowid) FROM runs),"
                    " (SELECT MAX(id) FROM trigger_history)"
                ).fetchone()
            )
            if "view" in parts:
                rows = []
                for _ in range(batch):
                    callback_id, rowid, history_id = callback_id + 1, rowid + 1, history_id + 1
                    run_id, now = new_run_id(), time.time()
                    rows.append(
                        (callback_id, "bench", run_id, now, "POST", headers, "{}",
                         "application/json", BODY, rowid, run_id, history_id, f'["{run_id}"]')
                    )  # fmt: skip
                execute_rows(
                    conn, "INSERT INTO trigger_callback_rows VALUES", "(" + "?, " * 12 + "?)", rows
                )
                conn.execute("COMMIT")
                continue
            callbacks, runs, history = [], [], []
            for _ in range(batch):
                callback_id, rowid, history_id = callback_id + 1, rowid + 1, history_id + 1
                run_id, now = new_run_id(), time.time()
                callbacks.append(
                    (callback_id, "bench", run_id, now, "POST", headers, "{}",
                     "application/json", BODY)
                )  # fmt: skip
                runs.append((rowid, run_id, "bench", callback_id, now, run_id))
                history.append((history_id, "bench", now, callback_id, f'["{run_id}"]'))
            execute_rows(
                conn,
                "INSERT INTO callbacks (id, kind, target, run_id, received, method, headers,"
                " query, content_type, body) VALUES",
                "(?, 'trigger', ?, ?, ?, ?, ?, ?, ?, ?)",
                callbacks,
            )
            if "run" in parts:
                execute_rows(
                    conn,
                    "INSERT INTO runs (rowid, id, workflow, status, trigger_callback, created,"
                    " tracking_id) VALUES",
                    "(?, ?, ?, 'Queued', ?, ?, ?)",
                    runs,
                )
            if "history" in parts:
                execute_rows(
                    conn,
                    "INSERT INTO trigger_history (id, workflow, status, received, callback, runs,"
                    " code) VALUES",
                    "(?, ?, 'Fired', ?, ?, ?, 202)",
                    history,
                )
            conn.execute("COMMIT")
        done = n // batch * batch
        result = (
            (time.process_time() - cpu) / done * 1e6,
            (time.perf_counter() - wall) / done * 1e6,
        )
        conn.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _round in range(args.rounds):
        for name, parts in VARIANTS.items():
            results[name].append(measure(parts, args.n, args.batch))
    title = f"variant (median of {args.rounds} rounds)"
    print(f"{title:55s} {'CPU us':>8s} {'wall us':>8s}")
    for name, values in results.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        print(f"{name:55s} {cpu:8.1f} {wall:8.1f}")


if __name__ == "__main__":
    main()
