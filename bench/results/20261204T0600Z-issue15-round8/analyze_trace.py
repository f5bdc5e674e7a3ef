"""What the event loop does while the store's writer is in each phase of its batches.

    python analyze_trace.py trace-<pid>.json

The trace is written by the probe of ``writer-phases-probe.diff`` (``PROBE_TRACE=1`` in the
server's environment): the writer's batches (woken, began, committing, finished, resolved,
size) and the event loop's ``select`` calls (start, end, events). Prints each writer phase's
share of the window and how much of it the event loop spent idle in ``select``.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    with open(sys.argv[1]) as handle:
        trace = json.load(handle)
    batches = trace["w"][-1500:]
    selects = trace["m"]
    start, end = batches[0][0], batches[-1][4]
    window = end - start
    idle = [(max(a, start), min(b, end)) for a, b, _ in selects if b > start and a < end]
    states: list[tuple[str, float, float]] = []
    previous = start
    for woken, began, committing, finished, resolved, _ in batches:
        states += [
            ("idle", previous, woken),
            ("begin", woken, began),
            ("ops", began, committing),
            ("commit", committing, finished),
            ("resolve", finished, resolved),
        ]
        previous = resolved
    total: dict[str, float] = {}
    loop_idle: dict[str, float] = {}
    for name, a, b in states:
        total[name] = total.get(name, 0.0) + (b - a)
        overlap = sum(max(0.0, min(b, y) - max(a, x)) for x, y in idle if y >= a and x <= b)
        loop_idle[name] = loop_idle.get(name, 0.0) + overlap
    sizes = [batch[5] for batch in batches]
    print(f"window {window * 1000:.0f} ms, {len(batches)} batches of {sum(sizes) / len(sizes):.1f}")
    print(f"event loop idle {sum(b - a for a, b in idle) / window:.1%} of the window")
    for name, seconds in total.items():
        print(
            f"  writer {name:8} {seconds / window:6.1%} of the window;"
            f" event loop idle meanwhile {loop_idle[name] / window:6.1%}"
        )


if __name__ == "__main__":
    main()
