"""P3's live frame in one server, the WAL's sync inline in the writer (A, as before this round)
against the syncer thread (B, this round), switched while the server runs.

    git apply inline-sync-probe.diff   # the switch: /tmp/p3ab_inline present = A
    PYTHONPATH=<checkout> python p3_ab_sync.py [PAIRS] [SECONDS]

Each pair: our no-op, then A and B in alternating order, every wrk run with 16 connections,
unpinned; the ratio is wrk's req/s (each a run started in the kernel) ÷ the pair's no-op.
One server for all pairs, so the server-to-server spread of this VM (±0.1) drops out.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, noop_url, wait_quiet, workdir, wrk  # noqa: E402
from trigger_runs import KERNEL_SETUP, wait_drained  # noqa: E402

INLINE = Path("/tmp/p3ab_inline")


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    with workdir("p3ab") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            kernel.run(KERNEL_SETUP.format(sub=sub.url))
            out = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
            url = out.strip().splitlines()[-1]
            noop = noop_url(server, url)
            pids = [server.pid, kernel.pid]
            expected = 0
            ratios: dict[str, list[float]] = {"A": [], "B": []}
            for index in range(pairs):
                wait_quiet(pids)
                base = wrk(noop, duration=seconds, conns=16, cpus=None, pids=pids)["rps"]
                line = [f"noop {base:.0f}"]
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    if mode == "A":
                        INLINE.touch()
                    else:
                        INLINE.unlink(missing_ok=True)
                    time.sleep(0.5)
                    server.stats(reset=True)
                    result = wrk(url, duration=seconds, conns=16, cpus=None, pids=pids)
                    expected += result["requests"]
                    store = server.stats().get("store", {})
                    ratios[mode].append(result["rps"] / base)
                    line.append(
                        f"{mode} {result['rps']:.0f} {result['rps'] / base:.3f}"
                        f" p50={result['p50_ms']} batch={store.get('mean_batch')}"
                        f" commits/sync={store.get('commits_per_sync')}"
                    )
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
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
