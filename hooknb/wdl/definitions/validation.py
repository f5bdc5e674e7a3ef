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
        if spec.get("splitOn") is not None:
            raise DefinitionError(
                "splitOn (one run per item of the trigger body) is not supported",
                location=f"{where}.splitOn",
            )
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
        for key in ("actions", "else", "expression"):
            if key in spec and not (kind == "If" or (kind == "Scope" and key == "actions")):
                raise DefinitionError(
                    f"only an If or Scope action has {key!r}", location=f"{where}.{key}"
                )
        self._envelope(spec, where)
        if "limit" in spec:
            self._limit(spec["limit"], f"{where}.limit")
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
            kind = spec.get("type")
            honoured = {
                "disableasyncpattern": kind == "Http" and not trigger,
                # The callback's (or trigger request's) credential headers in the outputs.
                "includeauthorizationheadersinoutputs": kind == "HttpWebhook"
                or (trigger and kind == "Request"),
            }
            if not all(honoured.get(option, False) for option in given):
                self.note(f"{where}.operationOptions {options!r} is ignored")
        config = spec.get("runtimeConfiguration")
        if config is not None:
            self._runtime_configuration(config, f"{where}.runtimeConfiguration", trigger=trigger)
        if spec.get("trackedProperties") is not None:
            self.note(f"{where}.trackedProperties are ignored")

    def _runtime_configuration(self, config: Any, where: str, *, trigger: bool) -> None:
        """``secureData`` is honoured (see :attr:`Step.secure`); the rest (concurrency,
        paginationPolicy, staticResult...) changes nothing here and is noted."""
        if not isinstance(config, dict):
            raise DefinitionError("runtimeConfiguration is an object", location=where)
        others = sorted(key for key in config if key.lower() != "securedata")
        if others:
            self.note(f"{where}.{others[0]} is ignored (no concurrency control here)")
        secure = next((v for k, v in config.items() if k.lower() == "securedata"), None)
        if secure is None:
            return
        properties = secure.get("properties") if isinstance(secure, dict) else None
        if not isinstance(properties, list) or not all(
            isinstance(p, str) and p.lower() in ("inputs", "outputs") for p in properties
        ):
            raise DefinitionError(
                'secureData is {"properties": ["inputs", "outputs"]} (either or both)',
                location=f"{where}.secureData",
            )
        if trigger:
            self.note(
                f"{where}.secureData is not honoured on a trigger yet: hooknb shows trigger "
                "callbacks as received (credential headers masked)"
            )

    def _limit(self, value: Any, where: str) -> None:
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
        if "count" in value:
            self.note(f"{where}.count is ignored (it limits loops)")

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
    for step in result.steps():
        if step.fn is not None:
            continue
        if "inputs" in step.raw:
            yield f"{step.location}.inputs", step.raw["inputs"], step.type == "HttpWebhook"
        if "expression" in step.raw:
            yield f"{step.location}.expression", step.raw["expression"], False
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
