"""Workflows and runs: the code-first HTTP Webhook trigger and action.

A :class:`Workflow` wraps a Python function. Each run is an asyncio task on the engine loop;
``await run.webhook(...)`` is the HTTP Webhook action: the hub makes a callback URL and the
subscribe call, the task pauses, and it resumes with the callback's outputs (or raises
:class:`ActionTimedOut`, or is cancelled). The hub, not the kernel, owns the subscription: it
unsubscribes on success, cancel and timeout even if this kernel is gone by then.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, overload
from urllib.parse import quote

from ..server.outbound import redact
from ..wdl import Context, evaluate_template, referenced_functions
from ..wdl.durations import parse_duration
from .aio import in_loop_thread
from .client import Hub, default_hub
from .errors import ActionFailed, ActionTimedOut, HookNBError
from .outputs import Outputs, jsonable

RunFunction = Callable[["Run"], Any]
Unsubscribe = Mapping[str, Any] | Callable[[Outputs], Mapping[str, Any] | None] | None

_REPORT_BODY_LIMIT = 64 * 1024
_ACTION_FUNCTIONS = {"action", "actionbody", "actionoutputs"}


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


class HttpWebhookTrigger:
    """The HTTP Webhook trigger: ``enable()`` subscribes with the callback URL, ``disable()``
    unsubscribes; every POST to the callback URL starts a run.

    ``subscribe``/``unsubscribe`` are Logic Apps HTTP request objects (``method``, ``uri``,
    ``headers``, ``body``, ``queries``, ``authentication``, ``retryPolicy``); their strings may
    hold expressions such as ``@{listCallbackUrl()}``.
    """

    type = "HttpWebhook"

    def __init__(
        self,
        subscribe: Mapping[str, Any],
        unsubscribe: Mapping[str, Any] | None = None,
        *,
        name: str = "HTTP_Webhook",
    ) -> None:
        if not isinstance(subscribe, Mapping) or not (subscribe.get("uri") or subscribe.get("url")):
            raise ValueError("subscribe must be an HTTP request object with a 'uri'")
        if unsubscribe is not None and not isinstance(unsubscribe, Mapping):
            raise ValueError("unsubscribe must be an HTTP request object (or {} / None)")
        self.subscribe = dict(subscribe)
        self.unsubscribe = dict(unsubscribe) if unsubscribe else None
        self.name = name

    def __repr__(self) -> str:
        uri = self.subscribe.get("uri") or self.subscribe.get("url")
        method = self.subscribe.get("method", "POST")
        return f"HttpWebhookTrigger({self.name!r}, subscribe={method} {uri})"

    def to_definition(self) -> dict[str, Any]:
        """The Logic Apps trigger object."""
        inputs: dict[str, Any] = {
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe or {},
        }
        return {"type": self.type, "inputs": inputs}


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
        }


class Run:
    """One run of a workflow: started by a trigger callback or by ``workflow.start()``."""

    def __init__(self, workflow: Workflow, run_id: str, trigger: Outputs) -> None:
        self.workflow = workflow
        self.hub: Hub = workflow.hub
        self.id = run_id
        self.trigger = trigger
        self.status = "Running"
        self.actions: dict[str, Action] = {}
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.started = time.time()
        self.ended: float | None = None
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

    def outputs(self, action: str) -> Outputs | None:
        """The outputs of a step (``outputs('<action>')`` in Logic Apps)."""
        return self.actions[action].outputs

    def observe(self, callback: Callable[[Run], None]) -> None:
        """Call ``callback(run)`` (on the engine loop) after every change of this run."""
        self._observers.append(callback)

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
        }

    # -- running ---------------------------------------------------------------------------

    def _start(self) -> None:
        self._task = self.hub.loop.create_task(self._execute(), name=f"hooknb-run-{self.id}")
        self._changed()

    async def _execute(self) -> None:
        try:
            value = self.workflow.fn(self)
            if inspect.isawaitable(value):
                value = await value
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
        """Block until the run ends (works inside a kernel's running loop); returns the run."""
        if not self.done or not self._done.done():
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
                "run": {"name": self.id, "id": self.id, "type": "runs"},
            },
        )

    async def webhook(
        self,
        name: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Unsubscribe = None,
        timeout: str | float | None = None,
    ) -> Outputs:
        """The HTTP Webhook action: subscribe with a fresh callback URL, pause, resume.

        Returns the callback's outputs (``.headers``, ``.body``, ``.status_code``,
        ``.queries``). ``unsubscribe`` is a request object or a callable of the subscribe
        response. ``timeout`` is an ISO 8601 duration or seconds (default: the hub's).
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
                {"step": name, "client": hub.client_id, "timeout": timeout_s},
                idempotent=False,
            )
            wait_id = wait["id"]
            action.wait_id = wait_id
            action.callback_url = wait["callbackUrl"]
            action.deadline = wait["deadline"]
            outcome = hub.expect_wait(wait_id)
            context = self.context(callback_url=wait["callbackUrl"])
            subscribe_request = evaluate_template(dict(subscribe), context)
            unsubscribe_request = None
            if unsubscribe and not later:
                unsubscribe_request = evaluate_template(dict(unsubscribe), context)  # type: ignore[arg-type]
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
            if state["state"] in ("waiting", "completed"):
                action.status = "Waiting"
                self.status = "Waiting"
                self._changed()
            if later and action.subscription is not None:
                await hub.request(
                    "PUT",
                    f"hooknb/api/waits/{wait_id}/unsubscribe",
                    {"unsubscribe": self._later_unsubscribe(action, unsubscribe, context)},
                )
            event = await outcome
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
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
            action.error = str(exc)
            action.ended = time.time()
            self._changed()
            raise
        finally:
            if self.status == "Waiting":
                self.status = "Running"
        action.ended = time.time()
        kind = event.get("event")
        if kind == "callback":
            action.outputs = Outputs.from_callback(event["callback"], status_code=200)
            action.status = "Succeeded"
            self._changed()
            return action.outputs
        if kind == "timedout":
            action.status = "TimedOut"
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
        return evaluate_template(dict(unsubscribe or {}), replace(context, action=current))


async def _quietly(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception:
        import logging

        logging.getLogger("hooknb.kernel").warning(
            "hooknb: cancelling a wait failed", exc_info=True
        )
        return None


class Workflow:
    """A workflow: a Python function run once per trigger callback (or manual start).

    Create one with the :func:`workflow` decorator.
    """

    def __init__(
        self,
        fn: RunFunction,
        *,
        name: str | None = None,
        trigger: HttpWebhookTrigger | None = None,
        hub: Hub | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.trigger = trigger
        self.parameters = dict(parameters or {})
        self._hub = hub
        self._record: dict[str, Any] | None = None
        self._observers: list[Callable[[Workflow, Run | None], None]] = []
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

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

    def _changed(self, run: Run | None = None) -> None:
        for callback in list(self._observers):
            try:
                callback(self, run)
            except Exception:  # an observer (a widget) must never break the workflow
                import logging

                logging.getLogger("hooknb.kernel").exception("workflow observer failed")

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = default_hub()
        return self._hub

    def _bind(self) -> Hub:
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
        hub = self._bind()
        record = await hub.request(
            "PUT", self._path, {"client": hub.client_id, "trigger": self.trigger.name}
        )
        context = Context(
            callback_url=record["trigger"]["callbackUrl"],
            parameters=dict(self.parameters),
            workflow={"name": self.name, "id": self.name, "type": "hooknb/workflow"},
        )
        subscribe = evaluate_template(self.trigger.subscribe, context)
        unsubscribe = (
            evaluate_template(self.trigger.unsubscribe, context)
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
        return bool(self._record and (self._record.get("trigger") or {}).get("state") == "Enabled")

    def refresh(self) -> dict[str, Any]:
        """Read the workflow's record from the hub (trigger state, subscription, calls)."""
        self._record = self.hub.call(self.hub.request("GET", self._path))
        return self._record

    # -- runs ------------------------------------------------------------------------------

    @overload
    def start(
        self,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        queries: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Run: ...
    @overload
    def start(
        self,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        queries: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Run: ...

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
            request["body"] = {"encoding": "base64", "data": base64.b64encode(body).decode()}
            request["contentType"] = content_type or "application/octet-stream"
        elif isinstance(body, str) and content_type is None:
            request["body"] = {"encoding": "utf-8", "data": body}
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


@overload
def workflow(fn: RunFunction, /) -> Workflow: ...
@overload
def workflow(
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: Hub | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Callable[[RunFunction], Workflow]: ...


def workflow(
    fn: RunFunction | None = None,
    /,
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: Hub | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Workflow | Callable[[RunFunction], Workflow]:
    """Decorate ``async def name(run)`` to make a workflow (``@hooknb.workflow(trigger=...)``).

    The function's name is the workflow's name unless ``name`` is given. Without a trigger,
    the workflow is started by hand with ``.start(body=...)``.
    """

    def wrap(function: RunFunction) -> Workflow:
        return Workflow(function, name=name, trigger=trigger, hub=hub, parameters=parameters)

    return wrap(fn) if fn is not None else wrap
