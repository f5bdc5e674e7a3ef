""":class:`Definition`: a validated workflow definition, to run, edit and export again."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import DefinitionError
from .parts import CONTAINER_TYPES, CONTENT_VERSION, SCHEMA_URL, Parameter, Step, Trigger
from .validation import _Builder


@dataclass
class Definition:
    """A validated workflow definition, ready to run and to export again.

    Attributes:
        triggers: by name (at most one).
        actions: the top-level steps by name, in definition order; Scope/If children are in
            each step's ``actions``/``else_actions``.
        parameters: declared parameters by name.
        values: parameter values to run with: given values, else defaults.
        outputs: the definition's ``outputs`` (evaluated when a run ends).
        notes: things hooknb ignores or changes, one line each; worth showing a user.
        arm_expressions: ARM template expressions kept as literal strings, by location.
        endpoints: URI rewrites applied at run time (see :mod:`hooknb.wdl.definitions`).
        name: a name suggested by the source (file stem, ARM resource name), or None.
    """

    triggers: dict[str, Trigger] = field(default_factory=dict)
    actions: dict[str, Step] = field(default_factory=dict)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA_URL
    content_version: str = CONTENT_VERSION
    description: str | None = None
    metadata: Any = None
    static_results: Any = None
    notes: list[str] = field(default_factory=list)
    arm_expressions: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    name: str | None = None

    @property
    def trigger(self) -> Trigger | None:
        return next(iter(self.triggers.values()), None)

    def steps(self) -> Iterator[Step]:
        """Every step, nested ones included, depth-first in definition order."""
        for step in self.actions.values():
            yield step
            yield from step.children()

    def find(self, name: str) -> Step:
        for step in self.steps():
            if step.name == name:
                return step
        raise KeyError(name)

    def python_steps(self) -> list[str]:
        """Names of the Python steps (which have no WDL form)."""
        return [step.name for step in self.steps() if step.fn is not None]

    def to_json(self) -> dict[str, Any]:
        """The definition as Logic Apps reads it (``$schema``, ``contentVersion``, ...).

        Raises:
            DefinitionError: if it holds Python steps (they are named).
        """
        python = self.python_steps()
        if python:
            raise DefinitionError(
                f"Python steps have no WDL form: {', '.join(repr(n) for n in python)}"
            )
        return self._raw()

    def _raw(self, *, python: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$schema": self.schema,
            "contentVersion": self.content_version,
        }
        if self.description is not None:
            out["description"] = self.description
        out["parameters"] = {name: p.to_json() for name, p in self.parameters.items()}
        out["triggers"] = {name: t.to_json() for name, t in self.triggers.items()}
        out["actions"] = {n: s.to_json(python=python) for n, s in self.actions.items()}
        out["outputs"] = copy.deepcopy(self.outputs)
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.static_results is not None:
            out["staticResults"] = copy.deepcopy(self.static_results)
        return out

    def _python_registry(self) -> dict[str, Callable[..., Any]]:
        return {step.name: step.fn for step in self.steps() if step.fn is not None}

    def _with_raw(self, raw: Mapping[str, Any], python: Mapping[str, Callable[..., Any]]) -> None:
        """Replace this definition's content by ``raw`` (validated first; atomic)."""
        fresh = _Builder(python=python).build(
            raw, dict(self.values), into=Definition(), lenient_values=True
        )
        # Keep the identity of the mappings a Workflow shares with this definition.
        values = self.values
        values.clear()
        values.update(fresh.values)
        fresh.values = values
        fresh.endpoints = self.endpoints
        fresh.name = self.name
        fresh.notes = _merge_notes(self.notes, fresh.notes)
        self.__dict__.update(fresh.__dict__)

    # -- editing -------------------------------------------------------------------------

    def add(
        self,
        name: str,
        action: Mapping[str, Any],
        *,
        run_after: Any = None,
        scope: str | None = None,
        branch: str = "actions",
        fn: Callable[..., Any] | None = None,
    ) -> Step:
        """Add one action (its WDL JSON) and validate the result; return the new step.

        ``run_after``: None = after the step added last at that level (or at the start if
        there is none), ``{}`` = at the start, a name or list of names = after them with
        Succeeded, a dict = a ``runAfter`` object. ``scope`` names a Scope or If to add to
        (``branch="else"`` for an If's else branch or a Switch's default, ``"case:<name>"``
        for a Switch's case). ``fn`` makes it a Python step.

        Raises:
            DefinitionError: if the result is not a valid definition (nothing changes then).
        """
        raw = self._raw_with_python()
        container = raw["actions"]
        if scope is not None:
            try:
                parent = self.find(scope)
            except KeyError:
                raise DefinitionError(f"no Scope or If named {scope!r}") from None
            branches = [name for name, _ in parent.branches()]
            if parent.type not in CONTAINER_TYPES:
                raise DefinitionError(
                    f"{scope!r} is a {parent.type} action, which holds no actions"
                )
            if branch not in branches:
                raise DefinitionError(
                    f"{scope!r} is a {parent.type}: its branches are {', '.join(branches)}"
                )
            container = self._children(raw["actions"], parent, branch)
        if name in {s.name for s in self.steps()}:
            raise DefinitionError(f"there is already an action named {name!r}")
        new = dict(action)
        own = next((k for k in new if isinstance(k, str) and k.lower() == "runafter"), None)
        if run_after is not None or own is None:  # else: the action's own runAfter stands
            if own is not None:
                del new[own]
            new["runAfter"] = _run_after_arg(run_after, list(container))
        container[name] = new
        python = self._python_registry()
        if fn is not None:
            python[name] = fn
        self._with_raw(raw, python)
        return self.find(name)

    def remove(self, name: str) -> None:
        """Remove a step (and what is nested in it). Steps that ran after it then run
        after what it ran after, as the designer rewires them.

        Raises:
            KeyError: no such step. DefinitionError: the result would be invalid.
        """
        step = self.find(name)
        raw = self._raw_with_python()
        if step.parent is None:
            siblings = raw["actions"]
        else:
            siblings = self._children(raw["actions"], self.find(step.parent), step.branch)
        removed = siblings.pop(name)
        inherited = removed.get("runAfter") or {}
        for other in siblings.values():
            after = other.get("runAfter") or {}
            if name in after:
                after.pop(name)
                for pred, statuses in inherited.items():
                    after.setdefault(pred, list(statuses))
        python = self._python_registry()
        python.pop(name, None)
        self._with_raw(raw, python)

    def _raw_with_python(self) -> dict[str, Any]:
        return self._raw(python=True)

    def _children(self, actions: dict[str, Any], parent: Step, branch: str) -> dict[str, Any]:
        """In the JSON ``actions`` of this definition, the ``branch`` list of ``parent``."""
        chain = [parent]
        while chain[0].parent is not None:
            chain.insert(0, self.find(chain[0].parent))
        container = actions
        for i, step in enumerate(chain):
            holder = container[step.name]
            wanted = chain[i + 1].branch if i + 1 < len(chain) else branch
            if wanted == "else":
                holder = holder.setdefault("default" if step.type == "Switch" else "else", {})
            elif wanted.startswith("case:"):
                holder = holder.setdefault("cases", {})[wanted[5:]]
            container = holder.setdefault("actions", {})
        return container


def _run_after_arg(value: Any, previous: list[str]) -> Any:
    if value is None:
        return {previous[-1]: ["Succeeded"]} if previous else {}
    if isinstance(value, str):
        return {value: ["Succeeded"]}
    if isinstance(value, list | tuple):
        return {str(name): ["Succeeded"] for name in value}
    return value


def _merge_notes(old: list[str], new: list[str]) -> list[str]:
    out = list(old)
    for note in new:
        if note not in out:
            out.append(note)
    return out
