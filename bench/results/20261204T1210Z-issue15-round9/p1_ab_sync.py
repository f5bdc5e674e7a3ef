"""P1's frame (no kernel) in one server, the WAL's sync inline in the writer (A, as before this
round) against the syncer thread (B), switched while the server runs.

    git apply inline-sync-probe.diff   # the switch: /tmp/p3ab_inline present = A
    PYTHONPATH=<checkout> python p1_ab_sync.py [PAIRS] [SECONDS]

As ``bench/ingest.py``: the server pinned to core 0, ``wrk -t1 -c16`` to core 1, callbacks to
a trigger enabled by a client with no kernel (the runs queue). Each pair: our no-op, then A and
B in alternating order; the ratio is hooknb's req/s ÷ the pair's no-op.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Server, Subscriber, enable_trigger, noop_url, workdir, wrk  # noqa: E402

INLINE = Path("/tmp/p3ab_inline")


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    with workdir("p1ab") as root, Subscriber() as sub:
        server = Server(root, cpus="0").start()
        try:
            url = enable_trigger(server, "bench", sub, "bench-client")
            noop = noop_url(server, url)
            wrk(url, duration=2)
            ratios: dict[str, list[float]] = {"A": [], "B": []}
            for index in range(pairs):
                base = wrk(noop, duration=seconds)["rps"]
                line = [f"noop {base:.0f}"]
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    if mode == "A":
                        INLINE.touch()
                    else:
                        INLINE.unlink(missing_ok=True)
                    time.sleep(0.5)
                    server.stats(reset=True)
                    result = wrk(url, duration=seconds)
                    store = server.stats().get("store", {})
                    ratios[mode].append(result["rps"] / base)
                    line.append(
                        f"{mode} {result['rps']:.0f} {result['rps'] / base:.3f}"
                        f" batch={store.get('mean_batch')}"
                        f" commits/sync={store.get('commits_per_sync')}"
                    )
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
            server.stop()


if __name__ == "__main__":
    main()
