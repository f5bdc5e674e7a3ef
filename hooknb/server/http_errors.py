"""The hub's refusals: HTTP errors that the API answers as ``{"error": message, ...}``."""

from __future__ import annotations

from typing import Any

from tornado import web


class HubError(web.HTTPError):
    """A request the hub cannot honour: answered with ``status_code`` and a JSON body
    ``{"error": message, **extra}``. Raised by writer ops and handlers alike; tornado turns it
    into the answer (no traceback, no log line: a refusal is not a server fault)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(status)
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        return self.status_code

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class NotFound(HubError):
    """No such workflow, run, wait or callback (404); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)
