"""One side of an alternating before/after pair for P1 with a kernel attached.

    cd /tmp && PYTHONPATH=<a hooknb checkout> python <repo>/bench/results/<this dir>/ab_kernel.py 3

The server on core 0, a kernel and wrk on core 1 (as ``bench/ingest.py``'s kernel rounds); per
round the no-op, then the kernel workflow's trigger, 6 s each: req/s and the server's and the
kernel's CPU per request. Prints one ``RESULT <json>`` line. ``ab-kernel.txt`` holds three
cycles of before (git 0fafb3c), after (git 7769b7d), each side 3 rounds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import Kernel, Server, Subscriber, noop_url, thread_cpu_seconds, workdir, wrk
from ingest import KERNEL_WORKFLOW, cpu_per_request


def main(rounds: int) -> list[dict[str, Any]]:
    out = []
    with workdir("ab", keep=False) as root, Subscriber() as sub:
        server = Server(root, cpus="0").start()
        kernel = Kernel(server, cpus="1")
        try:
            url = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]
            noop = noop_url(server, url)
            wrk(url, duration=3)
            time.sleep(2)
            for _ in range(rounds):
                for kind, target in (("noop", noop), ("hook", url)):
                    s0, k0 = thread_cpu_seconds(server.pid), thread_cpu_seconds(kernel.pid)
                    res = wrk(target, duration=6)
                    s1, k1 = thread_cpu_seconds(server.pid), thread_cpu_seconds(kernel.pid)
                    n = res["requests"]
                    out.append(
                        {
                            "kind": kind,
                            "rps": res["rps"],
                            "server": cpu_per_request(server.pid, s0, s1, n)["total"],
                            "kernel": cpu_per_request(kernel.pid, k0, k1, n)["total"],
                        }
                    )
                    time.sleep(2)
        finally:
            kernel.shutdown()
            server.stop()
    return out


if __name__ == "__main__":
    print("RESULT", json.dumps(main(int(sys.argv[1]))))
