"""The definitions interpreter: runs a Logic Apps workflow definition on the run engine.

:meth:`hooknb.Workflow.from_definition` and :meth:`hooknb.Workflow.declare` (see
:mod:`hooknb.kernel.declarative`) make a workflow whose function is :func:`run_definition`:
each run interprets the workflow's :class:`~hooknb.wdl.definitions.Definition` with the same
:class:`~hooknb.kernel.run.Run` that code-first workflows use, so records, widgets, the page,
cancel and timeouts are the same. HttpWebhook steps are
``run.webhook(...)``, Http steps ``run.http(...)``, Compose steps ``run.compose(...)``, Python
steps ``run.step(...)``; the other types are recorded here.

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
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import ActionTimedOut, HookNBError, RunTerminated
from ..wdl import Context, ExpressionError, evaluate, evaluate_template
from ..wdl.definitions import (
    Definition,
    Step,
    add_months,
    condition_operator,
    is_arm_expression,
    rewrite_uri,
)
from ..wdl.durations import parse_duration
from .action import Action, current_scope
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


class _Interpreter:
    def __init__(self, run: Run, definition: Definition) -> None:
        self.run = run
        self.definition = definition

    async def main(self) -> Any:
        run = self.run
        trigger = self.definition.trigger
        if trigger is not None:
            for condition in trigger.conditions:
                try:
                    value = evaluate(condition, run.context())
                except ExpressionError as exc:
                    text = f"trigger condition {condition!r}: {exc}"
                    raise RunTerminated("Failed", "InvalidTemplate", text, reason=text) from None
                if value is not True:
                    # Logic Apps would not start a run; the hub already has one, so end it.
                    text = (
                        f"the trigger condition {condition!r} is {value!r}: Logic Apps would "
                        "not have started this run"
                    )
                    raise RunTerminated("Cancelled", "TriggerConditionNotMet", text, reason=text)
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
                            # The task copies this context: its actions belong to `parent`.
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
        for skipped in (step, *step.children()):
            self.run.actions[skipped.name] = Action(
                skipped.name,
                skipped.type,
                status="Skipped",
                started=now,
                ended=now,
                scope=skipped.parent,
                code="ActionSkipped",
            )
        self.run._changed()

    async def execute(self, step: Step) -> str:
        """Run one action; return its final status (exceptions become statuses)."""
        run = self.run
        try:
            if step.type == "HttpWebhook":
                await self.webhook(step)
            elif step.type == "Http":
                await self.http(step)
            elif step.type == "Compose":
                run.compose(step.name, from_template(step.inputs), secure=step.secure)
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
            else:  # a Python step
                assert step.fn is not None
                await run.step(step.name, step.fn, timeout=self.timeout(step), secure=step.secure)
        except (RunTerminated, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.fail(step, exc)
        action = run.actions.get(step.name)
        return action.status if action is not None else "Failed"

    def fail(self, step: Step, exc: BaseException) -> None:
        """Make sure a step that raised is recorded as Failed (or TimedOut) with the reason."""
        action = self.run.actions.get(step.name)
        if action is None:
            action = Action(step.name, step.type, scope=step.parent)
            self.run.actions[step.name] = action
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
        return value

    def record(self, step: Step, status: str = "Running", **fields: Any) -> Action:
        action = Action(
            step.name, step.type, status=status, scope=step.parent, secure=step.secure, **fields
        )
        self.run.actions[step.name] = action
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
            step.name,
            from_template(subscribe),
            from_template(unsubscribe) if unsubscribe else None,
            timeout=self.timeout(step),
            include_authorization_headers=step.include_authorization_headers,
            secure=step.secure,
        )

    async def http(self, step: Step) -> None:
        self.check_uri(step, "inputs", step.inputs)
        await self.run.http(
            step.name,
            from_template(step.inputs),
            timeout=self.timeout(step),
            async_pattern="disableasyncpattern" not in step.operation_options,
            secure=step.secure,
        )

    async def container(self, step: Step) -> None:
        action = self.record(step)
        statuses = await self.scope(step.actions, step.name)
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
        statuses = await self.scope(taken or {}, step.name)
        status, culprit = derive_status(taken or {}, statuses)
        self.results(step, taken or {})
        self.finish(
            action, status, None if status == "Succeeded" else f"action {culprit!r} ended {status}"
        )

    def results(self, step: Step, children: Mapping[str, Step]) -> None:
        """``result('<scope>')``: the action objects of the scope's direct children."""
        self.run._scope_results[step.name] = [
            self.run.actions[name].to_json(body_limit=None)
            for name in children
            if name in self.run.actions
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
        _, recorded, place = self.run._recall(step.name, "Wait")
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
