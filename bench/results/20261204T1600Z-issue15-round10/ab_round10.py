"""One server, this round's two changes off (A, as before: every trigger callback through a
task, the callback rule after every extension's) against on (B), switched while the server
runs, in P3's live frame or P1's.

    git apply before-switch-probe.diff   # the switch: /tmp/round10_before present = A
    PYTHONPATH=<checkout> python ab_round10.py p3|p1 [PAIRS] [SECONDS]

* ``p3``: a kernel runs the trigger's runs live; server, kernel and wrk unpinned (as
  ``bench/trigger_runs.py``).
* ``p1``: no kernel (the runs queue); the server pinned to core 0 and wrk to core 1 (as
  ``bench/ingest.py``).

Each pair: our no-op, then A and B in alternating order, ``wrk -t1 -c16``; the ratio is the
callbacks' req/s / the pair's no-op; ``loop`` is the event-loop thread's CPU per callback.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import (  # noqa: E402
    Kernel,
    Server,
    Subscriber,
    enable_trigger,
    noop_url,
    thread_cpu_seconds,
    wait_quiet,
    workdir,
    wrk,
)
from trigger_runs import KERNEL_SETUP, wait_drained  # noqa: E402

BEFORE = Path("/tmp/round10_before")


def switch(server: Server, mode: str) -> None:
    if mode == "A":
        BEFORE.touch()
    else:
        BEFORE.unlink(missing_ok=True)
    httpx.post(
        f"{server.url}bench/place-callback-route",
        params={"first": "0" if mode == "A" else "1"},
        headers=server.auth,
        trust_env=False,
        timeout=30,
    ).raise_for_status()


def main() -> None:
    frame = sys.argv[1]
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    live = frame == "p3"
    with workdir("ab-round10") as root, Subscriber() as sub:
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
            wrk(url, duration=2, **where)  # warm-up
            expected = int(kernel.json('len(STARTS["p3_live"])')) if kernel else 0
            ratios: dict[str, list[float]] = {"A": [], "B": []}
            loop_us: dict[str, list[float]] = {"A": [], "B": []}
            for index in range(pairs):
                if live:
                    wait_quiet(pids)
                base = wrk(noop, duration=seconds, **where)["rps"]
                line = [f"noop {base:.0f}"]
                for mode in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    switch(server, mode)
                    time.sleep(0.5)
                    server.stats(reset=True)
                    before = thread_cpu_seconds(server.pid).get(server.pid, 0.0)
                    result = wrk(url, duration=seconds, **where)
                    spent = thread_cpu_seconds(server.pid).get(server.pid, 0.0) - before
                    store = server.stats().get("store", {})
                    ratios[mode].append(result["rps"] / base)
                    loop_us[mode].append(spent / result["requests"] * 1e6)
                    line.append(
                        f"{mode} {result['rps']:.0f} {result['rps'] / base:.3f}"
                        f" loop={loop_us[mode][-1]:.0f}us p50={result['p50_ms']}"
                        f" batch={store.get('mean_batch')}"
                    )
                    if kernel is not None:
                        expected += result["requests"]
                        wait_drained(kernel, "p3_live", expected)
                        time.sleep(0.5)
                print(" | ".join(line), flush=True)
            print(
                "A (before) median",
                round(statistics.median(ratios["A"]), 3),
                "loop",
                round(statistics.median(loop_us["A"])),
                "us; B (this round) median",
                round(statistics.median(ratios["B"]), 3),
                "loop",
                round(statistics.median(loop_us["B"])),
                "us; B > A in",
                sum(b > a for a, b in zip(ratios["A"], ratios["B"], strict=True)),
                "of",
                pairs,
            )
        finally:
            BEFORE.unlink(missing_ok=True)
            if kernel is not None:
                kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
