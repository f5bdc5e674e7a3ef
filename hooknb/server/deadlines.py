"""One scheduler for every wait's deadline: a heap and a single timer on the event loop.

A timer (or thread) per wait would cost memory per wait and make restarts slow; here 100,000
open waits are 100,000 small tuples. Entries are never removed early: when a wait ends before
its deadline, the entry stays and is ignored when it fires (the expiry is a conditional update
in the store, so a stale entry changes nothing).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable


class DeadlineScheduler:
    """Calls ``on_due(ids)`` with the ids whose deadlines (epoch seconds) have passed."""

    def __init__(self, on_due: Callable[[list[str]], None]) -> None:
        self._on_due = on_due
        self._heap: list[tuple[float, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def start(self, entries: Iterable[tuple[float, str]] = ()) -> None:
        """Load existing deadlines (e.g. after a restart) and arm the timer."""
        self._loop = asyncio.get_running_loop()
        self._heap = list(entries)
        heapq.heapify(self._heap)
        self._rearm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._armed_for = None

    def add(self, deadline: float, wait_id: str) -> None:
        heapq.heappush(self._heap, (deadline, wait_id))
        if self._armed_for is None or deadline < self._armed_for:
            self._rearm()

    def _rearm(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._armed_for = None
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
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[1])
        if due:
            self._on_due(due)
        self._rearm()
