"""The kernel's connection to the hub: HTTP requests, the push channel, acks and run reports.

Everything here runs on the engine loop (see :mod:`hooknb.kernel.aio`). The push channel is a
server-sent-event stream that the hub writes to as callbacks arrive; it reconnects by itself
(backing off up to 2 s) when the server restarts, and the hub then resends whatever was not
acknowledged. Acknowledgements and run progress go back in small batches on ``api/sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import httpx

from ..errors import HubRequestError
from ..http_model import CallbackWire
from ..paths import default_embedded_store
from ..protocol import FINISHED_RUN_STATUSES, AdoptAnswer, RunHistory, RunReport, WaitOutcome
from .aio import engine_loop, run_sync
from .discovery import HubAddress, find_hub

T = TypeVar("T")
log = logging.getLogger("hooknb.kernel")

_RECONNECT_MAX_DELAY = 2.0
_REQUEST_RETRY_SECONDS = 60.0
# Requests in flight to the hub at once. Past a few dozen, httpx's pool spends its time
# rescanning its queue (quadratic), and requests time out waiting for a connection.
_MAX_IN_FLIGHT = 32
#: Syncs go out at most this often (seconds): each is an authenticated request the server
#: answers on its event loop, so a kernel starting runs faster than that sends its reports in
#: fewer, larger syncs. A sync after a quiet spell, or one ``flush()`` waits for, goes out at
#: once.
_SYNC_SPACING = 0.02
#: ... and at most this often after a sync that carried ``_BUSY_SYNC`` or more reports: a
#: kernel starting runs as fast as callbacks come. Each sync is also a write whose statements
#: hand the GIL from the server's writer thread to its busy event loop and back: at 20 ms (40
#: syncs a second in P3 live, ~60 reports each) such a write held up the trigger callbacks
#: queued behind it for up to 6 ms each time; at 100 ms runs started live went up 3-5 %
#: (BENCHMARKS.md, issue 15's eleventh round). The hub's view of a run then lags its kernel
#: by up to this much; a kernel running a few runs keeps the short spacing.
_SYNC_SPACING_BUSY = 0.1
_BUSY_SYNC = 32


class _RunsWorkflow(Protocol):
    """What the client uses of a run's workflow: its name, and telling it a run changed."""

    @property
    def name(self) -> str: ...
    def _changed(self, run: Any = None, /) -> None: ...


#: How many finished runs of each workflow a kernel keeps in memory (``workflow.runs``,
#: ``hub.get_run``) by default: older ones are let go once their last report has reached the
#: hub, which keeps every run (its API, ``%hooknb runs``, the page). A kernel that started a
#: run a second for a day held 86,400 of them, and the garbage collector walked them all.
KEEP_FINISHED_RUNS = 1000


class LocalRun(Protocol):
    """What the client uses of a run of this process (a :class:`hooknb.Run`).

    The client keeps runs and workflows but does not import them: they are made above it.
    """

    @property
    def id(self) -> str: ...
    @property
    def workflow(self) -> _RunsWorkflow: ...
    def _start(self) -> None: ...
    def to_report(self) -> RunReport: ...
    def _request_cancel(self) -> bool: ...
    def _fence(self) -> None: ...


class LocalWorkflow(Protocol):
    """What the client uses of a workflow defined in this process (a :class:`hooknb.Workflow`)."""

    @property
    def name(self) -> str: ...
    def _run_for_trigger(self, run_id: str, callback: CallbackWire) -> LocalRun: ...
    def _run_for_replay(self, history: RunHistory) -> LocalRun: ...
    def _on_server_report(self, report: dict[str, Any]) -> None: ...
    def _on_server_state(self, state: str) -> None: ...


class HubClient:
    """This process's connection to a hooknb hub (the server extension's
    :class:`hooknb.server.hub.Hub`, in a Jupyter server or embedded in this process).

    Get one with :func:`hooknb.connect`. It keeps the workflows defined in this process and
    the runs they started, receives callbacks over a push channel, and reports progress.
    """

    def __init__(
        self,
        address: HubAddress,
        *,
        embedded: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
        client_id: str | None = None,
    ) -> None:
        self.address = address
        self.url = address.url
        self.embedded = embedded
        self.client_id = client_id or f"{os.getpid()}-{secrets.token_hex(6)}"
        self.loop = loop or engine_loop()
        #: The workflows defined in this process, by name (their trigger callbacks come here).
        self.workflows: dict[str, LocalWorkflow] = {}
        self._runs: dict[str, LocalRun] = {}
        # Runs started here that wait for the hub to deliver them (see hold_run).
        self._held: dict[str, LocalRun] = {}
        # Each workflow's runs, oldest first (dicts as ordered sets: a trigger's runs are
        # adopted one by one, and a scan of a list made that quadratic in P3).
        self._runs_by_workflow: dict[str, dict[LocalRun, None]] = {}
        #: Finished runs kept per workflow (see KEEP_FINISHED_RUNS); None keeps them all.
        self.keep_finished_runs: int | None = KEEP_FINISHED_RUNS
        # Each workflow's finished runs whose last report the hub has, oldest first.
        self._finished: dict[str, dict[LocalRun, None]] = {}
        self._wait_futures: dict[str, asyncio.Future[WaitOutcome]] = {}
        self._pending_acks: set[int] = set()
        # Runs whose state changed since the last sync: their report is made when it is sent
        # (a run of thousands of steps changes thousands of times between two syncs).
        self._pending_reports: dict[str, LocalRun] = {}
        self._pending_steps: list[dict[str, Any]] = []
        # While an adoption is under way, outcomes of waits this process does not know yet
        # are kept (the adopted runs' waits), not dropped: see adopt().
        self._adopting = 0
        self._early_wait_events: dict[str, dict[str, Any]] = {}
        #: Handlers of notices (events that are not deliveries), by kind.
        self.notice_handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "run-report": self._on_run_report,
            "workflow-state": self._on_workflow_state,
        }
        #: Workflows the server runs whose run reports this process shows (watched again
        #: whenever the push channel reconnects).
        self.watched: set[str] = set()
        self._generation = 0
        self._synced_generation = 0
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._sync_needed: asyncio.Event | None = None
        self._flush_wanted: asyncio.Event | None = None
        self._last_sync = float("-inf")
        self._last_sync_size = 0  # reports in the last sync (see _SYNC_SPACING_BUSY)
        self._in_flight: asyncio.Semaphore | None = None
        self._connected: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        kind = "embedded hub" if self.embedded else "hub"
        return f"<hooknb {kind} {self.url} ({self.address.source}), client {self.client_id}>"

    # -- running on the engine loop --------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine of this hub's API on its loop and wait for it (sync callers)."""
        return run_sync(coro, self.loop, timeout)

    def _ensure_started(self) -> None:
        if self._started:
            return
        if self._closed:
            raise HubRequestError("this hooknb hub connection is closed")
        self._started = True
        self._sync_needed = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._connected = asyncio.Event()
        self._in_flight = asyncio.Semaphore(_MAX_IN_FLIGHT)
        headers = {"User-Agent": "hooknb-kernel"}
        if self.address.token:
            headers["Authorization"] = f"token {self.address.token}"
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(30.0),
            # Beyond the gated requests: one connection for the push channel, one for sync.
            limits=httpx.Limits(max_connections=_MAX_IN_FLIGHT + 2),
            trust_env=False,  # loopback to our own server: never through a proxy
            # Every request goes to this base URL: over http:// there is nothing to verify,
            # and loading the CA bundle cost a new kernel's first request 14-60 ms (F8).
            verify=self.url.startswith("https:"),
        )
        self._tasks = [
            self.loop.create_task(self._channel_loop(), name="hooknb-channel"),
            self.loop.create_task(self._sync_loop(), name="hooknb-sync"),
        ]

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until the push channel is open (so no callback can be missed from here on)."""
        self._ensure_started()
        assert self._connected is not None
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def aclose(self) -> None:
        """Stop the channel and send what is still pending."""
        if self._closed:
            return
        if self._started:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 5)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        if self.embedded is not None:
            self.embedded.stop()

    def close(self) -> None:
        """Close the connection (and stop an embedded hub)."""
        if not self._closed:
            self.call(self.aclose())

    # -- HTTP ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = 30.0,
        gated: bool = True,
    ) -> Any:
        """Call the hub's API; retry while the server is restarting; raise HubRequestError."""
        self._ensure_started()
        assert self._http is not None and self._in_flight is not None
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        give_up = time.monotonic() + _REQUEST_RETRY_SECONDS
        delay = 0.05
        while True:
            try:
                async with self._in_flight if gated else contextlib.nullcontext():
                    response = await self._http.request(
                        method,
                        path,
                        json=body,
                        params=params,
                        timeout=httpx.Timeout(timeout, connect=10.0),
                    )
            except httpx.TransportError as exc:
                # A request that never reached the server is always safe to send again.
                retryable = idempotent or isinstance(exc, httpx.ConnectError | httpx.PoolTimeout)
                if not retryable or time.monotonic() > give_up:
                    raise HubRequestError(f"hooknb hub at {self.url} unreachable: {exc!r}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_DELAY)
                continue
            if response.status_code >= 400:
                raise _request_error(response)
            if not response.content:
                return None
            return response.json()

    # -- push channel ----------------------------------------------------------------------

    async def _channel_loop(self) -> None:
        assert self._http is not None and self._connected is not None
        delay = 0.05
        while not self._closed:
            try:
                async with self._http.stream(
                    "GET",
                    "hooknb/api/channel",
                    params={"client": self.client_id},
                    timeout=httpx.Timeout(10.0, read=60.0),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise _request_error(response)
                    delay = 0.05
                    await self._read_events(response)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("hooknb channel to %s interrupted: %r", self.url, exc)
            self._connected.clear()
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_DELAY)

    async def _read_events(self, response: httpx.Response) -> None:
        assert self._connected is not None
        data: list[str] = []
        event_type = "message"
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    text = "\n".join(data)
                    if event_type == "hello":
                        self._connected.set()
                        for name in self.watched:
                            self._tasks.append(self.loop.create_task(self._watch(name)))
                    else:
                        self._dispatch(json.loads(text))
                data = []
                event_type = "message"
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line.startswith("event:"):
                event_type = line[6:].strip()

    def _dispatch(self, event: dict[str, Any]) -> None:
        try:
            kind = event.get("kind")
            if "seq" not in event:  # a notice: no acknowledgement, nothing resent
                handler = self.notice_handlers.get(str(kind))
                if handler is not None:
                    handler(event)
                return
            if kind == "trigger":
                self._on_trigger(event)
            elif kind == "wait":
                self._on_wait_event(event)
            elif kind == "run":
                self._on_run_event(event)
            else:
                self.ack(event["seq"])
        except Exception:
            log.exception("hooknb could not handle a delivery: %r", event.get("seq"))

    def _on_trigger(self, event: dict[str, Any]) -> None:
        run_id = event["run"]
        held = self._held.pop(run_id, None)
        if held is not None:
            # A run started here that waited for the hub (conditions, a concurrency limit):
            # it may start now.
            self._pending_acks.add(event["seq"])
            self.adopt_run(held)
            return
        if run_id in self._runs:
            self.ack(event["seq"])
            return
        workflow = self.workflows.get(event.get("workflow", ""))
        if workflow is None:
            # Not ours any more (redefined elsewhere); leave it for the kernel that runs it.
            return
        run = workflow._run_for_trigger(run_id, event["callback"])
        # Acknowledged with the run's first report, so the hub resends it if that is lost.
        self._pending_acks.add(event["seq"])
        self.adopt_run(run)

    def _on_workflow_state(self, event: dict[str, Any]) -> None:
        workflow = self.workflows.get(str(event.get("workflow")))
        if workflow is not None:
            workflow._on_server_state(str(event.get("state")))

    def _on_run_report(self, event: dict[str, Any]) -> None:
        workflow = self.workflows.get(str(event.get("workflow")))
        if workflow is not None and isinstance(event.get("run"), dict):
            workflow._on_server_report(event["run"])

    async def watch(self, name: str) -> None:
        """Show the runs of workflow ``name``, which the server runs: its run reports come
        here as notices from now on (and after every reconnection)."""
        self.watched.add(name)
        if self._connected is not None and self._connected.is_set():
            await self._watch(name)
        else:
            self._ensure_started()  # the channel's hello watches it

    async def _watch(self, name: str) -> None:
        try:
            await self.request(
                "PUT",
                f"hooknb/api/workflows/{quote(name, safe='')}/watch",
                {"client": self.client_id},
            )
        except HubRequestError as exc:
            log.warning("hooknb could not show the runs of %r live: %s", name, exc)

    def add_run(self, run: LocalRun) -> None:
        """Register a run this process shows but does not run (the server runs it)."""
        self._runs[run.id] = run
        self._list_run(run)
        run._start()

    def _on_wait_event(self, event: dict[str, Any]) -> None:
        wait_id = event.get("wait", "")
        future = self._wait_futures.get(wait_id)
        if future is None and self._adopting:
            self._early_wait_events[wait_id] = event  # perhaps a wait of a run being adopted
            return
        if future is not None and not future.done():
            future.set_result(cast(WaitOutcome, event))  # the hub's wait event
        self.ack(event["seq"])

    def _on_run_event(self, event: dict[str, Any]) -> None:
        run = self._runs.get(event.get("run", ""))
        if run is not None and event.get("event") == "cancel":
            run._request_cancel()  # on the loop, in the channel's reader: never block here
        self.ack(event["seq"])

    # -- runs and waits --------------------------------------------------------------------

    def hold_run(self, run: LocalRun) -> None:
        """Register a run created in this process that the hub starts later (it is delivered
        here like a trigger's run when it may start)."""
        self._held[run.id] = run
        self._list_run(run)
        run.workflow._changed(run)

    def unhold_run(self, run: LocalRun) -> None:
        """A held run was cancelled before the hub delivered it: it will not start."""
        self._held.pop(run.id, None)

    def adopt_run(self, run: LocalRun) -> None:
        """Register a run created in this process and start it on the engine loop."""
        self._runs[run.id] = run
        self._list_run(run)
        run._start()

    def _list_run(self, run: LocalRun) -> None:
        listed = self._runs_by_workflow.setdefault(run.workflow.name, {})
        if run not in listed:
            listed[run] = None

    def retire_run(self, run: LocalRun) -> None:
        """``run`` has ended and the hub has its last report: it counts against its
        workflow's :attr:`keep_finished_runs`, and the oldest beyond it are let go."""
        keep = self.keep_finished_runs
        name = run.workflow.name
        finished = self._finished.setdefault(name, {})
        finished[run] = None
        if keep is None:
            return
        listed = self._runs_by_workflow.get(name, {})
        while len(finished) > keep:
            oldest = next(iter(finished))
            del finished[oldest]
            listed.pop(oldest, None)
            if self._runs.get(oldest.id) is oldest:
                del self._runs[oldest.id]

    def runs_of(self, workflow: str) -> list[LocalRun]:
        """The runs of ``workflow`` this process started, oldest first."""
        return list(self._runs_by_workflow.get(workflow, {}))

    def get_run(self, run_id: str) -> LocalRun | None:
        """The run ``run_id`` if this process started it."""
        return self._runs.get(run_id) or self._held.get(run_id)

    def expect_wait(self, wait_id: str) -> asyncio.Future[WaitOutcome]:
        """A future resolved by the wait's outcome event (callback, timedout, cancelled);
        the same one for the same wait until it is resolved."""
        future = self._wait_futures.get(wait_id)
        if future is not None:
            return future
        future = self.loop.create_future()
        self._wait_futures[wait_id] = future
        future.add_done_callback(lambda _: self._wait_futures.pop(wait_id, None))
        return future

    async def adopt(self, workflow: LocalWorkflow) -> dict[str, Any]:
        """This process defines ``workflow``: take its lease and adopt the runs whose kernel is
        gone, replaying each against its history (see :mod:`hooknb.kernel.history`).

        Returns the hub's answer: ``lease`` (``granted``, or ``held`` by ``holder``, another
        live kernel: then nothing is adopted), ``runs`` (the adopted runs' ids) and
        ``finalized`` (runs cancelled while no kernel ran them, now ended).
        """
        self.workflows[workflow.name] = workflow
        path = f"hooknb/api/workflows/{quote(workflow.name, safe='')}/adopt"
        give_up = time.monotonic() + _REQUEST_RETRY_SECONDS
        self._adopting += 1
        try:
            while True:
                try:
                    answer: AdoptAnswer = await self.request(
                        "POST", path, {"client": self.client_id}
                    )
                    break
                except HubRequestError as exc:
                    body = exc.body if isinstance(exc.body, dict) else {}
                    if exc.status == 409 and body.get("lease") == "held":
                        return {**body, "runs": [], "finalized": []}
                    if exc.status != 503 or time.monotonic() > give_up:
                        raise
                    # The hub has just restarted: the runs' kernels may still reconnect.
                    await asyncio.sleep(min(float(body.get("retryAfter") or 1.0), 5.0))
            adopted = []
            for history in answer["runs"]:
                run = workflow._run_for_replay(history)
                for step in history["steps"]:
                    wait = step.get("wait")
                    if wait is not None and wait.get("outcome") is None:
                        self.expect_wait(wait["id"])
                adopted.append(run)
            # Outcomes that came while the adoption was under way, to the waits just expected.
            for wait_id, event in list(self._early_wait_events.items()):
                if wait_id in self._wait_futures:
                    del self._early_wait_events[wait_id]
                    self._on_wait_event(event)
            for run in adopted:
                self.adopt_run(run)
            return {**answer, "runs": [run.id for run in adopted]}
        finally:
            self._adopting -= 1
            if not self._adopting:
                # Not ours after all: acknowledge them as any unknown wait's outcome is.
                for event in self._early_wait_events.values():
                    self.ack(event["seq"])
                self._early_wait_events.clear()

    # -- acks and reports ------------------------------------------------------------------

    def ack(self, seq: int) -> None:
        self._pending_acks.add(seq)
        self._request_sync()

    def report(self, run: LocalRun) -> None:
        """Queue the run's state for the hub (coalesced: the state is read when the next sync
        goes out, so a run that changes many times in between is serialised once)."""
        self._pending_reports[run.id] = run
        self._request_sync()

    def record_step(self, record: dict[str, Any]) -> None:
        """Queue a finished step for its run's history (``flush()`` waits until it is in)."""
        self._pending_steps.append(record)
        self._request_sync()

    def _request_sync(self) -> None:
        self._generation += 1
        if self._sync_needed is not None:
            self._sync_needed.set()

    async def flush(self) -> None:
        """Wait until every ack and report queued so far has reached the hub."""
        self._ensure_started()
        if self._synced_generation >= self._generation:
            return
        future = self.loop.create_future()
        self._flush_waiters.append((self._generation, future))
        assert self._sync_needed is not None and self._flush_wanted is not None
        self._flush_wanted.set()
        self._sync_needed.set()
        await future

    def _requeue(
        self, acks: list[int], reports: list[RunReport], steps: list[dict[str, Any]]
    ) -> None:
        """What a sync could not send goes with the next one (a run's state read afresh)."""
        self._pending_acks.update(acks)
        for report in reports:
            run = self._runs.get(report["id"])
            if run is not None:
                self._pending_reports.setdefault(run.id, run)
        self._pending_steps[:0] = steps

    async def _send_sync(
        self, acks: list[int], reports: list[RunReport], steps: list[dict[str, Any]]
    ) -> Any:
        return await self.request(
            "POST",
            "hooknb/api/sync",
            {"client": self.client_id, "acks": acks, "runs": reports, "steps": steps},
            idempotent=True,
            gated=False,  # acks and reports must not queue behind long subscribes
        )

    async def _sync_apart(
        self,
        acks: list[int],
        reports: list[RunReport],
        steps: list[dict[str, Any]],
        refusal: HubRequestError,
    ) -> dict[str, Any]:
        """Send a batch the hub refused one part at a time. A refused report is sent again
        as a bare one (status and times), so the hub never shows a status the run has left;
        a refused acknowledgement or step record is dropped (logged). Raises :class:`_Unsent`
        with what is left when the hub cannot be reached meanwhile."""
        log.warning("hooknb: the hub refused a report batch (%s); sending it part by part", refusal)
        fenced: list[str] = []
        parts: list[tuple[str, Any]] = [
            *(("acks", [seq]) for seq in acks),
            *(("step", step) for step in steps),
            *(("report", report) for report in reports),
        ]
        for index, (kind, part) in enumerate(parts):
            try:
                try:
                    answer = await self._send_sync(
                        part if kind == "acks" else [],
                        [part] if kind == "report" else [],
                        [part] if kind == "step" else [],
                    )
                except HubRequestError as exc:
                    if not _refused(exc):
                        raise
                    if kind != "report":
                        log.warning("hooknb: the hub refused %s %r: %s", kind, part, exc)
                        continue
                    log.warning("hooknb: the hub refused the report of run %s: %s", part["id"], exc)
                    try:
                        answer = await self._send_sync(
                            [], [bare_report(part, f"the hub refused the run's report: {exc}")], []
                        )
                    except HubRequestError as again:
                        if not _refused(again):
                            raise
                        log.error("hooknb: the hub refused run %s's status: %s", part["id"], again)
                        continue
            except Exception as exc:
                rest = parts[index:]
                raise _Unsent(
                    exc,
                    [seq for kind, seqs in rest if kind == "acks" for seq in seqs],
                    [p for kind, p in rest if kind == "report"],
                    [p for kind, p in rest if kind == "step"],
                ) from exc
            fenced.extend((answer or {}).get("fenced", ()))
        return {"fenced": fenced}

    async def _sync_loop(self) -> None:
        assert self._sync_needed is not None and self._flush_wanted is not None
        while not self._closed:
            await self._sync_needed.wait()
            # One turn of the loop before the reports are read: the runs a batch of deliveries
            # just started (whose first change woke this task) take their first step, and a
            # run that ends in it is reported once, ended, instead of Running now and ended in
            # the next sync (one UPDATE on the hub instead of two).
            await asyncio.sleep(0)
            busy = self._last_sync_size >= _BUSY_SYNC
            spacing = (
                self._last_sync + (_SYNC_SPACING_BUSY if busy else _SYNC_SPACING) - self.loop.time()
            )
            if spacing > 0:  # (flush() sets _flush_wanted: a waiting flush cuts this short)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_wanted.wait(), spacing)
            self._flush_wanted.clear()
            self._last_sync = self.loop.time()
            self._sync_needed.clear()
            generation = self._generation
            acks = sorted(self._pending_acks)
            runs = list(self._pending_reports.values())
            steps, self._pending_steps = self._pending_steps, []
            self._pending_acks.clear()
            self._pending_reports.clear()
            reports = [report for report in map(_report_of, runs) if report is not None]
            self._last_sync_size = len(reports)
            if acks or reports or steps:
                try:
                    try:
                        answer = await self._send_sync(acks, reports, steps)
                    except HubRequestError as exc:
                        if not _refused(exc):
                            raise
                        # One part of the batch the hub will never take (resending it as it
                        # is would wedge every report after it): send each part alone.
                        answer = await self._sync_apart(acks, reports, steps, exc)
                except asyncio.CancelledError:
                    raise
                except _Unsent as unsent:
                    log.warning("hooknb could not report to the hub, will retry: %s", unsent.error)
                    self._requeue(unsent.acks, unsent.reports, unsent.steps)
                    await asyncio.sleep(0.5)
                    self._sync_needed.set()
                    continue
                except Exception as exc:
                    log.warning("hooknb could not report to the hub, will retry: %s", exc)
                    self._requeue(acks, reports, steps)
                    await asyncio.sleep(0.5)
                    self._sync_needed.set()
                    continue
                fenced = set((answer or {}).get("fenced", ()))
                for run_id in fenced:
                    run = self._runs.get(run_id)
                    if run is not None:
                        log.warning(
                            "hooknb: another kernel adopted run %s; it goes on there", run_id
                        )
                        run._fence()
                ended = {
                    r["id"]
                    for r in reports
                    if r["status"] in FINISHED_RUN_STATUSES and r["id"] not in fenced
                }
                for run in runs:
                    if run.id in ended:
                        self.retire_run(run)
            self._synced_generation = generation
            still_waiting = []
            for wanted, future in self._flush_waiters:
                if wanted <= generation:
                    if not future.done():
                        future.set_result(None)
                else:
                    still_waiting.append((wanted, future))
            self._flush_waiters = still_waiting


class _Unsent(Exception):
    """What a sync sent part by part had still to send when the hub became unreachable."""

    def __init__(
        self,
        error: Exception,
        acks: list[int],
        reports: list[RunReport],
        steps: list[dict[str, Any]],
    ) -> None:
        super().__init__(str(error))
        self.error, self.acks, self.reports, self.steps = error, acks, reports, steps


def _refused(exc: HubRequestError) -> bool:
    """Whether the hub refused a request for what it holds (a 4xx other than a timeout or a
    rate limit): sending it again as it is cannot succeed."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429)


def bare_report(report: RunReport, problem: str) -> RunReport:
    """A run report reduced to what the hub needs to show the run's status and times."""
    error = report.get("error")
    return {
        "id": report["id"],
        "status": report["status"],
        "started": report["started"],
        "ended": report["ended"],
        "trigger": report["trigger"],
        "actions": {},
        "result": None,
        "error": error[:2000] if isinstance(error, str) else None,
        "reportProblem": problem[:2000],
    }


def _report_of(run: LocalRun) -> RunReport | None:
    try:
        return run.to_report()
    except Exception:  # one run that cannot be serialised must not stop the others' reports
        log.exception("hooknb could not report run %s", run.id)
        return None


def _request_error(response: httpx.Response) -> HubRequestError:
    try:
        body = response.json()
        message = body.get("error") or body.get("message") or response.reason_phrase
    except ValueError:
        body = None
        message = response.text[:200] or response.reason_phrase
    if response.status_code == 403:
        message = f"{message} (is the Jupyter token right? set HOOKNB_TOKEN)"
    return HubRequestError(
        f"hub answered {response.status_code}: {message}", response.status_code, body
    )


# -- the default connection ---------------------------------------------------------------

_default: HubClient | None = None
_hubs: weakref.WeakSet[HubClient] = weakref.WeakSet()


def connect(
    url: str | None = None,
    token: str | None = None,
    *,
    embedded: bool | None = None,
    store: str | None = None,
) -> HubClient:
    """Connect to a hooknb hub and make it the default for workflows in this process.

    Explicit ``url``/``token``; else ``HOOKNB_URL``/``HOOKNB_TOKEN``; else the Jupyter server
    that started this kernel; else an embedded hub on 127.0.0.1 (the same server side, in
    this process), whose state goes to ``store`` (default: ``HOOKNB_STORE`` or
    ``<jupyter data dir>/hooknb/embedded.sqlite``). ``embedded=True`` forces one.

    Calling it again with the same arguments returns the same connection.
    """
    global _default
    address = None if embedded else find_hub(url, token)
    if _default is not None and not _default._closed:
        same_embedded = address is None and _default.embedded is not None and store is None
        same_server = address is not None and _default.address == address
        if same_embedded or same_server:
            return _default
    if address is None:
        # The one place kernel code reaches into hooknb.server: an embedded hub *is* the
        # server side, run in this process. Imported only when one is started.
        from ..server.embedded import EmbeddedServer

        server = EmbeddedServer(store=store).start()
        hub = HubClient(HubAddress(server.url, server.token, "embedded"), embedded=server)
    else:
        hub = HubClient(address)
    _default = hub
    _hubs.add(hub)
    return hub


def connected_hub() -> HubClient | None:
    """The default connection if there is one or a hub to make it with: a Jupyter server (a
    kernel's, or ``HOOKNB_URL``), or an embedded hub whose store exists (it may hold runs to
    adopt: a script run again). None rather than start an embedded hub for nothing."""
    if _default is not None and not _default._closed:
        return _default
    if find_hub() is None and not Path(default_embedded_store()).exists():
        return None
    return connect()


def default_hub() -> HubClient:
    """The default connection, connecting with :func:`connect`'s defaults if needed."""
    if _default is None or _default._closed:
        return connect()
    return _default
