"""Where a trigger callback's CPU goes, in-process, without HTTP (evidence for P1 findings).

    taskset -c 0 python bench/ingest_micro.py [--n 20000]

Builds a real ``Store`` (WAL, ``synchronous=FULL``) and ``Hub`` in a temp dir, enables a
trigger, and times (CPU time, ``time.process_time``) the pieces of the callback path one by
one, then ``Hub.ingest`` end to end with 16 concurrent callers (so group commit batches them as
under wrk -c16), then ``Hub.sync`` of the runs' last reports as a busy kernel sends them (the
event loop's CPU and the writer's apart). Prints microseconds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hooknb import jsonsafe
from hooknb.jsonsafe import MAX_REQUEST_DEPTH
from hooknb.server.callback_signing import fingerprint
from hooknb.server.hub import Hub
from hooknb.server.outbound import OutboundCaller
from hooknb.server.rows import InboundRequest
from hooknb.server.store import _WRITER_SCHEMA, Grouped, Store

HEADERS = [
    ("Host", "127.0.0.1:8888"),
    ("Content-Length", "40"),
    ("Content-Type", "application/json"),
]
BODY = b'{"id":42,"msg":"hello","tags":["a","b"]}'
#: Run reports per api/sync: what a kernel starting ~2,500 runs/s sends (39 measured).
REPORTS_PER_SYNC = 40


def per_call_us(fn: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return round((time.process_time() - start) / n * 1e6, 2)


async def main(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "s.sqlite").open()
        hub = Hub(
            store,
            public_base="http://127.0.0.1:1/",
            default_action_timeout=3600,
            outbound=OutboundCaller(timeout=5),
            max_body_size=1 << 24,
        )
        await hub.start()
        await hub.attach("wf", "c1", trigger_name="HTTP_Webhook")
        store.write_sync(lambda c: c.execute("UPDATE workflows SET trigger_state = 'enabled'"))
        trigger_id = store.reader.execute("SELECT trigger_id FROM workflows").fetchone()[0]
        signature = hub.signer.sign(trigger_id)

        def request() -> InboundRequest:
            return InboundRequest("POST", list(HEADERS), {}, "application/json", BODY, time.time())

        answer = {"run": "06614cfc7fb040da623a", "workflow": "wf", "status": "Accepted"}
        result: dict[str, Any] = {
            "Signer.verify (both keys)": per_call_us(
                lambda: hub.signer.verify(trigger_id, signature), n
            ),
            "fingerprint(body, headers)": per_call_us(lambda: fingerprint(BODY, HEADERS), n),
            "InboundRequest(...)": per_call_us(request, n),
            "json.dumps(answer)": per_call_us(lambda: json.dumps(answer), n),
        }
        # The op alone, inside one open transaction on a separate connection (not committed).
        conn = store._connect()
        conn.executescript(_WRITER_SCHEMA)  # (what the writer's own connection has)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result["Hub._op_trigger_callback (3 inserts: callback, run, history)"] = per_call_us(
                lambda: hub._op_trigger_callback(conn, "wf", request()), n
            )
            group = [(trigger_id, request()) for _ in range(16)]
            result["Hub._op_trigger_callbacks, per callback in groups of 16"] = round(
                per_call_us(
                    lambda: hub._op_trigger_callbacks(
                        conn, [Grouped(hub._trigger_callbacks, args) for args in group]
                    ),
                    n // 16,
                )
                / 16,
                2,
            )
            result["Hub._op_ingest (trigger id lookup + the above)"] = per_call_us(
                lambda: hub._op_ingest(conn, trigger_id, request()), n
            )
            result["conn.execute SAVEPOINT + RELEASE"] = per_call_us(
                lambda: (conn.execute("SAVEPOINT op"), conn.execute("RELEASE op")), n
            )
        finally:
            conn.execute("ROLLBACK")
            conn.close()

        started: list[str] = []

        async def caller(count: int) -> None:
            for _ in range(count):
                started.append((await hub.ingest(trigger_id, request()))[1]["run"])

        for attempt in (1, 2):
            store.stats.reset()
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(caller(n // 16) for _ in range(16)))
            done = (n // 16) * 16
            result[f"Hub.ingest, 16 concurrent, run {attempt}: CPU us/callback"] = round(
                (time.process_time() - cpu) / done * 1e6, 1
            )
            result[f"Hub.ingest, 16 concurrent, run {attempt}: wall us/callback"] = round(
                (time.perf_counter() - wall) / done * 1e6, 1
            )
            result[f"Hub.ingest, 16 concurrent, run {attempt}: mean batch"] = (
                store.stats.snapshot()["mean_batch"]
            )
        # What a kernel's reports cost the hub: its runs' last reports, REPORTS_PER_SYNC per
        # api/sync (as a busy kernel batches them), parsed from the JSON body as the handler
        # does; the event loop's thread and the writer's CPU per report, apart.
        now = time.time()

        def last_report(run_id: str) -> dict[str, Any]:
            return {
                "id": run_id,
                "status": "Succeeded",
                "started": now,
                "ended": now,
                "trigger": "HTTP_Webhook",
                "actions": {},
                "result": 42,
            }

        bodies = [
            json.dumps(
                {
                    "client": "c1",
                    "runs": [last_report(r) for r in started[at : at + REPORTS_PER_SYNC]],
                }
            )
            for at in range(0, len(started), REPORTS_PER_SYNC)
        ]
        cpu, loop_cpu = time.process_time(), time.thread_time()
        for text in bodies:
            body = jsonsafe.loads(text, max_depth=MAX_REQUEST_DEPTH)
            await hub.sync(body["client"], (), body["runs"])
        loop_us = (time.thread_time() - loop_cpu) / len(started) * 1e6
        total_us = (time.process_time() - cpu) / len(started) * 1e6
        label = f"Hub.sync, {REPORTS_PER_SYNC} reports per sync: CPU us/report"
        result[f"{label}, event loop"] = round(loop_us, 1)
        result[f"{label}, writer and others"] = round(total_us - loop_us, 1)
        await hub.stop()
        store.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    values = asyncio.run(main(args.n))
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}}  {value}")
