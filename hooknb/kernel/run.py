"""A run of a workflow: its state, its reports to the hub, waiting for it and cancelling it.

Each run is an asyncio task on the engine loop (see :mod:`hooknb.kernel.aio`) that calls the
workflow's function with the run. The steps it makes (``await run.webhook(...)`` and the other
kinds, :mod:`hooknb.kernel.steps`) are recorded in ``run.actions``; every change is reported
to the hub (coalesced) and passed to observers such as the live views.
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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import ActionTimedOut, RunTerminated
from ..jsonsafe import truncated_marker
from ..protocol import FINISHED_RUN_STATUSES, RunReport
from ..wdl import Context
from .action import (
    REPORT_BODY_LIMIT,
    Action,
    ActionObjects,
    current_scope,
    expression_scope,
    iso_time,
)
from .aio import in_loop_thread
from .client import HubClient
from .history import History, flow
from .outputs import Outputs, jsonable
from .steps import Steps
from .triggers import Trigger

if TYPE_CHECKING:
    from ..wdl.definitions import Definition

__all__ = ["REPORT_LIMIT", "Host", "Run", "RunFunction", "RunOwner", "ServerRun"]

log = logging.getLogger("hooknb.kernel")

#: Largest run report (bytes of JSON) the kernel sends: far below what the hub accepts.
REPORT_LIMIT = 4 * 1024 * 1024

#: A workflow's function: called with each run; may be ``async``; returns the run's result.
RunFunction = Callable[["Run"], Any]
#: Where a workflow's runs run: in this process, or in the server (definitions only).
Host = Literal["kernel", "server"]


def _report_value(value: Any, limit: int) -> Any:
    """A run's result or response as reports carry it: JSON-safe, depth-bounded, and cut
    at ``limit`` bytes of JSON."""
    shown = jsonable(value)
    if shown is None or isinstance(shown, bool | int | float):
        return shown
    text = shown if isinstance(shown, str) else json.dumps(shown)
    if len(text) <= max(limit, 64):
        return shown
    return truncated_marker(text, 2000)


def _tracking_id(headers: Mapping[str, str], run_id: str) -> str:
    """A sender's ``x-ms-client-tracking-id``, else the run's id, as the hub keeps it."""
    value = headers.get("x-ms-client-tracking-id", "").strip()[:256]
    if value and not any(ord(c) < 32 or ord(c) == 127 for c in value):
        return value
    return run_id


class RunOwner(Protocol):
    """What a run uses of its workflow (a :class:`hooknb.Workflow`).

    Declared here so that runs need not import the workflow module, which makes runs.
    """

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> RunFunction: ...
    @property
    def hub(self) -> HubClient: ...
    @property
    def trigger(self) -> Trigger | None: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...
    @property
    def endpoints(self) -> Mapping[str, str]: ...
    @property
    def definition(self) -> Definition | None: ...
    @property
    def _path(self) -> str: ...
    def _changed(self, run: Run | None = None) -> None: ...
    def _trigger_outputs(self, callback: Any) -> Outputs: ...


def _current_task(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
    """The task running now on ``loop``'s thread, if any (None from another thread)."""
    return asyncio.current_task(loop) if in_loop_thread(loop) else None


class Run(Steps):
    """One run of a workflow: started by a trigger callback or by ``workflow.start()``.

    Its steps are the methods of :class:`~hooknb.kernel.steps.Steps` (``webhook``, ``http``,
    ``compose``, ``step``, ``record``, ``terminate``).
    """

    def __init__(
        self,
        workflow: RunOwner,
        run_id: str,
        trigger: Outputs,
        *,
        history: History | None = None,
        started: float | None = None,
    ) -> None:
        self.workflow = workflow
        self.hub: HubClient = workflow.hub
        self.id = run_id
        self.trigger = trigger
        self.status = "Running"
        self.actions: dict[str, Action] = {}
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.started = started or time.time()
        #: How many times a kernel adopted this run after its kernel was gone (0: a new run).
        self.replays = 0
        self._history = history
        self._asked = 0
        # Set when another kernel adopted this run: this copy stops without reporting.
        self._fenced = False
        self.ended: float | None = None
        #: A Response action's answer (``statusCode``, ``headers``, ``body``), if one ran.
        self.response: dict[str, Any] | None = None
        # result('<scope>') for finished Scope/If steps of a definition run.
        self._scope_results: dict[str, list[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] = self.hub.loop.create_future()
        self._observers: list[Callable[[Run], None]] = []

    def __repr__(self) -> str:
        # The views are imported when a run is shown, not when runs are made.
        from .render import run_text

        return run_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live widget in a notebook, with text and HTML for consoles, nbconvert, papermill.
        from .widgets import run_bundle

        return run_bundle(self, include, exclude)

    # -- state -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES

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
        if not self._fenced:
            self.hub.report(self)
        for callback in list(self._observers):
            try:
                callback(self)
            except Exception:  # an observer (a widget) must never break the run
                log.exception("run observer failed")

    def to_report(self) -> RunReport:
        """The run as the hub records it (``api/sync``): status, times, every step, result.

        Always accepted by the hub: nothing in it is deeper than ``jsonsafe.MAX_DEPTH``
        levels, each body, value and text is cut at ``REPORT_BODY_LIMIT`` bytes, and the
        whole stays under :data:`REPORT_LIMIT` (bodies cut shorter, then steps' details left
        out, when many steps would make it larger). Secure inputs and outputs are left out.
        It never raises: a run whose report cannot be made still reports its status.
        """
        try:
            for body_limit in (REPORT_BODY_LIMIT, 1024, 0):
                report = self._report(body_limit)
                if len(json.dumps(report)) <= REPORT_LIMIT:
                    return report
        except Exception as exc:  # a value no JSON form could be made of: report the status
            log.exception("hooknb: the report of run %s could not be made", self.id)
            return self._bare_report(f"the run's report could not be made: {exc!r}")
        return self._bare_report(
            f"the run's {len(self.actions):,} steps are too many to report (the kernel has them)"
        )

    def _report(self, body_limit: int) -> RunReport:
        if body_limit:
            actions = {name: a.to_report(body_limit) for name, a in self.actions.items()}
        else:  # only what a step is: its name, type, status and times
            actions = {
                name: {
                    key: value
                    for key, value in a.to_report(64).items()
                    if key not in ("inputs", "outputs")
                }
                for name, a in self.actions.items()
            }
        report = self._bare_report(None)
        report["actions"] = actions
        report["result"] = _report_value(self.result, body_limit)
        if self.response is not None:
            report["response"] = _report_value(self.response, body_limit)
        return report

    def _bare_report(self, problem: str | None) -> RunReport:
        error = self.error
        if error is not None and len(error) > REPORT_BODY_LIMIT:
            error = error[:REPORT_BODY_LIMIT] + f"... ({len(error):,} characters)"
        report: RunReport = {
            "id": self.id,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "trigger": self.workflow.trigger.name if self.workflow.trigger else "manual",
            "actions": {},
            "result": None,
            "error": error,
        }
        if problem is not None:
            report["reportProblem"] = problem
        return report

    def context(self, *, callback_url: str | None = None, action: Any = None) -> Context:
        """The expression context of this run (trigger, actions so far, workflow)."""
        workflow = self.workflow
        trigger_outputs = self.trigger.to_json()
        trigger_outputs["headers"] = self.trigger.headers
        context = Context(
            callback_url=callback_url,
            trigger={
                "name": workflow.trigger.name if workflow.trigger else "manual",
                "outputs": trigger_outputs,
                "startTime": iso_time(self.started),
                # The sender's x-ms-client-tracking-id, else the run's id (as the hub has it).
                "clientTrackingId": _tracking_id(self.trigger.headers, self.id),
            },
            actions=ActionObjects(self.actions),
            action=action,
            parameters=dict(workflow.parameters),
            workflow={
                "name": workflow.name,
                "id": workflow.name,
                "type": "hooknb/workflow",
                # Not in the functions reference (https://learn.microsoft.com/azure/
                # logic-apps/workflow-definition-language-functions-reference), but Logic
                # Apps' own trigger example uses workflow().endpoint; here it is the
                # workflow's hub API URL.
                "endpoint": f"{self.hub.url}{workflow._path}",
                "run": {"name": self.id, "id": self.id, "type": "runs"},
            },
            results=self._scope_results,
        )
        # A definition run's variables and loops (set by its interpreter, per loop iteration).
        extend = expression_scope.get()
        return context if extend is None else extend(context)

    @property
    def _endpoints(self) -> Mapping[str, str]:
        return self.workflow.endpoints

    # -- running ---------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the run's task on the engine loop (the hub client calls this once it has
        registered the run), then tell the workflow's observers."""
        # A run started from inside another run's step must not inherit that step's scope.
        context = contextvars.copy_context()
        context.run(current_scope.set, None)
        self._task = self.hub.loop.create_task(
            self._execute(), name=f"hooknb-run-{self.id}", context=context
        )
        self._task.add_done_callback(self._task_done)
        self._changed()
        self.workflow._changed(self)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before it first ran never enters _execute: end the run here, or
        # `await run` would wait for ever.
        if not self.done:
            self._finish("Cancelled", error="the run was cancelled")
        # A finished run keeps none of its task (its coroutine, context and their objects):
        # the kernel may keep a thousand finished runs per workflow, and the garbage
        # collector walks every object they hold.
        self._task = None

    async def _execute(self) -> None:
        # The run's main flow of code: its first step opens no branch.
        flow.set((None, asyncio.current_task()))
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
        self.error = self.error if self._fenced else error
        self.traceback = tb
        self.ended = time.time()
        for action in self.actions.values():
            if action.status in ("Running", "Waiting"):
                action.status = "Cancelled" if status == "Cancelled" else status
                action.ended = self.ended
        if not self._done.done():
            self._done.set_result(None)
        self._changed()

    def _fence(self) -> None:
        """Another kernel adopted this run (this one was thought gone): stop this copy at
        once, reporting nothing, and say so here."""
        if self._fenced or self.done:
            return
        self._fenced = True
        self.error = "another kernel adopted this run; it goes on there"
        if self._task is not None:
            self._task.cancel()

    def cancel(self, timeout: float | None = 30.0) -> bool:
        """Cancel the run and return once it has ended: a waiting webhook step unsubscribes and
        the run is ``Cancelled`` when this returns (or ended otherwise just before). False if it
        had already ended. Waits like :meth:`wait` (``TimeoutError`` after ``timeout`` s).

        It waits so that the next line of a cell sees the run's final state; callbacks that
        must not block (widget buttons, the hub's cancel events) use :meth:`_request_cancel`.
        """
        if not self._request_cancel():
            return False
        if self._task is not None and self._task is _current_task(self.hub.loop):
            return True  # the run cancels itself: it ends when its code gives way
        self.wait(timeout)
        return True

    def _request_cancel(self) -> bool:
        """Ask the run to stop without waiting for it (safe in any callback on the loop)."""
        if not self.done and self._task is None and self.status == "Queued":
            # Waiting to start (the hub holds it back: a concurrency limit): cancelled there.
            self._call_soon(self._cancel_held())
            return True
        if self.done or self._task is None:
            return False
        if in_loop_thread(self.hub.loop):
            self._task.cancel()
        else:
            self.hub.loop.call_soon_threadsafe(self._task.cancel)
        return True

    def _call_soon(self, coro: Any) -> None:
        if in_loop_thread(self.hub.loop):
            self.hub.loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, self.hub.loop)

    async def _cancel_held(self) -> None:
        try:
            await self.hub.request("POST", f"hooknb/api/runs/{self.id}/cancel", {})
        except Exception:  # already started (then it is cancelled as a running run) or gone
            log.warning(
                "hooknb: cancelling run %s before it started failed", self.id, exc_info=True
            )
            return
        if self._task is None and not self.done:
            self.hub.unhold_run(self)
            self._finish("Cancelled", error="the run was cancelled before it started")

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends (works inside a kernel's running loop); returns the run.

        Also when the run has already ended: its last report then reaches the hub before
        this returns, so the hub's records (page, API) agree with the kernel. After
        ``timeout`` seconds it raises ``TimeoutError`` naming the run, its status and the step
        it waits on (the run goes on).
        """
        try:
            self.hub.call(self._wait(), timeout)
        except TimeoutError:
            raise TimeoutError(self._still_going(timeout)) from None
        return self

    def _still_going(self, timeout: float | None) -> str:
        """What a ``TimeoutError`` says: which run, how it stands, and what it waits on."""
        steps = [a for a in self.actions.values() if a.status in ("Waiting", "Running")]
        on = ", ".join(f"step {a.name!r} ({a.status})" for a in steps) or "no step"
        return (
            f"run {self.id} of {self.workflow.name!r} is still {self.status} after "
            f"{timeout:g} s, on {on}"
        )

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


class ServerRun(Run):
    """A run of a workflow the server runs (in its definitions worker): this process shows it
    live, from the worker's reports, and can wait for it or cancel it, but does not run it."""

    _loading: asyncio.Task[None] | None = None
    _held: Mapping[str, Any] | None = None

    def _start(self) -> None:
        self.workflow._changed(self)

    def _on_report(self, report: Mapping[str, Any]) -> None:
        """A report of the worker: applied once the run's trigger outputs are here, so that
        code waiting for a status (``until(run.status == "Waiting")``) never sees the run
        without them (it showed an empty trigger body, depending on which came first)."""
        loading = self._loading
        if loading is None or loading.done():
            self._apply_report(report)
            return
        first = self._held is None
        self._held = report  # the latest wins: reports are whole states
        if first:

            def apply(_task: Any) -> None:
                held, self._held = self._held, None
                if held is not None:
                    self._apply_report(held)

            loading.add_done_callback(apply)

    def _changed(self) -> None:
        for callback in list(self._observers):
            try:
                callback(self)
            except Exception:  # an observer (a widget) must never break the run
                log.exception("run observer failed")

    def _apply_report(self, report: Mapping[str, Any]) -> None:
        """The run as the worker reported it last."""
        self.status = str(report.get("status") or self.status)
        self.started = report.get("started") or self.started
        self.ended = report.get("ended")
        actions = report.get("actions")
        if isinstance(actions, Mapping):
            for name, shown in actions.items():
                if not isinstance(shown, Mapping):
                    continue
                action = Action.from_json(shown)
                known = self.actions.get(str(name))
                if known is None:
                    self.actions[str(name)] = action
                else:  # the same object, updated: views and code may hold it
                    known.__dict__.update(action.__dict__)
        self.result = report.get("result")
        self.error = report.get("error")
        self.response = report.get("response")
        if self.done and not self._done.done():
            self._done.set_result(None)
        self._changed()
        if self.done:
            self.hub.retire_run(self)  # its server has the run: this is only its view

    def _request_cancel(self) -> bool:
        """Ask the server to cancel the run (its worker ends it; a waiting step unsubscribes)."""
        if self.done:
            return False

        async def cancel() -> None:
            await self.hub.request("POST", f"hooknb/api/runs/{self.id}/cancel", {})

        if in_loop_thread(self.hub.loop):
            self.hub.loop.create_task(cancel())
        else:
            asyncio.run_coroutine_threadsafe(cancel(), self.hub.loop)
        return True

    async def _wait(self) -> None:
        await asyncio.shield(self._done)
        if self._loading is not None:
            await self._loading

    async def _load_trigger(self) -> None:
        """The trigger outputs of a run the worker started (reports do not carry them)."""
        try:
            shown = await self.hub.request("GET", f"hooknb/api/runs/{self.id}")
        except Exception:  # a view without its trigger outputs is still a view
            log.debug("hooknb: no trigger outputs for run %s", self.id, exc_info=True)
            return
        if shown.get("trigger"):
            self.trigger = self.workflow._trigger_outputs(shown["trigger"])
            self._changed()
