"""What the hub applies to a workflow's trigger events before any run exists: trigger conditions,
``splitOn`` and concurrency (Logic Apps applies them in the trigger, not in the run).

* Conditions (https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers,
  "Trigger conditions"): every expression must be true, or no run starts and the trigger
  history records the event Skipped.
* ``splitOn`` ("Split on" / debatching): the expression gives an array; one run starts per item,
  the item being that run's trigger body (at most :data:`MAX_SPLIT_ITEMS`).
* Concurrency (``runtimeConfiguration.concurrency``, ``operationOptions: SingleInstance``;
  https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers#change-trigger-concurrency):
  at most ``runs`` runs are under way at once; the others wait to start, in order, at most
  ``maximumWaitingRuns`` of them; past that the trigger answers 429.

The kernel (or the definitions worker's kernel side) sends these settings when a workflow is
defined; the hub keeps them with the workflow and applies them to every trigger callback and
manual start, whichever process runs the workflow: so the limit holds across kernels and the
server's worker, and across restarts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import jsonsafe
from ..errors import ExpressionError
from ..wdl import Context, evaluate, parse
from ..wdl.content import envelope, is_json_media, kept_as_content
from .http_errors import HubError
from .rows import InboundRequest

#: Logic Apps' limit on the items splitOn makes runs of ("SplitOn items": 100,000).
MAX_SPLIT_ITEMS = 100_000
#: Runs waiting to start when ``runs`` is set without ``maximumWaitingRuns``.
DEFAULT_WAITING_RUNS = 100
# What a trigger body is parsed at most for conditions and splitOn (as the kernel does).
_MAX_PARSED_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class TriggerSettings:
    """A workflow's trigger settings, as the hub keeps them (``workflows.settings``)."""

    #: The trigger's name and type (None: the workflow has no trigger).
    trigger: str | None = None
    kind: str | None = None
    conditions: tuple[str, ...] = ()
    split_on: str | None = None
    #: Runs under way at once (None: no limit), and runs waiting to start beyond it.
    runs: int | None = None
    maximum_waiting_runs: int | None = None
    #: Workflow parameter values the expressions may read.
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def limited(self) -> bool:
        return self.runs is not None

    @property
    def waiting_limit(self) -> int:
        return self.maximum_waiting_runs or DEFAULT_WAITING_RUNS

    @property
    def evaluates(self) -> bool:
        """Whether a trigger event needs evaluating before runs are made."""
        return bool(self.conditions or self.split_on)

    @classmethod
    def from_json(cls, value: Any) -> TriggerSettings:
        """Checked settings from a request (HubError 400 naming what is wrong)."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise HubError(400, "settings are an object")
        unknown = set(value) - {
            "trigger",
            "kind",
            "conditions",
            "splitOn",
            "runs",
            "maximumWaitingRuns",
            "parameters",
        }
        if unknown:
            raise HubError(400, f"unknown setting {sorted(unknown)[0]!r}")
        for key in ("trigger", "kind", "splitOn"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise HubError(400, f"'{key}' must be a string")
        conditions = value.get("conditions") or []
        if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
            raise HubError(400, "'conditions' must be a list of expressions")
        for text in [*conditions, *([value["splitOn"]] if value.get("splitOn") else [])]:
            try:
                parse(text)
            except ExpressionError as exc:
                raise HubError(400, f"{text!r} is not a valid expression: {exc}") from None
        bounds = {"runs": (1, 100), "maximumWaitingRuns": (1, 200)}
        for key, (low, high) in bounds.items():
            number = value.get(key)
            if number is not None and (
                isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high
            ):
                raise HubError(400, f"'{key}' must be a whole number from {low} to {high}")
        parameters = value.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise HubError(400, "'parameters' must be an object")
        return cls(
            trigger=value.get("trigger"),
            kind=value.get("kind"),
            conditions=tuple(conditions),
            split_on=value.get("splitOn"),
            runs=value.get("runs"),
            maximum_waiting_runs=value.get("maximumWaitingRuns"),
            parameters=dict(parameters),
        )

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"trigger": self.trigger, "kind": self.kind}
        if self.conditions:
            value["conditions"] = list(self.conditions)
        if self.split_on:
            value["splitOn"] = self.split_on
        if self.runs is not None:
            value["runs"] = self.runs
        if self.maximum_waiting_runs is not None:
            value["maximumWaitingRuns"] = self.maximum_waiting_runs
        if self.parameters:
            value["parameters"] = self.parameters
        return value


@dataclass(frozen=True)
class Decision:
    """What a trigger event becomes: ``Fired`` with one trigger body per run to start (None:
    the request's own body), ``Skipped`` or ``Failed`` with the reason."""

    status: str
    bodies: list[bytes | None] = field(default_factory=lambda: [None])
    reason: str | None = None


def trigger_body(request: InboundRequest) -> Any:
    """The trigger body as expressions see it: JSON parsed, text as text, other content as
    Logic Apps' ``$content`` object (as the kernel's runs see it)."""
    raw = request.body
    if not raw:
        return None
    if is_json_media(request.content_type):
        try:
            return jsonsafe.loads(raw.decode("utf-8"), max_chars=_MAX_PARSED_CHARS)
        except (ValueError, UnicodeDecodeError):
            pass
    if kept_as_content(request.content_type):
        return envelope(raw, request.content_type)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return envelope(raw, request.content_type or "application/octet-stream")


def decide(settings: TriggerSettings, workflow: str, request: InboundRequest) -> Decision:
    """Apply the trigger's conditions and splitOn to one event (bounded: each expression is an
    ordinary WDL evaluation)."""
    if not settings.evaluates:
        return Decision("Fired")
    headers: dict[str, str] = {}
    for name, value in request.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    outputs = {"headers": headers, "body": trigger_body(request), "queries": request.queries}
    context = Context(
        trigger={
            "name": settings.trigger or "manual",
            "outputs": outputs,
            "startTime": datetime.fromtimestamp(request.received, UTC).isoformat(),
        },
        parameters=settings.parameters,
        workflow={"name": workflow, "id": workflow, "type": "hooknb/workflow"},
    )
    for condition in settings.conditions:
        try:
            value = evaluate(condition, context)
        except ExpressionError as exc:
            return Decision("Failed", [], f"the trigger condition {condition!r} failed: {exc}")
        if value is not True:
            return Decision("Skipped", [], f"the trigger condition {condition!r} is {value!r}")
    if not settings.split_on:
        return Decision("Fired")
    try:
        items = evaluate(settings.split_on, context)
    except ExpressionError as exc:
        return Decision("Failed", [], f"splitOn {settings.split_on!r} failed: {exc}")
    if not isinstance(items, list):
        return Decision(
            "Failed", [], f"splitOn {settings.split_on!r} must give an array, not {items!r:.80}"
        )
    if len(items) > MAX_SPLIT_ITEMS:
        return Decision(
            "Failed", [], f"splitOn gave {len(items):,} items, more than {MAX_SPLIT_ITEMS:,}"
        )
    if not items:
        return Decision("Skipped", [], f"splitOn {settings.split_on!r} gave no items")
    return Decision("Fired", [json.dumps(item, separators=(",", ":")).encode() for item in items])
