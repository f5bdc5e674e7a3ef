"""Push channels: one per connected kernel, written to as soon as a delivery is committed.

Events go straight to the kernel's open stream from the code that committed them (no queue
and no extra turn of the event loop), so a resumed step's callback reaches the kernel in the
same loop iteration that answers the sender. Until the stream is ready, events wait in a list.
Each event is encoded once, as a server-sent event, when it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..jsonsafe import dumps_bytes

#: Takes the encoded events (server-sent-event text, UTF-8) to write on the stream.
Writer = Callable[[bytes], None]


class Channel:
    """One kernel's push channel."""

    def __init__(self, client: str) -> None:
        self.client = client
        self._sent: set[int] = set()
        self._pending: list[bytes] = []
        self._writer: Writer | None = None
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, event: dict[str, Any]) -> None:
        # The same delivery can be found both by the catch-up read at connect time and by the
        # live push of a commit that resolved just after; send it once per connection.
        seq = event["seq"]
        if self.closed or seq in self._sent:
            return
        self._sent.add(seq)
        # Deliveries carry their sequence number as the event id; notices have none.
        self._emit(b"id: %d\ndata: %s\n\n" % (seq, dumps_bytes(event)))

    def notify(self, event: dict[str, Any]) -> None:
        """Send an event that is not a delivery (no ``seq``, never acknowledged or resent):
        news a kernel may miss, such as a run report of a workflow it watches."""
        if self.closed:
            return
        self._emit(b"data: %s\n\n" % dumps_bytes(event))

    def _emit(self, text: bytes) -> None:
        if self._writer is None:
            self._pending.append(text)
        else:
            self._writer(text)

    def attach(self, writer: Writer) -> None:
        """Write through ``writer`` from now on, starting with what was held back."""
        self._writer = writer
        pending, self._pending = self._pending, []
        if pending:
            writer(b"".join(pending))

    def acked(self, seqs: Iterable[int]) -> None:
        self._sent.difference_update(seqs)

    def close(self) -> None:
        self._writer = None
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
