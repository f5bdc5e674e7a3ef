"""One scheduler for every wait's deadline: the earliest few in a heap, the rest in the store.

No thread or timer per wait, and memory that does not grow with the number of open waits: the
heap holds at most about ``2 * window`` entries, the earliest deadlines; the store's index of
open waits by ``(deadline, id)`` holds all of them, and the next ``window`` are read from it
when the heap runs out. A restart reads one window, not every open wait.

The invariant: every open wait whose key ``(deadline, id)`` sorts at or before ``horizon`` is
in the heap (unless everything is held: ``complete``). A deadline added after it is stored
(effects are applied after the commit) is pushed only when it falls within the horizon;
otherwise the store has it and a later read finds it. Entries are never removed early: when a
wait ends before its deadline, its entry stays and is ignored when it fires (the expiry is a
conditional update in the store, so a stale or repeated entry changes nothing). When pushes
make the heap hold more than ``2 * window``, it keeps the earliest ``window`` and moves the
horizon back to the last of them: the dropped ones are in the store (or ended).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: A deadline's key: (epoch seconds, wait id). Ids break ties, so reading on from a key is exact.
Key = tuple[float, str]
#: ``load(after, limit)``: up to ``limit`` keys of open waits sorting after ``after``, ascending.
Loader = Callable[[Key, int], list[Key]]

DEFAULT_WINDOW = 1024
_BEFORE_ALL: Key = (-math.inf, "")


class DeadlineScheduler:
    """Calls ``on_due(ids)`` with the ids whose deadlines (epoch seconds) have passed.

    ``load`` reads keys from the store; without it (tests, a store-less use) every deadline
    added is held in memory. ``on_due`` may return an awaitable (the write that expires the
    waits): after a full window of due waits at once (a restart after a long stop), the next
    ones are taken only once it is done, so that a backlog is expired a window at a time
    instead of being read into memory and queued all at once.
    """

    def __init__(
        self,
        on_due: Callable[[list[str]], Awaitable[Any] | None],
        load: Loader | None = None,
        *,
        window: int | None = None,
    ) -> None:
        window = DEFAULT_WINDOW if window is None else window
        if window < 1:
            raise ValueError("window must be at least 1")
        self._on_due = on_due
        self._load = load
        self._window = window
        self._heap: list[Key] = []
        self._horizon: Key = _BEFORE_ALL
        self._complete = load is None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy: Awaitable[Any] | None = None
        #: Counters for benchmarks and the status of a big store (plain numbers).
        self.loads = 0
        self.loaded = 0
        self.load_seconds = 0.0
        self.max_load_seconds = 0.0
        self.trims = 0

    def __len__(self) -> int:
        """Entries held in memory (not the number of open waits)."""
        return len(self._heap)

    @property
    def complete(self) -> bool:
        """Whether every open wait's deadline is held (nothing more to read from the store)."""
        return self._complete

    def stats(self) -> dict[str, Any]:
        return {
            "held": len(self._heap),
            "complete": self._complete,
            "window": self._window,
            "loads": self.loads,
            "loaded": self.loaded,
            "load_ms_total": round(self.load_seconds * 1000, 3),
            "load_ms_max": round(self.max_load_seconds * 1000, 3),
            "trims": self.trims,
        }

    def start(self) -> None:
        """Read the earliest deadlines (e.g. after a restart) and arm the timer."""
        self._loop = asyncio.get_running_loop()
        self._heap = []
        self._horizon = _BEFORE_ALL
        self._complete = self._load is None
        self._refill()
        self._rearm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._armed_for = None
        self._loop = None

    def add(self, deadline: float, wait_id: str) -> None:
        """A wait's deadline, once the wait is stored."""
        key = (deadline, wait_id)
        if not self._complete and key > self._horizon:
            return  # beyond what is held: the store has it, a later read finds it
        heapq.heappush(self._heap, key)
        if self._load is not None and len(self._heap) > 2 * self._window:
            self._trim()
        if self._busy is None and (self._armed_for is None or deadline < self._armed_for):
            self._rearm()

    # -- internals -------------------------------------------------------------------------

    def _refill(self) -> None:
        """Read the next window of keys after the horizon (the heap has run out)."""
        if self._complete or self._load is None:
            return
        began = time.perf_counter()
        keys = self._load(self._horizon, self._window)
        took = time.perf_counter() - began
        self.loads += 1
        self.loaded += len(keys)
        self.load_seconds += took
        self.max_load_seconds = max(self.max_load_seconds, took)
        if len(keys) < self._window:
            self._complete = True
        else:
            self._horizon = keys[-1]
        for key in keys:
            heapq.heappush(self._heap, key)

    def _trim(self) -> None:
        """Keep the earliest ``window`` entries; the rest are in the store (or ended)."""
        self._heap.sort()  # a sorted list is a heap
        self._horizon = self._heap[self._window - 1]
        del self._heap[self._window :]
        self._complete = False
        self.trims += 1

    def _rearm(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._armed_for = None
        if not self._heap:
            self._refill()
        if not self._heap:
            return
        deadline = self._heap[0][0]
        delay = max(0.0, deadline - time.time())
        self._armed_for = deadline
        self._timer = self._loop.call_at(self._loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = None
        now = time.time()
        due: list[str] = []
        while len(due) < self._window:
            if not self._heap:
                self._refill()
                if not self._heap:
                    break
            if self._heap[0][0] > now:
                break
            due.append(heapq.heappop(self._heap)[1])
        pending = self._on_due(due) if due else None
        if len(due) >= self._window and pending is not None:
            # A backlog: the next window once this one is written.
            self._busy = future = asyncio.ensure_future(pending)
            future.add_done_callback(self._done)
            return
        self._rearm()

    def _done(self, _future: asyncio.Future[Any]) -> None:
        self._busy = None
        self._rearm()
