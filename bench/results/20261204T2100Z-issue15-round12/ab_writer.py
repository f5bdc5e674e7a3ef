"""One server, P3's live frame: the writer thread (A) against the trigger writer process (B),
switched at run time, in short alternating runs, so that the VM's slow drifts hit both alike.

    PYTHONPATH=<checkout> python ab_writer.py PAIRS SECONDS

The server starts with ``HOOKNB_TRIGGER_WRITER_PROCESS=1`` (the child starts at the first
callback and stays); each side sets ``hub.trigger_writer_process`` through bench_ext's
``POST bench/stats?trigger_writer=0|1``. With it off, the writer thread still takes the write
lock around each transaction (the child exists): A pays that too.

Prints each run (runs/s, ratio to the no-op run before every second pair, the server's
process's and the child's CPU per request) and each pair's B/A; at the end the median and
geometric mean of B/A, how many pairs B won, and the medians of A's and B's ratio to the
no-op.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, cpu_seconds, noop_url, workdir, wrk  # noqa: E402
from trigger_runs import enable_live, wait_drained  # noqa: E402


def switch(server: Server, on: bool) -> None:
    response = httpx.post(
        f"{server.url}bench/stats",
        params={"trigger_writer": "1" if on else "0"},
        headers=server.auth,
        trust_env=False,
        timeout=30,
    )
    response.raise_for_status()


def main() -> None:
    pairs, seconds = int(sys.argv[1]), float(sys.argv[2])
    with workdir("ab-writer") as root, Subscriber() as sub:
        server = Server(root, cpus=None, env={"HOOKNB_TRIGGER_WRITER_PROCESS": "1"}).start()
        kernel = Kernel(server)
        try:
            url = enable_live(kernel, sub.url)
            noop = noop_url(server, url)
            pids = [server.pid, kernel.pid]
            wrk(url, duration=2, cpus=None, pids=pids)
            child = int(server.stats()["trigger_writer_pid"])
            pids.append(child)
            expected = int(kernel.json('len(STARTS["p3_live"])'))
            ba, vs_noop = [], {"A": [], "B": []}
            base = 0.0
            for index in range(pairs):
                if index % 2 == 0:
                    base = wrk(noop, duration=seconds, cpus=None, pids=pids)["rps"]
                got = {}
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    switch(server, mode == "B")
                    time.sleep(0.3)
                    before, child_before = cpu_seconds(server.pid), cpu_seconds(child)
                    result = wrk(url, duration=seconds, cpus=None, pids=pids)
                    server_cpu = cpu_seconds(server.pid) - before
                    child_cpu = cpu_seconds(child) - child_before
                    got[mode] = result["rps"]
                    vs_noop[mode].append(result["rps"] / base)
                    expected += result["requests"]
                    wait_drained(kernel, "p3_live", expected)
                    per = 1e6 / result["requests"]
                    print(
                        f"  {mode} {result['rps']:.0f} ({result['rps'] / base:.3f} of noop"
                        f" {base:.0f}) server {server_cpu * per:.0f}us child"
                        f" {child_cpu * per:.0f}us non2xx {result['non2xx']}",
                        flush=True,
                    )
                ba.append(got["B"] / got["A"])
                print(f"pair {index}: B/A {ba[-1]:.3f}", flush=True)
            geo = math.exp(sum(map(math.log, ba)) / len(ba))
            print(
                f"B/A median {statistics.median(ba):.3f} geomean {geo:.3f};"
                f" B won {sum(x > 1 for x in ba)} of {len(ba)};"
                f" vs noop: A {statistics.median(vs_noop['A']):.3f}"
                f" B {statistics.median(vs_noop['B']):.3f}"
            )
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
