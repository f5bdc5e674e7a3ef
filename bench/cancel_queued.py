"""F5: one bulk cancel of many queued runs (a trigger with no kernel), how long it takes.

    python bench/cancel_queued.py [--runs 20000] [--out F.json]

A ``jupyter server`` with hooknb (unpinned); a workflow's trigger is enabled by a client with
no kernel behind it, ``wrk`` posts to its callback URL until at least ``--runs`` runs are queued,
then one ``POST hooknb/api/runs/cancel {"workflow": ..., "orphaned": true}`` cancels them all.
Before issue 15 each cancelled run deleted its delivery row by run id without an index: the
time grew with the square of the backlog (8-22 s for 20,000).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import Server, Subscriber, emit, enable_trigger, machine, workdir, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with workdir("cancel") as root, Subscriber() as sub:
        info = machine(root)
        server = Server(root, cpus=None).start()
        try:
            url = enable_trigger(server, "backlog", sub, "parked")
            posted = 0
            while posted < args.runs:
                posted += wrk(url, duration=2, cpus=None)["requests"]
            queued = server.api("GET", "status")["pendingDeliveries"]
            started = time.perf_counter()
            answer = server.api(
                "POST", "runs/cancel", {"workflow": "backlog", "orphaned": True}, timeout=600
            )
            seconds = time.perf_counter() - started
            result: dict[str, Any] = {
                "benchmark": "F5: bulk cancel of queued runs",
                "machine": info,
                "queued": queued,
                "cancelled": len(answer["cancelled"]),
                "seconds": round(seconds, 3),
                "pending_after": server.api("GET", "status")["pendingDeliveries"],
            }
        finally:
            server.stop()
    emit("cancel_queued", result, args.out)


if __name__ == "__main__":
    main()
