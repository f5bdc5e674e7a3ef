"""The step kinds of a run: HTTP Webhook, HTTP, Compose, Python steps, Terminate.

:class:`Steps` is the part of :class:`hooknb.Run` that runs steps; :mod:`hooknb.kernel.run`
holds the run's state, reports and lifecycle. Each step is recorded as an
:class:`~hooknb.kernel.action.Action` in ``run.actions`` and reported as it changes.

Requests are data (:mod:`hooknb.kernel.placeholders`): their strings are sent as they are;
only :data:`~hooknb.kernel.placeholders.CALLBACK_URL` and :func:`~hooknb.kernel.placeholders.expr`
are filled in, once. A definition's templates come here already in that form.

The HTTP Webhook step, in order (:meth:`Steps.webhook`): open a wait on the hub (it makes
the callback URL and the deadline), fill in the subscribe and unsubscribe requests with that
URL, have the hub subscribe, register a deferred unsubscribe (one that needs the subscribe
response), show the step Waiting, and await the outcome the hub sends over the push channel.
Cancelled, it cleans up; failed, it closes the wait so its URL does not stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Self

from ..errors import ActionFailed, ActionTimedOut, HookNBError, HubRequestError, RunTerminated
from ..http_model import redact
from ..protocol import OpenedWait, Wait, WaitOutcome, WaitState, WaitView
from ..wdl import Context
from ..wdl.definitions import apply_endpoints
from ..wdl.durations import parse_duration
from .action import Action, Secure, iso_time, secure_properties
from .history import (
    History,
    RecordedStep,
    StepPlace,
    decode_value,
    encode_value,
    flow,
)
from .outputs import Outputs
from .placeholders import functions_in, literal_callback_url_hint, resolve, shown_template

if TYPE_CHECKING:
    from .client import HubClient

__all__ = ["Steps", "Unsubscribe"]

#: A webhook step's unsubscribe: a request object, or a callable of the subscribe response.
Unsubscribe = Mapping[str, Any] | Callable[[Outputs], Mapping[str, Any] | None] | None

# An unsubscribe request that reads the step's own outputs can only be evaluated once the
# subscribe response is in.
_ACTION_FUNCTIONS = {"action", "actionbody", "actionoutputs"}
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
log = logging.getLogger("hooknb.kernel")


def _seconds(timeout: str | float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, int | float):
        return float(timeout)
    return parse_duration(timeout).total_seconds()


def _status_code_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"HTTP{status}")


async def _quietly(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception:
        log.warning("hooknb: cancelling a wait failed", exc_info=True)
        return None


@dataclass
class _WebhookWait:
    """A webhook step's wait on the hub, as its parts fill it in."""

    action: Action
    unsubscribe: Unsubscribe
    #: Whether the unsubscribe request is made from the subscribe response (once it is in).
    later: bool
    #: Whether the callback's credential headers are kept in the step's outputs.
    include_authorization_headers: bool = False
    #: The hub's id of the wait, once opened.
    id: str | None = None
    #: The expression context with the wait's callback URL, once the requests are made.
    context: Context | None = None


class Steps:
    """The step kinds of :class:`hooknb.Run` (a mixin: the run provides the state)."""

    # Provided by the run (hooknb.kernel.run.Run).
    id: str
    hub: HubClient
    status: str
    actions: dict[str, Action]
    #: The history a kernel that adopted this run replays against (None for a new run).
    _history: History | None
    #: How many steps the run has asked for (the next step's position).
    _asked: int
    #: Another kernel adopted the run: its steps leave the hub alone.
    _fenced: bool

    if TYPE_CHECKING:

        def context(self, *, callback_url: str | None = None, action: Any = None) -> Context: ...
        def _changed(self) -> None: ...
        @property
        def _endpoints(self) -> Mapping[str, str]: ...

    def _unique_action_name(self, name: str) -> str:
        if name not in self.actions:
            return name
        n = 2
        while f"{name}_{n}" in self.actions:
            n += 1
        return f"{name}_{n}"

    def _place(self, name: str) -> StepPlace:
        """Where the step ``name`` that the code asks for now stands (see
        :mod:`hooknb.kernel.history`); the current flow goes on from it."""
        after, owner = flow.get()
        task = asyncio.current_task()
        flow.set((name, task))
        place = StepPlace(self._asked, after, owner is not task)
        self._asked += 1
        return place

    def _recall(self, name: str, kind: str) -> tuple[str, RecordedStep | None, StepPlace]:
        """Name, place and look up (when replaying) the step the code asks for now.

        Raises:
            ReplayMismatch: the code asks for another step than the history holds here.
        """
        name = self._unique_action_name(name)
        place = self._place(name)
        recorded = self._history.match(name, kind, place) if self._history else None
        return name, recorded, place

    def _new_step(
        self, name: str, type: str, inputs: Any, secure: Secure = ()
    ) -> tuple[Action, RecordedStep | None, StepPlace]:
        """Record a new running step under a name not used yet in this run, and report it;
        with its recorded self when the run is being replayed."""
        properties = secure_properties(secure)
        name, recorded, place = self._recall(name, type)
        action = Action(name, type, inputs=inputs, secure=properties)
        self.actions[name] = action
        self._changed()
        return action, recorded, place

    def _remember(self, action: Action, place: StepPlace, value: Any) -> bool:
        """Queue a finished step's value for the run's history (sent with the next report);
        False when it is not JSON data and cannot be stored (the step runs again on replay)."""
        text = encode_value(value)
        if text is None:
            log.warning(
                "hooknb: step %r of run %s returned a %s, which is not JSON data: it cannot be "
                "stored, so if the kernel restarts this step runs again when the run is replayed",
                action.name,
                self.id,
                type(value).__name__,
            )
            return False
        self.hub.record_step(
            {
                "run": self.id,
                "step": action.name,
                "kind": action.type,
                **place.to_json(),
                "value": text,
                "started": action.started,
                "ended": action.ended,
            }
        )
        return True

    # -- the HTTP Webhook action -----------------------------------------------------------

    async def webhook(
        self,
        name: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Unsubscribe = None,
        timeout: str | float | None = None,
        *,
        verify: Mapping[str, Any] | None = None,
        include_authorization_headers: bool = False,
        secure: Secure = (),
    ) -> Outputs:
        """The HTTP Webhook action: subscribe with a fresh callback URL, pause, resume.

        ``subscribe`` is an HTTP request object (``method``, ``uri``, ``headers``, ``body``,
        ``queries``, ``authentication``, ``retryPolicy``), taken literally: put
        ``hooknb.CALLBACK_URL`` where the service expects the callback URL, and
        ``hooknb.expr(...)`` where an expression should be evaluated (see
        :mod:`hooknb.kernel.placeholders`). ``unsubscribe`` is another one, or a function of
        the subscribe response returning one. ``timeout`` is an ISO 8601 duration or seconds
        (default: the hub's). ``verify`` requires a sender signature on the callback (see
        HttpWebhookTrigger).

        Returns the callback's outputs (``.headers``, ``.body``, ``.status_code``,
        ``.queries``); the callback's ``Authorization``, ``Proxy-Authorization`` and
        ``Cookie`` headers are left out unless ``include_authorization_headers`` (Logic Apps'
        ``IncludeAuthorizationHeadersInOutputs``). ``secure`` (``"inputs"``, ``"outputs"`` or
        both) keeps them out of the run's reports and of every view, the hub's included: the
        subscribe and unsubscribe requests are the inputs; their responses and the callback
        are the outputs (Logic Apps' secure inputs and outputs). The run itself uses them as
        usual, and its history keeps them exactly.

        Raises :class:`ActionTimedOut` on timeout and :class:`ActionFailed` when subscribing
        fails; cancelling the run raises ``asyncio.CancelledError`` here.
        """
        if not isinstance(subscribe, Mapping):
            raise TypeError("subscribe must be an HTTP request object (a dict)")
        if hint := literal_callback_url_hint(subscribe):
            # Shown once per line of code (Python's warning filter), not once per run.
            warnings.warn(f"hooknb: step {name!r}: {hint}", UserWarning, stacklevel=2)
        timeout_s = _seconds(timeout)
        action, recorded, place = self._new_step(
            name,
            "HttpWebhook",
            {
                "subscribe": redact(shown_template(subscribe)),
                "unsubscribe": "<callable>"
                if callable(unsubscribe)
                else redact(shown_template(unsubscribe or {})),
                "timeout": timeout,
            },
            secure,
        )
        later = callable(unsubscribe) or bool(
            unsubscribe and functions_in(unsubscribe) & _ACTION_FUNCTIONS
        )
        wait = _WebhookWait(action, unsubscribe, later, include_authorization_headers)
        try:
            if recorded is None:
                outcome = await self._open_wait(wait, timeout_s, verify, place)
                state: Wait | None = None
            else:
                outcome, state = self._resume_wait(wait, recorded)
            if state is None or state["state"] in ("open", "subscribing"):
                subscribe_request, unsubscribe_request = self._webhook_requests(wait, subscribe)
                state = await self._subscribe(wait, subscribe_request, unsubscribe_request)
                register_later = later and action.subscription is not None
            else:
                if later:
                    # Only an unsubscribe made from the subscribe response reads it; building
                    # it (every step's JSON) was over half of re-attaching a wait on replay.
                    wait.context = self.context(callback_url=action.callback_url)
                if state["state"] == "failed":
                    raise ActionFailed(action.name, f"subscribe failed: {state['error']}", state)
                register_later = (
                    later and action.subscription is not None and state["unsubscribe"] == "pending"
                )
            if register_later:
                # Registered before the step shows Waiting, so that a cancel or timeout from
                # then on always has an unsubscribe to make.
                await self._register_later_unsubscribe(wait)
            if state["state"] in ("waiting", "completed") and not outcome.done():
                action.status = "Waiting"
                self.status = "Waiting"
                self._changed()
            event = await outcome
        except asyncio.CancelledError:
            await self._webhook_cancelled(wait)
            raise
        except ActionFailed as exc:
            self._step_failed(action, str(exc))
            raise
        except Exception as exc:
            # An expression that cannot be evaluated (or a hub error): the step fails, and
            # the callback URL already handed out must not stay open until its deadline.
            await self._webhook_failed(wait, exc)
            raise
        finally:
            # Parallel branches (definition runs) may still wait on other steps.
            if self.status == "Waiting" and not any(
                a is not action and a.status == "Waiting" for a in self.actions.values()
            ):
                self.status = "Running"
        return self._webhook_outcome(wait, event, timeout_s)

    def _resume_wait(
        self, wait: _WebhookWait, recorded: RecordedStep
    ) -> tuple[asyncio.Future[WaitOutcome], WaitState]:
        """Replay: the step's wait from the history (no second wait, no second subscribe).

        Returns the future of its outcome — already resolved when the outcome is in the
        history (a callback that came while no kernel ran the run resumes it at once) — and
        the wait's recorded state.
        """
        state = recorded.wait
        if state is None:
            raise ActionFailed(wait.action.name, "the run's history has no wait for this step")
        action = wait.action
        wait.id = action.wait_id = state["id"]
        action.callback_url = state["callbackUrl"]
        action.deadline = state["deadline"]
        action.started = recorded.started or action.started
        if state["subscription"] is not None:
            action.subscription = Outputs.from_response(state["subscription"])
        outcome = self.hub.expect_wait(state["id"])
        if outcome.done():
            return outcome, state
        if state["state"] == "completed":
            callback = state.get("callback")
            if callback is None:
                raise ActionFailed(action.name, "the run's history lost this step's callback")
            outcome.set_result({"event": "callback", "callback": callback})
        elif state["state"] == "timedout":
            outcome.set_result({"event": "timedout"})
        elif state["state"] == "cancelled":
            outcome.set_result({"event": "cancelled"})
        return outcome, state

    async def _open_wait(
        self,
        wait: _WebhookWait,
        timeout_s: float | None,
        verify: Mapping[str, Any] | None,
        place: StepPlace,
    ) -> asyncio.Future[WaitOutcome]:
        """Open the wait on the hub (the step joins the run's history there); return the
        future its outcome event will resolve."""
        hub, action = self.hub, wait.action
        record: OpenedWait = await hub.request(
            "POST",
            f"hooknb/api/runs/{self.id}/waits",
            {
                "step": action.name,
                "client": hub.client_id,
                "timeout": timeout_s,
                "verify": verify,
                # The hub's views hide these parts of the step too (its calls, its callback).
                **({"secure": sorted(action.secure)} if action.secure else {}),
                **place.to_json(),
            },
            idempotent=False,
        )
        wait.id = record["id"]
        action.wait_id = record["id"]
        action.callback_url = record["callbackUrl"]
        action.deadline = record["deadline"]
        return hub.expect_wait(record["id"])

    def _webhook_requests(
        self, wait: _WebhookWait, subscribe: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The subscribe request, and the unsubscribe request unless it is made later, with
        their placeholders filled in (``CALLBACK_URL`` is the wait's URL) and endpoints
        applied; the step's inputs show them as made (credentials masked)."""
        context = wait.context = self.context(callback_url=wait.action.callback_url)
        subscribe_request = apply_endpoints(resolve(subscribe, context), self._endpoints)
        unsubscribe_request = None
        if wait.unsubscribe and not wait.later:
            unsubscribe_request = apply_endpoints(
                resolve(wait.unsubscribe, context), self._endpoints
            )
        inputs = wait.action.inputs
        wait.action.inputs = {
            **inputs,
            "subscribe": redact(subscribe_request),
            **({"unsubscribe": redact(unsubscribe_request)} if unsubscribe_request else {}),
        }
        return subscribe_request, unsubscribe_request

    async def _subscribe(
        self,
        wait: _WebhookWait,
        subscribe_request: Mapping[str, Any],
        unsubscribe_request: Mapping[str, Any] | None,
    ) -> WaitView:
        """Have the hub subscribe; return the wait's state. Raises ActionFailed when the
        subscribe request failed for good."""
        action = wait.action
        state: WaitView = await self.hub.request(
            "POST",
            f"hooknb/api/waits/{wait.id}/subscribe",
            {
                "subscribe": subscribe_request,
                "unsubscribe": unsubscribe_request,
                "unsubscribeLater": wait.later,
            },
            idempotent=True,
            timeout=None,
        )
        # The hub reveals a secure step's response to the kernel running it: never the text.
        if isinstance(subscription := state["subscription"], Mapping):
            action.subscription = Outputs.from_response(subscription)
        if state["state"] == "failed":
            raise ActionFailed(action.name, f"subscribe failed: {state['error']}", state)
        return state

    async def _register_later_unsubscribe(self, wait: _WebhookWait) -> None:
        """Give the hub the unsubscribe request made from the subscribe response (a 409 says
        it has it already: a kernel before this one registered it)."""
        try:
            await self.hub.request(
                "PUT",
                f"hooknb/api/waits/{wait.id}/unsubscribe",
                {"unsubscribe": self._later_unsubscribe(wait)},
            )
        except HubRequestError as exc:
            if exc.status != 409:
                raise

    def _later_unsubscribe(self, wait: _WebhookWait) -> Mapping[str, Any] | None:
        action, unsubscribe = wait.action, wait.unsubscribe
        assert action.subscription is not None and wait.context is not None
        if callable(unsubscribe):
            # What the function returns is data too; CALLBACK_URL and expr() in it are filled.
            made = unsubscribe(action.subscription)
            return None if made is None else resolve(made, wait.context)
        current = {
            "name": action.name,
            "inputs": action.inputs,
            "outputs": action.subscription.to_json(),
            "status": action.status,
            "startTime": iso_time(action.started),
        }
        made_later: Mapping[str, Any] | None = apply_endpoints(
            resolve(unsubscribe or {}, replace(wait.context, action=current)), self._endpoints
        )
        return made_later

    async def _webhook_cancelled(self, wait: _WebhookWait) -> None:
        """The run was cancelled during the step: make sure the hub unsubscribes, and take a
        callback that won the race."""
        action, hub = wait.action, self.hub
        action.status = "Cancelled"
        action.ended = time.time()
        if self._fenced:
            return  # the wait is the adopting kernel's now
        if wait.id is not None and wait.later and action.subscription is not None:
            # Cancelled while registering the deferred unsubscribe: make sure it is set.
            # A 409 says it already was, which is the usual case.
            with contextlib.suppress(HubRequestError):
                await self._register_later_unsubscribe(wait)
        if wait.id is not None:
            # The hub decides races: if a callback was taken first (its sender got 202),
            # the step succeeded with it; the run is still cancelled after the step.
            final = await _quietly(
                hub.request("POST", f"hooknb/api/waits/{wait.id}/cancel", {"notify": False})
            )
            if final and final.get("state") == "completed" and final.get("callback"):
                action.outputs = Outputs.from_callback(
                    final["callback"],
                    status_code=200,
                    include_authorization_headers=wait.include_authorization_headers,
                )
                action.status = "Succeeded"
            elif final and final.get("state") == "timedout":
                action.status = "TimedOut"

    async def _webhook_failed(self, wait: _WebhookWait, exc: Exception) -> None:
        action = wait.action
        action.status = "Failed"
        action.code = "ActionFailed"
        action.error = f"{type(exc).__name__}: {exc}"
        action.ended = time.time()
        if wait.id is not None:
            await _quietly(
                self.hub.request("POST", f"hooknb/api/waits/{wait.id}/cancel", {"notify": False})
            )
        self._changed()

    def _webhook_outcome(
        self, wait: _WebhookWait, event: WaitOutcome, timeout_s: float | None
    ) -> Outputs:
        """The step's end from the hub's outcome event: the callback's outputs, or
        ActionTimedOut, or CancelledError (cancelled from outside the kernel)."""
        action = wait.action
        action.ended = time.time()
        kind = event.get("event")
        if kind == "callback":
            action.outputs = Outputs.from_callback(
                event["callback"],
                status_code=200,
                include_authorization_headers=wait.include_authorization_headers,
            )
            action.status = "Succeeded"
            # Reported (and shown) just after the workflow resumes, not before: the report
            # serialises every step, which a resumed step should not wait for.
            self.hub.loop.call_soon(self._changed)
            return action.outputs
        if kind == "timedout":
            action.status = "TimedOut"
            action.code = "ActionTimedOut"
            action.error = f"no callback before the deadline ({iso_time(action.deadline)})"
            self._changed()
            raise ActionTimedOut(action.name, timeout_s)
        action.status = "Cancelled"
        self._changed()
        raise asyncio.CancelledError(
            f"action {action.name!r} was cancelled from outside the kernel"
        )

    def _step_failed(self, action: Action, error: str) -> None:
        action.status, action.code = "Failed", "ActionFailed"
        action.error = error
        action.ended = time.time()
        self._changed()

    # -- other steps: HTTP, Compose, Python, Terminate -------------------------------------

    async def http(
        self,
        name: str,
        request: Mapping[str, Any],
        *,
        timeout: str | float | None = None,
        async_pattern: bool = True,
        secure: Secure = (),
    ) -> Outputs:
        """The HTTP action: the hub sends ``request`` and returns the response's outputs.

        ``request`` is a Logic Apps HTTP request object (``method``, ``uri``, ``headers``,
        ``queries``, ``body``, ``authentication``, ``retryPolicy``), taken literally: its
        strings are sent as they are; ``hooknb.expr(...)`` parts are evaluated (see
        :mod:`hooknb.kernel.placeholders`). ``secure`` (``"inputs"``, ``"outputs"`` or both)
        keeps the request or the response out of the run's reports and every view, the hub's
        included. A ``202 Accepted`` with a ``location``
        header is polled (GET, honouring ``retry-after``, default 1 s) until another status,
        unless ``async_pattern=False`` (Logic Apps' ``DisableAsyncPattern``). ``timeout`` (ISO
        8601 or seconds) bounds the whole call including polling; default: the hub's action
        timeout.

        Raises :class:`ActionFailed` when the final status is not 2xx (the outputs are on
        ``run.actions[name]`` and in ``exc.details``) or no response came, and
        :class:`ActionTimedOut` when ``timeout`` passes.
        """
        if not isinstance(request, Mapping):
            raise TypeError("request must be an HTTP request object (a dict)")
        action, recorded, place = self._new_step(
            name, "Http", redact(shown_template(request)), secure
        )
        timeout_s = _seconds(timeout)
        replayed_end: float | None = None
        try:
            if recorded is not None and recorded.state == "done":
                made = decode_value(recorded.value)
                status, answer = int(made["status"]), made["answer"]
                action.started = recorded.started or action.started
                replayed_end = recorded.ended
            else:
                evaluated = apply_endpoints(resolve(request, self.context()), self._endpoints)
                action.inputs = redact(evaluated)
                status, answer = await self._hub_http(
                    action.name, evaluated, place, timeout_s, async_pattern, action.secure
                )
        except asyncio.CancelledError:
            action.status = "Cancelled"
            action.ended = time.time()
            raise
        except Exception as exc:
            self._step_failed(action, f"{type(exc).__name__}: {exc}")
            raise
        return self._http_outcome(action, status, answer, timeout_s, replayed_end)

    async def _hub_http(
        self,
        name: str,
        request: Mapping[str, Any],
        place: StepPlace,
        timeout_s: float | None,
        async_pattern: bool,
        secure: frozenset[str] = frozenset(),
    ) -> tuple[int, dict[str, Any]]:
        """Have the hub make the step's call (once: asked again, it answers the same); the
        hub keeps the step's ``secure`` parts with it."""
        try:
            answer = await self.hub.request(
                "POST",
                f"hooknb/api/runs/{self.id}/http",
                {
                    "step": name,
                    "client": self.hub.client_id,
                    "request": request,
                    "timeout": timeout_s,
                    "asyncPattern": bool(async_pattern),
                    **({"secure": sorted(secure)} if secure else {}),
                    **place.to_json(),
                },
                idempotent=True,
                timeout=None,
            )
        except HubRequestError as exc:
            if exc.status is None or (isinstance(exc.body, dict) and exc.body.get("fenced")):
                raise
            return exc.status, exc.body if isinstance(exc.body, dict) else {"error": str(exc)}
        return 200, answer

    def _http_outcome(
        self,
        action: Action,
        status: int,
        answer: Mapping[str, Any],
        timeout_s: float | None,
        ended: float | None = None,
    ) -> Outputs:
        """The Http step's end from the hub's answer (status, body): the final response's
        outputs, or ActionTimedOut / ActionFailed. ``ended``: when a replayed step ended."""
        name = action.name
        action.ended = ended or time.time()
        if status != 200:
            if answer.get("timedOut"):
                action.status, action.code = "TimedOut", "ActionTimedOut"
                action.error = answer.get("error") or f"HTTP {status}"
                self._changed()
                timed_out = ActionTimedOut(name, timeout_s)
                timed_out.args = (f"action {name!r} timed out: {action.error}",)
                raise timed_out
            action.status, action.code = "Failed", "ActionFailed"
            action.error = answer.get("error") or f"the hub answered {status}"
            self._changed()
            raise ActionFailed(name, action.error, dict(answer))
        action.outputs = Outputs.from_response(answer)
        code = action.outputs.status_code or 0
        if 200 <= code <= 299:
            action.status = "Succeeded"
            self._changed()
            return action.outputs
        # Logic Apps: a final status outside 2xx fails the action (successors may run after
        # Failed); the response is still the action's outputs.
        action.status, action.code = "Failed", _status_code_name(code)
        action.error = f"HTTP {code}"
        self._changed()
        raise ActionFailed(name, f"the final response was HTTP {code}", action.outputs)

    def compose(self, name: str, inputs: Any, *, secure: Secure = ()) -> Any:
        """The Compose action: record ``inputs`` as the step's outputs, for
        ``outputs('<name>')`` in later expressions, with its ``hooknb.expr(...)`` parts
        evaluated (its strings are data, taken as they are). ``secure`` as for
        :meth:`webhook`."""
        name, recorded, place = self._recall(name, "Compose")
        action = Action(
            name, "Compose", inputs=shown_template(inputs), secure=secure_properties(secure)
        )
        self.actions[name] = action
        if recorded is not None:
            action.value = decode_value(recorded.value)
        else:
            try:
                action.value = resolve(inputs, self.context())
            except HookNBError as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._step_failed(action, error)
                raise ActionFailed(name, error) from exc
        # As Logic Apps shows a Compose: its inputs as evaluated (they are its outputs).
        action.inputs = action.value
        action.status = "Succeeded"
        action.ended = time.time()
        if recorded is None:
            self._remember(action, place, action.value)
        self._changed()
        return action.value

    def record(self, name: str, value: Any, *, type: str = "Python", secure: Secure = ()) -> Any:
        """Record ``value`` as the outputs of a finished step named ``name`` and return it, so
        expressions in later steps can read it with ``outputs('<name>')``. ``secure`` as for
        :meth:`webhook`.

        When a run is replayed after its kernel restarted, this returns the value recorded the
        first time, not ``value``: ``run.record("Started", time.time())`` keeps its time.
        """
        name, recorded, place = self._recall(name, type)
        now = time.time()
        if recorded is not None:
            value = decode_value(recorded.value)
        action = Action(
            name,
            type,
            status="Succeeded",
            value=value,
            started=now,
            ended=now,
            secure=secure_properties(secure),
        )
        self.actions[name] = action
        if recorded is None:
            self._remember(action, place, value)
        self._changed()
        return value

    async def step(
        self,
        name: str,
        fn: Callable[[Self], Any],
        *,
        timeout: str | float | None = None,
        secure: Secure = (),
    ) -> Any:
        """Run ``fn(run)`` (sync or async) as a step named ``name`` and record what it returns.

        What it returns is stored in the run's history before ``step`` returns: when the run
        is replayed after its kernel restarted, the step returns that value and ``fn`` is not
        called again. So side effects and values that must not change (the time, random
        numbers, your own HTTP calls) belong in a step. A step that raised, or whose value is
        not JSON data, runs again on replay.

        Exceptions fail the step and propagate. ``timeout`` bounds an async ``fn`` (the step
        then ends TimedOut and :class:`ActionTimedOut` is raised). ``secure`` as for
        :meth:`webhook` (the value is still stored exactly in the run's history, which is not
        shown).
        """
        action, recorded, place = self._new_step(
            name, "Python", {"function": getattr(fn, "__qualname__", repr(fn))}, secure
        )
        name = action.name
        if recorded is not None:
            action.value = decode_value(recorded.value)
            action.status = "Succeeded"
            action.started = recorded.started or action.started
            action.ended = recorded.ended or time.time()
            self._changed()
            return action.value
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
            self._step_failed(action, f"{type(exc).__name__}: {exc}")
            raise
        action.value = value
        action.status = "Succeeded"
        action.ended = time.time()
        if self._remember(action, place, value):
            # In the history before the code goes on: a restart from here on does not run
            # fn again.
            await self.hub.flush()
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
