"""What a hand-over between two Python threads costs on this VM (GIL, futex, scheduler).

    python pingpong.py

1. Round trip through two ``queue.SimpleQueue``s while the main thread has nothing else to do.
2. A thread woken (``put``) while the main thread runs Python for 2 ms: how long until it runs.
"""

from __future__ import annotations

import queue
import threading
import time


def echo(inbox: queue.SimpleQueue[object], outbox: queue.SimpleQueue[object]) -> None:
    while (item := inbox.get()) is not None:
        outbox.put(item)


def note_wake(inbox: queue.SimpleQueue[float | None], delays: list[float]) -> None:
    while (sent := inbox.get()) is not None:
        delays.append(time.perf_counter() - sent)


def compute(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main() -> None:
    there: queue.SimpleQueue[object] = queue.SimpleQueue()
    back: queue.SimpleQueue[object] = queue.SimpleQueue()
    thread = threading.Thread(target=echo, args=(there, back))
    thread.start()
    for _ in range(3):
        count, started = 2000, time.perf_counter()
        for index in range(count):
            there.put(index)
            back.get()
        print(
            f"round trip, main thread idle: {(time.perf_counter() - started) / count * 1e6:.1f} us"
        )
    there.put(None)
    thread.join()

    wakes: queue.SimpleQueue[float | None] = queue.SimpleQueue()
    delays: list[float] = []
    thread = threading.Thread(target=note_wake, args=(wakes, delays))
    thread.start()
    for _ in range(200):
        wakes.put(time.perf_counter())
        compute(0.002)
    wakes.put(None)
    thread.join()
    delays.sort()
    print(
        f"woken while the main thread computes: p50 {delays[100] * 1e6:.0f} us,"
        f" p90 {delays[180] * 1e6:.0f} us, max {delays[-1] * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
