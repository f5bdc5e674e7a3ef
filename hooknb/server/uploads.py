"""How much of the outside world's callback bodies the server holds at once.

The callback route is public: anyone who has a callback URL (or who just connects) can send a
body. Each body is buffered whole before it is stored, so without a bound 40 connections of
15 MiB each cost 600 MiB of memory (more, with copies), and glibc keeps much of it afterwards.
:class:`UploadGate` admits a body only while the bodies being received, all requests together,
fit in ``max_buffered`` bytes, and only ``per_url`` large bodies at a time per callback URL;
the rest are refused with ``503`` and ``Retry-After`` (a sender's retry policy waits and tries
again, as it does for any busy server). Where ``Content-Length`` tells the size, the decision is
made before the body is read; a chunked body is counted as it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bodies up to this size do not count against the per-URL bound (100 racing small callbacks
#: to one URL are normal); they still count against the byte budget.
SMALL_BODY = 64 * 1024
#: What a refused sender is told to wait, in seconds.
RETRY_AFTER_SECONDS = 2


@dataclass
class Ticket:
    """One request's share of the gate: the bytes it holds and whether it is a large upload."""

    gate: UploadGate
    url: str
    reserved: int = 0
    large: bool = False
    released: bool = field(default=False, repr=False)

    def grow(self, size: int) -> str | None:
        """Account for a body now known to be ``size`` bytes; a refusal reason, or None."""
        if self.released or size <= self.reserved:
            return None
        if not self.large and size > SMALL_BODY:
            reason = self.gate._admit_large(self.url)
            if reason is not None:
                return reason
            self.large = True
        extra = size - self.reserved
        if self.gate.buffered + extra > self.gate.max_buffered:
            return (
                f"the server is receiving {self.gate.max_buffered:,} bytes of callback bodies "
                "already; try again shortly"
            )
        self.gate.buffered += extra
        self.reserved = size
        return None

    def release(self) -> None:
        """Give back what this request held (once; later calls do nothing)."""
        if self.released:
            return
        self.released = True
        self.gate.buffered -= self.reserved
        self.reserved = 0
        if self.large:
            count = self.gate.uploads[self.url] - 1
            if count:
                self.gate.uploads[self.url] = count
            else:
                del self.gate.uploads[self.url]


class UploadGate:
    """The byte budget for callback bodies being received, and the per-URL upload bound.

    Event-loop thread only (no locks): handlers call it from ``prepare`` and
    ``data_received``, and release in ``on_finish`` / ``on_connection_close``.
    """

    def __init__(self, max_buffered: int, per_url: int) -> None:
        self.max_buffered = max_buffered
        self.per_url = per_url
        self.buffered = 0
        self.uploads: dict[str, int] = {}

    def ticket(self, url: str) -> Ticket:
        """A request's ticket, holding nothing yet."""
        return Ticket(self, url)

    def _admit_large(self, url: str) -> str | None:
        count = self.uploads.get(url, 0)
        if count >= self.per_url:
            return f"{self.per_url} uploads to this callback URL are under way; try again shortly"
        self.uploads[url] = count + 1
        return None

    def status(self) -> dict[str, int]:
        """What the gate holds now (for ``api/status`` and tests)."""
        return {
            "bufferedBytes": self.buffered,
            "maxBufferedBytes": self.max_buffered,
            "largeUploads": sum(self.uploads.values()),
        }
