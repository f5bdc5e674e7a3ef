"""The server's garbage-collector pauses under kernel-attached load, with and without
``c.HookNB.freeze_startup_objects`` (gc.freeze() once the server has started).

    python bench/gc_pauses.py [--pairs 3] [--duration 10] [--out F.json]

Per pair, two servers one after the other (the order alternating): the default (startup
objects frozen) and ``--HookNB.freeze_startup_objects=False``. Each: ``jupyter server`` on
core 0, a kernel running P1's kernel workflow and ``wrk -t1 -c16`` on core 1 (as
``bench/ingest.py``'s kernel rounds), ``--duration`` s of trigger callbacks after a warm-up.
Per run: req/s, the server's CPU per callback, wrk's latency p50/p99/max, and the server's
collections (``bench_ext``'s ``gc.callbacks`` timer): full collections, the longest, all
collections' time per callback. A full collection walks every object the server holds
(~220,000 for a plain Jupyter server): the longest pause is what every answer waiting behind
it pays.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import (
    Kernel,
    Server,
    Subscriber,
    emit,
    log,
    machine,
    median,
    thread_cpu_seconds,
    workdir,
    wrk,
)
from ingest import KERNEL_WORKFLOW, cpu_per_request

OFF = "--HookNB.freeze_startup_objects=False"


def one_run(root: Path, sub: Subscriber, frozen: bool, duration: float) -> dict[str, Any]:
    server = Server(root, cpus="0", extra_args=() if frozen else (OFF,)).start()
    kernel = Kernel(server, cpus="1")
    try:
        url = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]
        wrk(url, duration=3)
        time.sleep(2)
        server.stats(reset=True)  # the longest pauses from here on (not start-up's)
        before, cpu0 = server.stats()["gc"], thread_cpu_seconds(server.pid)
        result = wrk(url, duration=duration, pids=(server.pid, kernel.pid))
        cpu1, after = thread_cpu_seconds(server.pid), server.stats()["gc"]
        count = [b - a for a, b in zip(before["count"], after["count"], strict=True)]
        seconds = sum(after["seconds"]) - sum(before["seconds"])
        row = {
            "frozen": frozen,
            "frozen_objects": after["frozen"],
            "rps": result["rps"],
            "server_cpu_us_per_callback": cpu_per_request(
                server.pid, cpu0, cpu1, result["requests"]
            )["total"],
            "latency_ms": {k: result[k] for k in ("p50_ms", "p99_ms", "max_ms") if k in result},
            "collections": count,
            "gc_us_per_callback": round(seconds * 1e6 / max(result["requests"], 1), 2),
            "longest_full_ms": round(after["longest_s"][2] * 1000, 1),
            "longest_young_ms": round(max(after["longest_s"][:2]) * 1000, 2),
            "foreign_cores": result.get("foreign_cores"),
        }
        log(
            f"{'frozen' if frozen else 'not frozen'}: {result['rps']:.0f} req/s,"
            f" full collections {count[2]}, longest {row['longest_full_ms']} ms,"
            f" latency max {row['latency_ms'].get('max_ms')} ms"
        )
        return row
    finally:
        kernel.shutdown()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with workdir("gc") as root, Subscriber() as sub:
        info = machine(root)
        for index in range(args.pairs):
            order = (True, False) if index % 2 == 0 else (False, True)
            for frozen in order:
                runs.append(one_run(root / f"{index}-{frozen}", sub, frozen, args.duration))

    def summary(frozen: bool) -> dict[str, Any]:
        rows = [row for row in runs if row["frozen"] is frozen]
        return {
            "rps": median([row["rps"] for row in rows]),
            "server_cpu_us_per_callback": median(
                [row["server_cpu_us_per_callback"] for row in rows]
            ),
            "full_collections_per_run": [row["collections"][2] for row in rows],
            "longest_full_ms": [row["longest_full_ms"] for row in rows],
            "latency_max_ms": [row["latency_ms"].get("max_ms") for row in rows],
            "latency_p99_ms": [row["latency_ms"].get("p99_ms") for row in rows],
            "gc_us_per_callback": median([row["gc_us_per_callback"] for row in rows]),
        }

    emit(
        "gc_pauses",
        {
            "machine": info,
            "command": f"bench/gc_pauses.py --pairs {args.pairs} --duration {args.duration:g}",
            "runs": runs,
            "frozen": summary(True),
            "not_frozen": summary(False),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
