"""One step of a run, as recorded: :class:`Action`.

Its JSON form (:meth:`Action.to_json`) is what ``actions('<name>')`` returns in expressions;
:meth:`Action.to_report` is what run reports carry to the hub and views show: bounded in depth
and size, and without the inputs or outputs the step keeps secure (Logic Apps'
``runtimeConfiguration.secureData``).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from ..http_model.redaction import SECURED
from ..jsonsafe import truncated_marker
from .outputs import Outputs, jsonable

if TYPE_CHECKING:
    from ..wdl import Context

__all__ = [
    "REPORT_BODY_LIMIT",
    "SECURED",
    "Action",
    "ActionObjects",
    "Secure",
    "current_scope",
    "expression_scope",
    "iso_time",
    "secure_properties",
    "shown_part",
]

#: Bodies and values larger than this (in bytes of JSON) are left out of run reports.
REPORT_BODY_LIMIT = 64 * 1024

#: A step's secure parts: ``"inputs"``, ``"outputs"``, or both (an iterable of them).
Secure = Literal["inputs", "outputs"] | Iterable[Literal["inputs", "outputs"]]
_SECURE_PARTS = ("inputs", "outputs")


def secure_properties(secure: Secure | None) -> frozenset[str]:
    """The parts a step keeps secure, checked: ``"inputs"`` and/or ``"outputs"``."""
    if not secure:
        return frozenset()
    parts = [secure] if isinstance(secure, str) else list(secure)
    wrong = [p for p in parts if p not in _SECURE_PARTS]
    if wrong:
        raise ValueError(f"secure takes 'inputs' and/or 'outputs', not {wrong[0]!r}")
    return frozenset(parts)


# The Scope or If an action being recorded belongs to: set by the definition interpreter in
# each branch's task, read when an Action is created (so run.webhook() needs no extra arg).
current_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hooknb_scope", default=None
)


# What a definition run's expressions see beyond the run's own state: its variables, the items
# and indexes of the loops around the action being evaluated, and which repetition of an action
# inside a loop its plain name means there. A function that extends the run's Context, set by
# the definition interpreter in each loop iteration's task and applied by Run.context().
expression_scope: contextvars.ContextVar[Callable[[Context], Context] | None] = (
    contextvars.ContextVar("hooknb_expression_scope", default=None)
)


class ActionObjects(Mapping[str, Any]):
    """A run's actions as expressions read them (``actions('<name>')``): each action's object
    is made when it is read, not for every action at every evaluation (a loop's thousands of
    repetitions would make each evaluation cost as much as the whole run).

    ``repetitions`` are the suffixes of the loop iterations around the expression, outermost
    first (``"#2"``, ``"#2.0"``): there, ``Name`` means the current repetition ``Name#2.0`` of an
    action inside those loops. Names match exactly, then case-insensitively.
    """

    def __init__(self, actions: Mapping[str, Action], repetitions: tuple[str, ...] = ()) -> None:
        self._actions = actions
        self._repetitions = repetitions

    def _find(self, name: str) -> Action | None:
        for suffix in reversed(self._repetitions):
            found = self._actions.get(name + suffix)
            if found is not None:
                return found
        found = self._actions.get(name)
        if found is None:
            folded = name.casefold()
            for key, action in self._actions.items():
                if key.casefold() == folded:
                    return action
        return found

    def __getitem__(self, name: str) -> Any:
        action = self._find(name) if isinstance(name, str) else None
        if action is None:
            raise KeyError(name)
        return action.to_json(body_limit=None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._actions))

    def __len__(self) -> int:
        return len(self._actions)


def iso_time(timestamp: float | None) -> str | None:
    """A Unix time as Logic Apps writes times (``2026-01-02T03:04:05.678Z``); None for None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Action:
    """One step of a run, with what it received and produced."""

    name: str
    type: str
    status: str = "Running"
    inputs: Any = None
    outputs: Outputs | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    callback_url: str | None = None
    deadline: float | None = None
    wait_id: str | None = None
    subscription: Outputs | None = None
    #: What a step produced that is not an HTTP message: a Compose's value, a Python step's
    #: return value. ``outputs('<name>')`` in expressions and ``run.outputs(name)`` return it.
    value: Any = None
    #: The Scope or If this step is nested in (definition runs), else None.
    scope: str | None = field(default_factory=current_scope.get)
    #: Logic Apps' status code of the step (``ActionFailed``, ``ActionTimedOut``, ...).
    code: str | None = None
    #: The parts reports and views leave out (``"inputs"``, ``"outputs"``): secure data.
    secure: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Action:
        """A step as a run report shows it (:meth:`to_json`): for a run this process shows
        but does not run."""
        kind = str(value.get("type") or "")
        shown = value.get("outputs")
        is_message = kind in ("HttpWebhook", "Http") and isinstance(shown, Mapping)
        return cls(
            name=str(value.get("name")),
            type=kind,
            status=str(value.get("status") or "Running"),
            inputs=value.get("inputs"),
            outputs=Outputs.from_json(shown) if is_message else None,  # type: ignore[arg-type]
            value=None if is_message else shown,
            error=value.get("error"),
            started=_epoch(value.get("startTime")) or time.time(),
            ended=_epoch(value.get("endTime")),
            callback_url=value.get("callbackUrl"),
            deadline=value.get("deadline"),
            wait_id=value.get("wait"),
            scope=value.get("scope"),
            code=value.get("code"),
            secure=secure_properties(
                [p for p in value.get("secure") or () if p in _SECURE_PARTS]
                if isinstance(value.get("secure"), list)
                else ()
            ),
        )

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def to_json(self, *, body_limit: int | None = None) -> dict[str, Any]:
        """The action object as Logic Apps expressions see it (``actions('name')``): the real
        values, secure or not. With ``body_limit``, bodies and values larger than that (bytes
        of JSON) are replaced by a ``$truncated`` marker."""
        extra: dict[str, Any] = {}
        if self.scope is not None:
            extra["scope"] = self.scope
        if self.code is not None:
            extra["code"] = self.code
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "inputs": _bounded(jsonable(self.inputs), self.inputs, body_limit),
            "outputs": self._outputs_json(body_limit),
            "error": self.error,
            "startTime": iso_time(self.started),
            "endTime": iso_time(self.ended),
            "callbackUrl": self.callback_url,
            "deadline": self.deadline,
            "wait": self.wait_id,
            **extra,
        }

    def to_report(self, body_limit: int = REPORT_BODY_LIMIT) -> dict[str, Any]:
        """The step as run reports carry it to the hub and views show it: bodies, values and
        texts larger than ``body_limit`` cut, nothing deeper than ``jsonsafe.MAX_DEPTH``, and
        its secure parts replaced by :data:`SECURED` (with ``"secure"`` naming them)."""
        value = self.to_json(body_limit=body_limit)
        for part in self.secure:
            value[part] = SECURED
        if self.secure:
            value["secure"] = sorted(self.secure)
        if self.error is not None and len(self.error) > body_limit:
            value["error"] = self.error[:body_limit] + f"... ({len(self.error):,} characters)"
        return value

    def _outputs_json(self, body_limit: int | None) -> Any:
        if self.outputs is not None:
            if body_limit is not None and len(self.outputs.raw) > body_limit:
                # The marker without building the whole body's JSON first.
                outputs = replace(self.outputs, body=None).to_json()
                outputs["body"] = {"$truncated": True, "size": len(self.outputs.raw)}
                return outputs
            return self.outputs.to_json()
        if self.value is not None:
            return _bounded(jsonable(self.value), self.value, body_limit)
        return None


def shown_part(action: Action, part: Literal["inputs", "outputs"]) -> Any:
    """What views show of a step's ``inputs`` or ``outputs``: :data:`SECURED` for a secure
    part, else the value itself (an :class:`Outputs`, a step's value, the inputs)."""
    if part in action.secure:
        return SECURED
    if part == "inputs":
        return action.inputs
    return action.outputs if action.outputs is not None else action.value


def _bounded(shown: Any, original: Any, limit: int | None) -> Any:
    """``shown`` (a JSON-safe value) or, over ``limit`` bytes of JSON, a marker with the
    start of the original's text."""
    if limit is None or shown is None or isinstance(shown, bool | int | float):
        return shown
    if isinstance(shown, str):
        if len(shown) <= limit:
            return shown
        return truncated_marker(shown, 2000)
    text = json.dumps(shown)
    if len(text) <= limit:
        return shown
    return truncated_marker(text, 2000)


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
