"""One server, P3's live frame: A (no knobs file) against B (``/tmp/r11_knobs`` = argv[3]),
in short alternating runs, so that the VM's slow drifts hit both alike.

    git apply round11-probe.diff   # the knobs the store reads (a probe, not committed code)
    PYTHONPATH=<checkout> python ab_knobs.py PAIRS SECONDS '{"swi": 0.001}' [A-knobs]

The knob ``spacing`` is set in the kernel instead: its sync spacing
(``hooknb.kernel.client._SYNC_SPACING``, and ``_SYNC_SPACING_BUSY`` since git 6326645) for that
side, 0.02 s (the default before git e5f6e1a) where a side does not give it; ``"default"``
gives both as shipped. The other knobs are read by the probe's store (``KN``).

Prints each pair's B/A and, at the end, the median and geometric mean of B/A, how many pairs
B won, and the medians of A's and B's ratio to the no-op (run before every second pair).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, noop_url, thread_cpu_seconds, workdir, wrk  # noqa: E402
from trigger_runs import enable_live, wait_drained  # noqa: E402

KNOBS = Path("/tmp/r11_knobs")


def main() -> None:
    pairs, seconds, b_knobs = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    a_knobs = sys.argv[4] if len(sys.argv) > 4 else ""
    with workdir("ab-knobs") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            url = enable_live(kernel, sub.url)
            kernel.run("import hooknb.kernel.client as c")
            shipped = kernel.json("[c._SYNC_SPACING, getattr(c, '_SYNC_SPACING_BUSY', None)]")
            pids = [server.pid, kernel.pid]
            noop = noop_url(server, url)
            wrk(url, duration=2, cpus=None, pids=pids)
            expected = int(kernel.json('len(STARTS["p3_live"])'))
            ba, vs_noop = [], {"A": [], "B": []}
            base = 0.0
            for index in range(pairs):
                if index % 2 == 0:
                    base = wrk(noop, duration=seconds, cpus=None, pids=pids)["rps"]
                got = {}
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    knobs = b_knobs if mode == "B" else a_knobs
                    if knobs:
                        KNOBS.write_text(knobs)
                    else:
                        KNOBS.unlink(missing_ok=True)
                    spacing = json.loads(knobs or "{}").get("spacing", 0.02)
                    light, busy = shipped if spacing == "default" else (spacing, spacing)
                    kernel.run(f"c._SYNC_SPACING = {light}")
                    if busy is not None:
                        kernel.run(f"c._SYNC_SPACING_BUSY = {busy}")
                    time.sleep(0.3)
                    before = thread_cpu_seconds(server.pid).get(server.pid, 0.0)
                    result = wrk(url, duration=seconds, cpus=None, pids=pids)
                    loop = thread_cpu_seconds(server.pid).get(server.pid, 0.0) - before
                    got[mode] = result["rps"]
                    vs_noop[mode].append(result["rps"] / base)
                    expected += result["requests"]
                    wait_drained(kernel, "p3_live", expected)
                    print(
                        f"  {mode} {result['rps']:.0f} ({result['rps'] / base:.3f} of noop"
                        f" {base:.0f}) loop {loop / result['requests'] * 1e6:.0f}us",
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
            KNOBS.unlink(missing_ok=True)
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
