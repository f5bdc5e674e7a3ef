"""Alternating before/after pairs in the issue's frame: floorext's no-op and hooknb's trigger
callback in one server per side of each pair; req/s and the server's CPU per request.

    cd /tmp && PYTHONPATH=/work/main python ab_layers.py PAIRS [--kernel]

*before* is a checkout of git d628853 at ``/work/wt-x``, *after* ``/work/main``; each side's
server runs its own tree's ``bench/bench_ext.py``. ``--kernel``: the trigger's workflow is
defined in a kernel pinned to core 1 (with wrk), which starts a run per callback.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, "/work/main/bench")
from _common import (
    Kernel,
    Server,
    Subscriber,
    enable_trigger,
    median,
    thread_cpu_seconds,
    wait_quiet,
    workdir,
    wrk,
)
from ingest import KERNEL_WORKFLOW, cpu_per_request

TREES = {"before": "/work/wt-x", "after": "/work/main"}
REFERENCE = "/work/shared/reference/p1-floor"


def one_side(tree: str, with_kernel: bool) -> dict[str, object]:
    with workdir("ab6") as root, Subscriber() as sub:
        path = os.pathsep.join([tree, tree + "/bench", REFERENCE])
        env = {"PYTHONPATH": path, "FLOOR_DB": str(root / "f.sqlite")}
        server = Server(root, cpus="0", extensions=["floorext"], env=env).start()
        kernel = None
        try:
            if with_kernel:
                kernel = Kernel(server, cpus="1")
                url = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]
            else:
                url = enable_trigger(server, "bench", sub, "nobody")
            ref = f"{server.url}noop/bench"
            wrk(url, duration=3)
            wrk(ref, duration=2)
            time.sleep(1)
            row: dict[str, object] = {}
            for name, target in (("ref", ref), ("hook", url)):
                wait_quiet([server.pid])
                before = thread_cpu_seconds(server.pid)
                result = wrk(target, duration=8)
                after = thread_cpu_seconds(server.pid)
                cpu = cpu_per_request(server.pid, before, after, result["requests"])["total"]
                row[name] = {"rps": result["rps"], "cpu": cpu, "non2xx": result["non2xx"]}
                time.sleep(1)
            row["ratio"] = round(row["hook"]["rps"] / row["ref"]["rps"], 3)  # type: ignore[index]
            return row
        finally:
            if kernel is not None:
                kernel.shutdown()
            server.stop()


def main() -> None:
    pairs = int(sys.argv[1])
    with_kernel = "--kernel" in sys.argv
    results: dict[str, list[dict[str, object]]] = {side: [] for side in TREES}
    for index in range(pairs):
        order = list(TREES) if index % 2 == 0 else list(reversed(list(TREES)))
        for side in order:
            row = one_side(TREES[side], with_kernel)
            results[side].append(row)
            print(side, index, json.dumps(row), flush=True)
    for side, rows in results.items():
        ratios = [float(r["ratio"]) for r in rows]  # type: ignore[arg-type]
        print(
            side,
            "ratio median",
            median(ratios),
            "range",
            min(ratios),
            max(ratios),
            "hook cpu",
            median([r["hook"]["cpu"] for r in rows]),  # type: ignore[index]
            "ref cpu",
            median([r["ref"]["cpu"] for r in rows]),  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
