"""P1 with a kernel, in the issue's frame: alternating before/after servers; in each, floorext's
no-op and the trigger callback (a kernel on core 1 starts a run per callback) alternate
ROUNDS times, DURATION s each; a server's ratio is the median of its rounds' ratios.

    cd /tmp && PYTHONPATH=/work/main python ab_kernel.py PAIRS [ROUNDS] [DURATION]

*before* is a checkout of git f27ede3 at ``/work/wt-x`` (or ``$BEFORE``), *after*
``/work/main``; each side's server and kernel import their own tree.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, "/work/main/bench")
from _common import (
    Kernel,
    Server,
    Subscriber,
    median,
    thread_cpu_seconds,
    wait_quiet,
    workdir,
    wrk,
)
from ingest import KERNEL_WORKFLOW, cpu_per_request

TREES = {"before": os.environ.get("BEFORE", "/work/wt-x"), "after": "/work/main"}
REFERENCE = "/work/shared/reference/p1-floor"


def one_side(tree: str, rounds: int, duration: float) -> dict[str, Any]:
    with workdir("ab7") as root, Subscriber() as sub:
        path = os.pathsep.join([tree, tree + "/bench", REFERENCE])
        env = {"PYTHONPATH": path, "FLOOR_DB": str(root / "f.sqlite")}
        server = Server(root, cpus="0", extensions=["floorext"], env=env).start()
        kernel = Kernel(server, cpus="1")
        try:
            url = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]
            ref = f"{server.url}noop/bench"
            wrk(url, duration=3)
            wrk(ref, duration=2)
            time.sleep(1)
            ratios: list[float] = []
            hook_cpu: list[float] = []
            ref_cpu: list[float] = []
            for index in range(rounds):
                targets = [("ref", ref), ("hook", url)]
                if index % 2:
                    targets.reverse()
                got: dict[str, tuple[float, float]] = {}
                for name, target in targets:
                    wait_quiet([server.pid])
                    before = thread_cpu_seconds(server.pid)
                    result = wrk(target, duration=duration)
                    after = thread_cpu_seconds(server.pid)
                    cpu = cpu_per_request(server.pid, before, after, result["requests"])["total"]
                    assert result["non2xx"] == 0
                    got[name] = (result["rps"], cpu)
                    time.sleep(0.5)
                ratios.append(got["hook"][0] / got["ref"][0])
                hook_cpu.append(got["hook"][1])
                ref_cpu.append(got["ref"][1])
            return {
                "ratio": round(median(ratios), 3),
                "ratios": [round(r, 3) for r in ratios],
                "hook_cpu": round(median(hook_cpu), 1),
                "ref_cpu": round(median(ref_cpu), 1),
            }
        finally:
            kernel.shutdown()
            server.stop()


def main() -> None:
    pairs = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in TREES}
    for index in range(pairs):
        order = list(TREES) if index % 2 == 0 else list(reversed(list(TREES)))
        for side in order:
            row = one_side(TREES[side], rounds, duration)
            results[side].append(row)
            print(side, index, json.dumps(row), flush=True)
    for side, rows in results.items():
        ratios = [row["ratio"] for row in rows]
        print(
            side,
            "ratio median",
            median(ratios),
            "range",
            min(ratios),
            max(ratios),
            "hook cpu",
            median([row["hook_cpu"] for row in rows]),
            "ref cpu",
            median([row["ref_cpu"] for row in rows]),
            flush=True,
        )


if __name__ == "__main__":
    main()
