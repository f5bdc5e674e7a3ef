"""P3's live frame, accounted: CPU per thread of the server and the kernel, the machine's busy
cores and the store's group-commit stats, for our no-op and for live runs in one server.

    PYTHONPATH=<checkout> python p3_cpu.py [ROUNDS] [SECONDS]

Environment (diagnostics only, not P3's frame): ``PIN_SERVER=0`` pins the server's threads to
core 0; ``BURN=1.0`` runs two ``nice -n 19`` busy loops beside each measurement. With the
probe of ``writer-phases-probe.diff`` applied, the stats also carry the writer's phases.
"""

from __future__ import annotations

import os
import subprocess
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
    pin,
    wait_quiet,
    workdir,
    wrk,
)
from trigger_runs import KERNEL_SETUP, wait_drained  # noqa: E402

BURN = (
    "import time, sys\n"
    "end = time.time() + float(sys.argv[2])\n"
    "while time.time() < end:\n"
    "    t = time.perf_counter()\n"
    "    while time.perf_counter() - t < 0.002 * float(sys.argv[1]): pass\n"
    "    time.sleep(0.002 * (1 - float(sys.argv[1])))\n"
)


def thread_cpu(pid: int) -> dict[tuple[int, int, str], tuple[float, float]]:
    """(user, system) CPU seconds of each thread of ``pid``."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
            name = Path(f"/proc/{pid}/task/{task}/comm").read_text().strip()
        except OSError:
            continue
        out[(pid, int(task), name)] = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8
    with workdir("p3cpu") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            kernel.run(KERNEL_SETUP.format(sub=sub.url))
            url = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
            url = url.strip().splitlines()[-1]
            noop = noop_url(server, url)
            if os.environ.get("PIN_SERVER"):
                pin(server.pid, os.environ["PIN_SERVER"])
            expected = 0
            for _ in range(rounds):
                for which, target in (("noop", noop), ("live", url)):
                    pids = [server.pid, kernel.pid]
                    wait_quiet(pids)
                    burners = (
                        [
                            subprocess.Popen(
                                [
                                    "nice",
                                    "-n",
                                    "19",
                                    sys.executable,
                                    "-c",
                                    BURN,
                                    os.environ["BURN"],
                                    str(seconds + 1),
                                ]
                            )
                            for _ in range(2)
                        ]
                        if os.environ.get("BURN")
                        else []
                    )
                    server.stats(reset=True)
                    before: dict[tuple[int, int, str], tuple[float, float]] = {}
                    for pid in pids:
                        before.update(thread_cpu(pid))
                    busy0, children0, t0 = busy_seconds(), children_cpu(), time.time()
                    result = wrk(target, duration=seconds, conns=16, cpus=None, pids=pids)
                    wall = time.time() - t0
                    busy = (busy_seconds() - busy0) / wall
                    wrk_cores = (children_cpu() - children0) / wall
                    after: dict[tuple[int, int, str], tuple[float, float]] = {}
                    for pid in pids:
                        after.update(thread_cpu(pid))
                    for burner in burners:
                        burner.wait()
                    rps = result["rps"]
                    print(
                        f"== {which} rps={rps:.0f} p50={result['p50_ms']} p99={result['p99_ms']}"
                        f" busy={busy:.2f} cores wrk={wrk_cores:.2f}"
                    )
                    rows: list[tuple[float, float, str, str]] = []
                    for key, (user, system) in after.items():
                        old = before.get(key, (0.0, 0.0))
                        cores = (user + system - sum(old)) / wall
                        if cores > 0.01:
                            who = "server" if key[0] == server.pid else "kernel"
                            rows.append((cores, (system - old[1]) / wall, who, key[2]))
                    for cores, system, who, name in sorted(rows, reverse=True):
                        print(
                            f"   {who:6} {name:20} {cores:.3f} cores {cores / rps * 1e6:.0f} us/req"
                            f" (sys {system / rps * 1e6:.0f})"
                        )
                    stats: Any = server.stats().get("store", {})
                    print("   store", {k: v for k, v in stats.items() if k != "histogram"})
                    if which == "live":
                        expected += result["requests"]
                        wait_drained(kernel, "p3_live", expected)
                    time.sleep(1)
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
