"""The parts of a workflow definition and the schema's names.

:class:`Parameter`, :class:`Trigger` and :class:`Step` are what a :class:`Definition` is made of
(:mod:`.model`); :class:`WebhookDefinition` is a lone HttpWebhook trigger or action
(:func:`~.reader.load_webhook`). The constants name what the 2016-06-01 workflow definition
schema allows and what hooknb runs. Everything here is data: checking a document is
:mod:`.validation`'s job.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import DefinitionError
from ...http_model.request import HTTP_REQUEST_KEYS as HTTP_REQUEST_KEYS
from .recurrence import Recurrence

SCHEMA_URL = (
    "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/"
    "workflowdefinition.json#"
)
CONTENT_VERSION = "1.0.0.0"
RUN_AFTER_STATUSES = ("Succeeded", "Failed", "Skipped", "TimedOut")
TRIGGER_TYPES = ("HttpWebhook", "Request", "Recurrence")
ACTION_TYPES = (
    "AppendToArrayVariable",
    "AppendToStringVariable",
    "Compose",
    "DecrementVariable",
    "Foreach",
    "Http",
    "HttpWebhook",
    "If",
    "IncrementVariable",
    "InitializeVariable",
    "Join",
    "ParseJson",
    "Query",
    "Response",
    "Scope",
    "Select",
    "SetVariable",
    "Switch",
    "Table",
    "Terminate",
    "Until",
    "Wait",
)
#: Actions that hold other actions, and the branches they hold them in.
CONTAINER_TYPES = ("Scope", "If", "Foreach", "Until", "Switch")
#: Logic Apps' variable types (InitializeVariable ``type``).
VARIABLE_TYPES = ("Array", "Boolean", "Float", "Integer", "Object", "String")
#: The pseudo-type of a Python step added to a definition-backed workflow. Never exported.
PYTHON = "Python"
#: Logic Apps' limit on nesting Scope/If/... inside each other.
MAX_NESTING = 8
MAX_NAME_LENGTH = 80
#: The parts of a step that ``runtimeConfiguration.secureData`` may keep secure.
_SECURE_PARTS: tuple[Literal["inputs", "outputs"], ...] = ("inputs", "outputs")

# Every type the 2016-06-01 schema knows, to tell "not supported here" from "no such type".
_LOGIC_APPS_TYPES = (  # noqa: SIM905 - a word list reads better than 42 quoted lines
    "ApiConnection ApiConnectionWebhook ApiManagement AppendToArrayVariable "
    "AppendToStringVariable Batch Compose DecrementVariable Expression FlatFileDecoding "
    "FlatFileEncoding Foreach Function Http HttpWebhook If IncrementVariable InitializeVariable "
    "IntegrationAccountArtifactLookup Join Liquid ParseJson Query Recurrence Request Response "
    "Scope Select SendToBatch SetVariable SlidingWindow Switch Table Terminate Until Wait "
    "Workflow XmlValidation Xslt Manual ServiceProvider JavaScriptCode"
).split()

_TOP_KEYS = (
    "$schema",
    "contentVersion",
    "parameters",
    "triggers",
    "actions",
    "outputs",
    "description",
    "metadata",
    "staticResults",
)
_TRIGGER_KEYS = (
    "type",
    "kind",
    "inputs",
    "recurrence",
    "conditions",
    "splitOn",
    "splitOnConfiguration",
    "correlation",
    "runtimeConfiguration",
    "operationOptions",
    "limit",
    "runAfter",
    "metadata",
    "description",
    "trackedProperties",
)
_ACTION_KEYS = (
    "type",
    "kind",
    "inputs",
    "runAfter",
    "limit",
    "operationOptions",
    "runtimeConfiguration",
    "trackedProperties",
    "metadata",
    "description",
    "actions",
    "else",
    "expression",
    "foreach",
    "cases",
    "default",
)
_PARAMETER_KEYS = ("type", "defaultValue", "allowedValues", "metadata", "description")
_PARAMETER_TYPES = (
    "Array",
    "Bool",
    "Float",
    "Int",
    "Object",
    "SecureObject",
    "SecureString",
    "String",
)
_RECURRENCE_KEYS = (
    "frequency",
    "interval",
    "startTime",
    "endTime",
    "count",
    "timeZone",
    "schedule",
)
FREQUENCIES = ("Second", "Minute", "Hour", "Day", "Week", "Month", "Year")
_TERMINATE_STATUSES = ("Succeeded", "Failed", "Cancelled")

_MISSING: Any = object()


@dataclass
class Parameter:
    """A declared workflow parameter (``parameters.<name>`` of the definition)."""

    name: str
    type: str
    default: Any = _MISSING
    allowed_values: list[Any] | None = None
    description: str | None = None
    metadata: Any = None

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    @property
    def secure(self) -> bool:
        return self.type.startswith("Secure")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.has_default:
            out["defaultValue"] = copy.deepcopy(self.default)
        if self.allowed_values is not None:
            out["allowedValues"] = copy.deepcopy(self.allowed_values)
        if self.description is not None:
            out["description"] = self.description
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass
class Trigger:
    """One trigger of a definition. ``raw`` is its JSON (documented key spelling)."""

    name: str
    type: str
    raw: dict[str, Any]
    recurrence: Recurrence | None = None

    @property
    def inputs(self) -> dict[str, Any]:
        value = self.raw.get("inputs")
        return value if isinstance(value, dict) else {}

    @property
    def include_authorization_headers(self) -> bool:
        """``operationOptions: IncludeAuthorizationHeadersInOutputs``: the callbacks'
        credential headers are kept in the trigger outputs."""
        return "includeauthorizationheadersinoutputs" in _options(self.raw)

    @property
    def secure(self) -> frozenset[str]:
        """``runtimeConfiguration.secureData.properties`` of an HttpWebhook trigger: ``inputs``
        (its subscribe and unsubscribe requests) and ``outputs`` (the subscribe responses and
        the callbacks it receives) hidden in run history views, as Logic Apps does."""
        return _secure_data(self.raw)

    @property
    def conditions(self) -> list[str]:
        """The trigger's condition expressions (all must be true for a run to proceed)."""
        return [c["expression"] for c in self.raw.get("conditions") or []]

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)


@dataclass
class Step:
    """One action of a definition (or a Python step added to one).

    ``raw`` is the action's JSON without its nested ``actions`` (Scope, If, Foreach, Until),
    an If's ``else`` and a Switch's ``cases`` and ``default``; those are :attr:`actions`,
    :attr:`else_actions` (an If's else, a Switch's default) and :attr:`cases`, as steps.
    """

    name: str
    type: str
    raw: dict[str, Any]
    location: str
    run_after: dict[str, list[str]] = field(default_factory=dict)
    actions: dict[str, Step] = field(default_factory=dict)
    else_actions: dict[str, Step] | None = None
    #: A Switch's cases: name -> (the case value, its actions).
    cases: dict[str, tuple[Any, dict[str, Step]]] = field(default_factory=dict)
    fn: Callable[..., Any] | None = None
    parent: str | None = None
    #: Which list of its parent it is in: ``"actions"``, ``"else"`` for an If's else or a
    #: Switch's default, or ``"case:<name>"`` for a Switch's case.
    branch: str = "actions"

    @property
    def inputs(self) -> Any:
        return self.raw.get("inputs")

    @property
    def timeout(self) -> Any:
        """``limit.timeout`` as written (an ISO 8601 duration, an expression, or None)."""
        limit = self.raw.get("limit")
        return limit.get("timeout") if isinstance(limit, dict) else None

    @property
    def operation_options(self) -> set[str]:
        return _options(self.raw)

    @property
    def include_authorization_headers(self) -> bool:
        """``operationOptions: IncludeAuthorizationHeadersInOutputs`` (an HttpWebhook action:
        the callback's credential headers are kept in its outputs)."""
        return "includeauthorizationheadersinoutputs" in self.operation_options

    @property
    def secure(self) -> frozenset[Literal["inputs", "outputs"]]:
        """``runtimeConfiguration.secureData.properties``: the parts (``inputs``,
        ``outputs``) kept out of run history views and reports, as Logic Apps does."""
        return _secure_data(self.raw)

    @property
    def expression(self) -> Any:
        return self.raw.get("expression")

    def children(self) -> Iterator[Step]:
        """Nested steps (both branches of an If), depth-first."""
        for step in self.actions.values():
            yield step
            yield from step.children()
        for _, actions in self.cases.values():
            for step in actions.values():
                yield step
                yield from step.children()
        for step in (self.else_actions or {}).values():
            yield step
            yield from step.children()

    def branches(self) -> Iterator[tuple[str, dict[str, Step]]]:
        """Each list of nested steps, with its branch name (see :attr:`branch`)."""
        if self.type in ("Scope", "If", "Foreach", "Until"):
            yield "actions", self.actions
        for name, (_, actions) in self.cases.items():
            yield f"case:{name}", actions
        if self.type in ("If", "Switch"):
            yield "else", self.else_actions or {}

    def to_json(self, *, python: bool = False) -> dict[str, Any]:
        """The action's WDL JSON. A Python step is an error unless ``python`` (internal use:
        it is then written as the pseudo-type ``Python``)."""
        if self.fn is not None and not python:
            raise DefinitionError("a Python step has no WDL form", location=self.location)
        out = copy.deepcopy(self.raw)
        out["runAfter"] = copy.deepcopy(self.run_after)
        if self.type in ("Scope", "If", "Foreach", "Until"):
            out["actions"] = {n: s.to_json(python=python) for n, s in self.actions.items()}
        branch = {n: s.to_json(python=python) for n, s in (self.else_actions or {}).items()}
        if self.type == "If":
            out["else"] = {"actions": branch}
        if self.type == "Switch":
            out["cases"] = {
                name: {
                    "case": copy.deepcopy(value),
                    "actions": {n: s.to_json(python=python) for n, s in actions.items()},
                }
                for name, (value, actions) in self.cases.items()
            }
            out["default"] = {"actions": branch}
        return _ordered(out, _ACTION_KEYS)


def _secure_data(raw: Mapping[str, Any]) -> frozenset[Literal["inputs", "outputs"]]:
    """A trigger's or action's ``runtimeConfiguration.secureData.properties``."""
    config = raw.get("runtimeConfiguration")
    if not isinstance(config, dict):
        return frozenset()
    secure = next((v for k, v in config.items() if k.lower() == "securedata"), None)
    properties = secure.get("properties") if isinstance(secure, dict) else None
    if not isinstance(properties, list):
        return frozenset()
    named = {p.lower() for p in properties if isinstance(p, str)}
    return frozenset(part for part in _SECURE_PARTS if part in named)


def _options(raw: Mapping[str, Any]) -> set[str]:
    text = raw.get("operationOptions")
    if not isinstance(text, str):
        return set()
    return {part.strip().lower() for part in text.split(",") if part.strip()}


#: What :func:`~.reader.load_webhook` reads: an HttpWebhook trigger or action.
WebhookKind = Literal["trigger", "action"]


@dataclass
class WebhookDefinition:
    """One HttpWebhook trigger or action on its own, checked (:func:`~.reader.load_webhook`).

    Attributes:
        kind: ``"trigger"`` or ``"action"``.
        subscribe: the HTTP request that subscribes (see :func:`webhook_requests`).
        unsubscribe: the HTTP request that unsubscribes, or ``None``.
        timeout: an action's ``limit.timeout``, an ISO 8601 duration (or ``None``).
        access_key_type: a trigger's ``inputs.accessKeyType``, ``"Primary"`` or ``"Secondary"``
            (or ``None``).
    """

    kind: WebhookKind
    subscribe: dict[str, Any]
    unsubscribe: dict[str, Any] | None
    timeout: str | None = None
    access_key_type: str | None = None


def webhook_requests(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The subscribe and unsubscribe requests of checked HttpWebhook ``inputs``.

    ``retryPolicy`` and ``authentication`` given beside ``subscribe`` apply to both requests
    unless a request has its own. An absent or empty ``unsubscribe`` is ``None``.
    """
    shared = {k: inputs[k] for k in ("retryPolicy", "authentication") if k in inputs}
    subscribe = {**shared, **inputs["subscribe"]}
    unsubscribe = inputs.get("unsubscribe") or None
    return subscribe, ({**shared, **unsubscribe} if unsubscribe else None)


def _ordered(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(order)}
    return dict(sorted(obj.items(), key=lambda kv: rank.get(kv[0], len(rank))))
