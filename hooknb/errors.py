"""hooknb's exceptions: one tree, rooted at :class:`HookNBError`.

::

    HookNBError
    ├── HubRequestError          the hub refused a request or could not be reached (.status)
    ├── ActionFailed             a step could not subscribe, or its call failed (.action)
    ├── ActionTimedOut           a step's timeout passed (.action, .timeout)
    ├── RunTerminated            a Terminate action (or run.terminate()) ended the run
    ├── TriggerSkipped           a trigger's conditions were false: no run (.workflow, .reason)
    ├── DefinitionError          (also a ValueError) a Logic Apps definition that cannot run
    └── ExpressionError          (also a ValueError) a WDL expression that cannot be evaluated

Every module raises these from here, so ``except hooknb.HookNBError`` catches anything hooknb
itself decided to refuse. Server-side refusals are HTTP answers (``HubError``, a tornado
``HTTPError``), never exceptions a user sees.
"""

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


class TriggerSkipped(HookNBError):
    """A manual start (or a Recurrence tick) whose trigger conditions were false: as Logic Apps
    does, no run starts and the trigger history records the event Skipped."""

    def __init__(self, workflow: str, reason: str) -> None:
        super().__init__(f"the trigger of workflow {workflow!r} was skipped: {reason}")
        self.workflow = workflow
        self.reason = reason


class RunTerminated(HookNBError):
    """Raised by :meth:`Run.terminate` (Logic Apps' Terminate action): ends the run at once
    with ``status`` (Succeeded, Failed or Cancelled) and, for Failed, ``code``/``message``."""

    def __init__(
        self,
        status: str,
        code: str | None = None,
        message: str | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        detail = ": ".join(str(p) for p in (code, message) if p not in (None, ""))
        # ``reason`` replaces the wording for runs that end by themselves (no Terminate step).
        super().__init__(
            reason or f"the run was terminated ({status}){': ' + detail if detail else ''}"
        )
        self.status = status
        self.code = code
        self.message = message


class DefinitionError(HookNBError, ValueError):
    """A definition that cannot be read or run; the message says where.

    Attributes:
        message: what is wrong, without the location.
        location: a dotted path such as ``actions.Scope_1.actions.Foo.type`` (or ``None``).
        line, column: 1-based position in the text of a syntax error, or the line the field at
            ``location`` is written on (then ``column`` is ``None``); ``None`` when not known.
        source: the file's name when the text came from a file (or ``None``).

    Shown as ``line 4 column 9: <message>``, ``line 4: <location>: <message>`` or
    ``<location>: <message>``, preceded by the file's name when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.line = line
        self.column = column
        self.source = source
        if line is not None:
            where = f"line {line}" if column is None else f"line {line} column {column}"
            text = f"{where}: {location}: {message}" if location else f"{where}: {message}"
            if source:
                text = f"{source}, {text}"
        elif location:
            text = f"{location}: {message}"
        else:
            text = message
        super().__init__(text)


class ExpressionError(HookNBError, ValueError):
    """Any failure to parse or evaluate a WDL expression.

    Attributes:
        message: the bare message, without location.
        position: 0-based character offset into ``expression`` (or ``None``).
        expression: the whole string value being evaluated (or ``None``).
        path: where the string sits inside a template given to
            ``evaluate_template`` (keys and indexes), empty otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        expression: str | None = None,
        path: tuple[str | int, ...] = (),
    ) -> None:
        self.message = message
        self.position = position
        self.expression = expression
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.expression is not None:
            if self.position is not None:
                text += (
                    f" (at position {self.position} of {_excerpt(self.expression, self.position)})"
                )
            else:
                text += f" (in {_excerpt(self.expression, 0)})"
        if self.path:
            text += f" [at {format_path(self.path)}]"
        return text

    def with_path(self, path: tuple[str | int, ...]) -> ExpressionError:
        """Return a copy that also records where the string sat in a template."""
        return ExpressionError(
            self.message, position=self.position, expression=self.expression, path=path
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: teach pickle (multiprocessing, kernels) to rebuild it.
        return (_rebuild_error, (self.message, self.position, self.expression, self.path))


def _rebuild_error(
    message: str, position: int | None, expression: str | None, path: tuple[str | int, ...]
) -> ExpressionError:
    return ExpressionError(message, position=position, expression=expression, path=path)


def format_path(path: tuple[str | int, ...]) -> str:
    """Render a template path as ``$.inputs.subscribe.body['hub.callback'][0]``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _excerpt(expression: str, position: int, width: int = 80) -> str:
    # Long templates would drown the message; show a window around the position.
    if len(expression) <= width:
        return repr(expression)
    start = max(0, min(position - width // 2, len(expression) - width))
    piece = expression[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(expression) else ""
    return repr(prefix + piece + suffix)
