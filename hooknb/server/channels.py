"""Push channels: one per connected kernel, fed by the hub, drained by its event stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


class Channel:
    """One kernel's push channel: events queued here are written to its open stream."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._sent: set[int] = set()
        self.closed = False

    def send(self, event: dict[str, Any]) -> None:
        # The same delivery can be found both by the catch-up read at connect time and by the
        # live push of a commit that resolved just after; send it once per connection.
        seq = event["seq"]
        if self.closed or seq in self._sent:
            return
        self._sent.add(seq)
        self.queue.put_nowait(event)

    def acked(self, seqs: Iterable[int]) -> None:
        self._sent.difference_update(seqs)

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)
