"""Where P3 live's time goes, per run: CPU by process and thread, and the writer's cycle.

    git apply cycle-probe.diff   # timing in the store (and bench_ext's knob; not committed code)
    PYTHONPATH=<checkout> python p3_cycle.py [SECONDS]

P3's live frame (a kernel runs the trigger's runs, ``wrk -t1 -c16``, nothing pinned), twice
each: our no-op, then the trigger. Prints the server's event-loop thread and other threads'
CPU per run, the kernel's, wrk's, and with the probe applied: the writer's thread CPU per run
by op (``group``: the trigger callbacks' rows; ``Hub.sync...op``: the kernel's reports;
``commit``) and, per batch, the writer's wall time, the sync's, and the hand-over waits
(which include queueing behind the previous batch), against the cycle (wall / batches).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import (  # noqa: E402
    Kernel,
    Server,
    Subscriber,
    busy_seconds,
    children_cpu,
    noop_url,
    thread_cpu_seconds,
    wait_quiet,
    workdir,
    wrk,
)
from trigger_runs import KERNEL_SETUP  # noqa: E402


def measure(
    server: Server, label: str, url: str, pids: list[int], seconds: float, count: Any
) -> None:
    before = {pid: thread_cpu_seconds(pid) for pid in pids}
    wrk_before, busy_before, started = children_cpu(), busy_seconds(), time.monotonic()
    runs_before = count() if count else 0
    server.stats(reset=True)
    result = wrk(url, duration=seconds, cpus=None, pids=pids)
    wall = time.monotonic() - started
    time.sleep(0.3)
    units = (count() - runs_before) if count else result["requests"]
    after = {pid: thread_cpu_seconds(pid) for pid in pids}
    busy = (busy_seconds() - busy_before) / wall
    print(f"== {label}: {result['rps']:.0f} req/s, {units} units, machine busy {busy:.2f} cores")
    for pid in pids:
        spent = {tid: s - before[pid].get(tid, 0.0) for tid, s in after[pid].items()}
        main = spent.get(pid, 0.0)
        others = ", ".join(
            f"{tid}={s / units * 1e6:.0f}"
            for tid, s in spent.items()
            if tid != pid and s / units * 1e6 >= 2
        )
        total = sum(spent.values()) / units * 1e6
        print(
            f"  pid {pid}: {total:.0f} us/unit; main thread {main / units * 1e6:.0f} us/unit"
            f" = {main / wall:.2f} cores; other threads {others}"
        )
    print(f"  wrk: {(children_cpu() - wrk_before) / units * 1e6:.0f} us/unit")
    stats = server.stats()
    probe = stats.get("probe") or {}
    batches = stats["store"]["batches"] or 1
    if probe:
        per_run = {k: round(v / units * 1e6, 1) for k, v in probe.items() if not k.startswith("n_")}
        print("  writer probe, us per run:", per_run)
        per_batch = {
            "handover_to_writer": probe.get("w_wake", 0) / max(probe.get("n_wake", 1), 1),
            "writer_batch": probe.get("w_batch", 0) / batches,
            "commit_to_syncer": probe.get("s_wake", 0) / max(probe.get("n_swake", 1), 1),
            "sync": probe.get("s_sync", 0) / max(stats["store"]["syncs"], 1),
            "sync_to_loop": probe.get("l_wake", 0) / max(probe.get("n_lwake", 1), 1),
            "cycle": wall / batches,
        }
        print("  per batch, us:", {k: round(v * 1e6) for k, v in per_batch.items()})
    store = {k: v for k, v in stats["store"].items() if k != "histogram"}
    print("  store:", json.dumps(store))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6
    with workdir("p3cycle") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            kernel.run(KERNEL_SETUP.format(sub=sub.url))
            printed = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
            url = printed.strip().splitlines()[-1]
            noop = noop_url(server, url)
            pids = [server.pid, kernel.pid]
            wrk(url, duration=3, cpus=None, pids=pids)
            wait_quiet(pids)

            def count() -> int:
                return int(kernel.json('len(STARTS["p3_live"])'))

            for _ in range(2):
                measure(server, "noop", noop, pids, seconds, None)
                wait_quiet(pids)
                measure(server, "live", url, pids, seconds, count)
                wait_quiet(pids)
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
