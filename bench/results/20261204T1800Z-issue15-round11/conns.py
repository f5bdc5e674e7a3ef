"""P3 live at 16, 32 and 64 connections: does the event loop get busier with more in flight?

    PYTHONPATH=<checkout> python conns.py

One server and kernel (P3's live frame, nothing pinned); twice over, for each connection
count: our no-op, then the trigger (``wrk -t1 -cN`` for 3 s). Prints the ratio, the event
loop's CPU per run and its busy share (CPU seconds per second), and the median latency.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, noop_url, thread_cpu_seconds, workdir, wrk  # noqa: E402
from trigger_runs import enable_live, wait_drained  # noqa: E402

SECONDS = 3


def main() -> None:
    with workdir("conns") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            url = enable_live(kernel, sub.url)
            pids = [server.pid, kernel.pid]
            noop = noop_url(server, url)
            wrk(url, duration=2, cpus=None, pids=pids)
            expected = int(kernel.json('len(STARTS["p3_live"])'))
            for _ in range(2):
                for conns in (16, 32, 64):
                    base = wrk(noop, duration=SECONDS, cpus=None, pids=pids, conns=conns)["rps"]
                    before = thread_cpu_seconds(server.pid).get(server.pid, 0.0)
                    result = wrk(url, duration=SECONDS, cpus=None, pids=pids, conns=conns)
                    loop = thread_cpu_seconds(server.pid).get(server.pid, 0.0) - before
                    expected += result["requests"]
                    wait_drained(kernel, "p3_live", expected)
                    print(
                        f"c{conns}: noop {base:.0f} live {result['rps']:.0f}"
                        f" ratio {result['rps'] / base:.3f}"
                        f" loop {loop / result['requests'] * 1e6:.0f}us busy {loop / SECONDS:.2f}"
                        f" p50 {result['p50_ms']} ms",
                        flush=True,
                    )
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
