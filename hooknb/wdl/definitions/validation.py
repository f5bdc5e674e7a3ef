"""Validation: the checks Logic Apps makes when it saves a definition, and hooknb's own.

:class:`_Builder` checks one definition document and builds the parts of its
:class:`~.model.Definition`: property names matched case-insensitively and written back in their
documented spelling, known types only, ``runAfter`` within one scope and without cycles, unique
action names, at most :data:`~.parts.MAX_NESTING` levels, every expression parsed,
``parameters('name')`` declared, ``listCallbackUrl()`` only in HttpWebhook subscribe/unsubscribe
inputs. What hooknb accepts but does not apply becomes a note.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...errors import DefinitionError, ExpressionError
from .. import parse
from .._parser import Access, Call, Const
from ..durations import parse_duration
from .endpoints import is_arm_expression
from .parts import (
    _ACTION_KEYS,
    _LOGIC_APPS_TYPES,
    _PARAMETER_KEYS,
    _PARAMETER_TYPES,
    _RECURRENCE_KEYS,
    _TERMINATE_STATUSES,
    _TOP_KEYS,
    _TRIGGER_KEYS,
    ACTION_TYPES,
    CONTENT_VERSION,
    FREQUENCIES,
    HTTP_REQUEST_KEYS,
    MAX_NAME_LENGTH,
    MAX_NESTING,
    PYTHON,
    RUN_AFTER_STATUSES,
    SCHEMA_URL,
    TRIGGER_TYPES,
    VARIABLE_TYPES,
    Parameter,
    Step,
    Trigger,
)
from .recurrence import Recurrence

if TYPE_CHECKING:
    from .model import Definition


def _plain_json(value: Any, where: str) -> Any:
    """A deep copy of a JSON-shaped value, or DefinitionError naming the first non-JSON part."""
    stack: list[tuple[Any, str]] = [(value, where)]
    seen = 0
    while stack:
        item, path = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise DefinitionError("the definition is too large", location=where)
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise DefinitionError(
                        f"object keys must be strings, not {key!r}", location=path
                    )
                stack.append((sub, f"{path}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise DefinitionError(f"{item!r} is not a JSON value", location=path)
        elif not (item is None or isinstance(item, str | int | bool)):
            raise DefinitionError(f"{type(item).__name__} is not a JSON value", location=path)
    try:
        return json.loads(json.dumps(value))
    except RecursionError:
        raise DefinitionError("the definition is nested too deeply", location=where) from None


def _kind(value: Any) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class _PropertyError(DefinitionError):
    """A property that is unknown or given twice. ``location`` is its object (as
    :func:`~.reader.load` reports it) and ``key`` the property, so that a reader that knows
    where each key is written can point at the key's own line."""

    def __init__(self, message: str, *, location: str, key: str) -> None:
        super().__init__(message, location=location)
        self.key = key


def _canonical_keys(
    obj: dict[str, Any], known: tuple[str, ...], where: str, what: str
) -> dict[str, Any]:
    """``obj`` with known keys in their documented spelling; unknown keys are an error."""
    lookup = {k.lower(): k for k in known}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        canonical = lookup.get(key.lower()) if isinstance(key, str) else None
        if canonical is None:
            close = difflib.get_close_matches(str(key).lower(), list(lookup), n=1, cutoff=0.75)
            hint = f"; did you mean {lookup[close[0]]!r}?" if close else ""
            raise _PropertyError(
                f"unknown property {key!r} of {what}{hint} (known: {', '.join(known)})",
                location=where,
                key=str(key),
            )
        if canonical in out:
            raise _PropertyError(
                f"{canonical!r} is given twice (property names are case-insensitive)",
                location=where,
                key=key,
            )
        out[canonical] = value
    return out


def _canonical_type(value: Any, where: str, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or not value:
        raise DefinitionError(f'{what} needs a "type" (a string)', location=where)
    for name in allowed:
        if name.lower() == value.lower():
            return name
    known = next((t for t in _LOGIC_APPS_TYPES if t.lower() == value.lower()), None)
    if known is not None:
        raise DefinitionError(
            f"{what} type {known!r} is a Logic Apps type hooknb does not run "
            f"(it runs: {', '.join(allowed)})",
            location=where,
        )
    raise DefinitionError(
        f"unknown {what} type {value!r} (hooknb runs: {', '.join(allowed)})", location=where
    )


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise DefinitionError(f"expected an ISO 8601 date and time, got {value!r}", location=where)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DefinitionError(
            f"{value!r} is not an ISO 8601 date and time", location=where
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _is_dynamic(value: Any) -> bool:
    """A value only known later: a WDL expression or an ARM expression."""
    return isinstance(value, str) and (
        value.startswith("@") or "@{" in value or is_arm_expression(value)
    )


class _Builder:
    """Validates one definition document and builds its :class:`Definition`."""

    def __init__(self, python: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.python = dict(python or {})
        self.notes: list[str] = []
        self.names: dict[str, str] = {}  # action name -> location
        self.arm: dict[str, str] = {}
        self.trigger_type: str | None = None
        self.responses: list[str] = []
        self.split_on = False
        #: Declared variables: lowercased name -> (type, location).
        self.variables: dict[str, tuple[str, str]] = {}
        self.variable_uses: list[tuple[str, str, str]] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def build(
        self,
        doc: Any,
        values: Mapping[str, Any],
        *,
        into: Definition,
        lenient_values: bool = False,
    ) -> Definition:
        """Check ``doc`` with parameter ``values`` and fill ``into`` (a new, empty
        :class:`~.model.Definition`, which is returned).

        The caller makes the definition so that this module needs the class only for its type:
        :mod:`.model` edits a definition by building it again here.
        """
        if not isinstance(doc, dict):
            raise DefinitionError(f"a workflow definition is a JSON object, not {_kind(doc)}")
        doc = _plain_json(doc, "definition")
        if not doc:
            raise DefinitionError("the definition is an empty object")
        if any(isinstance(k, str) and k.lower() not in {t.lower() for t in _TOP_KEYS} for k in doc):
            self._explain_top_level(doc)
        top = _canonical_keys(doc, _TOP_KEYS, "definition", "a workflow definition")
        result = into
        schema = top.get("$schema", SCHEMA_URL)
        if not isinstance(schema, str):
            raise DefinitionError("must be a string", location="$schema")
        if "2016-06-01" not in schema:
            self.note(f"$schema {schema!r} is not the 2016-06-01 workflow definition schema")
        result.schema = SCHEMA_URL if "2016-06-01" in schema else schema
        version = top.get("contentVersion", CONTENT_VERSION)
        if not isinstance(version, str):
            raise DefinitionError("must be a string such as '1.0.0.0'", location="contentVersion")
        result.content_version = version
        if "description" in top:
            if not isinstance(top["description"], str):
                raise DefinitionError("must be a string", location="description")
            result.description = top["description"]
        result.metadata = top.get("metadata")
        result.static_results = top.get("staticResults")
        if result.static_results:
            self.note("staticResults are ignored: actions make real calls")

        result.parameters = self._parameters(top.get("parameters", {}))
        result.values = self._values(result.parameters, values, lenient=lenient_values)
        result.triggers = self._triggers(top.get("triggers", {}))
        actions = top.get("actions", {})
        if not isinstance(actions, dict):
            raise DefinitionError(f"must be an object, not {_kind(actions)}", location="actions")
        result.actions = self._actions(actions, "actions", depth=1, parent=None)
        self._check_variables()
        if self.responses and self.split_on:
            # "you can't use splitOn with a synchronous response pattern" (Logic Apps: a
            # Response answers the one request that started one run).
            raise DefinitionError(
                "a Response action cannot answer a trigger with splitOn (it starts many runs "
                "from one request)",
                location=self.names[self.responses[0]],
            )
        if self.responses and self.trigger_type != "Request":
            raise DefinitionError(
                "a Response action needs a Request trigger (it answers the request that "
                "started the run)",
                location=self.names[self.responses[0]],
            )
        outputs = top.get("outputs", {})
        if not isinstance(outputs, dict):
            raise DefinitionError(f"must be an object, not {_kind(outputs)}", location="outputs")
        for key, spec in outputs.items():
            where = f"outputs.{key}"
            if not isinstance(spec, dict):
                raise DefinitionError('an output is {"type": ..., "value": ...}', location=where)
            spec = _canonical_keys(
                spec, ("type", "value", "metadata", "description", "error"), where, "an output"
            )
            if "type" in spec:
                spec["type"] = _canonical_type(
                    spec["type"], f"{where}.type", _PARAMETER_TYPES, "output"
                )
            outputs[key] = spec
        result.outputs = outputs
        self._check_expressions(result)
        self._scan_arm(result)
        result.notes = self.notes
        result.arm_expressions = self.arm
        return result

    def _explain_top_level(self, doc: dict[str, Any]) -> None:
        lowered = {k.lower() for k in doc if isinstance(k, str)}
        if "type" in lowered and ("inputs" in lowered or "recurrence" in lowered):
            raise DefinitionError(
                "this looks like a single trigger or action, not a definition: wrap it as "
                '{"triggers": {"<name>": ...}} or {"actions": {"<name>": ...}}'
            )
        unknown = [k for k in doc if str(k).lower() not in {t.lower() for t in _TOP_KEYS}]
        if all(
            isinstance(doc[k], dict) and "type" in {str(x).lower() for x in doc[k]} for k in unknown
        ):
            raise DefinitionError(
                f"{', '.join(repr(k) for k in unknown)} look like actions or triggers, not "
                'definition properties: put them under "actions" or "triggers"',
            )

    # -- parameters --------------------------------------------------------------------

    def _parameters(self, value: Any) -> dict[str, Parameter]:
        if not isinstance(value, dict):
            raise DefinitionError(f"must be an object, not {_kind(value)}", location="parameters")
        out = {}
        for name, spec in value.items():
            where = f"parameters.{name}"
            if not isinstance(spec, dict):
                raise DefinitionError(
                    'a parameter is {"type": ..., "defaultValue": ...}', location=where
                )
            spec = _canonical_keys(spec, _PARAMETER_KEYS, where, "a parameter")
            kind = _canonical_type(spec.get("type"), f"{where}.type", _PARAMETER_TYPES, "parameter")
            param = Parameter(name, kind)
            if "defaultValue" in spec:
                param.default = spec["defaultValue"]
                if not is_arm_expression(param.default):
                    _check_value(param, param.default, f"{where}.defaultValue")
            allowed = spec.get("allowedValues")
            if allowed is not None and not isinstance(allowed, list):
                raise DefinitionError("must be an array", location=f"{where}.allowedValues")
            param.allowed_values = allowed
            if "description" in spec:
                param.description = spec["description"]
            param.metadata = spec.get("metadata")
            out[name] = param
        return out

    def _values(
        self, params: dict[str, Parameter], values: Mapping[str, Any], *, lenient: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, param in params.items():
            if name in values:
                value = values[name]
                _check_value(param, value, f"parameters.{name}")
                out[name] = value
            elif param.has_default:
                out[name] = copy.deepcopy(param.default)
            # A parameter without value or default only fails if an expression uses it.
        for name, value in values.items():
            if name not in params:
                out[name] = value
                if not lenient:
                    self.note(
                        f"parameter {name!r} is given a value but the definition does not "
                        "declare it (Logic Apps would refuse that; declare it to export)"
                    )
        return out

    # -- triggers ----------------------------------------------------------------------

    def _triggers(self, value: Any) -> dict[str, Trigger]:
        if not isinstance(value, dict):
            raise DefinitionError(f"must be an object, not {_kind(value)}", location="triggers")
        if len(value) > 1:
            raise DefinitionError(
                f"hooknb runs one trigger per workflow; this definition has {len(value)} "
                f"({', '.join(repr(k) for k in value)})",
                location="triggers",
            )
        out = {}
        for name, spec in value.items():
            where = f"triggers.{name}"
            self._check_name(name, where)
            out[name] = self._trigger(name, spec, where)
        return out

    def _trigger(self, name: str, spec: Any, where: str) -> Trigger:
        if not isinstance(spec, dict):
            raise DefinitionError(f"a trigger is an object, not {_kind(spec)}", location=where)
        spec = _canonical_keys(spec, _TRIGGER_KEYS, where, "a trigger")
        kind = _canonical_type(spec.get("type"), f"{where}.type", TRIGGER_TYPES, "trigger")
        spec["type"] = kind
        self.trigger_type = kind
        trigger = Trigger(name, kind, spec)
        if "runAfter" in spec:
            if spec["runAfter"] not in ({}, None):
                raise DefinitionError(
                    "a trigger cannot run after anything", location=f"{where}.runAfter"
                )
            self.note(f"{where}.runAfter is meaningless on a trigger and ignored")
        self._envelope(spec, where, trigger=True)
        conditions = spec.get("conditions")
        if conditions is not None and not (
            isinstance(conditions, list)
            and all(
                isinstance(c, dict) and isinstance(c.get("expression"), str) for c in conditions
            )
        ):
            raise DefinitionError(
                'must be a list of {"expression": "@..."} objects',
                location=f"{where}.conditions",
            )
        split_on = spec.get("splitOn")
        if split_on is not None and not (isinstance(split_on, str) and split_on.startswith("@")):
            raise DefinitionError(
                "splitOn is an expression that gives the array to start one run per item of, "
                "such as \"@triggerBody()?['items']\"",
                location=f"{where}.splitOn",
            )
        self.split_on = split_on is not None
        for key in ("splitOnConfiguration", "correlation"):
            if spec.get(key) is not None:
                self.note(f"{where}.{key} is ignored")
        if kind == "HttpWebhook":
            spec["inputs"] = self._webhook_inputs(
                spec.get("inputs"), f"{where}.inputs", trigger=True
            )
        elif kind == "Request":
            inputs = spec.get("inputs")
            if inputs is not None and not isinstance(inputs, dict):
                raise DefinitionError("must be an object", location=f"{where}.inputs")
            if isinstance(inputs, dict) and (inputs.get("method") or inputs.get("relativePath")):
                self.note(
                    f"{where}: method and relativePath are not enforced; runs start with "
                    ".start(...)"
                )
        else:
            trigger.recurrence = self._recurrence(spec.get("recurrence"), f"{where}.recurrence")
        return trigger

    def _recurrence(self, value: Any, where: str) -> Recurrence:
        if not isinstance(value, dict):
            raise DefinitionError(
                'a Recurrence trigger needs "recurrence": {"frequency": ..., "interval": ...}',
                location=where,
            )
        spec = _canonical_keys(value, _RECURRENCE_KEYS, where, "a recurrence")
        value.clear()
        value.update(spec)
        rec = Recurrence()
        problems = []
        frequency = spec.get("frequency")
        if _is_dynamic(frequency):
            problems.append(f"frequency is the expression {frequency!r}")
        else:
            rec.frequency = _canonical_type(
                frequency, f"{where}.frequency", FREQUENCIES, "frequency"
            )
            spec["frequency"] = rec.frequency
        interval = spec.get("interval", 1)
        if _is_dynamic(interval):
            problems.append(f"interval is the expression {interval!r}")
        else:
            if isinstance(interval, str) and interval.strip().isdigit():
                interval = int(interval)
            if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
                raise DefinitionError(
                    f"interval must be a whole number of at least 1, not {interval!r}",
                    location=f"{where}.interval",
                )
            rec.interval = interval
        for key, attr in (("startTime", "start"), ("endTime", "end")):
            if key in spec:
                if _is_dynamic(spec[key]):
                    problems.append(f"{key} is the expression {spec[key]!r}")
                else:
                    setattr(rec, attr, _parse_time(spec[key], f"{where}.{key}"))
        if "count" in spec:
            count = spec["count"]
            if isinstance(count, bool) or not isinstance(count, int):
                raise DefinitionError("must be a whole number", location=f"{where}.count")
            rec.count = count if count > 0 else None
        if spec.get("timeZone"):
            self.note(f"{where}.timeZone is not applied: times without an offset are UTC")
        if spec.get("schedule"):
            problems.append("schedule (hours, minutes, week days) is not supported")
        if problems:
            rec.problem = "; ".join(problems)
            self.note(f"{where}: {rec.problem}; the trigger cannot be enabled until it is fixed")
        return rec

    # -- actions -----------------------------------------------------------------------

    def _check_name(self, name: str, where: str) -> None:
        if not name or len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in name):
            raise DefinitionError(
                f"a name is 1-{MAX_NAME_LENGTH} printable characters, not {name!r}",
                location=where,
            )

    def _actions(
        self, value: Any, where: str, *, depth: int, parent: str | None, branch: str = "actions"
    ) -> dict[str, Step]:
        if not isinstance(value, dict):
            raise DefinitionError(f"must be an object, not {_kind(value)}", location=where)
        if depth > MAX_NESTING:
            raise DefinitionError(
                f"actions are nested more than {MAX_NESTING} levels deep (the Logic Apps limit)",
                location=where,
            )
        steps: dict[str, Step] = {}
        for name, spec in value.items():
            loc = f"{where}.{name}"
            self._check_name(name, loc)
            if name in self.names:
                raise DefinitionError(
                    f"there is already an action named {name!r} (at {self.names[name]}); "
                    "names are unique in the whole definition",
                    location=loc,
                )
            self.names[name] = loc
            steps[name] = self._action(name, spec, loc, depth=depth, parent=parent)
            steps[name].branch = branch
        self._check_run_after(steps, where)
        return steps

    def _action(self, name: str, spec: Any, where: str, *, depth: int, parent: str | None) -> Step:
        if not isinstance(spec, dict):
            raise DefinitionError(f"an action is an object, not {_kind(spec)}", location=where)
        spec = _canonical_keys(spec, _ACTION_KEYS, where, "an action")
        if spec.get("type") == PYTHON and name in self.python:
            step = Step(name, PYTHON, {"type": PYTHON}, where, fn=self.python[name], parent=parent)
            step.run_after = self._run_after(spec.get("runAfter"), f"{where}.runAfter")
            if "limit" in spec:
                step.raw["limit"] = spec["limit"]
                self._limit(spec["limit"], f"{where}.limit")
            return step
        kind = _canonical_type(spec.get("type"), f"{where}.type", ACTION_TYPES, "action")
        spec["type"] = kind
        run_after = self._run_after(spec.pop("runAfter", None), f"{where}.runAfter")
        for key, owners in _NESTED_KEYS.items():
            if key in spec and kind not in owners:
                raise DefinitionError(
                    f"only {' or '.join(owners)} actions have {key!r}", location=f"{where}.{key}"
                )
        self._envelope(spec, where)
        if "limit" in spec:
            self._limit(spec["limit"], f"{where}.limit", loop=kind == "Until")
        step = Step(name, kind, spec, where, run_after=run_after, parent=parent)
        inputs = spec.get("inputs")
        if kind == "HttpWebhook":
            spec["inputs"] = self._webhook_inputs(inputs, f"{where}.inputs", trigger=False)
        elif kind == "Http":
            spec["inputs"] = self._http_inputs(inputs, f"{where}.inputs")
        elif kind == "Compose":
            if "inputs" not in spec:
                raise DefinitionError('a Compose action needs "inputs"', location=where)
        elif kind == "Response":
            self.responses.append(name)
            spec["inputs"] = self._response_inputs(inputs, f"{where}.inputs")
        elif kind == "Wait":
            self._wait_inputs(inputs, f"{where}.inputs")
        elif kind == "Terminate":
            self._terminate_inputs(inputs, f"{where}.inputs")
        elif kind == "Scope":
            if "inputs" in spec:
                raise DefinitionError(
                    'a Scope\'s actions go in its "actions" property, not in "inputs"',
                    location=f"{where}.inputs",
                )
            step.actions = self._actions(
                spec.pop("actions", {}), f"{where}.actions", depth=depth + 1, parent=name
            )
        elif kind in ("Foreach", "Until"):
            self._loop(spec, where, kind)
            step.actions = self._actions(
                spec.pop("actions", {}), f"{where}.actions", depth=depth + 1, parent=name
            )
        elif kind == "Switch":
            self._switch(step, spec, where, depth)
        elif kind in _DATA_INPUTS:
            spec["inputs"] = self._data_inputs(kind, inputs, f"{where}.inputs")
        elif kind in _VARIABLE_ACTIONS:
            spec["inputs"] = self._variable_inputs(kind, inputs, f"{where}.inputs", parent)
        elif kind == "If":
            if "expression" not in spec:
                raise DefinitionError('an If action needs an "expression"', location=where)
            self._condition(spec["expression"], f"{where}.expression")
            step.actions = self._actions(
                spec.pop("actions", {}), f"{where}.actions", depth=depth + 1, parent=name
            )
            branch = spec.pop("else", None) or {}
            if not isinstance(branch, dict) or set(branch) - {"actions"}:
                raise DefinitionError('else is {"actions": {...}}', location=f"{where}.else")
            step.else_actions = self._actions(
                branch.get("actions", {}),
                f"{where}.else.actions",
                depth=depth + 1,
                parent=name,
                branch="else",
            )
        return step

    def _envelope(self, spec: dict[str, Any], where: str, *, trigger: bool = False) -> None:
        options = spec.get("operationOptions")
        if options is not None:
            if not isinstance(options, str):
                raise DefinitionError("must be a string", location=f"{where}.operationOptions")
            given = {o.strip().lower() for o in options.split(",") if o.strip()}
            honoured = given <= _HONOURED_OPTIONS.get(
                "trigger" if trigger else str(spec.get("type")), set()
            )
            if not honoured:
                self.note(f"{where}.operationOptions {options!r} is ignored")
        if spec.get("runtimeConfiguration") is not None:
            spec["runtimeConfiguration"] = self._runtime_configuration(
                spec["runtimeConfiguration"],
                f"{where}.runtimeConfiguration",
                "trigger" if trigger else spec.get("type"),
                trigger_type=spec.get("type") if trigger else None,
            )
        if spec.get("trackedProperties") is not None:
            self.note(f"{where}.trackedProperties are ignored")

    def _runtime_configuration(
        self, value: Any, where: str, kind: Any, *, trigger_type: Any = None
    ) -> dict[str, Any]:
        # kind: "trigger", or the action's type.
        """``runtimeConfiguration``: ``concurrency`` (a trigger's ``runs`` and
        ``maximumWaitingRuns``, a Foreach's ``repetitions``) is applied; the rest is a note.

        Limits from https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config:
        runs 1-100 (default unlimited here), waiting runs 1-200 (default 100 once ``runs`` is
        set), repetitions 1-50 (default 20).
        """
        if not isinstance(value, dict):
            raise DefinitionError(f"must be an object, not {_kind(value)}", location=where)
        spec = dict(value)
        key = next((k for k in spec if k.lower() == "concurrency"), None)
        secure = next((k for k in spec if k.lower() == "securedata"), None)
        if secure is not None:
            self._secure_data(spec[secure], f"{where}.secureData", trigger_type=trigger_type)
        for other in spec:
            if other not in (key, secure):
                self.note(f"{where}.{other} is ignored")
        if key is None:
            return spec
        concurrency = spec.pop(key)
        where = f"{where}.concurrency"
        if not isinstance(concurrency, dict):
            raise DefinitionError('is {"runs": 1, ...}', location=where)
        if kind == "Foreach":
            known: tuple[str, ...] = ("repetitions",)
        elif kind == "trigger":
            known = ("runs", "maximumWaitingRuns")
        else:
            self.note(f"{where} is ignored (only triggers and Foreach loops have concurrency)")
            spec["concurrency"] = concurrency
            return spec
        concurrency = _canonical_keys(concurrency, known, where, "concurrency")
        bounds = {"runs": (1, 100), "maximumWaitingRuns": (1, 200), "repetitions": (1, 50)}
        for name, number in concurrency.items():
            low, high = bounds[name]
            if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
                raise DefinitionError(
                    f"{name} is a whole number from {low} to {high} (the Logic Apps limits), "
                    f"not {number!r}",
                    location=f"{where}.{name}",
                )
        spec["concurrency"] = concurrency
        return spec

    def _secure_data(self, secure: Any, where: str, *, trigger_type: Any) -> None:
        """``secureData`` is honoured on actions (see :attr:`Step.secure`) and HttpWebhook
        triggers (:attr:`Trigger.secure`)."""
        properties = secure.get("properties") if isinstance(secure, dict) else None
        if not isinstance(properties, list) or not all(
            isinstance(p, str) and p.lower() in ("inputs", "outputs") for p in properties
        ):
            raise DefinitionError(
                'secureData is {"properties": ["inputs", "outputs"]} (either or both)',
                location=where,
            )
        if trigger_type is not None and str(trigger_type).lower() != "httpwebhook":
            self.note(
                f"{where} is honoured on HttpWebhook triggers only: hooknb shows this "
                "trigger's requests as received (credential headers masked)"
            )

    def _loop(self, spec: dict[str, Any], where: str, kind: str) -> None:
        if kind == "Foreach":
            if "foreach" not in spec:
                raise DefinitionError(
                    'a Foreach needs "foreach": an array or an expression such as '
                    "\"@triggerBody()?['items']\"",
                    location=where,
                )
            value = spec["foreach"]
            if not isinstance(value, list) and not (isinstance(value, str) and "@" in value):
                raise DefinitionError(
                    f"must be an array or an expression, not {_kind(value)}",
                    location=f"{where}.foreach",
                )
        else:
            expression = spec.get("expression")
            if expression is None:
                raise DefinitionError(
                    'an Until needs an "expression" that ends the loop when true',
                    location=where,
                )
            self._condition(expression, f"{where}.expression")
        if "inputs" in spec:
            raise DefinitionError(
                f'a {kind}\'s actions go in its "actions" property, not in "inputs"',
                location=f"{where}.inputs",
            )

    def _switch(self, step: Step, spec: dict[str, Any], where: str, depth: int) -> None:
        if "expression" not in spec:
            raise DefinitionError(
                'a Switch needs an "expression" (a string or an integer)', location=where
            )
        expression = spec["expression"]
        if isinstance(expression, bool) or not isinstance(expression, str | int):
            raise DefinitionError(
                f"must be a string or an integer, not {_kind(expression)}",
                location=f"{where}.expression",
            )
        cases = spec.pop("cases", None) or {}
        if not isinstance(cases, dict):
            raise DefinitionError(
                f"must be an object, not {_kind(cases)}", location=f"{where}.cases"
            )
        seen: dict[str, str] = {}
        for case_name, case in cases.items():
            loc = f"{where}.cases.{case_name}"
            if not isinstance(case, dict):
                raise DefinitionError('a case is {"case": ..., "actions": {...}}', location=loc)
            case = _canonical_keys(case, ("case", "actions"), loc, "a Switch case")
            if "case" not in case:
                raise DefinitionError("missing: the value this case matches", location=loc)
            value = case["case"]
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise DefinitionError(
                    f"a case value is a string or a number, not {_kind(value)}",
                    location=f"{loc}.case",
                )
            # Logic Apps refuses two cases with the same value.
            key = json.dumps(value)
            if key in seen:
                raise DefinitionError(
                    f"case {case_name!r} has the same value as case {seen[key]!r}",
                    location=f"{loc}.case",
                )
            seen[key] = case_name
            actions = self._actions(
                case.get("actions", {}),
                f"{loc}.actions",
                depth=depth + 1,
                parent=step.name,
                branch=f"case:{case_name}",
            )
            step.cases[case_name] = (value, actions)
        default = spec.pop("default", None) or {}
        if not isinstance(default, dict) or set(default) - {"actions"}:
            raise DefinitionError('default is {"actions": {...}}', location=f"{where}.default")
        step.else_actions = self._actions(
            default.get("actions", {}),
            f"{where}.default.actions",
            depth=depth + 1,
            parent=step.name,
            branch="else",
        )

    def _data_inputs(self, kind: str, value: Any, where: str) -> dict[str, Any]:
        """Inputs of ParseJson, Select, Query, Join and Table (the schema's shapes)."""
        known, required = _DATA_INPUTS[kind]
        if not isinstance(value, dict):
            raise DefinitionError(
                f'a {kind} needs "inputs": {{{", ".join(repr(k) for k in required)}: ...}}',
                location=where,
            )
        spec = _canonical_keys(value, known, where, f"{kind} inputs")
        for key in required:
            if key not in spec:
                raise DefinitionError("missing", location=f"{where}.{key}")
        if "from" in spec and not isinstance(spec["from"], list | str):
            raise DefinitionError(
                f"must be an array or an expression, not {_kind(spec['from'])}",
                location=f"{where}.from",
            )
        if kind == "Query" and not isinstance(spec["where"], str):
            raise DefinitionError(
                'must be an expression such as "@equals(item(), 1)"', location=f"{where}.where"
            )
        if kind == "Join" and "joinWith" in spec and not isinstance(spec["joinWith"], str):
            raise DefinitionError("must be a string", location=f"{where}.joinWith")
        if kind == "Table":
            fmt = spec.get("format", "CSV")
            if not isinstance(fmt, str) or fmt.upper() not in ("CSV", "HTML"):
                raise DefinitionError("is CSV or HTML", location=f"{where}.format")
            spec["format"] = fmt.upper()
            columns = spec.get("columns")
            if columns is not None and not (
                isinstance(columns, list)
                and all(isinstance(c, dict) and "value" in c for c in columns)
            ):
                raise DefinitionError(
                    'is a list of {"header": ..., "value": ...} objects',
                    location=f"{where}.columns",
                )
        if kind == "ParseJson":
            schema = spec["schema"]
            if not isinstance(schema, dict):
                raise DefinitionError("must be a JSON schema object", location=f"{where}.schema")
            try:
                from jsonschema import Draft4Validator
                from jsonschema.validators import validator_for

                # A schema without "$schema" is read as draft 4, the dialect Logic Apps uses.
                validator_for(schema, default=Draft4Validator).check_schema(schema)
            except Exception as exc:  # jsonschema's SchemaError, or a bad $schema
                message = getattr(exc, "message", str(exc))
                raise DefinitionError(
                    f"not a valid JSON schema: {message}", location=f"{where}.schema"
                ) from None
        return spec

    def _variable_inputs(
        self, kind: str, value: Any, where: str, parent: str | None
    ) -> dict[str, Any]:
        """Inputs of the variable actions; InitializeVariable declares names and types."""
        if not isinstance(value, dict):
            raise DefinitionError(f"a {kind} needs inputs", location=where)
        if kind == "InitializeVariable":
            if parent is not None:
                # "You can't initialize variables inside loops or scopes": Logic Apps only
                # takes them at the top level of a workflow.
                raise DefinitionError(
                    "variables are initialized only at the top level of a workflow (not in a "
                    "Scope, If, Switch or loop)",
                    location=where,
                )
            spec = _canonical_keys(value, ("variables",), where, "InitializeVariable inputs")
            variables = spec.get("variables")
            if not isinstance(variables, list) or len(variables) != 1:
                raise DefinitionError(
                    'is [{"name": ..., "type": ..., "value": ...}] (one variable)',
                    location=f"{where}.variables",
                )
            loc = f"{where}.variables[0]"
            if not isinstance(variables[0], dict):
                raise DefinitionError('is {"name": ..., "type": ..., "value": ...}', location=loc)
            variable = _canonical_keys(variables[0], ("name", "type", "value"), loc, "a variable")
            name = variable.get("name")
            if not isinstance(name, str) or not name:
                raise DefinitionError("missing: the variable's name", location=f"{loc}.name")
            variable["type"] = _canonical_type(
                variable.get("type"), f"{loc}.type", VARIABLE_TYPES, "variable"
            )
            if name.lower() in self.variables:
                first = self.variables[name.lower()][1]
                raise DefinitionError(
                    f"variable {name!r} is already initialized (at {first})",
                    location=f"{loc}.name",
                )
            self.variables[name.lower()] = (variable["type"], loc)
            if "value" in variable and not _is_dynamic(variable["value"]):
                problem = variable_type_problem(variable["type"], variable["value"])
                if problem:
                    raise DefinitionError(problem, location=f"{loc}.value")
            spec["variables"] = [variable]
            return spec
        spec = _canonical_keys(value, ("name", "value"), where, f"{kind} inputs")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise DefinitionError("missing: the variable's name", location=f"{where}.name")
        if "value" not in spec and kind not in ("IncrementVariable", "DecrementVariable"):
            raise DefinitionError("missing: the value", location=f"{where}.value")
        self.variable_uses.append((kind, name, f"{where}.name"))
        return spec

    def _check_variables(self) -> None:
        """Each variable action names a variable an InitializeVariable declares, of a type
        the action works on."""
        wanted = {
            "IncrementVariable": ("Integer", "Float"),
            "DecrementVariable": ("Integer", "Float"),
            "AppendToArrayVariable": ("Array",),
            "AppendToStringVariable": ("String",),
        }
        for kind, name, where in self.variable_uses:
            declared = self.variables.get(name.lower())
            if declared is None:
                raise DefinitionError(
                    f"no InitializeVariable declares the variable {name!r}", location=where
                )
            types = wanted.get(kind)
            if types is not None and declared[0] not in types:
                raise DefinitionError(
                    f"{kind} needs a variable of type {' or '.join(types)}; {name!r} is "
                    f"{declared[0]}",
                    location=where,
                )

    def _limit(self, value: Any, where: str, *, loop: bool = False) -> None:
        if not isinstance(value, dict):
            raise DefinitionError('limit is {"timeout": "PT1H"}', location=where)
        unknown = set(value) - {"timeout", "count"}
        if unknown:
            raise DefinitionError(
                f"unknown limit {sorted(unknown)[0]!r} (known: timeout, count)", location=where
            )
        timeout = value.get("timeout")
        if timeout is not None and not _is_dynamic(timeout):
            try:
                seconds = parse_duration(timeout).total_seconds()
            except ValueError as exc:
                raise DefinitionError(str(exc), location=f"{where}.timeout") from None
            if seconds <= 0:
                raise DefinitionError(
                    "the timeout must be longer than zero", location=f"{where}.timeout"
                )
        count = value.get("count")
        if count is not None and not loop:
            self.note(f"{where}.count is ignored (it limits Until loops)")
        elif count is not None and not _is_dynamic(count):
            number = int(count) if isinstance(count, str) and count.strip().isdigit() else count
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 5000:
                raise DefinitionError(
                    f"an Until loop's count is 1 to 5000 (the Logic Apps limit), not {count!r}",
                    location=f"{where}.count",
                )

    def _run_after(self, value: Any, where: str) -> dict[str, list[str]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise DefinitionError('runAfter is {"<action>": ["Succeeded", ...]}', location=where)
        out: dict[str, list[str]] = {}
        for pred, statuses in value.items():
            if not isinstance(statuses, list) or not statuses:
                raise DefinitionError(
                    f"lists the statuses of {pred!r} to run after (some of "
                    f"{', '.join(RUN_AFTER_STATUSES)})",
                    location=f"{where}.{pred}",
                )
            canon = []
            for status in statuses:
                match = next(
                    (
                        s
                        for s in RUN_AFTER_STATUSES
                        if isinstance(status, str) and s.lower() == status.lower()
                    ),
                    None,
                )
                if match is None:
                    raise DefinitionError(
                        f"{status!r} is not a status to run after "
                        f"(use {', '.join(RUN_AFTER_STATUSES)})",
                        location=f"{where}.{pred}",
                    )
                if match not in canon:
                    canon.append(match)
            out[pred] = canon
        return out

    def _check_run_after(self, steps: dict[str, Step], where: str) -> None:
        for step in steps.values():
            for pred in step.run_after:
                if pred == step.name:
                    raise DefinitionError(
                        f"{pred!r} cannot run after itself", location=f"{step.location}.runAfter"
                    )
                if pred in steps:
                    continue
                elsewhere = self.names.get(pred)
                if elsewhere:
                    raise DefinitionError(
                        f"{pred!r} is not in the same scope (it is at {elsewhere}); runAfter can "
                        "only name actions of the same scope",
                        location=f"{step.location}.runAfter",
                    )
                raise DefinitionError(
                    f"there is no action {pred!r} in this scope to run after "
                    f"(actions here: {', '.join(repr(n) for n in steps) or 'none'})",
                    location=f"{step.location}.runAfter",
                )
        # Cycles: depth-first search with colours.
        state: dict[str, int] = {}
        for start in steps:
            if state.get(start):
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(steps[start].run_after))]
            state[start] = 1
            path = [start]
            while stack:
                node, preds = stack[-1]
                nxt = next(preds, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                    continue
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise DefinitionError(
                        f"runAfter makes a cycle: {' -> '.join(reversed(cycle))}",
                        location=where,
                    )
                if not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(steps[nxt].run_after)))

    def _request(self, value: Any, where: str, *, optional: bool) -> dict[str, Any] | None:
        if value is None or (optional and value == {}):
            return {} if optional else None
        if not isinstance(value, dict):
            raise DefinitionError(
                f"an HTTP request is an object with method and uri, not {_kind(value)}",
                location=where,
            )
        spec = _canonical_keys(value, HTTP_REQUEST_KEYS, where, "an HTTP request")
        if "method" not in spec:
            raise DefinitionError('missing; e.g. "POST"', location=f"{where}.method")
        if "uri" not in spec and "url" not in spec:
            raise DefinitionError("missing: the URL to call", location=f"{where}.uri")
        if "uri" in spec and "url" in spec and spec["uri"] != spec["url"]:
            raise DefinitionError("both uri and url are given and they differ", location=where)
        for key in ("headers", "queries"):
            if key in spec and not isinstance(spec[key], dict) and not _is_dynamic(spec[key]):
                raise DefinitionError(
                    "must be an object of names and values", location=f"{where}.{key}"
                )
        return spec

    def _webhook_inputs(self, value: Any, where: str, *, trigger: bool) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DefinitionError(
                'an HttpWebhook needs "inputs": {"subscribe": {...}, "unsubscribe": {...}}',
                location=where,
            )
        known = ("subscribe", "unsubscribe", "accessKeyType", "retryPolicy", "authentication")
        spec = _canonical_keys(value, known, where, "HttpWebhook inputs")
        if spec.get("subscribe") is None:  # null is as missing as absent
            raise DefinitionError(
                "missing: the request that subscribes", location=f"{where}.subscribe"
            )
        spec["subscribe"] = self._request(spec["subscribe"], f"{where}.subscribe", optional=False)
        if "unsubscribe" in spec:
            spec["unsubscribe"] = self._request(
                spec["unsubscribe"], f"{where}.unsubscribe", optional=True
            )
        key_type = spec.get("accessKeyType")
        if key_type is not None:
            if not isinstance(key_type, str) or key_type.lower() not in ("primary", "secondary"):
                raise DefinitionError("is Primary or Secondary", location=f"{where}.accessKeyType")
            spec["accessKeyType"] = key_type.capitalize()
            if not trigger:
                self.note(f"{where}.accessKeyType only applies to triggers and is ignored")
        return spec

    def _http_inputs(self, value: Any, where: str) -> dict[str, Any]:
        spec = self._request(value, where, optional=False)
        if spec is None:
            raise DefinitionError("an Http action needs inputs with method and uri", location=where)
        return spec

    def _response_inputs(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DefinitionError(
                'a Response needs "inputs": {"statusCode": 200, ...}', location=where
            )
        spec = _canonical_keys(
            value, ("statusCode", "headers", "body", "schema"), where, "Response inputs"
        )
        if "statusCode" not in spec:
            raise DefinitionError("missing", location=f"{where}.statusCode")
        code = spec["statusCode"]
        if not _is_dynamic(code):
            number = int(code) if isinstance(code, str) and code.isdigit() else code
            if isinstance(number, bool) or not isinstance(number, int) or not 100 <= number <= 599:
                raise DefinitionError(
                    f"{code!r} is not an HTTP status code", location=f"{where}.statusCode"
                )
        return spec

    def _wait_inputs(self, value: Any, where: str) -> None:
        if (
            not isinstance(value, dict)
            or len(value) != 1
            or not ({"interval", "until"} & set(value))
        ):
            raise DefinitionError(
                'a Wait needs "inputs": {"interval": {"count": 5, "unit": "Second"}} or '
                '{"until": {"timestamp": "..."}}',
                location=where,
            )
        if "interval" in value:
            interval = value["interval"]
            if not isinstance(interval, dict) or set(interval) - {"count", "unit"}:
                raise DefinitionError(
                    'is {"count": 5, "unit": "Second"}', location=f"{where}.interval"
                )
            unit = interval.get("unit")
            if not _is_dynamic(unit):
                interval["unit"] = _canonical_type(
                    unit, f"{where}.interval.unit", FREQUENCIES, "unit"
                )
            count = interval.get("count")
            if not _is_dynamic(count) and (
                isinstance(count, bool) or not isinstance(count, int | float) or count < 0
            ):
                raise DefinitionError(
                    f"{count!r} is not a count", location=f"{where}.interval.count"
                )
        else:
            until = value["until"]
            if not isinstance(until, dict) or "timestamp" not in until:
                raise DefinitionError(
                    'is {"timestamp": "2030-01-01T00:00:00Z"}', location=f"{where}.until"
                )
            if not _is_dynamic(until["timestamp"]):
                _parse_time(until["timestamp"], f"{where}.until.timestamp")

    def _terminate_inputs(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise DefinitionError(
                'a Terminate needs "inputs": {"runStatus": "Failed"}', location=where
            )
        spec = _canonical_keys(value, ("runStatus", "runError"), where, "Terminate inputs")
        value.clear()
        value.update(spec)
        status = spec.get("runStatus")
        if status is None:
            raise DefinitionError(
                "missing: Succeeded, Failed or Cancelled", location=f"{where}.runStatus"
            )
        if not _is_dynamic(status):
            value["runStatus"] = _canonical_type(
                status, f"{where}.runStatus", _TERMINATE_STATUSES, "runStatus"
            )
        error = spec.get("runError")
        if error is not None and (not isinstance(error, dict) or set(error) - {"code", "message"}):
            raise DefinitionError('is {"code": ..., "message": ...}', location=f"{where}.runError")

    def _condition(self, value: Any, where: str) -> None:
        """An If expression: a string, or Logic Apps' condition objects (and/or/not/equals...)."""
        stack: list[tuple[Any, str, int]] = [(value, where, 0)]
        while stack:
            item, loc, depth = stack.pop()
            if depth > 32:
                raise DefinitionError("the condition is nested too deeply", location=loc)
            if isinstance(item, str | bool):
                continue
            if not isinstance(item, dict) or len(item) != 1:
                raise DefinitionError(
                    'a condition is "@expression" or one of {"and": [...]}, {"or": [...]}, '
                    '{"not": {...}}, {"equals": [a, b]}, ...',
                    location=loc,
                )
            ((op, operand),) = item.items()
            key = op.lower()
            if key in ("and", "or"):
                if not isinstance(operand, list) or not operand:
                    raise DefinitionError(
                        f"{op} takes a non-empty list of conditions", location=f"{loc}.{op}"
                    )
                stack.extend((c, f"{loc}.{op}[{i}]", depth + 1) for i, c in enumerate(operand))
            elif key == "not":
                stack.append((operand, f"{loc}.{op}", depth + 1))
            elif key in _CONDITION_OPERATORS:
                if not isinstance(operand, list) or len(operand) != 2:
                    raise DefinitionError(
                        f"{op} takes a list of two operands", location=f"{loc}.{op}"
                    )
            else:
                raise DefinitionError(
                    f"unknown condition operator {op!r} (known: and, or, not, "
                    f"{', '.join(_CONDITION_OPERATORS.values())})",
                    location=loc,
                )

    # -- expressions and ARM -----------------------------------------------------------

    def _check_expressions(self, result: Definition) -> None:
        for where, value, webhook in _expression_sites(result):
            _check_strings(value, where, webhook=webhook, result=result)

    def _scan_arm(self, result: Definition) -> None:
        raw = result._raw_with_python()
        raw.pop("$schema", None)
        for path, text in _strings(raw, ""):
            if is_arm_expression(text):
                self.arm[path.lstrip(".")] = text
        if self.arm:
            shown = "; ".join(f"{k} = {v}" for k, v in list(self.arm.items())[:5])
            more = f" (and {len(self.arm) - 5} more)" if len(self.arm) > 5 else ""
            self.note(
                f"{len(self.arm)} ARM template expression(s) are kept as literal strings (ARM "
                f"replaces them when it deploys; hooknb does not): {shown}{more}. "
                "Give real URIs with endpoints= and real values with parameters="
            )


# Keys that hold nested parts, and the action types that have them.
_NESTED_KEYS = {
    "actions": ("Scope", "If", "Foreach", "Until"),
    "else": ("If",),
    "expression": ("If", "Until", "Switch"),
    "foreach": ("Foreach",),
    "cases": ("Switch",),
    "default": ("Switch",),
}
# operationOptions hooknb applies, per action type.
_HONOURED_OPTIONS = {
    "Http": {"disableasyncpattern"},
    "Foreach": {"sequential"},
    # The callback's (or trigger request's) credential headers in the outputs.
    "HttpWebhook": {"includeauthorizationheadersinoutputs"},
    "trigger": {"singleinstance", "includeauthorizationheadersinoutputs"},
}
# The data operations' inputs: (known keys, required keys), as the 2016-06-01 schema has them.
_DATA_INPUTS = {
    "ParseJson": (("content", "schema"), ("content", "schema")),
    "Select": (("from", "select"), ("from", "select")),
    "Query": (("from", "where"), ("from", "where")),
    "Join": (("from", "joinWith"), ("from", "joinWith")),
    "Table": (("from", "format", "columns"), ("from",)),
}
_VARIABLE_ACTIONS = (
    "InitializeVariable",
    "SetVariable",
    "IncrementVariable",
    "DecrementVariable",
    "AppendToArrayVariable",
    "AppendToStringVariable",
)


def variable_type_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` cannot be a variable of type ``kind`` (None when it can)."""
    ok = {
        "Array": isinstance(value, list),
        "Boolean": isinstance(value, bool),
        "Float": isinstance(value, int | float) and not isinstance(value, bool),
        "Integer": isinstance(value, int) and not isinstance(value, bool),
        "Object": isinstance(value, dict),
        "String": isinstance(value, str),
    }[kind]
    if ok or value is None:
        return None
    return f"a {kind} variable cannot hold {_kind(value)} ({json.dumps(value)[:60]})"


_CONDITION_OPERATORS = {
    "equals": "equals",
    "greater": "greater",
    "greaterorequals": "greaterOrEquals",
    "less": "less",
    "lessorequals": "lessOrEquals",
    "contains": "contains",
    "startswith": "startsWith",
    "endswith": "endsWith",
}


def condition_operator(name: str) -> str | None:
    """The WDL function behind a condition object's operator (``greaterOrEquals``...)."""
    return _CONDITION_OPERATORS.get(name.lower())


def _names(values: Mapping[str, Any]) -> str:
    return ", ".join(repr(k) for k in values) or "none"


def _check_value(param: Parameter, value: Any, where: str) -> None:
    kind = param.type
    ok = {
        "String": isinstance(value, str),
        "SecureString": isinstance(value, str),
        "Int": isinstance(value, int) and not isinstance(value, bool),
        "Float": isinstance(value, int | float) and not isinstance(value, bool),
        "Bool": isinstance(value, bool),
        "Array": isinstance(value, list),
        "Object": isinstance(value, dict),
        "SecureObject": isinstance(value, dict),
    }[kind]
    if not ok:
        shown = "*****" if param.secure else repr(value)[:80]
        raise DefinitionError(f"expected a value of type {kind}, got {shown}", location=where)
    if param.allowed_values is not None and value not in param.allowed_values:
        raise DefinitionError(
            f"{value!r} is not one of the allowedValues {param.allowed_values!r}", location=where
        )


def _expression_sites(result: Definition) -> Iterator[tuple[str, Any, bool]]:
    """(location, value, is-webhook-request) for every place expressions are evaluated."""
    for name, trigger in result.triggers.items():
        where = f"triggers.{name}"
        webhook = trigger.type == "HttpWebhook"
        if trigger.raw.get("inputs") is not None:
            yield f"{where}.inputs", trigger.raw["inputs"], webhook
        if trigger.raw.get("conditions"):
            yield f"{where}.conditions", trigger.raw["conditions"], False
        if trigger.raw.get("splitOn"):
            yield f"{where}.splitOn", trigger.raw["splitOn"], False
    for step in result.steps():
        if step.fn is not None:
            continue
        if "inputs" in step.raw:
            yield f"{step.location}.inputs", step.raw["inputs"], step.type == "HttpWebhook"
        if "expression" in step.raw:
            yield f"{step.location}.expression", step.raw["expression"], False
        if "foreach" in step.raw:
            yield f"{step.location}.foreach", step.raw["foreach"], False
        for case_name, (value, _) in step.cases.items():
            yield f"{step.location}.cases.{case_name}.case", value, False
        if step.timeout is not None:
            yield f"{step.location}.limit.timeout", step.timeout, False
    for key, spec in result.outputs.items():
        if "value" in spec:
            yield f"outputs.{key}.value", spec["value"], False


def _check_strings(value: Any, where: str, *, webhook: bool, result: Definition | None) -> None:
    """Check the expressions in ``value``: each parses; ``listCallbackUrl()`` only if
    ``webhook`` (subscribe/unsubscribe inputs); ``parameters('name')`` names a parameter of
    ``result`` that has a value. Without a ``result`` (a lone trigger or action, which declares
    no parameters) ``parameters()`` is left to run time."""
    for path, text in _strings(value, where):
        if "@" not in text:
            continue
        try:
            template = parse(text)
        except ExpressionError as exc:
            raise DefinitionError(
                exc.message if exc.expression is None else str(exc), location=path
            ) from None
        if not template.functions:
            continue
        if "listcallbackurl" in template.functions and not webhook:
            raise DefinitionError(
                "listCallbackUrl() only works in the subscribe and unsubscribe inputs of "
                "an HttpWebhook trigger or action",
                location=path,
            )
        if "parameters" in template.functions and result is not None:
            for name in _parameter_names(template):
                if name not in result.parameters and name not in result.values:
                    raise DefinitionError(
                        f"parameters({name!r}) names a parameter the definition does not "
                        f"declare (declared: {_names(result.parameters)})",
                        location=path,
                    )
                if name not in result.values:
                    raise DefinitionError(
                        f"parameters({name!r}) has no value and no defaultValue; give one "
                        "with parameters=",
                        location=path,
                    )


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))


def _parameter_names(template: Any) -> Iterator[str]:
    """Literal names given to ``parameters(...)`` in a parsed template."""
    stack = [p for p in template._parsed.parts if not isinstance(p, str)]
    while stack:
        node = stack.pop()
        if isinstance(node, Call):
            first = node.args[0] if node.args else None
            if (
                node.key == "parameters"
                and isinstance(first, Const)
                and isinstance(first.value, str)
            ):
                yield first.value
            stack.extend(node.args)
        elif isinstance(node, Access):
            stack.append(node.target)
            stack.extend(step.key for step in node.steps)
