"""Workflows and runs: the code-first HTTP Webhook trigger and action.

A :class:`Workflow` wraps a Python function. Each run is an asyncio task on the engine loop;
``await run.webhook(...)`` is the HTTP Webhook action: the hub makes a callback URL and the
subscribe call, the task pauses, and it resumes with the callback's outputs (or raises
:class:`ActionTimedOut`, or is cancelled). The hub, not the kernel, owns the subscription: it
unsubscribes on success, cancel and timeout even if this kernel is gone by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import quote

from ..errors import ActionFailed, ActionTimedOut, HookNBError, HubRequestError, RunTerminated
from ..http_model import encode_wire_body, redact
from ..wdl import Context, ExpressionError, evaluate_template, referenced_functions
from ..wdl.definitions import Recurrence, apply_endpoints
from ..wdl.durations import format_duration, parse_duration
from .aio import in_loop_thread
from .client import HubClient, default_hub
from .outputs import Outputs, jsonable
from .triggers import HttpWebhookTrigger, RecurrenceTrigger, RequestTrigger, trigger_of

if TYPE_CHECKING:
    from ..wdl.definitions import Definition

RunFunction = Callable[["Run"], Any]
Unsubscribe = Mapping[str, Any] | Callable[[Outputs], Mapping[str, Any] | None] | None

_REPORT_BODY_LIMIT = 64 * 1024
_ACTION_FUNCTIONS = {"action", "actionbody", "actionoutputs"}
log = logging.getLogger("hooknb.kernel")

# The Scope or If an action being recorded belongs to: set by the definition interpreter in
# each branch's task, read when an Action is created (so run.webhook() needs no extra arg).
current_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hooknb_scope", default=None
)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _seconds(timeout: str | float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, int | float):
        return float(timeout)
    return parse_duration(timeout).total_seconds()


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

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def to_json(self, *, body_limit: int | None = _REPORT_BODY_LIMIT) -> dict[str, Any]:
        """The action object as Logic Apps expressions see it (``actions('name')``)."""
        outputs = None
        if self.outputs is not None:
            outputs = self.outputs.to_json()
            if body_limit is not None and len(self.outputs.raw) > body_limit:
                outputs["body"] = {"$truncated": True, "size": len(self.outputs.raw)}
        elif self.value is not None:
            outputs = jsonable(self.value)
            if body_limit is not None and len(json.dumps(outputs)) > body_limit:
                outputs = {"$truncated": True, "repr": repr(self.value)[:2000]}
        extra: dict[str, Any] = {}
        if self.scope is not None:
            extra["scope"] = self.scope
        if self.code is not None:
            extra["code"] = self.code
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "inputs": jsonable(self.inputs),
            "outputs": outputs,
            "error": self.error,
            "startTime": _iso(self.started),
            "endTime": _iso(self.ended),
            "callbackUrl": self.callback_url,
            "deadline": self.deadline,
            "wait": self.wait_id,
            **extra,
        }


class Run:
    """One run of a workflow: started by a trigger callback or by ``workflow.start()``."""

    def __init__(self, workflow: Workflow, run_id: str, trigger: Outputs) -> None:
        self.workflow = workflow
        self.hub: HubClient = workflow.hub
        self.id = run_id
        self.trigger = trigger
        self.status = "Running"
        self.actions: dict[str, Action] = {}
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.started = time.time()
        self.ended: float | None = None
        #: A Response action's answer (``statusCode``, ``headers``, ``body``), if one ran.
        self.response: dict[str, Any] | None = None
        # result('<scope>') for finished Scope/If steps of a definition run.
        self._scope_results: dict[str, list[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] = self.hub.loop.create_future()
        self._observers: list[Callable[[Run], None]] = []

    def __repr__(self) -> str:
        from .render import run_text

        return run_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live widget in a notebook, with text and HTML for consoles, nbconvert, papermill.
        from .widgets import mimebundle

        return mimebundle(self, include, exclude)

    # -- state -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Cancelled", "TimedOut")

    def outputs(self, action: str) -> Any:
        """The outputs of a step (``outputs('<action>')`` in Logic Apps): an :class:`Outputs`
        for webhook and HTTP steps, the value for Compose and Python steps."""
        step = self.actions[action]
        return step.outputs if step.outputs is not None else step.value

    def observe(self, callback: Callable[[Run], None]) -> None:
        """Call ``callback(run)`` (on the engine loop) after every change of this run."""
        self._observers.append(callback)

    def unobserve(self, callback: Callable[[Run], None]) -> None:
        """Stop calling ``callback`` (e.g. when a view is closed)."""
        with contextlib.suppress(ValueError):
            self._observers.remove(callback)

    def _changed(self) -> None:
        self.hub.report(self)
        for callback in list(self._observers):
            try:
                callback(self)
            except Exception:  # an observer (a widget) must never break the run
                import logging

                logging.getLogger("hooknb.kernel").exception("run observer failed")

    def to_report(self) -> dict[str, Any]:
        result = jsonable(self.result)
        if len(json.dumps(result)) > _REPORT_BODY_LIMIT:
            result = {"$truncated": True, "repr": repr(self.result)[:2000]}
        return {
            "id": self.id,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "trigger": self.workflow.trigger.name if self.workflow.trigger else "manual",
            "actions": {name: action.to_json() for name, action in self.actions.items()},
            "result": result,
            "error": self.error,
            **({"response": jsonable(self.response)} if self.response is not None else {}),
        }

    # -- running ---------------------------------------------------------------------------

    def _start(self) -> None:
        # A run started from inside another run's step must not inherit that step's scope.
        context = contextvars.copy_context()
        context.run(current_scope.set, None)
        self._task = self.hub.loop.create_task(
            self._execute(), name=f"hooknb-run-{self.id}", context=context
        )
        self._task.add_done_callback(self._task_done)
        self._changed()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before it first ran never enters _execute: end the run here, or
        # `await run` would wait for ever.
        if not self.done:
            self._finish("Cancelled", error="the run was cancelled")

    async def _execute(self) -> None:
        try:
            value = self.workflow.fn(self)
            if inspect.isawaitable(value):
                value = await value
        except RunTerminated as exc:
            self._finish(exc.status, error=None if exc.status == "Succeeded" else str(exc))
        except ActionTimedOut as exc:
            self._finish("TimedOut", error=str(exc))
        except asyncio.CancelledError:
            self._finish("Cancelled", error="the run was cancelled")
        except Exception as exc:
            self._finish("Failed", error=f"{type(exc).__name__}: {exc}", tb=traceback.format_exc())
        else:
            self.result = value
            self._finish("Succeeded")

    def _finish(self, status: str, *, error: str | None = None, tb: str | None = None) -> None:
        self.status = status
        self.error = error
        self.traceback = tb
        self.ended = time.time()
        for action in self.actions.values():
            if action.status in ("Running", "Waiting"):
                action.status = "Cancelled" if status == "Cancelled" else status
                action.ended = self.ended
        if not self._done.done():
            self._done.set_result(None)
        self._changed()

    def cancel(self) -> bool:
        """Cancel the run; a waiting webhook step unsubscribes and the run ends Cancelled."""
        if self.done or self._task is None:
            return False
        if in_loop_thread(self.hub.loop):
            self._task.cancel()
        else:
            self.hub.loop.call_soon_threadsafe(self._task.cancel)
        return True

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends (works inside a kernel's running loop); returns the run.

        Also when the run has already ended: its last report then reaches the hub before
        this returns, so the hub's records (page, API) agree with the kernel.
        """
        self.hub.call(self._wait(), timeout)
        return self

    async def _wait(self) -> None:
        await asyncio.shield(self._done)
        await self.hub.flush()

    def __await__(self) -> Any:
        return self._await().__await__()

    async def _await(self) -> Run:
        if in_loop_thread(self.hub.loop):
            await self._wait()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._wait(), self.hub.loop))
        return self

    # -- the HTTP Webhook action -----------------------------------------------------------

    def _unique_action_name(self, name: str) -> str:
        if name not in self.actions:
            return name
        n = 2
        while f"{name}_{n}" in self.actions:
            n += 1
        return f"{name}_{n}"

    def context(self, *, callback_url: str | None = None, action: Any = None) -> Context:
        """The expression context of this run (trigger, actions so far, workflow)."""
        trigger_outputs = self.trigger.to_json()
        trigger_outputs["headers"] = self.trigger.headers
        return Context(
            callback_url=callback_url,
            trigger={
                "name": self.workflow.trigger.name if self.workflow.trigger else "manual",
                "outputs": trigger_outputs,
                "startTime": _iso(self.started),
                "clientTrackingId": self.id,
            },
            actions={name: a.to_json(body_limit=None) for name, a in self.actions.items()},
            action=action,
            parameters=dict(self.workflow.parameters),
            workflow={
                "name": self.workflow.name,
                "id": self.workflow.name,
                "type": "hooknb/workflow",
                # Not in the functions reference, but Logic Apps' own trigger example uses
                # workflow().endpoint; here it is the workflow's hub API URL.
                "endpoint": f"{self.hub.url}{self.workflow._path}",
                "run": {"name": self.id, "id": self.id, "type": "runs"},
            },
            results=self._scope_results,
        )

    async def webhook(
        self,
        name: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Unsubscribe = None,
        timeout: str | float | None = None,
        *,
        verify: Mapping[str, Any] | None = None,
    ) -> Outputs:
        """The HTTP Webhook action: subscribe with a fresh callback URL, pause, resume.

        Returns the callback's outputs (``.headers``, ``.body``, ``.status_code``,
        ``.queries``). ``unsubscribe`` is a request object or a callable of the subscribe
        response. ``timeout`` is an ISO 8601 duration or seconds (default: the hub's).
        ``verify`` requires a sender signature on the callback (see HttpWebhookTrigger).
        Raises :class:`ActionTimedOut` on timeout and :class:`ActionFailed` when subscribing
        fails; cancelling the run raises ``asyncio.CancelledError`` here.
        """
        if not isinstance(subscribe, Mapping):
            raise TypeError("subscribe must be an HTTP request object (a dict)")
        name = self._unique_action_name(name)
        timeout_s = _seconds(timeout)
        action = Action(
            name,
            "HttpWebhook",
            inputs={
                "subscribe": redact(subscribe),
                "unsubscribe": "<callable>" if callable(unsubscribe) else redact(unsubscribe or {}),
                "timeout": timeout,
            },
        )
        self.actions[name] = action
        self._changed()
        hub = self.hub
        later = callable(unsubscribe) or bool(
            unsubscribe and referenced_functions(unsubscribe) & _ACTION_FUNCTIONS
        )
        wait_id = None
        try:
            wait = await hub.request(
                "POST",
                f"hooknb/api/runs/{self.id}/waits",
                {"step": name, "client": hub.client_id, "timeout": timeout_s, "verify": verify},
                idempotent=False,
            )
            wait_id = wait["id"]
            action.wait_id = wait_id
            action.callback_url = wait["callbackUrl"]
            action.deadline = wait["deadline"]
            outcome = hub.expect_wait(wait_id)
            context = self.context(callback_url=wait["callbackUrl"])
            endpoints = self.workflow.endpoints
            subscribe_request = apply_endpoints(
                evaluate_template(dict(subscribe), context), endpoints
            )
            unsubscribe_request = None
            if unsubscribe and not later:
                unsubscribe_request = apply_endpoints(
                    evaluate_template(dict(unsubscribe), context),  # type: ignore[arg-type]
                    endpoints,
                )
            state = await hub.request(
                "POST",
                f"hooknb/api/waits/{wait_id}/subscribe",
                {
                    "subscribe": subscribe_request,
                    "unsubscribe": unsubscribe_request,
                    "unsubscribeLater": later,
                },
                idempotent=True,
                timeout=None,
            )
            if state["subscription"] is not None:
                action.subscription = Outputs.from_response(state["subscription"])
            if state["state"] == "failed":
                raise ActionFailed(name, f"subscribe failed: {state['error']}", state)
            if later and action.subscription is not None:
                # Registered before the step shows Waiting, so that a cancel or timeout from
                # then on always has an unsubscribe to make.
                await hub.request(
                    "PUT",
                    f"hooknb/api/waits/{wait_id}/unsubscribe",
                    {"unsubscribe": self._later_unsubscribe(action, unsubscribe, context)},
                )
            if state["state"] in ("waiting", "completed"):
                action.status = "Waiting"
                self.status = "Waiting"
                self._changed()
            event = await outcome
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
            if wait_id is not None and later and action.subscription is not None:
                # Cancelled while registering the deferred unsubscribe: make sure it is set.
                # A 409 says it already was, which is the usual case.
                with contextlib.suppress(HubRequestError):
                    await hub.request(
                        "PUT",
                        f"hooknb/api/waits/{wait_id}/unsubscribe",
                        {"unsubscribe": self._later_unsubscribe(action, unsubscribe, context)},
                    )
            if wait_id is not None:
                # The hub decides races: if a callback was taken first (its sender got 202),
                # the step succeeded with it; the run is still cancelled after the step.
                final = await _quietly(
                    hub.request("POST", f"hooknb/api/waits/{wait_id}/cancel", {"notify": False})
                )
                if final and final.get("state") == "completed" and final.get("callback"):
                    action.outputs = Outputs.from_callback(final["callback"], status_code=200)
                    action.status = "Succeeded"
                elif final and final.get("state") == "timedout":
                    action.status = "TimedOut"
            raise
        except ActionFailed as exc:
            action.status = "Failed"
            action.code = "ActionFailed"
            action.error = str(exc)
            action.ended = time.time()
            self._changed()
            raise
        except Exception as exc:
            # An expression that cannot be evaluated (or a hub error): the step fails, and
            # the callback URL already handed out must not stay open until its deadline.
            action.status = "Failed"
            action.code = "ActionFailed"
            action.error = f"{type(exc).__name__}: {exc}"
            action.ended = time.time()
            if wait_id is not None:
                await _quietly(
                    hub.request("POST", f"hooknb/api/waits/{wait_id}/cancel", {"notify": False})
                )
            self._changed()
            raise
        finally:
            # Parallel branches (definition runs) may still wait on other steps.
            if self.status == "Waiting" and not any(
                a is not action and a.status == "Waiting" for a in self.actions.values()
            ):
                self.status = "Running"
        action.ended = time.time()
        kind = event.get("event")
        if kind == "callback":
            action.outputs = Outputs.from_callback(event["callback"], status_code=200)
            action.status = "Succeeded"
            # Reported (and shown) just after the workflow resumes, not before: the report
            # serialises every step, which a resumed step should not wait for.
            self.hub.loop.call_soon(self._changed)
            return action.outputs
        if kind == "timedout":
            action.status = "TimedOut"
            action.code = "ActionTimedOut"
            action.error = f"no callback before the deadline ({_iso(action.deadline)})"
            self._changed()
            raise ActionTimedOut(name, timeout_s)
        action.status = "Cancelled"
        self._changed()
        raise asyncio.CancelledError(f"action {name!r} was cancelled from outside the kernel")

    def _later_unsubscribe(
        self, action: Action, unsubscribe: Unsubscribe, context: Context
    ) -> Mapping[str, Any] | None:
        assert action.subscription is not None
        if callable(unsubscribe):
            return unsubscribe(action.subscription)
        current = {
            "name": action.name,
            "inputs": action.inputs,
            "outputs": action.subscription.to_json(),
            "status": action.status,
            "startTime": _iso(action.started),
        }
        return apply_endpoints(
            evaluate_template(dict(unsubscribe or {}), replace(context, action=current)),
            self.workflow.endpoints,
        )

    # -- other steps: HTTP, Compose, Python, Terminate -------------------------------------

    async def http(
        self,
        name: str,
        request: Mapping[str, Any],
        *,
        timeout: str | float | None = None,
        async_pattern: bool = True,
    ) -> Outputs:
        """The HTTP action: the hub sends ``request`` and returns the response's outputs.

        ``request`` is a Logic Apps HTTP request object (``method``, ``uri``, ``headers``,
        ``queries``, ``body``, ``authentication``, ``retryPolicy``) whose strings may hold
        expressions. A ``202 Accepted`` with a ``location`` header is polled (GET, honouring
        ``retry-after``, default 1 s) until another status, unless ``async_pattern=False``
        (Logic Apps' ``DisableAsyncPattern``). ``timeout`` (ISO 8601 or seconds) bounds the
        whole call including polling; default: the hub's action timeout.

        Raises :class:`ActionFailed` when the final status is not 2xx (the outputs are on
        ``run.actions[name]`` and in ``exc.details``) or no response came, and
        :class:`ActionTimedOut` when ``timeout`` passes.
        """
        if not isinstance(request, Mapping):
            raise TypeError("request must be an HTTP request object (a dict)")
        name = self._unique_action_name(name)
        action = Action(name, "Http", inputs=redact(request))
        self.actions[name] = action
        self._changed()
        timeout_s = _seconds(timeout)
        try:
            evaluated = apply_endpoints(
                evaluate_template(dict(request), self.context()), self.workflow.endpoints
            )
            action.inputs = redact(evaluated)
            answer = await self.hub.request(
                "POST",
                f"hooknb/api/runs/{self.id}/http",
                {
                    "step": name,
                    "request": evaluated,
                    "timeout": timeout_s,
                    "asyncPattern": bool(async_pattern),
                },
                idempotent=False,
                timeout=None,
            )
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
            raise
        except HubRequestError as exc:
            action.ended = time.time()
            body = exc.body if isinstance(exc.body, dict) else {}
            if body.get("timedOut"):
                action.status, action.code = "TimedOut", "ActionTimedOut"
                action.error = body.get("error") or str(exc)
                self._changed()
                timed_out = ActionTimedOut(name, timeout_s)
                timed_out.args = (f"action {name!r} timed out: {action.error}",)
                raise timed_out from None
            action.status, action.code = "Failed", "ActionFailed"
            action.error = body.get("error") or str(exc)
            self._changed()
            raise ActionFailed(name, action.error, body) from None
        except Exception as exc:
            action.status, action.code = "Failed", "ActionFailed"
            action.error = f"{type(exc).__name__}: {exc}"
            action.ended = time.time()
            self._changed()
            raise
        action.ended = time.time()
        action.outputs = Outputs.from_response(answer)
        status = action.outputs.status_code or 0
        if 200 <= status <= 299:
            action.status = "Succeeded"
            self._changed()
            return action.outputs
        # Logic Apps: a final status outside 2xx fails the action (successors may run after
        # Failed); the response is still the action's outputs.
        action.status, action.code = "Failed", _status_code_name(status)
        action.error = f"HTTP {status}"
        self._changed()
        raise ActionFailed(name, f"the final response was HTTP {status}", action.outputs)

    def compose(self, name: str, inputs: Any) -> Any:
        """The Compose action: evaluate ``inputs`` (expressions included) and record the value
        as the step's outputs, for ``outputs('<name>')`` in later expressions."""
        name = self._unique_action_name(name)
        action = Action(name, "Compose", inputs=jsonable(inputs))
        self.actions[name] = action
        try:
            action.value = evaluate_template(inputs, self.context())
        except ExpressionError as exc:
            action.status, action.code = "Failed", "ActionFailed"
            action.error = f"ExpressionError: {exc}"
            action.ended = time.time()
            self._changed()
            raise ActionFailed(name, action.error) from exc
        action.status = "Succeeded"
        action.ended = time.time()
        self._changed()
        return action.value

    def record(self, name: str, value: Any, *, type: str = "Python") -> Any:
        """Record ``value`` as the outputs of a finished step named ``name`` (returned as is),
        so expressions in later steps can read it with ``outputs('<name>')``."""
        name = self._unique_action_name(name)
        now = time.time()
        self.actions[name] = Action(
            name, type, status="Succeeded", value=value, started=now, ended=now
        )
        self._changed()
        return value

    async def step(
        self, name: str, fn: Callable[[Run], Any], *, timeout: str | float | None = None
    ) -> Any:
        """Run ``fn(run)`` (sync or async) as a step named ``name`` and record what it returns.

        Exceptions fail the step and propagate. ``timeout`` bounds an async ``fn`` (the step
        then ends TimedOut and :class:`ActionTimedOut` is raised).
        """
        name = self._unique_action_name(name)
        action = Action(name, "Python", inputs={"function": getattr(fn, "__qualname__", repr(fn))})
        self.actions[name] = action
        self._changed()
        timeout_s = _seconds(timeout)
        try:
            value = fn(self)
            if inspect.isawaitable(value):
                async with asyncio.timeout(timeout_s):
                    value = await value
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
            raise
        except TimeoutError:
            action.status, action.code = "TimedOut", "ActionTimedOut"
            action.error = f"did not finish within {timeout}"
            action.ended = time.time()
            self._changed()
            raise ActionTimedOut(name, timeout_s) from None
        except RunTerminated:
            action.status = "Succeeded"
            action.ended = time.time()
            raise
        except Exception as exc:
            action.status, action.code = "Failed", "ActionFailed"
            action.error = f"{type(exc).__name__}: {exc}"
            action.ended = time.time()
            self._changed()
            raise
        action.value = value
        action.status = "Succeeded"
        action.ended = time.time()
        self._changed()
        return value

    def terminate(
        self,
        status: Literal["Succeeded", "Failed", "Cancelled"] = "Failed",
        *,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """End the run now with ``status`` (Logic Apps' Terminate action): raises
        :class:`RunTerminated`, which the engine turns into the run's final status."""
        canonical = next(
            (s for s in ("Succeeded", "Failed", "Cancelled") if s.lower() == str(status).lower()),
            None,
        )
        if canonical is None:
            raise ValueError("status must be Succeeded, Failed or Cancelled")
        raise RunTerminated(canonical, code, message)


_STATUS_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def _status_code_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"HTTP{status}")


async def _quietly(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception:
        import logging

        logging.getLogger("hooknb.kernel").warning(
            "hooknb: cancelling a wait failed", exc_info=True
        )
        return None


_DEFAULT: Any = object()


class Workflow:
    """A workflow: a Python function run once per trigger callback (or manual start).

    Create one with the :func:`workflow` decorator; from a Logic Apps definition with
    :meth:`from_definition`; or from declarative steps with :meth:`declare` and the
    ``add_*`` builders (which :meth:`to_definition` can export).
    """

    def __init__(
        self,
        fn: RunFunction,
        *,
        name: str | None = None,
        trigger: HttpWebhookTrigger | RequestTrigger | RecurrenceTrigger | None = None,
        hub: HubClient | None = None,
        parameters: Mapping[str, Any] | None = None,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.trigger = trigger
        self.parameters = dict(parameters or {})
        #: URI rewrites for this workflow's requests (see :mod:`hooknb.wdl.definitions`).
        self.endpoints: dict[str, str] = dict(endpoints or {})
        #: The WDL definition this workflow runs (None for a Python-function workflow).
        self.definition: Definition | None = None
        self._hub = hub
        self._record: dict[str, Any] | None = None
        self._observers: list[Callable[[Workflow, Run | None], None]] = []
        self._local_enabled = False
        self._recurrence_task: asyncio.Task[None] | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    # -- definitions -----------------------------------------------------------------------

    @classmethod
    def from_definition(
        cls,
        source: Any,
        parameters: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        hub: HubClient | None = None,
        endpoints: Mapping[str, str] | None = None,
    ) -> Workflow:
        """A workflow that runs a Logic Apps workflow definition (WDL 2016-06-01), unchanged.

        ``source`` is a definition dict, JSON text, a file path, the code-view wrapper
        ``{"definition": ..., "parameters": {...}}`` or an ARM template (see
        :func:`hooknb.wdl.definitions.load`); ``parameters`` gives parameter values by name.
        ``endpoints`` maps URIs (or URI prefixes ending in ``/``) in its requests to URLs to
        call instead, e.g. ``{"<RunbookWebhookUrl>": "http://127.0.0.1:8765/runbook"}``.
        The name defaults to the file's stem or the ARM resource's name.

        Raises:
            DefinitionError: if the definition cannot be read or is not one hooknb runs.
        """
        from ..wdl.definitions import Definition, load
        from .definition import run_definition

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
        )
        workflow._adopt(definition)
        return workflow

    @classmethod
    def declare(
        cls,
        name: str,
        *,
        trigger: HttpWebhookTrigger | RequestTrigger | RecurrenceTrigger | None = None,
        parameters: Mapping[str, Any] | None = None,
        hub: HubClient | None = None,
        endpoints: Mapping[str, str] | None = None,
    ) -> Workflow:
        """An empty workflow built from declarative steps: add them with :meth:`add_webhook`,
        :meth:`add_http`, :meth:`add_compose`, :meth:`add_condition`, :meth:`add_scope`...
        Unlike a Python function, it can be exported with :meth:`to_definition`.

        ``trigger`` defaults to a Request trigger named ``manual`` (runs start with
        ``.start()``). ``parameters`` become declared parameters with these default values.
        """
        from ..wdl.definitions import SCHEMA_URL, load
        from .definition import run_definition

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
        workflow = cls(run_definition, name=name, trigger=trigger, hub=hub)
        workflow._adopt(definition)
        return workflow

    def _adopt(self, definition: Definition) -> None:
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
        """Add a step given as its WDL action object (``{"type": "Compose", "inputs": ...}``).

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
            action,
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
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
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
        """Add a Scope step: its status comes from its actions (add more with ``scope=name``)."""
        action = {"type": "Scope", "actions": dict(actions or {})}
        return self.add_action(name, action, run_after=run_after, scope=scope, branch=branch)

    def add_step(
        self,
        name: str,
        fn: Callable[[Run], Any],
        *,
        timeout: str | None = None,
        run_after: Any = _DEFAULT,
        scope: str | None = None,
        branch: Literal["actions", "else"] = "actions",
    ) -> Workflow:
        """Add a Python step: ``fn(run)`` (sync or async); what it returns is the step's
        outputs (``outputs('<name>')`` in later expressions). A workflow with Python steps
        runs, but :meth:`to_definition` refuses it (naming the steps)."""
        if not callable(fn):
            raise TypeError("fn must be callable: fn(run) -> value")
        from ..wdl.definitions import PYTHON

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

    def remove_step(self, name: str) -> Workflow:
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

    def __repr__(self) -> str:
        from .render import workflow_text

        return workflow_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import mimebundle

        return mimebundle(self, include, exclude)

    def observe(self, callback: Callable[[Workflow, Run | None], None]) -> None:
        """Call ``callback(workflow, run)`` when a run starts, ``(workflow, None)`` when the
        trigger's state changes (on the engine loop)."""
        self._observers.append(callback)

    def unobserve(self, callback: Callable[[Workflow, Run | None], None]) -> None:
        """Stop calling ``callback`` (e.g. when a view is closed)."""
        with contextlib.suppress(ValueError):
            self._observers.remove(callback)

    def _changed(self, run: Run | None = None) -> None:
        for callback in list(self._observers):
            try:
                callback(self, run)
            except Exception:  # an observer (a widget) must never break the workflow
                import logging

                logging.getLogger("hooknb.kernel").exception("workflow observer failed")

    @property
    def hub(self) -> HubClient:
        if self._hub is None:
            self._hub = default_hub()
        return self._hub

    def _bind(self) -> HubClient:
        hub = self.hub
        hub.workflows[self.name] = self
        return hub

    @property
    def _path(self) -> str:
        return f"hooknb/api/workflows/{quote(self.name, safe='')}"

    # -- trigger ---------------------------------------------------------------------------

    def enable(self) -> Workflow:
        """Subscribe the trigger (Logic Apps: enabling the workflow). Returns the workflow."""
        return self.hub.call(self.enable_async())

    async def enable_async(self) -> Workflow:
        if self.trigger is None:
            raise HookNBError(
                f"workflow {self.name!r} has no trigger: start runs with .start(body=...)"
            )
        if isinstance(self.trigger, RequestTrigger | RecurrenceTrigger):
            return await self._enable_local()
        hub = self._bind()
        attach: dict[str, Any] = {"client": hub.client_id, "trigger": self.trigger.name}
        if getattr(self.trigger, "access_key_type", None):
            attach["keyType"] = self.trigger.access_key_type
        if getattr(self.trigger, "verify", None):
            attach["verify"] = self.trigger.verify
        record = await hub.request("PUT", self._path, attach)
        context = Context(
            callback_url=record["trigger"]["callbackUrl"],
            parameters=dict(self.parameters),
            workflow={
                "name": self.name,
                "id": self.name,
                "type": "hooknb/workflow",
                "endpoint": f"{hub.url}{self._path}",
            },
        )
        subscribe = apply_endpoints(
            evaluate_template(self.trigger.subscribe, context), self.endpoints
        )
        unsubscribe = (
            apply_endpoints(evaluate_template(self.trigger.unsubscribe, context), self.endpoints)
            if self.trigger.unsubscribe
            else None
        )
        self._record = await hub.request(
            "PUT",
            f"{self._path}/trigger",
            {"client": hub.client_id, "subscribe": subscribe, "unsubscribe": unsubscribe},
            timeout=None,
        )
        trigger = self._record["trigger"]
        self._changed()
        if trigger["state"] != "Enabled":
            raise HookNBError(f"enabling workflow {self.name!r} failed: {trigger['error']}")
        await hub.wait_connected()
        return self

    def disable(self) -> Workflow:
        """Unsubscribe the trigger; its callback URL answers 409 until enabled again."""
        return self.hub.call(self.disable_async())

    async def disable_async(self) -> Workflow:
        if isinstance(self.trigger, RequestTrigger | RecurrenceTrigger):
            self._local_enabled = False
            task, self._recurrence_task = self._recurrence_task, None
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self._changed()
            return self
        hub = self._bind()
        self._record = await hub.request("DELETE", f"{self._path}/trigger", timeout=None)
        self._changed()
        return self

    @property
    def callback_url(self) -> str | None:
        """The trigger's callback URL (stable across disable/enable), once enabled."""
        if self._record and self._record.get("trigger"):
            return self._record["trigger"]["callbackUrl"]
        return None

    @property
    def enabled(self) -> bool:
        if isinstance(self.trigger, RequestTrigger | RecurrenceTrigger):
            return self._local_enabled
        return bool(self._record and (self._record.get("trigger") or {}).get("state") == "Enabled")

    async def _enable_local(self) -> Workflow:
        """Request and Recurrence triggers: nothing to subscribe; a Recurrence schedules runs
        from this kernel."""
        hub = self._bind()
        trigger = self.trigger
        if isinstance(trigger, RecurrenceTrigger) and trigger.recurrence.problem:
            raise HookNBError(
                f"the Recurrence trigger of workflow {self.name!r} cannot be enabled: "
                f"{trigger.recurrence.problem}"
            )
        self._record = await hub.request("PUT", self._path, {"client": hub.client_id})
        await hub.wait_connected()
        if isinstance(trigger, RecurrenceTrigger) and self._recurrence_task is None:
            self._recurrence_task = hub.loop.create_task(
                self._recur(trigger.recurrence), name=f"hooknb-recurrence-{self.name}"
            )
        self._local_enabled = True
        self._changed()
        return self

    async def _recur(self, rec: Recurrence) -> None:
        now = datetime.now(UTC)
        origin = rec.start or now
        index = rec.next_index(origin, now)
        fired = 0
        while True:
            at = rec.occurrence(origin, index)
            if rec.end is not None and at > rec.end:
                break
            if rec.count is not None and fired >= rec.count:
                break
            await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
            try:
                await self.start_async()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "hooknb: recurrence of %r could not start a run", self.name, exc_info=True
                )
            fired += 1
            # Ticks missed while the loop was busy are skipped, not run in a burst.
            index = max(index + 1, rec.next_index(origin, datetime.now(UTC)))
        self._local_enabled = False
        self._recurrence_task = None
        self._changed()

    def refresh(self) -> dict[str, Any]:
        """Read the workflow's record from the hub (trigger state, subscription, calls)."""
        self._record = self.hub.call(self.hub.request("GET", self._path))
        return self._record

    # -- runs ------------------------------------------------------------------------------

    def start(
        self,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        queries: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Run:
        """Start a run by hand with these trigger outputs (the portal's "Run trigger").

        Returns at once; the run proceeds on the engine loop. ``run.wait()`` blocks.
        """
        return self.hub.call(
            self.start_async(body, headers=headers, queries=queries, content_type=content_type)
        )

    async def start_async(
        self,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        queries: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Run:
        hub = self._bind()
        request: dict[str, Any] = {
            "client": hub.client_id,
            "headers": dict(headers or {}),
            "queries": dict(queries or {}),
        }
        if isinstance(body, bytes):
            request["body"] = encode_wire_body(body)
            request["contentType"] = content_type or "application/octet-stream"
        elif isinstance(body, str) and content_type is None:
            request["body"] = encode_wire_body(body)
            request["contentType"] = "text/plain; charset=utf-8"
        elif body is not None:
            request["body"] = body
            if content_type:
                request["contentType"] = content_type
        created = await hub.request("POST", f"{self._path}/runs", request, idempotent=False)
        run = Run(self, created["run"], Outputs.from_callback(created["callback"]))
        hub.adopt_run(run)
        return run

    @property
    def runs(self) -> list[Run]:
        """This process's runs of the workflow, newest last."""
        return self.hub.runs_of(self.name)


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
        from datetime import timedelta

        return format_duration(timedelta(seconds=value))
    return value


@overload
def workflow(fn: RunFunction, /) -> Workflow: ...
@overload
def workflow(
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: HubClient | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Callable[[RunFunction], Workflow]: ...


def workflow(
    fn: RunFunction | None = None,
    /,
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: HubClient | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Workflow | Callable[[RunFunction], Workflow]:
    """Decorate ``async def name(run)`` to make a workflow (``@hooknb.workflow(trigger=...)``).

    The function's name is the workflow's name unless ``name`` is given. Without a trigger,
    the workflow is started by hand with ``.start(body=...)``.
    """

    def wrap(function: RunFunction) -> Workflow:
        return Workflow(function, name=name, trigger=trigger, hub=hub, parameters=parameters)

    return wrap(fn) if fn is not None else wrap
