"""P3 live's timeline: what the event loop, the writer and the syncer do, when.

    git apply round11-probe.diff   # the timeline's marks in the store, hub and route (a probe)
    PYTHONPATH=<checkout> python timeline.py ['{"knob": value}']   # run, record 2 s, summarise
    PYTHONPATH=<checkout> python timeline.py /tmp/tl.pkl          # summarise a recording again

P3's live frame (a kernel runs the trigger's runs, ``wrk -t1 -c16`` for 6 s, nothing pinned);
the probe records marks for 2 s in the middle: the loop's ``select`` (idle), each trigger
callback's ``finish()`` (F) and write (W), hand-overs to the writer (H), the writer's batches
(B0/B1) and COMMITs (C0/C1, with the batch's other ops), the sync (S0/S1), the loop's
resolution of a batch (R), deliveries pushed (D0/D1), answers (A), and the statements of the
kernel's sync op (y0-y3). Prints one cycle's marks, the median cycle, and distributions.
"""

from __future__ import annotations

import collections
import itertools
import json
import pickle
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, workdir, wrk  # noqa: E402
from trigger_runs import enable_live  # noqa: E402

ON, DUMP, OUT, KNOBS = (
    Path(f"/tmp/{name}") for name in ("tl_on", "tl_dump", "tl.pkl", "r11_knobs")
)

Event = tuple[float, str, int]


def record(knobs: str) -> list[Event]:
    for path in (ON, DUMP, OUT):
        path.unlink(missing_ok=True)
    if knobs:
        KNOBS.write_text(knobs)
    else:
        KNOBS.unlink(missing_ok=True)
    with workdir("timeline") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            url = enable_live(kernel, sub.url)
            pids = [server.pid, kernel.pid]
            spacing = json.loads(knobs or "{}").get("spacing")
            if spacing is not None:  # the kernel's sync spacing (hooknb.kernel.client)
                kernel.run(f"import hooknb.kernel.client as c; c._SYNC_SPACING = {spacing}")
            wrk(url, duration=2, cpus=None, pids=pids)

            def window() -> None:
                time.sleep(2)
                ON.touch()
                time.sleep(2)
                ON.unlink()
                DUMP.touch()  # the next hand-over writes the recording

            marking = threading.Thread(target=window)
            marking.start()
            result = wrk(url, duration=6, cpus=None, pids=pids)
            marking.join()
            print(f"{result['rps']:.0f} runs/s")
        finally:
            KNOBS.unlink(missing_ok=True)
            kernel.shutdown()
            server.stop()
    with OUT.open("rb") as handle:
        return pickle.load(handle)


def spans(events: list[Event], start: str, end: str) -> list[float]:
    """Seconds from each ``start`` mark to the next ``end`` mark."""
    found, opened = [], None
    for at, tag, _ in events:
        if tag == start:
            opened = at
        elif tag == end and opened is not None:
            found.append(at - opened)
            opened = None
    return found


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p50, p90 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.9)]
    return (
        f"n={len(ordered)} p50={p50 * 1e6:.0f}us p90={p90 * 1e6:.0f}us"
        f" max={ordered[-1] * 1e6:.0f}us sum={sum(ordered) * 1e3:.0f}ms"
    )


def summarise(events: list[Event]) -> None:
    events.sort()
    span = events[-1][0] - events[0][0]
    idle = sum(spans(events, "I0", "I1"))
    print(f"recorded {span:.2f} s; the loop idle in select {idle / span:.0%}")
    resolutions = [i for i, (_, tag, n) in enumerate(events) if tag == "R" and n >= 4]
    cycles = []
    for first, last in itertools.pairwise(resolutions):
        begin = events[first][0]
        marks: dict[str, float] = {}
        for at, tag, _ in events[first:last]:
            marks.setdefault(tag, (at - begin) * 1e6)
        marks["cycle"] = (events[last][0] - begin) * 1e6
        marks["idle"] = sum(spans(events[first:last], "I0", "I1")) * 1e6
        cycles.append(marks)
    keys = ["cycle", "idle", "D0", "A", "F", "H", "B0", "C0", "B1", "S0", "S1"]
    print(
        "median cycle, us after the resolution (first of each mark):",
        {k: round(statistics.median(c[k] for c in cycles if k in c)) for k in keys},
    )
    first, last = resolutions[len(resolutions) // 2 : len(resolutions) // 2 + 2]
    begin = events[first][0]
    print(
        "one cycle:",
        " ".join(
            f"{(at - begin) * 1e6:.0f}:{tag}{n or ''}"
            for at, tag, n in events[first : last + 1]
            if tag != "I0"
        ),
    )
    hand_overs = [at for at, tag, _ in events if tag == "H"]
    starts = [at for at, tag, _ in events if tag == "B0"]
    waits = [b - max(h for h in hand_overs if h <= b) for b in starts if hand_overs[0] <= b]
    print("hand-over -> writer starts:", spread(waits))
    print("writer's batch:", spread(spans(events, "B0", "B1")))
    print("COMMIT:", spread(spans(events, "C0", "C1")))
    print("sync:", spread(spans(events, "S0", "S1")))
    print("sync -> the loop resolves:", spread(spans(events, "S1", "R")))
    batches, current = [], None
    for at, tag, n in events:
        if tag == "B0":
            current = {"start": at, "size": n, "ops": []}
        elif current is not None and tag.startswith("o:"):
            current["ops"].append(tag[2:])
        elif current is not None and tag == "B1":
            current["wall"] = at - current["start"]
            batches.append(current)
            current = None
    slow = [b for b in batches if b["wall"] > 0.0015]
    kinds = collections.Counter(
        "kernel's sync" if b["ops"] else "trigger callbacks only" for b in slow
    )
    print(f"batches over 1.5 ms: {len(slow)} of {len(batches)}: {dict(kinds)}")
    for name, start, end in (("select", "y0", "y1"), ("update", "y1", "y2"), ("close", "y2", "y3")):
        print(f"kernel's sync op, {name}:", spread(spans(events, start, end)))


def main() -> None:
    argument = sys.argv[1] if len(sys.argv) > 1 else ""
    if argument.endswith(".pkl"):
        with open(argument, "rb") as handle:
            events: list[Any] = pickle.load(handle)
    else:
        events = record(json.dumps(json.loads(argument)) if argument else "")
    summarise(events)


if __name__ == "__main__":
    main()
