"""What each row of a trigger callback costs in SQLite alone (evidence for P1's gap).

    taskset -c 0 python bench/store_rows.py [--n 30000] [--batch 15]

Uses hooknb's schema in a fresh temp store (WAL, ``synchronous=FULL``) and one thread, no
hooknb code: each op is the statements a trigger callback makes, ``--batch`` ops per COMMIT
(as group commit gives under ``wrk -c16``). Variants leave out one part at a time; prints CPU
and wall microseconds per op, variants interleaved over two rounds.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from hooknb.server.store import _SCHEMA

HEADERS = [
    ("Host", "127.0.0.1:8888"),
    ("Content-Length", "40"),
    ("Content-Type", "application/json"),
    ("User-Agent", "wrk"),
]
BODY = b'{"id":42,"msg":"hello","tags":["a","b"]}'

VARIANTS = {
    "as shipped: check+callback, run, delivery": {"run", "delivery"},
    "without the delivery row": {"run"},
    "callback row only": set(),
}


def measure(parts: set[str], n: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "s.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT INTO workflows (name, trigger_state, created, updated)"
            " VALUES ('bench', 'enabled', 0, 0)"
        )
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n // batch):
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(batch):
                now = time.time()
                run_id = f"{time.time_ns() // 1000:014x}{secrets.token_hex(3)}"
                cursor = conn.execute(
                    "INSERT INTO callbacks (kind, target, run_id, received, method, headers,"
                    " query, content_type, body) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
                    " (SELECT 1 FROM workflows WHERE name = ? AND trigger_state = 'enabled')",
                    ("trigger", "bench", run_id, now, "POST", json.dumps(HEADERS), "{}",
                     "application/json", BODY, "bench"),
                )  # fmt: skip
                callback = cursor.lastrowid
                if "run" in parts:
                    conn.execute(
                        "INSERT INTO runs (id, workflow, status, trigger_callback, created)"
                        " VALUES (?, 'bench', 'Queued', ?, ?)",
                        (run_id, callback, now),
                    )
                if "delivery" in parts:
                    conn.execute(
                        "INSERT INTO deliveries (route, kind, run_id, callback, created)"
                        " VALUES ('workflow:bench', 'trigger', ?, ?, ?)",
                        (run_id, callback, now),
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
    parser.add_argument("--n", type=int, default=30000)
    parser.add_argument("--batch", type=int, default=15)
    args = parser.parse_args()
    print(f"{'variant':45s} {'CPU us/op':>10s} {'wall us/op':>10s}")
    for _round in range(2):
        for name, parts in VARIANTS.items():
            cpu, wall = measure(parts, args.n, args.batch)
            print(f"{name:45s} {cpu:10.1f} {wall:10.1f}", flush=True)


if __name__ == "__main__":
    main()
