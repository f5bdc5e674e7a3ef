"""Exceptions raised by the kernel-side API."""

from __future__ import annotations

from typing import Any


class HookNBError(Exception):
    """Base class of hooknb's errors."""


class HubRequestError(HookNBError):
    """The hub refused a request or could not be reached; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ActionFailed(HookNBError):
    """A webhook action could not subscribe (after its retry policy) or otherwise failed."""

    def __init__(self, action: str, message: str, details: Any = None) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.details = details


class ActionTimedOut(HookNBError):
    """A webhook action's timeout passed before its callback arrived.

    Raised at the ``await run.webhook(...)``; uncaught, the run ends ``TimedOut``.
    """

    def __init__(self, action: str, timeout: float | None = None) -> None:
        detail = f" after {timeout:g} s" if timeout is not None else ""
        super().__init__(f"action {action!r} timed out{detail} waiting for its callback")
        self.action = action
        self.timeout = timeout
