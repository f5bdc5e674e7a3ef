"""Workflows: the trigger (enable, disable, a recurrence's schedule), starting runs, and the
:func:`workflow` decorator.

A :class:`Workflow` wraps a Python function, run once per trigger callback or manual start
(:mod:`hooknb.kernel.run`), or a Logic Apps definition (:mod:`hooknb.kernel.declarative`).
The hub, not the kernel, owns an HTTP Webhook trigger's subscription: ``enable()`` has it
subscribe with the callback URL, and every POST to that URL starts a run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, overload
from urllib.parse import quote

from ..errors import HookNBError, HubRequestError, TriggerSkipped
from ..http_model import CallbackWire, encode_wire_body
from ..protocol import RunHistory
from ..wdl import Context
from ..wdl.definitions import Definition, Recurrence, apply_endpoints
from .aio import in_loop_thread
from .client import HubClient, connected_hub, default_hub
from .declarative import Declarative
from .history import History
from .outputs import Outputs
from .placeholders import resolve
from .run import Host, Run, RunFunction, ServerRun
from .triggers import HttpWebhookTrigger, RecurrenceTrigger, RequestTrigger, Trigger

__all__ = ["Workflow", "workflow"]

log = logging.getLogger("hooknb.kernel")


class Workflow(Declarative):
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
        trigger: Trigger | None = None,
        hub: HubClient | None = None,
        parameters: Mapping[str, Any] | None = None,
        endpoints: Mapping[str, str] | None = None,
        host: Host = "kernel",
        define: bool = True,
        runs: int | None = None,
        maximum_waiting_runs: int | None = None,
        single_instance: bool = False,
    ) -> None:
        if host not in ("kernel", "server"):
            raise ValueError("host must be 'kernel' or 'server'")
        for label, limit, high in (
            ("runs", runs, 100),
            ("maximum_waiting_runs", maximum_waiting_runs, 200),
        ):
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= high
            ):
                raise ValueError(f"{label} must be a whole number from 1 to {high}")
        #: Concurrency (Logic Apps' trigger ``runtimeConfiguration.concurrency``): at most
        #: ``runs`` runs at once, ``maximum_waiting_runs`` waiting to start beyond them;
        #: ``single_instance`` is ``runs=1``. A definition's own settings take precedence.
        self.concurrency = {
            "runs": 1 if single_instance else runs,
            "maximumWaitingRuns": maximum_waiting_runs,
        }
        self.fn = fn
        self.name = name or fn.__name__
        self.trigger = trigger
        self.parameters = dict(parameters or {})
        #: URI rewrites for this workflow's requests (see :mod:`hooknb.wdl.definitions`).
        self.endpoints: dict[str, str] = dict(endpoints or {})
        #: The WDL definition this workflow runs (None for a Python-function workflow).
        self.definition: Definition | None = None
        self._hub = hub
        #: Where runs run: ``"kernel"`` (this process) or ``"server"`` (the server's
        #: definitions worker, for a Logic Apps definition with no Python steps).
        self.host: Host = host
        # This workflow's adoption of runs whose kernel is gone — or, run by the server, its
        # hand-over to the server — per hub connection: started when the workflow is defined,
        # or first used.
        self._adoptions: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.adoption: dict[str, Any] | None = None
        self._record: dict[str, Any] | None = None
        self._observers: list[Callable[[Workflow, Run | None], None]] = []
        self._local_enabled = False
        self._recurrence_task: asyncio.Task[None] | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        if define:
            self._define()

    def __repr__(self) -> str:
        # The views are imported when a workflow is shown, not when one is defined.
        from .render import workflow_text

        return workflow_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import workflow_bundle

        return workflow_bundle(self, include, exclude)

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
                log.exception("workflow observer failed")

    @property
    def hub(self) -> HubClient:
        if self._hub is None:
            self._hub = default_hub()
        return self._hub

    def _bind(self) -> HubClient:
        hub = self.hub
        hub.workflows[self.name] = self
        self._start_adoption(hub)
        return hub

    # -- runs whose kernel is gone ---------------------------------------------------------

    def _define(self) -> None:
        """Defining a workflow adopts its unfinished runs whose kernel is gone — when a hub is
        at hand (a Jupyter server, or a connection made already). An embedded hub is not
        started just for that: it adopts when the workflow is first used."""
        hub = self._hub or connected_hub()
        if hub is not None:
            hub.workflows[self.name] = self
            self._start_adoption(hub)

    def _start_adoption(self, hub: HubClient) -> None:
        if id(hub) in self._adoptions:
            return
        coro = self._define_on(hub)
        if in_loop_thread(hub.loop):
            self._adoptions[id(hub)] = hub.loop.create_task(coro, name=f"hooknb-adopt-{self.name}")
        else:
            self._adoptions[id(hub)] = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(coro, hub.loop), loop=hub.loop
            )

    async def _define_on(self, hub: HubClient) -> dict[str, Any]:
        """Tell the hub this workflow's trigger settings (it applies conditions, splitOn and
        concurrency to every trigger event, whichever process runs the runs), then adopt its
        runs whose kernel is gone, or hand it to the server."""
        try:
            await hub.request("PUT", f"{self._path}/settings", self._trigger_settings())
        except Exception as exc:
            log.warning("hooknb: the trigger settings of %r were not stored: %s", self.name, exc)
        if self._server_runs:
            return await self._host_on_server(hub)
        return await self._adopt_runs(hub)

    def _trigger_settings(self) -> dict[str, Any]:
        """The settings the hub applies to this workflow's trigger events (see
        :mod:`hooknb.server.trigger_settings`)."""
        kinds = {
            HttpWebhookTrigger: "HttpWebhook",
            RequestTrigger: "Request",
            RecurrenceTrigger: "Recurrence",
        }
        trigger = self.trigger
        value: dict[str, Any] = {
            "trigger": trigger.name if trigger is not None else None,
            "kind": kinds.get(type(trigger)) if trigger is not None else None,
        }
        concurrency = {k: v for k, v in self.concurrency.items() if v is not None}
        declared = self.definition.trigger if self.definition is not None else None
        if declared is not None:
            raw = declared.raw
            if declared.conditions:
                value["conditions"] = declared.conditions
            if raw.get("splitOn"):
                value["splitOn"] = raw["splitOn"]
            configured = (raw.get("runtimeConfiguration") or {}).get("concurrency") or {}
            concurrency.update(configured)
            options = str(raw.get("operationOptions") or "").lower()
            if "singleinstance" in {o.strip() for o in options.split(",")}:
                concurrency["runs"] = 1
            if "conditions" in value or "splitOn" in value:
                assert self.definition is not None
                value["parameters"] = dict(self.definition.values)
        value.update(concurrency)
        return value

    @property
    def _server_runs(self) -> bool:
        """Whether the server runs this workflow's runs (a definition without Python steps)."""
        return (
            self.host == "server"
            and self.definition is not None
            and not self.definition.python_steps()
        )

    def _document(self) -> dict[str, Any]:
        """The definition as the server keeps it: what its worker loads to run the workflow."""
        assert self.definition is not None
        return {
            "definition": self.definition.to_json(),
            "parameters": dict(self.definition.values),
            "endpoints": dict(self.endpoints),
            "state": "Enabled" if self._local_enabled else "Disabled",
        }

    async def _host_on_server(self, hub: HubClient) -> dict[str, Any]:
        """Hand the definition to the server, which runs it; show its runs here."""
        await hub.request("PUT", f"{self._path}/definition", self._document())
        await hub.watch(self.name)
        return {"lease": "server", "runs": [], "finalized": []}

    def run_here(self) -> None:
        """Take a workflow the server runs back into this kernel: the server stops running
        it, and this kernel adopts its unfinished runs and gets its trigger's runs from now on
        (``@hooknb.handler`` does this for a ``%%hooknb trigger`` workflow). Returns at once;
        the adoption goes on in the background (``adopt()`` waits for it)."""
        if self.host == "kernel":
            return
        was_server_run = self._server_runs
        self.host = "kernel"
        hub = self._hub or connected_hub()
        if hub is None:
            return
        hub.watched.discard(self.name)

        async def take_back() -> dict[str, Any]:
            if was_server_run:
                with contextlib.suppress(HubRequestError):  # 404: the server had not got it yet
                    await hub.request("DELETE", f"{self._path}/definition")
            return await self._adopt_runs(hub)

        self._adoptions.pop(id(hub), None)
        if in_loop_thread(hub.loop):
            self._adoptions[id(hub)] = hub.loop.create_task(take_back())
        else:
            self._adoptions[id(hub)] = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(take_back(), hub.loop), loop=hub.loop
            )

    def _on_server_state(self, state: str) -> None:
        """The server's worker switched this workflow's schedule on or off (e.g. a
        Recurrence that reached its count)."""
        enabled = state == "Enabled"
        if enabled != self._local_enabled:
            self._local_enabled = enabled
            self._changed()

    def _on_server_report(self, report: dict[str, Any]) -> None:
        """A run report of this workflow, which the server runs: show it here."""
        run_id = str(report.get("id"))
        run = self.hub.get_run(run_id)
        if run is None:
            run = ServerRun(self, run_id, Outputs(), started=report.get("started"))
            self.hub.add_run(run)
            run._loading = self.hub.loop.create_task(run._load_trigger())
        if isinstance(run, ServerRun):
            run._on_report(report)

    async def _adopt_runs(self, hub: HubClient) -> dict[str, Any]:
        try:
            answer = await hub.adopt(self)
        except Exception as exc:
            log.warning(
                "hooknb: workflow %r could not adopt its unfinished runs: %s", self.name, exc
            )
            return {"lease": "unknown", "error": str(exc), "runs": [], "finalized": []}
        #: The hub's answer to this workflow's adoption (its views say what it came to).
        self.adoption = answer
        self._changed()
        if answer["lease"] == "held":
            print(
                f"hooknb: workflow {self.name!r} is run by another kernel that is connected "
                f"({answer['holder']}): its trigger's runs go there and this kernel adopts none "
                "of its runs. Runs started here run here."
            )
        elif answer["runs"]:
            count = len(answer["runs"])
            it = "their history, they continue" if count != 1 else "its history, it continues"
            print(
                f"hooknb: adopted {count} unfinished run{'s' * (count != 1)} of {self.name!r} "
                f"whose kernel was gone; replayed from {it} here."
            )
        return answer

    def adopt(self, timeout: float | None = 60.0) -> dict[str, Any]:
        """Wait until this workflow has adopted its unfinished runs whose kernel was gone (it
        starts doing so when it is defined); returns the hub's answer (``lease``, ``runs``:
        the adopted runs' ids, ``finalized``). The adopted runs are in :attr:`runs`."""
        return self.hub.call(self.adopt_async(), timeout)

    async def adopt_async(self) -> dict[str, Any]:
        hub = self._bind()
        return await asyncio.shield(self._adoptions[id(hub)])

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
        if self._server_runs:
            await self.adopt_async()  # the server runs the trigger's runs: it has the definition
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
        subscribe = apply_endpoints(resolve(self.trigger.subscribe, context), self.endpoints)
        unsubscribe = (
            apply_endpoints(resolve(self.trigger.unsubscribe, context), self.endpoints)
            if self.trigger.unsubscribe
            else None
        )
        enabling: dict[str, Any] = {
            "client": hub.client_id,
            "subscribe": subscribe,
            "unsubscribe": unsubscribe,
        }
        secure = getattr(self.trigger, "secure", None)
        if secure:  # the trigger's secureData: the hub's views hide those parts
            enabling["secure"] = sorted(secure)
        self._record = await hub.request("PUT", f"{self._path}/trigger", enabling, timeout=None)
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
            if self._server_runs:
                hub = self._bind()
                await hub.request("PUT", f"{self._path}/definition", self._document())
            self._changed()
            return self
        hub = self._bind()
        self._record = await hub.request("DELETE", f"{self._path}/trigger", timeout=None)
        self._changed()
        return self

    def delete(self) -> dict[str, Any]:
        """Delete the workflow (Logic Apps: deleting a logic app): its trigger unsubscribes,
        its unfinished runs are cancelled (their webhook steps unsubscribe), every callback
        URL of it answers 404 from then on, and the server stops running it. Its runs and
        trigger history stay readable. Returns the hub's answer (``cancelled``: run ids)."""
        return self.hub.call(self.delete_async())

    async def delete_async(self) -> dict[str, Any]:
        hub = self.hub
        task, self._recurrence_task = self._recurrence_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._local_enabled = False
        answer: dict[str, Any] = await hub.request("DELETE", self._path, timeout=None)
        if hub.workflows.get(self.name) is self:
            del hub.workflows[self.name]
        hub.watched.discard(self.name)
        self._adoptions.pop(id(hub), None)
        self._record = None
        self._changed()
        return answer

    @property
    def callback_url(self) -> str | None:
        """The trigger's callback URL (stable across disable/enable), once enabled."""
        if self._record and self._record.get("trigger"):
            url: str = self._record["trigger"]["callbackUrl"]
            return url
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
        if self._server_runs:
            # The server's worker keeps the schedule: tell it the trigger is on.
            await self.adopt_async()
            self._local_enabled = True
            await hub.request("PUT", f"{self._path}/definition", self._document())
            self._record = await hub.request("GET", self._path)
            self._changed()
            return self
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
            except TriggerSkipped:
                pass  # in the trigger history; no run
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
        # The hub has the workflow's trigger settings (and the server its definition) before
        # its first run.
        await self.adopt_async()
        if self._server_runs:
            request["queued"] = True
            created = await self._start_on_hub(hub, request)
            shown = hub.get_run(created["run"])  # its first report may have come already
            if isinstance(shown, ServerRun):
                shown.trigger = self._trigger_outputs(created["callback"])
                return shown
            server_run = ServerRun(self, created["run"], self._trigger_outputs(created["callback"]))
            server_run.status = "Queued"
            hub.add_run(server_run)
            return server_run
        created = await self._start_on_hub(hub, request)
        run = Run(self, created["run"], self._trigger_outputs(created["callback"]))
        if created.get("status") == "Queued":
            # Conditions, splitOn or a concurrency limit apply: the hub delivers the run here
            # when it may start (at once, or when a run ends).
            run.status = "Queued"
            hub.hold_run(run)
        else:
            hub.adopt_run(run)
        return run

    async def _start_on_hub(self, hub: HubClient, request: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await hub.request(
            "POST", f"{self._path}/runs", request, idempotent=False
        )
        if created.get("status") == "Skipped":
            raise TriggerSkipped(self.name, str(created.get("reason") or "skipped"))
        return created

    def _trigger_outputs(self, callback: CallbackWire | None) -> Outputs:
        """A run's trigger outputs from its stored callback: without the sender's credential
        headers unless the trigger asks for them. (A view of a secure trigger's callback,
        which the hub shows without what was sent, gives empty outputs: the kernel shows
        those as secured.)"""
        if callback is None or isinstance(callback.get("headers"), str):
            return Outputs()
        include = bool(getattr(self.trigger, "include_authorization_headers", False))
        return Outputs.from_callback(callback, include_authorization_headers=include)

    def _run_for_trigger(self, run_id: str, callback: CallbackWire) -> Run:
        """A run for a trigger callback the hub delivered (the client starts it)."""
        return Run(self, run_id, self._trigger_outputs(callback))

    def _run_for_replay(self, history: RunHistory) -> Run:
        """A run this process adopts: replayed against its history (the client starts it)."""
        trigger = history.get("trigger")
        run = Run(
            self,
            history["id"],
            self._trigger_outputs(trigger),
            history=History.from_json(history["steps"]),
            started=history.get("started") or history.get("created"),
        )
        run.replays = int(history.get("replays") or 0)
        return run

    @property
    def runs(self) -> list[Run]:
        """This process's runs of this workflow, newest last: of this definition only, so a
        cell that defines the workflow again (Run All twice) starts from no runs, as its view
        does. Every run under way is here, and the last 1,000 finished ones
        (``hooknb.connect().keep_finished_runs``); the hub's API and page keep every run of
        the name."""
        return [
            run
            for run in self.hub.runs_of(self.name)
            if isinstance(run, Run) and run.workflow is self
        ]


@overload
def workflow(fn: RunFunction, /) -> Workflow: ...
@overload
def workflow(
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: HubClient | None = None,
    parameters: Mapping[str, Any] | None = None,
    runs: int | None = None,
    maximum_waiting_runs: int | None = None,
    single_instance: bool = False,
) -> Callable[[RunFunction], Workflow]: ...


def workflow(
    fn: RunFunction | None = None,
    /,
    *,
    trigger: HttpWebhookTrigger | None = None,
    name: str | None = None,
    hub: HubClient | None = None,
    parameters: Mapping[str, Any] | None = None,
    runs: int | None = None,
    maximum_waiting_runs: int | None = None,
    single_instance: bool = False,
) -> Workflow | Callable[[RunFunction], Workflow]:
    """Decorate ``async def name(run)`` to make a workflow (``@hooknb.workflow(trigger=...)``).

    The function's name is the workflow's name unless ``name`` is given. Without a trigger,
    the workflow is started by hand with ``.start(body=...)``.

    Concurrency, as Logic Apps' trigger concurrency control: at most ``runs`` (1-100) runs at
    once; more wait to start, in order, at most ``maximum_waiting_runs`` (1-200, default 100)
    of them, and the trigger's callback answers 429 beyond that. ``single_instance=True`` is
    ``runs=1``. The hub enforces it, across kernels and restarts.
    """

    def wrap(function: RunFunction) -> Workflow:
        return Workflow(
            function,
            name=name,
            trigger=trigger,
            hub=hub,
            parameters=parameters,
            runs=runs,
            maximum_waiting_runs=maximum_waiting_runs,
            single_instance=single_instance,
        )

    return wrap(fn) if fn is not None else wrap
