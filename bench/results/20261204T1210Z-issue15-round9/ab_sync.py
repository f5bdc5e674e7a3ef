"""One server, the WAL's sync inline in the writer (A, as before this round) against the syncer
thread (B, this round), switched while the server runs, in P3's live frame or P1's.

    git apply inline-sync-probe.diff   # the switch: /tmp/p3ab_inline present = A
    PYTHONPATH=<checkout> python ab_sync.py p3|p1 [PAIRS] [SECONDS]

* ``p3``: a kernel runs the trigger's runs live; server, kernel and wrk unpinned (as
  ``bench/trigger_runs.py``).
* ``p1``: no kernel (the trigger enabled by a client with no kernel: the runs queue); the server
  pinned to core 0 and wrk to core 1 (as ``bench/ingest.py``).

Each pair: our no-op, then A and B in alternating order, ``wrk -t1 -c16``; the ratio is the
callbacks' req/s ÷ the pair's no-op. One server for all pairs, so the server-to-server spread
of this VM (±0.1) drops out.
"""

from __future__ import annotations

import statistics
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
    enable_trigger,
    noop_url,
    wait_quiet,
    workdir,
    wrk,
)
from trigger_runs import KERNEL_SETUP, wait_drained  # noqa: E402

INLINE = Path("/tmp/p3ab_inline")


def main() -> None:
    frame = sys.argv[1]
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    live = frame == "p3"
    with workdir("ab-sync") as root, Subscriber() as sub:
        server = Server(root, cpus=None if live else "0").start()
        kernel = Kernel(server) if live else None
        try:
            if kernel is not None:
                kernel.run(KERNEL_SETUP.format(sub=sub.url))
                out = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
                url = out.strip().splitlines()[-1]
                pids = [server.pid, kernel.pid]
            else:
                url = enable_trigger(server, "bench", sub, "bench-client")
                pids = [server.pid]
            noop = noop_url(server, url)
            where: dict[str, Any] = {"cpus": None, "pids": pids} if live else {}
            if not live:
                wrk(url, duration=2)  # warm-up, as ingest.py
            expected = 0
            ratios: dict[str, list[float]] = {"A": [], "B": []}
            for index in range(pairs):
                if live:
                    wait_quiet(pids)
                base = wrk(noop, duration=seconds, **where)["rps"]
                line = [f"noop {base:.0f}"]
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    if mode == "A":
                        INLINE.touch()
                    else:
                        INLINE.unlink(missing_ok=True)
                    time.sleep(0.5)
                    server.stats(reset=True)
                    result = wrk(url, duration=seconds, **where)
                    store = server.stats().get("store", {})
                    ratios[mode].append(result["rps"] / base)
                    line.append(
                        f"{mode} {result['rps']:.0f} {result['rps'] / base:.3f}"
                        f" p50={result['p50_ms']} batch={store.get('mean_batch')}"
                        f" commits/sync={store.get('commits_per_sync')}"
                    )
                    if kernel is not None:
                        expected += result["requests"]
                        wait_drained(kernel, "p3_live", expected)
                        time.sleep(0.5)
                print(" | ".join(line), flush=True)
            print(
                "A (sync inline) median",
                round(statistics.median(ratios["A"]), 3),
                "B (syncer) median",
                round(statistics.median(ratios["B"]), 3),
                "B > A in",
                sum(b > a for a, b in zip(ratios["A"], ratios["B"], strict=True)),
                "of",
                pairs,
            )
        finally:
            INLINE.unlink(missing_ok=True)
            if kernel is not None:
                kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
