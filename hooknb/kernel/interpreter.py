"""The definitions interpreter: runs a Logic Apps workflow definition on the run engine.

:meth:`hooknb.Workflow.from_definition` and :meth:`hooknb.Workflow.declare` (see
:mod:`hooknb.kernel.declarative`) make a workflow whose function is :func:`run_definition`:
each run interprets the workflow's :class:`~hooknb.wdl.definitions.Definition` with the same
:class:`~hooknb.kernel.run.Run` that code-first workflows use, so records, widgets, the page,
cancel and timeouts are the same. HttpWebhook steps are
``run.webhook(...)``, Http steps ``run.http(...)``, Compose steps ``run.compose(...)``, Python
steps ``run.step(...)``; the other types are recorded here.

Loops (Foreach, Until), Switch, variables and the data operations (ParseJson, Select, Query,
Join, Table) follow https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-loops,
.../logic-apps-control-flow-switch-statement, .../logic-apps-create-variables-store-values and
.../logic-apps-perform-data-operations. Inside a loop each repetition's actions are recorded as
``Name#i`` (``Name#i.j`` nested) and there ``outputs('Name')`` means the current repetition's;
``item()``, ``items('Loop')`` and ``iterationIndexes('Until')`` read the loops around an
expression (:class:`_Frame`, carried by a context variable into each repetition's task).
Replay: a Foreach's items, an Until's start, each variable action's result and each data
operation's result are in the run's history, and each repetition runs in its own task, so a
replayed run meets the same steps in the same order within each repetition. Trigger
conditions and splitOn are not here: the hub applies them before a run exists
(:mod:`hooknb.server.trigger_settings`).

Where the docs are silent: a Foreach runs up to 20 repetitions at once unless ``repetitions``
or ``Sequential`` says otherwise and fails if any repetition fails; an Until that reaches its
count ends Succeeded (its outputs say ``limitReached``), one whose timeout passes mid-repetition
ends TimedOut; CSV tables end rows with CRLF (RFC 4180).

Order and status, as Logic Apps documents them
(https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling):

* An action starts once every action named in its ``runAfter`` has finished, if each ended
  with one of the statuses listed for it (``Succeeded``, ``Failed``, ``Skipped``,
  ``TimedOut``); otherwise it is ``Skipped``. Actions whose conditions are met at the same
  time run concurrently (parallel branches). ``"runAfter": {}`` runs at the start.
* "When an action throws an unhandled error or exception, the action is marked Failed, and
  any successor action is marked Skipped. [...] if a branch ends with a Skipped action, that
  branch's completion status is based on that skipped action's predecessor status. [...] if
  any branch ends in failure, the entire logic app run is marked Failed." A Scope gets its
  status from its actions by the same rule ("the same criteria that you use to determine a
  logic app's run status"), and so does the branch an If took.
* Where the docs are silent: a branch that ends TimedOut makes the run (or scope) TimedOut
  unless another ends Failed (Failed wins); Cancelled ranks below both. The run's status is
  then that of its top-level actions; a Terminate action ends it at once with its
  ``runStatus`` and cancels what is still running.
* The branch an If did not take is recorded as Skipped, as are a skipped Scope's actions.

Expressions are the definition's own: each action's inputs are evaluated once, when the
action runs (requests through :func:`~hooknb.kernel.placeholders.from_template`, the others
with ``evaluate_template``), and what they return — outputs of earlier steps, the trigger's
body, anything a sender sent — is data, never parsed as an expression again.

A run's result is the definition's ``outputs``, evaluated when it ends (``{name: value}``;
None when it declares none). A Response action's answer is ``run.response``; no HTTP caller
waits for it in hooknb (runs of a Request trigger start with ``.start()``).
"""

from __future__ import annotations

import asyncio
import contextvars
import csv
import html
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import ActionTimedOut, HookNBError, RunTerminated
from ..wdl import MAX_ARRAY_LENGTH, Context, ExpressionError, evaluate, evaluate_template
from ..wdl._functions_core import describe, to_text, values_equal
from ..wdl.content import envelope_bytes, is_envelope
from ..wdl.definitions import (
    Definition,
    Step,
    add_months,
    condition_operator,
    is_arm_expression,
    rewrite_uri,
)
from ..wdl.definitions.validation import variable_type_problem
from ..wdl.durations import parse_duration
from .action import Action, ActionObjects, current_scope, expression_scope
from .history import decode_value
from .placeholders import from_template
from .run import Run

__all__ = ["derive_status", "run_definition"]

_RANK = {"Failed": 3, "TimedOut": 2, "Cancelled": 1, "Succeeded": 0, "Skipped": 0}
_UNIT_SECONDS = {
    "Second": 1,
    "Minute": 60,
    "Hour": 3600,
    "Day": 86400,
    "Week": 7 * 86400,
}


async def run_definition(run: Run) -> Any:
    """The function of a definition-backed workflow: interpret ``run.workflow.definition``."""
    definition = run.workflow.definition
    if definition is None:  # pragma: no cover - only set up by Workflow.from_definition
        raise HookNBError(f"workflow {run.workflow.name!r} has no definition")
    return await _Interpreter(run, definition).main()


def derive_status(steps: Mapping[str, Step], statuses: Mapping[str, str]) -> tuple[str, str | None]:
    """The status of a scope (or run) from its actions' statuses, and the action that decided
    it (None when it Succeeded). See the module docs for the rule."""
    successors = {pred for step in steps.values() for pred in step.run_after}
    memo: dict[str, tuple[str, str | None]] = {}

    def effective(name: str) -> tuple[str, str | None]:
        if name in memo:
            return memo[name]
        status = statuses.get(name, "Skipped")
        if status != "Skipped":
            memo[name] = (status, name)
            return memo[name]
        worst: tuple[str, str | None] = ("Succeeded", None)
        for pred, allowed in steps[name].run_after.items():
            if statuses.get(pred, "Skipped") not in allowed:  # why this one was skipped
                found = effective(pred)
                if _RANK[found[0]] > _RANK[worst[0]]:
                    worst = found
        memo[name] = worst
        return worst

    worst: tuple[str, str | None] = ("Succeeded", None)
    for name in steps:
        if name in successors:
            continue
        found = effective(name)
        if _RANK[found[0]] > _RANK[worst[0]]:
            worst = found
    status = "Succeeded" if worst[0] == "Skipped" else worst[0]
    return status, worst[1] if status != "Succeeded" else None


#: Logic Apps' default degree of parallelism of a Foreach (``repetitions``: 1-50), its item limit
#: and an Until's default limits
#: (https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config).
FOREACH_DEFAULT_REPETITIONS = 20
FOREACH_MAX_ITEMS = MAX_ARRAY_LENGTH
UNTIL_DEFAULT_COUNT = 60
UNTIL_DEFAULT_TIMEOUT = "PT1H"
# Variables' values when InitializeVariable gives none.
_EMPTY = {"Array": [], "Boolean": False, "Float": 0.0, "Integer": 0, "Object": {}, "String": ""}


@dataclass(frozen=True)
class _Frame:
    """Where in loops an action runs: which repetition (``suffix``, added to the names of the
    actions it records: ``Inner#2``, ``Inner#2.0`` in a nested loop), every enclosing
    repetition's suffix (outermost first), and the loops' current items (Foreach, Select...) and
    indexes (Until), which ``item()``, ``items()`` and ``iterationIndexes()`` read."""

    suffix: str = ""
    suffixes: tuple[str, ...] = ()
    items: tuple[tuple[str, Any], ...] = ()
    indexes: tuple[tuple[str, int], ...] = ()

    def repetition(self, index: int) -> _Frame:
        suffix = f"{self.suffix}.{index}" if self.suffix else f"#{index}"
        return replace(self, suffix=suffix, suffixes=(*self.suffixes, suffix))

    def with_item(self, loop: str, item: Any) -> _Frame:
        return replace(self, items=(*self.items, (loop, item)))


# The default is immutable (a frozen dataclass), the top level of a run.
_frame: contextvars.ContextVar[_Frame] = contextvars.ContextVar(
    "hooknb_frame",
    default=_Frame(),  # noqa: B039
)


class _Interpreter:
    def __init__(self, run: Run, definition: Definition) -> None:
        self.run = run
        self.definition = definition
        #: The run's variables (InitializeVariable...), by name; shared by all branches.
        self.variables: dict[str, Any] = {}
        self.variable_types = {
            str(variable["name"]).lower(): variable["type"]
            for step in definition.steps()
            if step.type == "InitializeVariable"
            for variable in step.inputs["variables"]
        }
        expression_scope.set(self.extend)

    def extend(self, context: Context) -> Context:
        """The run's expression context with this definition's variables and loops."""
        frame = _frame.get()
        return replace(
            context,
            actions=ActionObjects(self.run.actions, frame.suffixes),
            variables=self.variables,
            items=dict(frame.items),
            iteration_indexes=dict(frame.indexes),
        )

    def key(self, name: str) -> str:
        """The name an action is recorded under: its own, with the repetition it runs in."""
        return name + _frame.get().suffix

    async def main(self) -> Any:
        run = self.run
        # Trigger conditions and splitOn were applied by the hub before this run existed
        # (hooknb.server.trigger_settings): a run is only made when they let one start.
        statuses = await self.scope(self.definition.actions)
        status, culprit = derive_status(self.definition.actions, statuses)
        if status != "Succeeded":
            action = run.actions.get(culprit or "")
            reason = f": {action.error}" if action is not None and action.error else ""
            code = "ActionTimedOut" if status == "TimedOut" else "ActionFailed"
            text = f"action {culprit!r} ended {status}{reason}"
            raise RunTerminated(status, code, text, reason=text)
        return self.outputs()

    def outputs(self) -> Any:
        outputs = self.definition.outputs
        if not outputs:
            # A definition that is only a trigger (``%%hooknb trigger`` with no handler): its
            # runs record what the trigger received, as the result.
            return None if self.definition.actions else self.run.trigger.body
        context = self.run.context()
        result = {}
        for name, spec in outputs.items():
            try:
                result[name] = evaluate_template(spec.get("value"), context)
            except ExpressionError as exc:
                text = f"outputs.{name}: {exc}"
                raise RunTerminated("Failed", "InvalidTemplate", text, reason=text) from None
        return result

    # -- scheduling ----------------------------------------------------------------------

    async def scope(self, steps: Mapping[str, Step], parent: str | None = None) -> dict[str, str]:
        """Run one level of actions in runAfter order; return each one's final status."""
        statuses: dict[str, str] = {}
        pending = dict(steps)
        running: dict[asyncio.Future[str], str] = {}
        token = current_scope.set(parent)
        try:
            while pending or running:
                ready = True
                while ready:
                    ready = False
                    for name, step in list(pending.items()):
                        if any(pred not in statuses for pred in step.run_after):
                            continue
                        del pending[name]
                        ready = True
                        met = all(statuses[p] in allowed for p, allowed in step.run_after.items())
                        if met:
                            # The task copies this context: its actions belong to `parent`
                            # (and to the loop repetition this scope runs in).
                            running[asyncio.ensure_future(self.execute(step))] = name
                        else:
                            self.skip(step)
                            statuses[name] = "Skipped"
                if not running:
                    for step in pending.values():  # unreachable: load() rejects cycles
                        self.skip(step)
                        statuses[step.name] = "Skipped"
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    statuses[running.pop(task)] = task.result()
        except BaseException as exc:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if isinstance(exc, RunTerminated):
                for step in pending.values():
                    self.skip(step)
            raise
        finally:
            current_scope.reset(token)
        return statuses

    def skip(self, step: Step) -> None:
        now = time.time()
        suffix = _frame.get().suffix
        for skipped in (step, *step.children()):
            self.run.actions[skipped.name + suffix] = Action(
                skipped.name + suffix,
                skipped.type,
                status="Skipped",
                started=now,
                ended=now,
                scope=None if skipped.parent is None else skipped.parent + suffix,
                code="ActionSkipped",
            )
        self.run._changed()

    async def execute(self, step: Step) -> str:
        """Run one action; return its final status (exceptions become statuses)."""
        run = self.run
        key = self.key(step.name)
        try:
            if step.type == "HttpWebhook":
                await self.webhook(step)
            elif step.type == "Http":
                await self.http(step)
            elif step.type == "Compose":
                run.compose(key, from_template(step.inputs), secure=step.secure)
            elif step.type == "Scope":
                await self.container(step)
            elif step.type == "If":
                await self.condition(step)
            elif step.type == "Wait":
                await self.wait(step)
            elif step.type == "Response":
                self.response(step)
            elif step.type == "Terminate":
                self.terminate(step)
            elif step.type == "Foreach":
                await self.foreach(step)
            elif step.type == "Until":
                await self.until(step)
            elif step.type == "Switch":
                await self.switch(step)
            elif step.type in _DATA_OPERATIONS or step.type.endswith("Variable"):
                await self.computed(step)
            else:  # a Python step
                assert step.fn is not None
                await run.step(key, step.fn, timeout=self.timeout(step), secure=step.secure)
        except (RunTerminated, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.fail(step, exc)
        action = run.actions.get(key)
        return action.status if action is not None else "Failed"

    def fail(self, step: Step, exc: BaseException) -> None:
        """Make sure a step that raised is recorded as Failed (or TimedOut) with the reason."""
        key = self.key(step.name)
        action = self.run.actions.get(key)
        if action is None:
            action = Action(key, step.type)
            self.run.actions[key] = action
        if action.status in ("Running", "Waiting"):
            timed_out = isinstance(exc, ActionTimedOut)
            action.status = "TimedOut" if timed_out else "Failed"
            action.code = "ActionTimedOut" if timed_out else "ActionFailed"
            action.ended = time.time()
        if action.error is None:
            action.error = f"{type(exc).__name__}: {exc}"
        self.run._changed()

    def context(self) -> Context:
        return self.run.context()

    def timeout(self, step: Step) -> str | None:
        value = step.timeout
        if isinstance(value, str) and "@" in value:
            value = evaluate(value, self.context())
        timeout: str | None = value  # a duration (checked where the step's wait is opened)
        return timeout

    def record(self, step: Step, status: str = "Running", **fields: Any) -> Action:
        # The scope comes from the task's context: the parent, in its repetition.
        key = self.key(step.name)
        action = Action(key, step.type, status=status, secure=step.secure, **fields)
        self.run.actions[key] = action
        self.run._changed()
        return action

    def finish(self, action: Action, status: str, error: str | None = None) -> None:
        action.status = status
        action.ended = time.time()
        if error is not None:
            action.error = error
            action.code = "ActionFailed"
        self.run._changed()

    # -- action types --------------------------------------------------------------------

    def check_uri(self, step: Step, where: str, request: Any) -> None:
        """A clear error for URIs that can never be called: ARM expressions and placeholders
        (after ``endpoints`` rewrites them)."""
        if not isinstance(request, Mapping):
            return
        uri = request.get("uri", request.get("url"))
        if not isinstance(uri, str) or "@" in uri:
            return  # an expression: checked once evaluated
        final = rewrite_uri(uri, self.run.workflow.endpoints)
        if is_arm_expression(final):
            raise HookNBError(
                f"{where}.uri is the ARM template expression {uri!r}, which ARM replaces at "
                "deployment: map it to a URL with endpoints={...}"
            )
        if urlsplit(final).scheme.lower() not in ("http", "https"):
            raise HookNBError(
                f"{where}.uri {uri!r} is not an http(s) URL (a placeholder?): map it to one "
                "with endpoints={...}"
            )

    async def webhook(self, step: Step) -> None:
        inputs = step.inputs
        shared = {k: inputs[k] for k in ("retryPolicy", "authentication") if k in inputs}
        subscribe = {**shared, **inputs["subscribe"]}
        unsubscribe = inputs.get("unsubscribe") or None
        if unsubscribe:
            unsubscribe = {**shared, **unsubscribe}
        self.check_uri(step, "subscribe", subscribe)
        self.check_uri(step, "unsubscribe", unsubscribe)
        # The definition's templates, evaluated once by the step (from_template): what they
        # return is data, never evaluated again.
        await self.run.webhook(
            self.key(step.name),
            from_template(subscribe),
            from_template(unsubscribe) if unsubscribe else None,
            timeout=self.timeout(step),
            include_authorization_headers=step.include_authorization_headers,
            secure=step.secure,
        )

    async def http(self, step: Step) -> None:
        self.check_uri(step, "inputs", step.inputs)
        await self.run.http(
            self.key(step.name),
            from_template(step.inputs),
            timeout=self.timeout(step),
            async_pattern="disableasyncpattern" not in step.operation_options,
            secure=step.secure,
        )

    async def container(self, step: Step) -> None:
        action = self.record(step)
        statuses = await self.scope(step.actions, self.key(step.name))
        status, culprit = derive_status(step.actions, statuses)
        self.results(step, step.actions)
        error = None
        if status != "Succeeded":
            error = f"action {culprit!r} ended {status}"
        self.finish(action, status, error)

    async def condition(self, step: Step) -> None:
        action = self.record(step)
        try:
            value = self.test(step.expression)
        except (ExpressionError, HookNBError) as exc:
            for branch in (step.actions, step.else_actions or {}):
                for child in branch.values():
                    self.skip(child)
            self.finish(action, "Failed", f"{type(exc).__name__}: {exc}")
            return
        action.inputs = {"expressionResult": value}
        action.value = {"expression": {"result": value}}
        taken, other = (
            (step.actions, step.else_actions) if value else (step.else_actions, step.actions)
        )
        for child in (other or {}).values():
            self.skip(child)
        statuses = await self.scope(taken or {}, self.key(step.name))
        status, culprit = derive_status(taken or {}, statuses)
        self.results(step, taken or {})
        self.finish(
            action, status, None if status == "Succeeded" else f"action {culprit!r} ended {status}"
        )

    def results(
        self, step: Step, children: Mapping[str, Step], suffixes: list[str] | None = None
    ) -> None:
        """``result('<scope>')``: the action objects of the scope's direct children (of each
        repetition, in order, for a loop)."""
        own = self.key(step.name)
        self.run._scope_results[own] = [
            self.run.actions[name + suffix].to_json(body_limit=None)
            for suffix in (suffixes if suffixes is not None else [_frame.get().suffix])
            for name in children
            if name + suffix in self.run.actions
        ]

    def test(self, expression: Any) -> bool:
        """Evaluate an If expression: ``"@..."`` or Logic Apps' condition objects."""
        context = self.context()
        value = self.condition_value(expression, context, 0)
        if not isinstance(value, bool):
            raise HookNBError(f"the If expression must be true or false, not {value!r}")
        return value

    def condition_value(self, item: Any, context: Context, depth: int) -> Any:
        if isinstance(item, str):
            return evaluate(item, context)
        if isinstance(item, bool):
            return item
        ((op, operand),) = item.items()
        key = op.lower()
        if key == "and":
            return all(self.condition_value(c, context, depth + 1) is True for c in operand)
        if key == "or":
            return any(self.condition_value(c, context, depth + 1) is True for c in operand)
        if key == "not":
            return self.condition_value(operand, context, depth + 1) is not True
        function = condition_operator(key)
        left, right = evaluate_template(list(operand), context)
        # The operator's own WDL function gives Logic Apps' comparison rules exactly.
        scratch = Context(parameters={"a": left, "b": right})
        return evaluate(f"@{function}(parameters('a'), parameters('b'))", scratch)

    async def wait(self, step: Step) -> None:
        # A delay keeps its end across a kernel restart: the run's history has when it began.
        _, recorded, place = self.run._recall(self.key(step.name), "Wait")
        action = self.record(step)
        inputs = evaluate_template(step.inputs, self.context())
        action.inputs = inputs
        if recorded is not None:
            began = decode_value(recorded.value)["began"]
            action.started = began
        else:
            began = time.time()
            self.run._remember(action, place, {"began": began})
        now = datetime.fromtimestamp(began, UTC)
        if "interval" in inputs:
            count = inputs["interval"].get("count") or 0
            unit = str(inputs["interval"].get("unit", "Second")).capitalize()
            if unit in ("Month", "Year"):
                months = int(count) * (12 if unit == "Year" else 1)
                seconds = (add_months(now, months) - now).total_seconds()
            elif unit in _UNIT_SECONDS:
                seconds = float(count) * _UNIT_SECONDS[unit]
            else:
                raise HookNBError(f"Wait: unknown unit {unit!r}")
        else:
            text = str(inputs["until"]["timestamp"]).replace("Z", "+00:00")
            until = datetime.fromisoformat(text)
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            seconds = (until - now).total_seconds()
        limit = self.timeout(step)
        limit_s = parse_duration(limit).total_seconds() if limit else None
        try:
            if limit_s is not None and limit_s < seconds:
                await asyncio.sleep(max(began + limit_s - time.time(), 0))
                action.code = "ActionTimedOut"
                self.finish(action, "TimedOut")
                action.error = f"the wait is longer than limit.timeout {limit}"
                return
            await asyncio.sleep(max(began + seconds - time.time(), 0))
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
            raise
        self.finish(action, "Succeeded")

    def response(self, step: Step) -> None:
        action = self.record(step)
        answer = evaluate_template(step.inputs, self.context())
        code = answer.get("statusCode")
        answer["statusCode"] = int(code) if isinstance(code, str) and code.isdigit() else code
        action.inputs = answer
        self.run.response = {
            "statusCode": answer["statusCode"],
            "headers": answer.get("headers") or {},
            "body": answer.get("body"),
        }
        self.finish(action, "Succeeded")

    def terminate(self, step: Step) -> None:
        action = self.record(step)
        inputs = evaluate_template(step.inputs, self.context())
        action.inputs = inputs
        status = str(inputs.get("runStatus", ""))
        canonical = next(
            (s for s in ("Succeeded", "Failed", "Cancelled") if s.lower() == status.lower()), None
        )
        if canonical is None:
            raise HookNBError(f"runStatus must be Succeeded, Failed or Cancelled, not {status!r}")
        error = inputs.get("runError") or {}
        code = error.get("code") if canonical == "Failed" else None
        message = error.get("message") if canonical == "Failed" else None
        self.finish(action, "Succeeded")
        raise RunTerminated(canonical, code or None, message or None)

    # -- loops and Switch ----------------------------------------------------------------
    # https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-loops and
    # https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-switch-statement.
    # Each repetition's actions are recorded as "<name>#<index>" (and "#i.j" in nested loops),
    # each repetition runs in its own task: so a replayed run meets the same step names in the
    # same order within each repetition, whatever order parallel repetitions ran in.

    async def repetition(self, step: Step, frame: _Frame) -> str:
        """Run one repetition of a loop's actions in ``frame``; return its status."""

        async def body() -> str:
            _frame.set(frame)
            statuses = await self.scope(step.actions, self.key_in(step, frame))
            return derive_status(step.actions, statuses)[0]

        return await asyncio.ensure_future(body())

    def key_in(self, step: Step, frame: _Frame) -> str:
        """The loop's own key (the repetition ``frame`` is one of its own, one level in)."""
        return step.name + (frame.suffixes[-2] if len(frame.suffixes) > 1 else "")

    async def foreach(self, step: Step) -> None:
        run = self.run
        name, recorded, place = run._recall(self.key(step.name), "Foreach")
        action = Action(name, "Foreach")
        run.actions[name] = action
        run._changed()
        if recorded is not None:
            items = decode_value(recorded.value)["items"]
            action.started = recorded.started or action.started
        else:
            items = evaluate_template(step.raw["foreach"], self.context())
            if not isinstance(items, list):
                raise HookNBError(f"foreach must be an array, not {describe(items)}")
            if len(items) > FOREACH_MAX_ITEMS:
                raise HookNBError(
                    f"foreach has {len(items):,} items, more than the {FOREACH_MAX_ITEMS:,} "
                    "Logic Apps allows"
                )
            run._remember(action, place, {"items": items})
        action.inputs = {"count": len(items)}
        concurrency = (step.raw.get("runtimeConfiguration") or {}).get("concurrency") or {}
        degree = concurrency.get("repetitions", FOREACH_DEFAULT_REPETITIONS)
        if "sequential" in step.operation_options:
            degree = 1
        outer = _frame.get()
        frames = [outer.repetition(i).with_item(step.name, item) for i, item in enumerate(items)]
        statuses: list[str] = [""] * len(frames)
        queue = iter(range(len(frames)))

        async def worker() -> None:
            for index in queue:  # a shared iterator: each index once, in order
                statuses[index] = await self.repetition(step, frames[index])

        workers = [asyncio.ensure_future(worker()) for _ in range(min(degree, len(frames)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        self.results(step, step.actions, [frame.suffix for frame in frames])
        worst = max(statuses, key=lambda status: _RANK.get(status, 0), default="Succeeded")
        status = "Succeeded" if worst in ("Succeeded", "Skipped") else worst
        error = None if status == "Succeeded" else f"a repetition ended {status}"
        self.finish(action, status, error)

    async def until(self, step: Step) -> None:
        """Repeat the actions until the expression is true (tested after each repetition),
        at most ``limit.count`` times (default 60) and for at most ``limit.timeout`` (default
        PT1H). Reaching a limit ends the loop; a repetition that does not succeed fails it.
        The loop's start is in the run's history, so its timeout holds across a replay."""
        run = self.run
        name, recorded, place = run._recall(self.key(step.name), "Until")
        action = Action(name, "Until")
        run.actions[name] = action
        run._changed()
        if recorded is not None:
            began = decode_value(recorded.value)["began"]
            action.started = began
        else:
            began = time.time()
            run._remember(action, place, {"began": began})
        limit = step.raw.get("limit") or {}
        count = evaluate_template(limit.get("count", UNTIL_DEFAULT_COUNT), self.context())
        timeout = evaluate_template(limit.get("timeout", UNTIL_DEFAULT_TIMEOUT), self.context())
        count, seconds = int(count), parse_duration(timeout).total_seconds()
        outer = _frame.get()
        frames: list[_Frame] = []
        status, reason = "Succeeded", None
        try:
            async with asyncio.timeout_at(
                asyncio.get_running_loop().time() + max(began + seconds - time.time(), 0)
            ):
                for index in range(count):
                    frame = replace(
                        outer.repetition(index), indexes=(*outer.indexes, (step.name, index))
                    )
                    frames.append(frame)
                    result = await self.repetition(step, frame)
                    if result not in ("Succeeded", "Skipped"):
                        status, reason = result, f"repetition {index} ended {result}"
                        break
                    token = _frame.set(frame)
                    try:
                        done = self.test(step.expression)
                    finally:
                        _frame.reset(token)
                    if done:
                        break
                else:
                    reason = f"the loop reached its count limit ({count})"
        except TimeoutError:
            status, reason = "TimedOut", f"the loop did not end within its timeout ({timeout})"
            action.code = "ActionTimedOut"
        action.inputs = {"iterations": len(frames), "count": count, "timeout": timeout}
        self.results(step, step.actions, [frame.suffix for frame in frames])
        if status == "Succeeded":
            action.value = {
                "iterations": len(frames),
                **({"limitReached": reason} if reason else {}),
            }
            self.finish(action, status)
        else:
            self.finish(action, status, reason)
            if status == "TimedOut":
                action.code = "ActionTimedOut"

    async def switch(self, step: Step) -> None:
        action = self.record(step)
        value = evaluate_template(step.expression, self.context())
        action.inputs = {"expressionResult": value}
        taken, chosen = step.else_actions or {}, "default"
        for case_name, (case, actions) in step.cases.items():
            if values_equal(case, value):
                taken, chosen = actions, case_name
                break
        action.value = {"expression": value, "case": chosen}
        for _, actions in step.branches():
            if actions is not taken:
                for child in actions.values():
                    self.skip(child)
        statuses = await self.scope(taken, self.key(step.name))
        status, culprit = derive_status(taken, statuses)
        self.results(step, taken)
        self.finish(
            action, status, None if status == "Succeeded" else f"action {culprit!r} ended {status}"
        )

    # -- variables and data operations ---------------------------------------------------
    # Their results are recorded in the run's history: a replayed run takes a variable's value
    # or a Select's array from there instead of computing it again (utcNow() and guid() would
    # change; variables depend on the order parallel branches ran in).

    async def computed(self, step: Step) -> None:
        run = self.run
        name, recorded, place = run._recall(self.key(step.name), step.type)
        action = Action(name, step.type)
        run.actions[name] = action
        run._changed()
        if recorded is not None:
            action.value = decode_value(recorded.value)
            action.started = recorded.started or action.started
            if step.type.endswith("Variable"):
                for variable_name, value in (action.value or {}).get("variables", {}).items():
                    self.variables[variable_name] = value
        else:
            try:
                if step.type.endswith("Variable"):
                    action.value = self.variable(step, action)
                else:
                    action.value = {"body": await _DATA_OPERATIONS[step.type](self, step, action)}
            except ParseJsonInvalid as exc:
                action.value = {"body": exc.content, "errors": exc.errors}
                self.finish(action, "Failed", str(exc))
                action.code = "ValidationFailed"
                return
            except ExpressionError as exc:
                raise HookNBError(f"ExpressionError: {exc}") from None
            run._remember(action, place, action.value)
        self.finish(action, "Succeeded")

    def variable(self, step: Step, action: Action) -> dict[str, Any]:
        """Apply a variable action; its value records the variables it set."""
        inputs = step.inputs
        if step.type == "InitializeVariable":
            spec = inputs["variables"][0]
            kind = spec["type"]
            value = (
                evaluate_template(spec["value"], self.context())
                if "value" in spec
                else json.loads(json.dumps(_EMPTY[kind]))
            )
            name = spec["name"]
            action.inputs = {"variables": [{"name": name, "type": kind, "value": value}]}
        else:
            name = inputs["name"]
            name = next((n for n in self.variables if n.lower() == name.lower()), name)
            if name not in self.variables:
                raise HookNBError(f"the variable {name!r} is not initialized yet")
            kind = self.variable_types[name.lower()]
            current = self.variables[name]
            given = evaluate_template(inputs["value"], self.context()) if "value" in inputs else 1
            action.inputs = {"name": name, "value": given}
            if step.type == "SetVariable":
                value = given
            elif step.type in ("IncrementVariable", "DecrementVariable"):
                if isinstance(given, bool) or not isinstance(given, int | float):
                    raise HookNBError(f"{step.type} needs a number, not {given!r}")
                value = current + given if step.type == "IncrementVariable" else current - given
            elif step.type == "AppendToArrayVariable":
                value = [*current, given]
            else:  # AppendToStringVariable
                value = current + (given if isinstance(given, str) else to_text(given))
        problem = variable_type_problem(kind, value)
        if problem:
            raise HookNBError(f"variable {name!r}: {problem}")
        if kind == "Float" and isinstance(value, int):
            value = float(value)
        self.variables[name] = value
        return {"body": {"name": name, "value": value}, "variables": {name: value}}

    def source(self, step: Step, action: Action) -> list[Any]:
        """The ``from`` array of a data operation, evaluated."""
        value = evaluate_template(step.inputs["from"], self.context())
        if not isinstance(value, list):
            raise HookNBError(f"from must be an array, not {describe(value)}")
        action.inputs = {"from": value} if len(value) <= 100 else {"count": len(value)}
        return value

    async def per_item(self, step: Step, items: list[Any], template: Any) -> list[Any]:
        """``template`` evaluated for each item (``item()`` is the item); yields to the loop
        every thousand items so that a big array does not hold up other runs."""
        results = []
        outer = _frame.get()
        for index, item in enumerate(items):
            token = _frame.set(outer.with_item(step.name, item))
            try:
                results.append(evaluate_template(template, self.context()))
            finally:
                _frame.reset(token)
            if index % 1000 == 999:
                await asyncio.sleep(0)
        return results

    async def select(self, step: Step, action: Action) -> Any:
        items = self.source(step, action)
        return await self.per_item(step, items, step.inputs["select"])

    async def query(self, step: Step, action: Action) -> Any:
        items = self.source(step, action)
        kept = await self.per_item(step, items, step.inputs["where"])
        for verdict in kept:
            if not isinstance(verdict, bool):
                raise HookNBError(f"where must be true or false, not {verdict!r}")
        return [item for item, verdict in zip(items, kept, strict=True) if verdict]

    async def join(self, step: Step, action: Action) -> Any:
        items = self.source(step, action)
        separator = evaluate_template(step.inputs["joinWith"], self.context())
        return str(separator).join(to_text(item) for item in items)

    async def table(self, step: Step, action: Action) -> Any:
        """Create CSV table / Create HTML table: a header row, then a row per item. Without
        ``columns`` the columns are the items' properties, in the order they first appear."""
        items = self.source(step, action)
        columns = step.inputs.get("columns")
        if columns:
            headers = [str(column.get("header", "")) for column in columns]
            cells = [await self.per_item(step, items, column["value"]) for column in columns]
            rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
        else:
            headers = []
            for item in items:
                if not isinstance(item, Mapping):
                    raise HookNBError("without columns, each item must be an object")
                headers.extend(key for key in item if key not in headers)
            rows = [[item.get(key) for key in headers] for item in items]
        text = [[_cell(value) for value in row] for row in rows]
        if step.inputs.get("format", "CSV") == "HTML":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                for row in text
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerows(text)
        return out.getvalue()

    async def parse_json(self, step: Step, action: Action) -> Any:
        """ParseJson: the content (parsed when it is JSON text), validated against the schema
        with jsonschema (draft 4 unless the schema names another); invalid content fails the
        action with code ValidationFailed and the first errors."""
        content = evaluate_template(step.inputs["content"], self.context())
        schema = step.inputs["schema"]
        action.inputs = {"content": content, "schema": schema}
        if is_envelope(content):
            content = envelope_bytes(content) or b""
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        if isinstance(content, str):
            try:
                content = evaluate(
                    "@json(parameters('text'))", Context(parameters={"text": content})
                )
            except ExpressionError as exc:
                raise HookNBError(f"the content is not JSON: {exc.message}") from None
        from jsonschema import Draft4Validator
        from jsonschema.validators import validator_for

        validator = validator_for(schema, default=Draft4Validator)(schema)
        errors = []
        for error in validator.iter_errors(content):
            where = "/".join(str(p) for p in error.absolute_path) or "(the content)"
            errors.append(f"{where}: {error.message[:200]}")
            if len(errors) >= 10:
                break
        if errors:
            raise ParseJsonInvalid(content, errors)
        return content


class ParseJsonInvalid(HookNBError):
    """ParseJson's content does not match its schema."""

    def __init__(self, content: Any, errors: list[str]) -> None:
        super().__init__(f"the content does not match the schema: {'; '.join(errors)}")
        self.content = content
        self.errors = errors


def _cell(value: Any) -> str:
    return "" if value is None else to_text(value)


_DATA_OPERATIONS: dict[str, Callable[[_Interpreter, Step, Action], Any]] = {
    "Select": _Interpreter.select,
    "Query": _Interpreter.query,
    "Join": _Interpreter.join,
    "Table": _Interpreter.table,
    "ParseJson": _Interpreter.parse_json,
}
