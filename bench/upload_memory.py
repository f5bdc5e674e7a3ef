"""Memory of the callback route under big concurrent uploads (issue 11, item 4).

    python bench/upload_memory.py [--uploads 40] [--mib 15] [--rounds 2] [--chunked] [--out F]

One ``jupyter server`` with hooknb (pinned to core 0) and one enabled trigger; this process
(core 1) opens ``--uploads`` connections at once, each POSTing a ``--mib`` MiB body to the same
callback URL, ``--rounds`` times. Measured: the server's peak RSS over the round (``VmHWM``,
reset before each round through ``/proc/<pid>/clear_refs``, and a 5 ms sampler of ``VmRSS`` as
a cross-check) against its RSS just before; its RSS after the round; and every request's
status code (or the transport error, which the goal does not allow). Goal: the peak of every
round at most 200 MiB above the RSS before the first round (what one round keeps counts in the
next), every request answered with a status code.

Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import Server, Subscriber, emit, enable_trigger, log, machine, rss_mib, workdir

GOAL_MIB = 200.0


def hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS counter (Linux: "5" to clear_refs); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler:
    """VmRSS every 5 ms on a thread, for the round's maximum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, rss_mib(self.pid))


async def one_round(url: str, uploads: int, body: bytes, chunked: bool) -> dict[str, Any]:
    async def chunks() -> Any:
        view = memoryview(body)
        for start in range(0, len(body), 65536):
            yield bytes(view[start : start + 65536])

    limits = httpx.Limits(max_connections=uploads, max_keepalive_connections=0)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=timeout) as client:

        async def post() -> str:
            try:
                answer = await client.post(url, content=chunks() if chunked else body)
            except httpx.HTTPError as exc:
                return f"error: {type(exc).__name__}"
            return str(answer.status_code)

        started = time.monotonic()
        outcomes = await asyncio.gather(*(post() for _ in range(uploads)))
        took = time.monotonic() - started
    return {"statuses": dict(collections.Counter(outcomes)), "seconds": round(took, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--mib", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunked", action="store_true", help="send bodies chunked")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    body = b'{"pad":"' + b"x" * int(args.mib * 1024 * 1024 - 10) + b'"}'
    with workdir("upload", keep=args.keep) as root, Subscriber() as subscriber:
        server = Server(root, cpus="0").start()
        try:
            url = enable_trigger(server, "uploads", subscriber, "bench-client")
            with contextlib.suppress(httpx.HTTPError):  # warm up the route and the store
                httpx.post(url, content=b"{}", trust_env=False, timeout=30)
            time.sleep(1.0)
            settled = server.rss_mib()
            rounds = []
            for number in range(1, args.rounds + 1):
                before = server.rss_mib()
                can_reset = reset_hwm(server.pid)
                with Sampler(server.pid) as sampler:
                    outcome = asyncio.run(one_round(url, args.uploads, body, args.chunked))
                    time.sleep(0.5)
                peak = hwm_mib(server.pid) if can_reset else sampler.peak
                time.sleep(2.0)
                after = server.rss_mib()
                answered = all(not s.startswith("error") for s in outcome["statuses"])
                rounds.append(
                    {
                        "round": number,
                        **outcome,
                        "rss_before_mib": round(before, 1),
                        "peak_rss_mib": round(max(peak, sampler.peak), 1),
                        "peak_growth_mib": round(max(peak, sampler.peak) - before, 1),
                        "peak_over_settled_mib": round(max(peak, sampler.peak) - settled, 1),
                        "sampled_peak_mib": round(sampler.peak, 1),
                        "rss_after_mib": round(after, 1),
                        "every_request_answered": answered,
                    }
                )
                log(f"round {number}: {rounds[-1]}")
            stored = server.api("GET", "status")
            # Against the RSS before the first round: memory kept by one round counts in the next.
            growth = max(r["peak_over_settled_mib"] for r in rounds)
            result = {
                "benchmark": "upload_memory",
                "command": "python bench/upload_memory.py "
                + f"--uploads {args.uploads} --mib {args.mib:g} --rounds {args.rounds}"
                + (" --chunked" if args.chunked else ""),
                "machine": machine(root),
                "settled_rss_mib": round(settled, 1),
                "rounds": rounds,
                "runs_stored": stored["runs"],
                "goal": f"peak growth <= {GOAL_MIB:g} MiB, every request answered",
                "max_peak_growth_mib": growth,
                "verdict": "pass"
                if growth <= GOAL_MIB and all(r["every_request_answered"] for r in rounds)
                else "MISS",
            }
        finally:
            server.stop()
    emit("upload_memory", result, args.out)


if __name__ == "__main__":
    main()
