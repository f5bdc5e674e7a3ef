"""A run's history, and how a kernel that adopts the run replays its code against it.

A run's function is ordinary Python, so after a kernel restart hooknb runs it again from the
start — *durable replay*, as DBOS, Temporal and Azure Durable Functions do it. Each step the
code asks for is looked up in the history the hub kept:

* a step that finished returns its recorded outputs at once and calls nothing again (no second
  subscribe, no second call of a ``run.step`` function);
* a webhook step that was waiting re-attaches to its wait (same callback URL);
* a step the history does not have runs as usual.

Steps are matched by name and occurrence (``"Approval"``, ``"Approval_2"`` in a loop). Each step
also records which step the same flow of code asked for just before it (``after``) and whether
it opened a concurrent branch (``first``: the first step of a task such as a branch of
``asyncio.gather`` or of a definition's parallel actions). That order depends only on the code,
not on timing, so when the code now asks for another step than the history holds at that
point — it was edited since the run started — the run fails with an error naming both, before
anything is called.

Code between steps runs again on replay; steps do not. So anything that must not happen twice
or must not change (a side effect, the time, a random number, your own HTTP call) belongs in a
step: ``await run.step("Now", lambda run: time.time())``.

Values are stored as JSON (tuples come back as lists; bytes and :class:`Outputs` are kept
exactly). A value that is not JSON data cannot be stored: its step runs again on replay.
"""

from __future__ import annotations

import base64
import contextvars
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import HookNBError
from ..protocol import StepHistory, WaitState
from .outputs import Outputs

__all__ = [
    "History",
    "RecordedStep",
    "ReplayMismatch",
    "StepPlace",
    "decode_value",
    "encode_value",
    "flow",
]

#: The last step the current flow of code asked for, and the task that asked: a task made
#: inside a run (a branch) copies it when it is created, so its first step knows where it
#: forked. Set per run by the engine.
flow: contextvars.ContextVar[tuple[str | None, object]] = contextvars.ContextVar(
    "hooknb_flow", default=(None, None)
)

_TAG = "$hooknb"


class ReplayMismatch(HookNBError):
    """The workflow's code asks for another step than the run's history holds at that point:
    it was changed since the run started. The run fails; nothing is called."""


@dataclass(frozen=True)
class StepPlace:
    """Where a step stands in its run: the nth step asked for, after which step of the same
    flow, and whether it opened a concurrent branch."""

    position: int
    after: str | None
    first: bool

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "after": self.after, "first": self.first}


@dataclass
class RecordedStep:
    """One step of a run's history, as the hub returns it."""

    name: str
    kind: str
    after: str | None
    first: bool
    position: int
    state: str  # "done" (its value is the outcome) or "running"
    value: str | None  # JSON text, decoded by the step kind that reads it
    wait: WaitState | None = None
    started: float | None = None
    #: When it ended the first time: a replayed step shows its own times, not the replay's.
    ended: float | None = None

    @classmethod
    def from_json(cls, step: StepHistory) -> RecordedStep:
        return cls(
            name=step["step"],
            kind=step["kind"],
            after=step.get("after"),
            first=bool(step.get("first")),
            position=int(step.get("position") or 0),
            state=step.get("state", "done"),
            value=step.get("value"),
            wait=step.get("wait"),
            started=step.get("started"),
            ended=step.get("ended"),
        )


@dataclass
class History:
    """The recorded steps of a run being replayed, and which of them the code asked for."""

    steps: dict[str, RecordedStep]
    asked: set[str] = field(default_factory=set)

    @classmethod
    def from_json(cls, steps: list[StepHistory]) -> History:
        recorded = [RecordedStep.from_json(step) for step in steps]
        return cls({step.name: step for step in recorded})

    def match(self, name: str, kind: str, place: StepPlace) -> RecordedStep | None:
        """The recorded step for what the code asks for now, or None for a new step.

        Raises:
            ReplayMismatch: the code asks for something else than the history holds here.
        """
        recorded = self.steps.get(name)
        if recorded is not None:
            if recorded.kind != kind:
                raise ReplayMismatch(
                    f"the code asks for step {name!r} as a {kind} step, but in this run's "
                    f"history {name!r} is a {recorded.kind} step: the workflow's code changed "
                    "since the run started"
                )
            if not place.first and not recorded.first and recorded.after != place.after:
                raise ReplayMismatch(
                    f"the code asks for step {name!r} after {_shown(place.after)}, but in this "
                    f"run's history {name!r} came after {_shown(recorded.after)}: the "
                    "workflow's code changed since the run started"
                )
            self.asked.add(name)
            return recorded
        if not place.first:
            for other in self.steps.values():
                if other.after == place.after and not other.first and other.name not in self.asked:
                    raise ReplayMismatch(
                        f"the code asks for step {name!r} after {_shown(place.after)}, but "
                        f"this run's history has step {other.name!r} ({other.kind}) there: the "
                        "workflow's code changed since the run started"
                    )
        return None


def _shown(name: str | None) -> str:
    return "the start" if name is None else repr(name)


# -- values ---------------------------------------------------------------------------------


class _NotStorable(Exception):
    pass


def encode_value(value: Any) -> str | None:
    """A step's value as JSON text for the history, or None if it is not JSON data."""
    try:
        return json.dumps(_encode(value, 0), allow_nan=False, separators=(",", ":"))
    except (_NotStorable, ValueError, RecursionError):
        return None


def _encode(value: Any, depth: int) -> Any:
    if depth > 200:
        raise _NotStorable
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotStorable
        return value
    if isinstance(value, bytes):
        return {_TAG: "bytes", "data": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Outputs):
        return {
            _TAG: "outputs",
            "headers": [
                [name.decode("latin-1"), val.decode("latin-1")] for name, val in value.headers.raw
            ],
            "raw": base64.b64encode(value.raw).decode("ascii"),
            "body": _encode(value.body, depth + 1),
            "queries": _encode(value.queries, depth + 1),
            "statusCode": value.status_code,
            "contentType": value.content_type,
            "method": value.method,
            "received": value.received,
        }
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise _NotStorable
        if _TAG in value:
            return {_TAG: "dict", "items": {k: _encode(v, depth + 1) for k, v in value.items()}}
        return {k: _encode(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item, depth + 1) for item in value]
    raise _NotStorable


def decode_value(text: str | None) -> Any:
    """A value stored by :func:`encode_value`."""
    return None if text is None else _decode(json.loads(text))


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag == "bytes":
        return base64.b64decode(value["data"])
    if tag == "outputs":
        return Outputs(
            headers=httpx.Headers([tuple(pair) for pair in value["headers"]]),
            body=_decode(value["body"]),
            queries=_decode(value["queries"]),
            status_code=value["statusCode"],
            raw=base64.b64decode(value["raw"]),
            content_type=value["contentType"],
            method=value["method"],
            received=value["received"],
        )
    if tag == "dict":
        return {k: _decode(v) for k, v in value["items"].items()}
    return {k: _decode(v) for k, v in value.items()}
