"""Where the machine's two cores go during P3 live and during the no-op, in one server:
/proc/stat for the whole machine, /proc/<pid>/stat for the server and the kernel.

    PYTHONPATH=<checkout> python cpu_budget.py [ROUNDS]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, cpu_seconds, noop_url, workdir, wrk  # noqa: E402
from trigger_runs import enable_live  # noqa: E402

FIELDS = ("user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal")


def machine_ticks() -> list[int]:
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def measure(label: str, url: str, pids: list[int], seconds: float = 6) -> None:
    before, cpu_before, started = machine_ticks(), [cpu_seconds(p) for p in pids], time.time()
    result = wrk(url, duration=seconds, cpus=None, pids=pids)
    after, cpu_after = machine_ticks(), [cpu_seconds(p) for p in pids]
    elapsed = time.time() - started
    tick = os.sysconf("SC_CLK_TCK")
    cores = {
        name: round((b - a) / tick / elapsed, 2)
        for name, a, b in zip(FIELDS, before, after, strict=True)
    }
    ours = [round((b - a) / elapsed, 2) for a, b in zip(cpu_before, cpu_after, strict=True)]
    print(f"{label}: {result['rps']:.0f}/s machine cores {cores} server, kernel {ours}", flush=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with workdir("cpu-budget") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            url = enable_live(kernel, sub.url)
            pids = [server.pid, kernel.pid]
            noop = noop_url(server, url)
            wrk(url, duration=2, cpus=None, pids=pids)
            for _ in range(rounds):
                measure("noop", noop, pids)
                measure("live", url, pids)
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
