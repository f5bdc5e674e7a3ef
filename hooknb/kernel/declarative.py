"""Workflows made of declarative steps: build, edit and export them as WDL definitions.

:class:`Declarative` is the part of :class:`hooknb.Workflow` that holds a Logic Apps workflow
definition (:class:`hooknb.wdl.definitions.Definition`) instead of a Python function:
:meth:`~Declarative.from_definition` loads one, :meth:`~Declarative.declare` starts an empty
one, the ``add_*`` builders and :meth:`~Declarative.remove_step` edit it, and
:meth:`~Declarative.to_definition` exports it. Its runs are interpreted by
:mod:`hooknb.kernel.interpreter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Self

from ..errors import HookNBError
from ..wdl.definitions import PYTHON, SCHEMA_URL, Definition, load
from ..wdl.durations import format_duration
from .interpreter import run_definition
from .placeholders import in_template
from .run import Host, Run, RunFunction
from .triggers import RequestTrigger, Trigger, trigger_of

if TYPE_CHECKING:
    from .client import HubClient

__all__ = ["Declarative"]

# "Not given" for run_after, whose None (and {}) mean something.
_DEFAULT: Any = object()
#: Where in a container step a new step goes: ``"actions"``, ``"else"`` (an If's else, a
#: Switch's default) or ``"case:<name>"`` (a Switch's case).
Branch = str


def _parameter_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, Mapping):
        return "Object"
    return "String"


def _duration_text(value: str | float) -> str:
    if isinstance(value, int | float):
        return format_duration(timedelta(seconds=value))
    return value


class Declarative:
    """The definition-backed side of :class:`hooknb.Workflow` (a mixin)."""

    # Provided by the workflow (hooknb.kernel.workflow.Workflow).
    name: str
    fn: RunFunction
    parameters: dict[str, Any]
    endpoints: dict[str, str]
    #: The WDL definition this workflow runs (None for a Python-function workflow).
    definition: Definition | None

    if TYPE_CHECKING:

        def __init__(
            self,
            fn: RunFunction,
            *,
            name: str | None = None,
            trigger: Trigger | None = None,
            hub: HubClient | None = None,
            parameters: Mapping[str, Any] | None = None,
            endpoints: Mapping[str, str] | None = None,
            host: Host = "kernel",
            define: bool = True,
        ) -> None: ...

        def _define(self) -> None: ...

    @classmethod
    def from_definition(
        cls,
        source: Any,
        parameters: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        hub: HubClient | None = None,
        endpoints: Mapping[str, str] | None = None,
        host: Host = "server",
    ) -> Self:
        """A workflow that runs a Logic Apps workflow definition (WDL 2016-06-01), unchanged.

        ``source`` is a definition dict, JSON text, a file path, the code-view wrapper
        ``{"definition": ..., "parameters": {...}}`` or an ARM template (see
        :func:`hooknb.wdl.definitions.load`); ``parameters`` gives parameter values by name.
        ``endpoints`` maps URIs (or URI prefixes ending in ``/``) in its requests to URLs to
        call instead, e.g. ``{"<RunbookWebhookUrl>": "http://127.0.0.1:8765/runbook"}``.
        The name defaults to the file's stem or the ARM resource's name.

        With ``host="server"`` (the default) the workflow is handed to the Jupyter server,
        which runs it like a saved Logic App: its trigger fires and its runs go from start to
        end with no kernel connected, across server restarts; this kernel shows them live.
        ``host="kernel"`` runs them in this kernel instead, as a definition with Python steps
        always does (their runs are adopted by the next kernel that defines the workflow).

        Raises:
            DefinitionError: if the definition cannot be read or is not one hooknb runs.
        """
        if isinstance(source, Definition):
            definition = source
            if endpoints:
                definition.endpoints.update(endpoints)
            if parameters:
                definition.values.update(parameters)
                # Re-validate: the values must suit the declared parameter types.
                definition._with_raw(definition._raw_with_python(), definition._python_registry())
        else:
            definition = load(source, parameters, endpoints=endpoints)
        workflow = cls(
            run_definition,
            name=name or definition.name or "workflow",
            trigger=trigger_of(definition),
            hub=hub,
            host=host,
            define=False,
        )
        workflow._use_definition(definition)
        workflow._define()
        return workflow

    @classmethod
    def declare(
        cls,
        name: str,
        *,
        trigger: Trigger | None = None,
        parameters: Mapping[str, Any] | None = None,
        hub: HubClient | None = None,
        endpoints: Mapping[str, str] | None = None,
        host: Host = "server",
    ) -> Self:
        """An empty workflow built from declarative steps: add them with :meth:`add_webhook`,
        :meth:`add_http`, :meth:`add_compose`, :meth:`add_condition`, :meth:`add_scope`...
        Unlike a Python function, it can be exported with :meth:`to_definition`.

        ``trigger`` defaults to a Request trigger named ``manual`` (runs start with
        ``.start()``). ``parameters`` become declared parameters with these default values.
        """
        trigger = trigger or RequestTrigger()
        raw = {
            "$schema": SCHEMA_URL,
            "contentVersion": "1.0.0.0",
            "parameters": {
                key: {"type": _parameter_type(value), "defaultValue": value}
                for key, value in (parameters or {}).items()
            },
            "triggers": {trigger.name: trigger.to_definition()},
            "actions": {},
            "outputs": {},
        }
        definition = load(raw, endpoints=endpoints)
        # Handed to the server (host="server") when first enabled or started: steps are
        # added first.
        workflow = cls(run_definition, name=name, trigger=trigger, hub=hub, host=host, define=False)
        workflow._use_definition(definition)
        return workflow

    def _use_definition(self, definition: Definition) -> None:
        self.definition = definition
        # One dict shared with the definition: edits of either are seen by runs.
        self.parameters = definition.values
        self.endpoints = definition.endpoints
        self.__doc__ = definition.description

    def _editable(self) -> Definition:
        if self.definition is None:
            raise HookNBError(
                f"workflow {self.name!r} is the Python function "
                f"{getattr(self.fn, '__qualname__', self.fn)!r}; steps can only be added to a "
                "workflow made with Workflow.declare(...) or Workflow.from_definition(...)"
            )
        return self.definition

    def add_action(
        self,
        name: str,
        action: Mapping[str, Any],
        *,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a step given as its WDL action object (``{"type": "Compose", "inputs": ...}``).

        The builders take Logic Apps templates, as a definition holds them: their strings are
        expressions (``"@{listCallbackUrl()}"``, ``"@triggerBody()?['id']"``), evaluated once
        when the step runs. ``hooknb.CALLBACK_URL`` and ``hooknb.expr(...)`` may be used in
        them too (they are written as those expressions).

        ``run_after``: by default after the step added last at that level (at the start if
        none); ``{}`` = at the start; a name or list of names = after them with Succeeded;
        or a ``runAfter`` object such as ``{"Step": ["Failed", "TimedOut"]}``. ``scope``
        adds it inside a Scope or If (``branch="else"`` for the else branch). Returns the
        workflow, so calls chain.

        Raises:
            DefinitionError: if the step is not valid here (the workflow is unchanged).
        """
        self._editable().add(
            name,
            in_template(action),
            run_after=None if run_after is _DEFAULT else run_after,
            scope=scope,
            branch=branch,
        )
        return self

    def add_webhook(
        self,
        name: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Mapping[str, Any] | None = None,
        *,
        timeout: str | None = None,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add an HTTP Webhook step (subscribe, pause, resume on the callback).

        ``timeout`` is an ISO 8601 duration (``limit.timeout``).
        """
        action: dict[str, Any] = {
            "type": "HttpWebhook",
            "inputs": {"subscribe": dict(subscribe), "unsubscribe": dict(unsubscribe or {})},
        }
        if timeout is not None:
            action["limit"] = {"timeout": _duration_text(timeout)}
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_http(
        self,
        name: str,
        request: Mapping[str, Any],
        *,
        timeout: str | None = None,
        async_pattern: bool = True,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add an HTTP step (``request``: method, uri, headers, body, ..., retryPolicy)."""
        action: dict[str, Any] = {"type": "Http", "inputs": dict(request)}
        if timeout is not None:
            action["limit"] = {"timeout": _duration_text(timeout)}
        if not async_pattern:
            action["operationOptions"] = "DisableAsyncPattern"
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_compose(
        self,
        name: str,
        inputs: Any,
        *,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a Compose step: ``inputs`` (with expressions) evaluated into its outputs."""
        action = {"type": "Compose", "inputs": inputs}
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_condition(
        self,
        name: str,
        expression: Any,
        *,
        actions: Mapping[str, Any] | None = None,
        else_actions: Mapping[str, Any] | None = None,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add an If step: ``expression`` (``"@equals(...)"`` or a condition object such as
        ``{"and": [{"equals": ["@body('A')?['ok']", true]}]}``); ``actions`` and
        ``else_actions`` are WDL action objects by name. More steps can be added inside
        with ``scope=name`` (and ``branch="else"``)."""
        action: dict[str, Any] = {
            "type": "If",
            "expression": expression,
            "actions": dict(actions or {}),
            "else": {"actions": dict(else_actions or {})},
        }
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_scope(
        self,
        name: str,
        actions: Mapping[str, Any] | None = None,
        *,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a Scope step: its status comes from its actions (add more with ``scope=name``)."""
        action = {"type": "Scope", "actions": dict(actions or {})}
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_foreach(
        self,
        name: str,
        items: Any,
        actions: Mapping[str, Any] | None = None,
        *,
        repetitions: int | None = None,
        sequential: bool = False,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a For each loop over ``items`` (an array or an expression such as
        ``"@triggerBody()?['orders']"``); its actions read the item with ``item()``. Up to
        ``repetitions`` (1-50, default 20) repetitions run at once; ``sequential`` runs them
        one after another. Add more steps inside with ``scope=name``."""
        action: dict[str, Any] = {
            "type": "Foreach",
            "foreach": items,
            "actions": dict(actions or {}),
        }
        if repetitions is not None:
            action["runtimeConfiguration"] = {"concurrency": {"repetitions": repetitions}}
        if sequential:
            action["operationOptions"] = "Sequential"
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_until(
        self,
        name: str,
        expression: Any,
        actions: Mapping[str, Any] | None = None,
        *,
        count: int | None = None,
        timeout: str | float | None = None,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add an Until loop: its actions repeat until ``expression`` is true (tested after
        each repetition), at most ``count`` times (default 60) and for at most ``timeout``
        (default one hour); ``iterationIndexes(name)`` is the repetition's index."""
        action: dict[str, Any] = {
            "type": "Until",
            "expression": expression,
            "actions": dict(actions or {}),
        }
        limit: dict[str, Any] = {}
        if count is not None:
            limit["count"] = count
        if timeout is not None:
            limit["timeout"] = _duration_text(timeout)
        if limit:
            action["limit"] = limit
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_switch(
        self,
        name: str,
        expression: Any,
        cases: Mapping[str, Any],
        default: Mapping[str, Any] | None = None,
        *,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a Switch: the case whose value equals ``expression`` runs, else ``default``.
        ``cases`` maps each case's name to its value, or to ``{"case": value, "actions":
        {...}}``; add steps to a case with ``scope=name, branch="case:<case name>"`` (to the
        default with ``branch="else"``)."""
        shaped = {
            case_name: dict(case) if isinstance(case, Mapping) else {"case": case, "actions": {}}
            for case_name, case in cases.items()
        }
        action = {
            "type": "Switch",
            "expression": expression,
            "cases": shaped,
            "default": {"actions": dict(default or {})},
        }
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_variable(
        self,
        name: str,
        variable: str,
        type: Literal["Array", "Boolean", "Float", "Integer", "Object", "String"],
        value: Any = _DEFAULT,
        *,
        run_after: Any = _DEFAULT,
    ) -> Self:
        """Add an InitializeVariable step (variables live at the top level of a workflow);
        change the variable with ``add_action(name, {"type": "SetVariable", ...})`` or the
        Increment/Decrement/AppendTo... variable actions, read it with ``variables(name)``."""
        spec: dict[str, Any] = {"name": variable, "type": type}
        if value is not _DEFAULT:
            spec["value"] = value
        action = {"type": "InitializeVariable", "inputs": {"variables": [spec]}}
        return self.add_action(name, action, run_after=run_after)

    def add_step(
        self,
        name: str,
        fn: Callable[[Run], Any],
        *,
        timeout: str | None = None,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Branch = "actions",
    ) -> Self:
        """Add a Python step: ``fn(run)`` (sync or async); what it returns is the step's
        outputs (``outputs('<name>')`` in later expressions). A workflow with Python steps
        runs, but :meth:`to_definition` refuses it (naming the steps)."""
        if not callable(fn):
            raise TypeError("fn must be callable: fn(run) -> value")
        action: dict[str, Any] = {"type": PYTHON}
        if timeout is not None:
            action["limit"] = {"timeout": _duration_text(timeout)}
        self._editable().add(
            name,
            action,
            run_after=None if run_after is _DEFAULT else run_after,
            scope=scope,
            branch=branch,
            fn=fn,
        )
        return self

    def remove_step(self, name: str) -> Self:
        """Remove a step; steps that ran after it run after its predecessors instead."""
        self._editable().remove(name)
        return self

    def to_definition(self, *, wrapper: bool = False) -> dict[str, Any]:
        """This workflow as a Logic Apps workflow definition (WDL 2016-06-01).

        With ``wrapper=True``: the code-view form ``{"definition": ..., "parameters":
        {"name": {"value": ...}}}`` carrying this workflow's parameter values (secure ones
        left out). ``load(export)`` runs the same way.

        Raises:
            HookNBError: for a Python-function workflow, or one with Python steps (named).
        """
        if self.definition is None:
            raise HookNBError(
                f"workflow {self.name!r} is the Python function "
                f"{getattr(self.fn, '__qualname__', self.fn)!r}: code has no WDL form. "
                "Build it from declarative steps (Workflow.declare(...).add_webhook(...), "
                "add_http, add_compose, add_condition) to export it"
            )
        python = self.definition.python_steps()
        if python:
            names = ", ".join(repr(n) for n in python)
            raise HookNBError(
                f"workflow {self.name!r} cannot be exported: the Python step(s) {names} have "
                "no WDL form; replace them with Compose/Http/HttpWebhook steps or remove them "
                "(remove_step)"
            )
        exported = self.definition.to_json()
        if not wrapper:
            return exported
        declared = self.definition.parameters
        values = {
            key: {"value": value}
            for key, value in self.definition.values.items()
            if key in declared and not declared[key].secure
        }
        return {"definition": exported, "parameters": values}
