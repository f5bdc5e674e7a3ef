"""The server-side core: callbacks in, runs and waits, subscriptions, deliveries to kernels.

The HTTP handlers are thin; everything with state goes through :class:`Hub`. Each operation
is one writer-thread function (``_op_*``) that reads and changes rows inside a group-commit
transaction and returns an :class:`Effects` value; after the commit the hub applies the
effects on the event loop: push deliveries to connected kernels, start outbound calls, arm
deadlines. Nothing is announced before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from .. import jsonsafe
from ..http_model.request import normalize_request
from ..jsonsafe import clip_depth, dumps_bytes, too_deep
from ..protocol import FINISHED_RUN_STATUSES, AdoptAnswer, OpenedWait, WaitView
from ._retry import DEFAULT_POLICY, RetryPolicy
from .callback_signing import KEY_TYPES, Signer, fingerprint, new_callback_id, normalize_key_type
from .channels import Channel
from .deadlines import DeadlineScheduler
from .http_action import perform
from .http_errors import HubError
from .outbound import OutboundCaller
from .outbox import Outbox
from .rows import (
    CALLBACK_COLUMNS,
    OPEN_SQL,
    OPEN_WAIT_STATES,
    SECURE_INPUTS,
    WAIT_OUTCOME,
    Delivery,
    InboundRequest,
    Owner,
    Route,
    StepOrder,
    StoredTrigger,
    callback_from_row,
    insert_callback,
    insert_delivery,
    insert_outbox,
    insert_step,
    insert_trigger_callback,
    insert_trigger_callbacks,
    last_outbox,
    new_run_id,
    next_trigger_ids,
    queued_run_seq,
    stamp_trigger_callbacks,
    tracking_id,
    trigger_delivery,
    trigger_enabled,
)
from .sender_signatures import VerificationFailed, Verifier, make_verifier
from .store import Grouped, Store, StoreError, execute_rows, in_batches, marks
from .trigger_settings import Decision, TriggerSettings, decide
from .trigger_writer import TriggerWriter
from .uploads import UploadGate
from .views import RUN_STATUSES, Views, outbox_json

#: Plain trigger callbacks received within one second that start the trigger writer process
#: when ``trigger_writer_process`` is None (the default): a stream no interactive use sends
#: (P3 live sends ~3,000 a second; a tutorial a handful).
TRIGGER_STREAM_RATE = 500

# After the hub starts, kernels that ran workflows before get this long to reconnect (a kernel
# retries within 2 s) before another kernel may adopt their runs.
DEFAULT_RECONNECT_GRACE = 5.0

log = logging.getLogger("hooknb.server")
# What _wait_verifier gives for a stored setting it cannot read (compared by identity).
_UNVERIFIABLE = Verifier("unreadable", "", 0)


@dataclass
class Effects:
    """What to do on the event loop once a writer op has committed."""

    deliveries: list[Delivery] = field(default_factory=list)
    owners_to_kick: set[Owner] = field(default_factory=set)
    deadlines: list[tuple[float, str]] = field(default_factory=list)
    attach: tuple[str, str] | None = None
    acked: tuple[str, set[int]] | None = None
    runs_closed: set[str] = field(default_factory=set)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


#: The effects of an outcome whose effects another outcome of its batch carries (never
#: changed: an op that has effects makes its own Effects()).
_NO_EFFECTS = Effects()


@dataclass
class _TriggerMemo:
    """What the writes of trigger callbacks read from the store and keep between batches
    while nothing else was written (``stamp``, :meth:`Store.write_stamp`): whether a
    workflow's trigger is enabled, and the next ids of the rows they insert. Each is a
    statement the busiest write no longer makes, and with it a wait for the GIL."""

    stamp: tuple[int, int] = (-1, -1)
    enabled: dict[str, bool] = field(default_factory=dict)
    next_ids: list[int] = field(default_factory=list)

    def check(self, stamp: tuple[int, int]) -> None:
        """Forget what was read if the store may have changed since."""
        if stamp != self.stamp:
            self.enabled.clear()
            self.next_ids = []
            self.stamp = stamp


@dataclass
class Outcome:
    """The result of a writer op: a JSON-able value plus effects to apply."""

    value: Any = None
    status: int = 200
    effects: Effects = field(default_factory=Effects)


class Hub:
    """Owns callbacks, runs, waits, subscriptions, deadlines and deliveries for one server."""

    def __init__(
        self,
        store: Store,
        *,
        public_base: str | Callable[[], str],
        default_action_timeout: float,
        outbound: OutboundCaller,
        max_body_size: int,
        max_buffered_bytes: int | None = None,
        max_uploads_per_url: int = 4,
        body_timeout: float = 60.0,
        logger: logging.Logger | None = None,
        reconnect_grace: float = DEFAULT_RECONNECT_GRACE,
        callback_base: Callable[[], str] | None = None,
        status_notes: Callable[[], dict[str, Any]] | None = None,
        trigger_writer_process: bool | None = None,
    ) -> None:
        """``public_base`` is this server's base URL for outside services; callback URLs are
        ``<callback_base>/<id>?sig=`` with ``callback_base`` defaulting to
        ``<public_base>hooknb/callback/`` (a hooknb receiver under JupyterHub gives another).
        ``status_notes`` adds what the server knows about those URLs to :meth:`status`."""
        self.store = store
        self.reconnect_grace = reconnect_grace
        # Kernels whose channel opened since this hub started: once seen, a kernel's absence
        # is known, so the reconnect grace no longer protects its runs. None after the grace.
        self._seen_clients: set[str] | None = set()
        # When each kernel's channel last closed (since this hub started): the page tells when
        # a workflow whose kernel is gone last saw it.
        self.last_seen: dict[str, float] = {}
        # Callables because the server's port may only be final after extensions load.
        self._public_base = public_base if callable(public_base) else (lambda: public_base)
        self._callback_base = callback_base or (lambda: f"{self.public_base}hooknb/callback/")
        self._status_notes = status_notes
        # Called after an access key changed (a receiver checking our signatures needs it).
        self.on_keys_changed: Callable[[], None] | None = None
        self.default_action_timeout = default_action_timeout
        self.max_body_size = max_body_size
        # Callback bodies held at once, all requests together (uploads.py says why); at least
        # one body of the largest size fits, or such bodies could never be taken.
        self.uploads = UploadGate(
            max(max_buffered_bytes or 3 * max_body_size, max_body_size), max_uploads_per_url
        )
        self.body_timeout = body_timeout
        self.log = logger or log
        self.signer: Signer = store.write_sync(Signer.load_or_create)
        self.views = Views(store, self.callback_url, self.is_connected, self.last_seen.get)
        # Only trigger callbacks that verify a sender signature have an entry (few: one per
        # workflow at most). A wait's verification is read from its row when a callback comes
        # (_wait_verifier): a million open waits hold nothing here, and start-up reads none.
        self._verifiers: dict[str, Verifier] = {}
        self._unverifiable: set[str] = set()
        for callback_id, config in store.reader.execute(
            "SELECT trigger_id, verify FROM workflows WHERE verify IS NOT NULL"
        ):
            try:
                verifier = make_verifier(jsonsafe.loads(config))
            except (TypeError, ValueError):
                # One unreadable setting must not keep the server from starting; its URL
                # then refuses every callback (404) rather than skip the check.
                self.log.error("hooknb cannot read the sender verification of %s", callback_id)
                self._unverifiable.add(callback_id)
                continue
            if verifier is not None:
                self._verifiers[callback_id] = verifier
        # Trigger callback ids, so that a trigger callback (the busiest kind) is recognised
        # without a lookup among the waits. Written only by writer ops, read only by them.
        self._trigger_ids: dict[str, str] = dict(
            store.reader.execute(
                "SELECT trigger_id, name FROM workflows WHERE trigger_id IS NOT NULL"
            )
        )
        # Each workflow's trigger settings (conditions, splitOn, concurrency): read by the
        # callback route before it writes, and by writer ops; replaced whole, never changed.
        self._settings: dict[str, TriggerSettings] = {}
        for name, text in store.reader.execute(
            "SELECT name, settings FROM workflows WHERE settings IS NOT NULL"
        ):
            try:
                self._settings[name] = TriggerSettings.from_json(jsonsafe.loads(text))
            except (HubError, ValueError):
                self.log.error("hooknb cannot read the trigger settings of workflow %r", name)
        # The group of the busiest write (one object, so that the writer groups them).
        self._trigger_callbacks = self._op_trigger_callbacks
        self._trigger_memo = _TriggerMemo()
        #: Plain trigger callbacks stored by a process of their own (trigger_writer.py):
        #: True starts it at the first one, None once they come as a stream (at least
        #: ``trigger_stream_rate`` within a second of their arrival times), False never.
        #: May be switched at run time.
        self.trigger_writer_process = trigger_writer_process
        self.trigger_stream_rate = TRIGGER_STREAM_RATE
        self._trigger_writer: TriggerWriter | None = None
        self._stream_second = 0
        self._stream_count = 0
        self._channels: dict[str, Channel] = {}
        self._workflow_client: dict[str, str] = dict(
            store.reader.execute("SELECT name, client FROM workflows WHERE client IS NOT NULL")
        )
        # The earliest deadlines in memory, the rest read from the store's index on demand.
        self._deadlines = DeadlineScheduler(self._on_deadlines, self._load_deadlines)
        self.outbox = Outbox(
            store, outbound, write=self._write, on_done=self._op_call_done, log=self.log
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._http_calls: dict[tuple[str, str], asyncio.Task[tuple[int, dict[str, Any]]]] = {}
        # Kernels watching a workflow's runs that another process (the definitions worker)
        # runs: they get its run reports as notices. In memory: a kernel watches again when
        # its channel reconnects.
        self._watchers: dict[str, set[str]] = {}
        #: Called when a definition is handed to the server (the app starts its worker).
        self.on_hosted: Callable[[], None] = lambda: None
        #: The client id the definitions worker uses, to tell it about new definitions.
        self.worker_client: str | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self.started = time.time()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Arm the open waits' deadlines (the earliest are read; the scheduler reads on from
        the store as they pass) and resume outbound calls left pending by a restart."""
        self._deadlines.start()
        owners = self.outbox.resume()
        self._ready.set()
        self.log.info(
            "hooknb hub ready: %d open waits' deadlines held%s, %d owners with pending calls,"
            " store %s",
            len(self._deadlines),
            "" if self._deadlines.complete else " (the later ones read from the store)",
            owners,
            self.store.path,
        )

    def _load_deadlines(self, after: tuple[float, str], limit: int) -> list[tuple[float, str]]:
        """The deadline scheduler's next window: open waits' (deadline, id) after ``after``."""
        return self.store.latest.execute(
            "SELECT deadline, id FROM waits"
            f" WHERE state IN {OPEN_SQL} AND deadline IS NOT NULL AND (deadline, id) > (?, ?)"
            " ORDER BY deadline, id LIMIT ?",
            (after[0], after[1], limit),
        ).fetchall()

    async def ready(self) -> None:
        await self._ready.wait()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def stop(self) -> None:
        """Stop timers, channels and calls; pending calls stay in the outbox for next start."""
        self._stopping = True
        self._deadlines.stop()
        for channel in list(self._channels.values()):
            channel.close()
        tasks = [*self._background, *self._http_calls.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.outbox.stop()
        if self._trigger_writer is not None:
            await self._trigger_writer.stop()

    # -- URLs ------------------------------------------------------------------------------

    @property
    def public_base(self) -> str:
        base = self._public_base()
        return base if base.endswith("/") else base + "/"

    @property
    def callback_base(self) -> str:
        """What callback ids are appended to: ``<public base>hooknb/callback/`` by default."""
        return self._callback_base()

    def callback_url(self, callback_id: str, key_type: str = "primary") -> str:
        return f"{self.callback_base}{callback_id}?sig={self.signer.sign(callback_id, key_type)}"

    def _longest_call(self, request: Mapping[str, Any] | None) -> float:
        """How long an API request waits for an outbound call's outcome: the call's retry
        policy with every attempt taking the outbound timeout (twice: credentials may be
        fetched first), plus a margin. Past it the answer is the state as it is (e.g.
        Enabling), never an indefinite wait."""
        timeout = self.outbox.outbound.timeout
        policy = DEFAULT_POLICY
        if request is not None:
            with contextlib.suppress(ValueError):
                policy = RetryPolicy.from_json(request.get("retryPolicy"))
        return policy.longest(2 * timeout) + 5.0

    # -- applying effects ------------------------------------------------------------------

    async def _write(self, op: Any) -> Outcome:
        outcome: Outcome = await self.store.write(op)
        self._apply(outcome.effects)
        return outcome

    def _apply(self, effects: Effects) -> None:
        if effects.attach is not None:
            workflow, client = effects.attach
            self._workflow_client[workflow] = client
        if effects.acked is not None:
            client, seqs = effects.acked
            channel = self._channels.get(client)
            if channel is not None:
                channel.acked(seqs)
        for delivery in effects.deliveries:
            route_client = self._route_client(delivery.route)
            channel = self._channels.get(route_client) if route_client else None
            if channel is None:
                continue
            try:
                channel.send(delivery.to_json())
            except Exception:
                # The delivery is stored: the kernel gets it when it reconnects (catch-up).
                # Closing the channel makes it reconnect; the other effects still apply.
                self.log.exception("hooknb could not push delivery %d", delivery.seq)
                self.close_channel(channel)
        for deadline, wait_id in effects.deadlines:
            self._deadlines.add(deadline, wait_id)
        for owner in effects.owners_to_kick:
            self.outbox.kick(owner)
        if effects.runs_closed:
            self._stop_http_calls(effects.runs_closed)
        for workflow, report in effects.reports:
            self._notify_watchers(workflow, report)

    def _route_client(self, route: Route) -> str | None:
        if route.kind == "client":
            return route.name
        return self._workflow_client.get(route.name)

    # -- the public callback route ---------------------------------------------------------

    def ingest_at_once(
        self, callback_id: str, request: InboundRequest
    ) -> asyncio.Future[tuple[int, dict[str, Any]]] | None:
        """The future of the answer to a trigger callback that needs nothing decided before
        its write (no sender verification, conditions, splitOn or concurrency limit), its
        write queued now, without a task; None for any other request (:meth:`ingest`).

        The busiest write there is: stored with the other trigger callbacks of the writer's
        batch, in one statement (:meth:`_op_trigger_callbacks`)."""
        if not self.is_ready or callback_id in self._unverifiable:
            return None
        name = self._trigger_ids.get(callback_id)
        if name is None or self._verifiers.get(callback_id) is not None:
            return None
        settings = self._settings.get(name)
        if settings is not None and (settings.evaluates or settings.limited):
            return None
        answer: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        writer = None
        wanted = self.trigger_writer_process
        if wanted is not False:
            writer = self._trigger_writer
            if writer is None and (wanted or self._in_a_stream(request.received)):
                writer = self._start_trigger_writer()
        if writer is not None and writer.can_take(len(request.body)):
            writer.send(name, request, (answer, callback_id, name, request))
        else:
            self._store_trigger_callback(callback_id, request, answer)
        return answer

    def _store_trigger_callback(
        self,
        callback_id: str,
        request: InboundRequest,
        answer: asyncio.Future[tuple[int, dict[str, Any]]],
    ) -> None:
        """Store a plain trigger callback with the writer thread's batch; answer when durable."""
        written = self.store.write(Grouped(self._trigger_callbacks, (callback_id, request)))
        written.add_done_callback(functools.partial(self._answer_written, answer))

    def _in_a_stream(self, received: float) -> bool:
        """Whether plain trigger callbacks come as a stream that a trigger writer process
        would take faster: ``trigger_stream_rate`` of them received within one second
        (counted until it starts), and this process may use two cores or more (pinned to
        one, the child would only take the loop's core from it)."""
        second = int(received)
        if second != self._stream_second:
            self._stream_second, self._stream_count = second, 0
        self._stream_count += 1
        return self._stream_count == self.trigger_stream_rate and _usable_cores() >= 2

    def _start_trigger_writer(self) -> TriggerWriter | None:
        """Start the trigger writer process (see ``trigger_writer_process``); None if it
        cannot start, and it is not tried again."""
        writer = TriggerWriter(self.store.path, self._trigger_writer_replies, self.log)
        self.store.share_writes()
        try:
            writer.start()
        except OSError as exc:
            self.log.error("hooknb: the trigger writer process did not start: %s", exc)
            self.trigger_writer_process = False
            return None
        self._trigger_writer = writer
        return writer

    def _trigger_writer_replies(self, replies: list[tuple[Any, list[Any]]]) -> None:
        """The trigger writer's answers for one of its batches (see
        :mod:`hooknb.server.trigger_writer`): the stored callbacks are answered 202 and their
        runs delivered, as from the writer thread; a callback whose trigger is not enabled is
        taken as any other (409, 404, …); one that failed gets a 503."""
        stored: list[tuple[str, InboundRequest, StoredTrigger]] = []
        answers = []
        failed = []
        for (answer, callback_id, name, request), reply in replies:
            if reply[1] is None:
                try:
                    self._store_trigger_callback(callback_id, request, answer)
                except StoreError as exc:
                    if not answer.done():
                        answer.set_exception(exc)
            elif reply[1] is False:
                failed.append(reply[2])
                if not answer.done():
                    answer.set_exception(StoreError(f"hooknb trigger writer: {reply[2]}"))
            else:
                stored.append((name, request, StoredTrigger(*reply[1:])))
                answers.append(answer)
        if failed:
            self.log.error("hooknb: %d trigger callbacks answered 503: %s", len(failed), failed[0])
        if not stored:
            return
        outcomes = self._accepted_triggers(stored)
        self._apply(outcomes[0].effects)
        for answer, outcome in zip(answers, outcomes, strict=True):
            if not answer.done():
                answer.set_result((outcome.status, outcome.value))

    def _answer_written(
        self, answer: asyncio.Future[tuple[int, dict[str, Any]]], written: asyncio.Future[Outcome]
    ) -> None:
        if answer.cancelled():  # the task awaiting it in ingest() was cancelled
            return
        exc = written.exception()  # (the store never cancels its futures)
        if exc is not None:
            answer.set_exception(exc)
            return
        outcome = written.result()
        self._apply(outcome.effects)
        answer.set_result((outcome.status, outcome.value))

    async def ingest(
        self, callback_id: str, request: InboundRequest, *, forward_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Store a request received on a (signature-checked) callback URL; return the answer.

        ``forward_id`` is a hooknb receiver's id for a callback it received and stored for this
        server: the same id forwarded again gets the first answer and changes nothing.
        """
        taking = self.ingest_at_once(callback_id, request) if forward_id is None else None
        if taking is not None:
            return await taking
        delivery_id = None
        if callback_id in self._unverifiable:
            return 404, {"error": "not found"}
        verifier = self._verifiers.get(callback_id)
        if verifier is None and callback_id not in self._trigger_ids:
            verifier = self._wait_verifier(callback_id)
            if verifier is _UNVERIFIABLE:
                return 404, {"error": "not found"}
        if verifier is not None:
            try:
                verified = verifier.verify(request.headers, request.body)
            except VerificationFailed as exc:
                refusal = {"error": f"sender signature verification failed: {exc}"}
                if forward_id is None:
                    return 401, refusal
                # A forwarded refusal is recorded too, so that a repeat gets the same answer.
                outcome = await self._write(_forwarded(forward_id, request, Outcome(refusal, 401)))
                return outcome.status, outcome.value
            delivery_id = verified.delivery_id
            remember_until = request.received + verified.remember_for

        # Trigger conditions and splitOn are evaluated here, before the write: the writer
        # thread only stores what they decided.
        decision = None
        trigger_of = self._trigger_ids.get(callback_id)
        settings = self._settings.get(trigger_of) if trigger_of is not None else None
        if settings is not None and settings.evaluates:
            decision = decide(settings, trigger_of or "", request)

        def op(conn: sqlite3.Connection) -> Outcome:
            if delivery_id is not None:
                seen = conn.execute(
                    "SELECT run_id FROM delivery_ids WHERE target = ? AND delivery_id = ?"
                    " AND expires > ?",
                    (callback_id, delivery_id, request.received),
                ).fetchone()
                if seen is not None:
                    # A retry or a replay of a verified delivery: same answer, nothing new.
                    return Outcome(
                        {"run": seen[0], "status": "Accepted", "duplicate": True}, status=202
                    )
            outcome = self._op_ingest(conn, callback_id, request, decision)
            if delivery_id is not None and outcome.status == 202:
                conn.execute("DELETE FROM delivery_ids WHERE expires <= ?", (request.received,))
                conn.execute(
                    "INSERT OR REPLACE INTO delivery_ids (target, delivery_id, run_id, expires)"
                    " VALUES (?, ?, ?, ?)",
                    (callback_id, delivery_id, outcome.value.get("run"), remember_until),
                )
            return outcome

        outcome = await self._write(
            op if forward_id is None else _forwarded(forward_id, request, op)
        )
        return outcome.status, outcome.value

    def _wait_verifier(self, wait_id: str) -> Verifier | None:
        """The sender verification of a wait's callback URL, read from its row (one lookup
        by primary key; a wait usually gets one callback). :data:`_UNVERIFIABLE` when the
        stored setting cannot be read: its URL then refuses every callback rather than skip
        the check."""
        row = self.store.latest.execute(
            "SELECT verify FROM waits WHERE id = ? AND verify IS NOT NULL", (wait_id,)
        ).fetchone()
        if row is None:
            return None
        try:
            return make_verifier(jsonsafe.loads(row[0]))
        except (TypeError, ValueError):
            self.log.error("hooknb cannot read the sender verification of %s", wait_id)
            return _UNVERIFIABLE

    def _op_ingest(
        self,
        conn: sqlite3.Connection,
        callback_id: str,
        request: InboundRequest,
        decision: Decision | None = None,
    ) -> Outcome:
        name = self._trigger_ids.get(callback_id)
        if name is not None:
            outcome = self._op_trigger_callback(conn, name, request, decision)
            if outcome is not None:
                return outcome
        wait = conn.execute(
            "SELECT run_id, workflow, step, client, state, fingerprint FROM waits WHERE id = ?",
            (callback_id,),
        ).fetchone()
        if wait is not None and _workflow_exists(conn, wait[1]):
            # (A deleted workflow's callback URLs, its actions' included, answer 404.)
            return self._op_wait_callback(conn, callback_id, wait, request)
        return Outcome({"error": "not found"}, status=404)

    def _op_wait_callback(
        self,
        conn: sqlite3.Connection,
        wait_id: str,
        wait: tuple[Any, ...],
        request: InboundRequest,
    ) -> Outcome:
        run_id, workflow, step, client, state, old_fp = wait
        answer = {"run": run_id, "workflow": workflow, "action": step}
        # Only wait callbacks need their identity: to recognise a sender's retry later.
        fp = fingerprint(request.body, request.headers)
        if state in OPEN_WAIT_STATES:
            callback_id = insert_callback(conn, "wait", wait_id, run_id, request)
            conn.execute(
                "UPDATE waits SET state = 'completed', callback = ?, fingerprint = ?, ended = ? "
                "WHERE id = ?",
                (callback_id, fp, request.received, wait_id),
            )
            effects = Effects()
            effects.deliveries.append(
                insert_delivery(
                    conn,
                    Route.client(client),
                    "wait",
                    event="callback",
                    run_id=run_id,
                    wait_id=wait_id,
                    callback_id=callback_id,
                    request=request,
                    extra={"step": step, "workflow": workflow},
                )
            )
            self._op_queue_wait_unsubscribe(conn, wait_id, effects)
            return Outcome({**answer, "status": "Accepted"}, status=202, effects=effects)
        if state == "completed" and old_fp == fp:
            # The sender retried a callback we already took: same answer, no second resume.
            return Outcome({**answer, "status": "Accepted", "duplicate": True}, status=202)
        final = WAIT_OUTCOME.get(state, state)
        return Outcome(
            {
                "error": f"this callback URL's action has already finished ({final})",
                "state": final,
                **answer,
            },
            status=409,
        )

    def _op_trigger_callback(
        self,
        conn: sqlite3.Connection,
        name: str,
        request: InboundRequest,
        decision: Decision | None = None,
    ) -> Outcome | None:
        """Start the run(s) of a trigger event of ``name``; a 409 if its trigger is disabled,
        None if it is gone."""
        settings = self._settings.get(name)
        if decision is None and (settings is None or not settings.limited):
            # The busiest write there is: one statement checks the trigger and stores the
            # request (see insert_trigger_callback).
            run_id = new_run_id()
            callback_id = insert_trigger_callback(conn, name, run_id, request)
            if callback_id is None:
                return self._op_trigger_refused(conn, name)
            tracking = tracking_id(request, run_id)
            rowid = conn.execute(
                "INSERT INTO runs (id, workflow, status, trigger_callback, created, tracking_id)"
                " VALUES (?, ?, 'Queued', ?, ?, ?)",
                (run_id, name, callback_id, request.received, tracking),
            ).lastrowid
            effects = Effects()
            effects.deliveries.append(
                trigger_delivery(int(rowid or 0), name, run_id, callback_id, request)
            )
            history = _insert_history(conn, name, "Fired", request, callback_id, [run_id], 202)
            return Outcome(
                {
                    "run": run_id,
                    "workflow": name,
                    "status": "Accepted",
                    "$headers": _run_headers(name, run_id, tracking, history),
                },
                status=202,
                effects=effects,
            )
        state = conn.execute(
            "SELECT trigger_state FROM workflows WHERE name = ?", (name,)
        ).fetchone()
        if state is None or state[0] not in ("enabled", "enabling"):
            return self._op_trigger_refused(conn, name)
        return self._op_trigger_event(conn, name, request, decision, "trigger")

    def _op_trigger_callbacks(
        self, conn: sqlite3.Connection, items: list[Grouped]
    ) -> list[Outcome]:
        """Trigger callbacks with nothing to decide (no conditions, splitOn, concurrency limit,
        sender verification or forward id), as many as the writer's batch holds: each gets
        the row of its request, its Queued run (which is its delivery: rows.trigger_delivery)
        and a Fired entry in the trigger history, all in one multi-row statement
        (:meth:`_op_insert_trigger_callbacks`). The ids are the ones SQLite would give (the
        largest so far plus one: this thread is the only writer), given explicitly so that
        the rows can refer to each other. A callback whose workflow is not (or no longer) like
        that, or whose trigger is not enabled, takes the general path (:meth:`_op_ingest`), in
        its turn. Whether a trigger is enabled and the next ids are read once and kept while
        nothing else is written (:class:`_TriggerMemo`)."""
        outcomes: list[Outcome | None] = []
        pending: list[tuple[int, str, InboundRequest]] = []
        memo = self._trigger_memo
        for item in items:
            callback_id, request = item.args
            name = self._trigger_ids.get(callback_id)
            settings = self._settings.get(name) if name is not None else None
            if name is not None and (settings is None or not settings.limited):
                memo.check(self.store.write_stamp(conn))
                enabled = memo.enabled.get(name)
                if enabled is None:
                    enabled = memo.enabled[name] = trigger_enabled(conn, name)
                if enabled:
                    pending.append((len(outcomes), name, request))
                    outcomes.append(None)  # (set by _op_insert_trigger_callbacks)
                    continue
            if pending:
                self._op_insert_trigger_callbacks(conn, pending, outcomes)
                pending = []
            outcomes.append(self._op_ingest(conn, callback_id, request))
        if pending:
            self._op_insert_trigger_callbacks(conn, pending, outcomes)
        return cast(list[Outcome], outcomes)  # every None is filled in by now

    def _op_insert_trigger_callbacks(
        self,
        conn: sqlite3.Connection,
        pending: list[tuple[int, str, InboundRequest]],
        outcomes: list[Outcome | None],
    ) -> None:
        """The rows of :meth:`_op_trigger_callbacks`' callbacks, and their outcomes: one row
        each of the writer's ``trigger_callback_rows`` view (:mod:`hooknb.server.store`),
        whose trigger inserts the request, the run and the history entry."""
        memo = self._trigger_memo
        memo.check(self.store.write_stamp(conn))
        if not memo.next_ids:
            memo.next_ids = next_trigger_ids(conn)
        triggers = [(name, request) for _, name, request in pending]
        stored = insert_trigger_callbacks(conn, triggers, memo.next_ids)
        # Ids taken (a rollback leaves a gap: harmless); the rows were the only change since.
        memo.stamp = self.store.write_stamp(conn)
        accepted = self._accepted_triggers(
            [(*trigger, made) for trigger, made in zip(triggers, stored, strict=True)]
        )
        for (index, _, _), outcome in zip(pending, accepted, strict=True):
            outcomes[index] = outcome

    def _accepted_triggers(
        self, stored: list[tuple[str, InboundRequest, StoredTrigger]]
    ) -> list[Outcome]:
        """The 202 of each stored trigger callback, with its run's delivery. One Effects for
        the whole group, given to its first callback: the others are committed with it and
        resolved in the same turn of the loop, so all of its deliveries may go out as the
        first is answered (an Effects per callback cost as much as its rows' statements)."""
        effects = Effects()
        outcomes = []
        for name, request, made in stored:
            effects.deliveries.append(
                trigger_delivery(made.run_rowid, name, made.run_id, made.callback_id, request)
            )
            outcomes.append(
                Outcome(
                    {
                        "run": made.run_id,
                        "workflow": name,
                        "status": "Accepted",
                        "$headers": _run_headers(
                            name, made.run_id, made.tracking, history_name(made.history_id)
                        ),
                    },
                    status=202,
                    effects=effects if len(effects.deliveries) == 1 else _NO_EFFECTS,
                )
            )
        return outcomes

    def _op_trigger_refused(self, conn: sqlite3.Connection, name: str) -> Outcome | None:
        if not _workflow_exists(conn, name):
            return None
        return Outcome(
            {
                "error": f"the trigger of workflow {name!r} is disabled",
                "state": "Disabled",
                "workflow": name,
            },
            status=409,
        )

    def _op_trigger_event(
        self,
        conn: sqlite3.Connection,
        name: str,
        request: InboundRequest,
        decision: Decision | None,
        kind: str,
        effects: Effects | None = None,
    ) -> Outcome:
        """One trigger event (a callback or a manual start) that conditions, splitOn or
        concurrency apply to: its runs, or no run (Skipped, Failed, 429), in the history.

        Runs beyond the workflow's ``runs`` limit wait to start (``held``), oldest first, and
        get their delivery when a run of the workflow ends (:meth:`_op_release_held`)."""
        effects = effects or Effects()
        decision = decision or Decision("Fired")
        settings = self._settings.get(name) or TriggerSettings()
        if decision.status != "Fired":
            callback_id = insert_callback(conn, kind, name, None, request)
            code = 202 if decision.status == "Skipped" else 400
            history = _insert_history(
                conn, name, decision.status, request, callback_id, [], code, decision.reason
            )
            answer: dict[str, Any] = {
                "workflow": name,
                "status": decision.status,
                "reason": decision.reason,
                "$headers": _history_headers(name, history),
            }
            if code != 202:
                answer["error"] = decision.reason
            return Outcome(answer, status=code, effects=effects)
        count = len(decision.bodies)
        free = count
        if settings.limited:
            assert settings.runs is not None
            active, waiting = _run_load(conn, name)
            free = max(settings.runs - active, 0)
            if count - free > settings.waiting_limit - waiting:
                callback_id = insert_callback(conn, kind, name, None, request)
                reason = (
                    f"{active} runs are under way (the limit is {settings.runs}) and "
                    f"{waiting} are waiting to start (at most {settings.waiting_limit})"
                )
                history = _insert_history(
                    conn, name, "Failed", request, callback_id, [], 429, reason
                )
                return Outcome(
                    {
                        "error": f"too many runs of workflow {name!r}: {reason}",
                        "workflow": name,
                        "status": "Failed",
                        "$headers": {**_history_headers(name, history), "Retry-After": "5"},
                    },
                    status=429,
                    effects=effects,
                )
        runs: list[dict[str, Any]] = []
        first_callback = None
        for body in decision.bodies:
            run_id = new_run_id()
            one = (
                request
                if body is None
                else replace(request, body=body, content_type="application/json")
            )
            callback_id = insert_callback(conn, kind, name, run_id, one)
            first_callback = first_callback or callback_id
            held = free <= 0
            free -= 1
            tracking = tracking_id(request, run_id)
            rowid = conn.execute(
                "INSERT INTO runs (id, workflow, status, trigger_callback, created, tracking_id,"
                " held) VALUES (?, ?, 'Queued', ?, ?, ?, ?)",
                (run_id, name, callback_id, request.received, tracking, int(held)),
            ).lastrowid
            if not held:
                effects.deliveries.append(
                    trigger_delivery(int(rowid or 0), name, run_id, callback_id, one)
                )
            runs.append(
                {
                    "run": run_id,
                    "status": "Queued",
                    "waitingToStart": held,
                    "callback": one.to_json(callback_id),
                }
            )
        ids = [run["run"] for run in runs]
        history = _insert_history(conn, name, "Fired", request, first_callback, ids, 202)
        first = runs[0]
        answer = {
            "run": first["run"],
            "workflow": name,
            "status": "Accepted",
            "$headers": _run_headers(
                name, first["run"], tracking_id(request, first["run"]), history
            ),
        }
        if len(runs) > 1:
            answer["runs"] = ids
        if kind != "trigger":
            answer["started"] = runs
        return Outcome(answer, status=202, effects=effects)

    def _op_release_held(self, conn: sqlite3.Connection, workflow: str, effects: Effects) -> None:
        """Runs of ``workflow`` waiting to start get their delivery, oldest first, while the
        workflow has fewer than its ``runs`` limit under way (all of them once it has none)."""
        settings = self._settings.get(workflow)
        free = None
        if settings is not None and settings.limited:
            assert settings.runs is not None
            free = settings.runs - _run_load(conn, workflow)[0]
            if free <= 0:
                return
        rows = conn.execute(
            "SELECT r.rowid, r.id, " + CALLBACK_COLUMNS + " FROM runs r"
            " JOIN callbacks c ON c.id = r.trigger_callback"
            " WHERE r.workflow = ? AND r.held = 1 ORDER BY r.created, r.id LIMIT ?",
            (workflow, -1 if free is None else free),
        ).fetchall()
        for row in rows:
            rowid, run_id, stored = row[0], row[1], row[2:]
            # Released, the queued run is its delivery (rows.trigger_delivery).
            conn.execute("UPDATE runs SET held = 0 WHERE id = ?", (run_id,))
            request = InboundRequest(
                method=stored[2],
                headers=[tuple(pair) for pair in _stored_request(stored[3])],
                queries=_stored_request(stored[4]),
                content_type=stored[5],
                body=bytes(stored[6]),
                received=stored[1],
            )
            effects.deliveries.append(trigger_delivery(rowid, workflow, run_id, stored[0], request))

    # -- workflows and triggers ------------------------------------------------------------

    async def attach(
        self,
        name: str,
        client: str,
        *,
        trigger_name: str | None = None,
        key_type: str | None = None,
        verify: Any = None,
    ) -> dict[str, Any]:
        """Make ``client`` the kernel that runs workflow ``name`` (creating it if new).

        With ``trigger_name``, the workflow has an HttpWebhook trigger and gets a stable
        trigger callback URL, signed with the ``key_type`` access key (Logic Apps'
        ``accessKeyType``); ``verify`` adds a sender-signature check to it. Trigger runs that
        arrived while no kernel ran the workflow are delivered to ``client`` from now on.
        """
        _check_name(name, "workflow name")
        try:
            key = normalize_key_type(key_type)
            verifier = make_verifier(verify)
        except ValueError as exc:
            raise HubError(400, str(exc)) from None
        verify_json = json.dumps(verifier.to_json()) if verifier else None
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT trigger_id FROM workflows WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                trigger_id = new_callback_id() if trigger_name else None
                conn.execute(
                    "INSERT INTO workflows (name, client, trigger_id, trigger_name, trigger_state,"
                    " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        client,
                        trigger_id,
                        trigger_name,
                        "disabled" if trigger_name else "none",
                        now,
                        now,
                    ),
                )
            else:
                trigger_id = row[0]
                if trigger_name and trigger_id is None:
                    trigger_id = new_callback_id()
                    conn.execute(
                        "UPDATE workflows SET trigger_id = ?, trigger_state = 'disabled' "
                        "WHERE name = ?",
                        (trigger_id, name),
                    )
                # A workflow the server runs keeps its worker: a kernel enabling it only
                # configures the trigger.
                conn.execute(
                    "UPDATE workflows SET client = CASE hosted WHEN 1 THEN client ELSE ? END,"
                    " updated = ?, trigger_name = COALESCE(?, trigger_name) WHERE name = ?",
                    (client, now, trigger_name, name),
                )
            if trigger_id is not None:
                conn.execute(
                    "UPDATE workflows SET key_type = ?, verify = ? WHERE name = ?",
                    (key, verify_json, name),
                )
                # Trigger ids never change once made; an entry left by a rolled-back op
                # finds no workflow row and is ignored.
                self._trigger_ids[trigger_id] = name
            effects = Effects(attach=None if _hosted(conn, name) else (name, client))
            return Outcome(trigger_id, effects=effects)

        trigger_id = (await self._write(op)).value
        if trigger_id is not None:
            self._unverifiable.discard(trigger_id)  # a new setting replaces an unreadable one
            if verifier is None:
                self._verifiers.pop(trigger_id, None)
            else:
                self._verifiers[trigger_id] = verifier
        if self._workflow_client.get(name) == client:
            self._catch_up(client, [Route.workflow(name)])
        return self.views.workflow(name)

    async def enable_trigger(
        self,
        name: str,
        client: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Any,
        *,
        secure: int = 0,
    ) -> dict[str, Any]:
        """Subscribe the workflow's trigger (or keep the existing subscription if unchanged).

        ``secure`` (``rows.SECURE_*`` bits, the trigger's secureData) is what views hide from
        now on: its subscribe and unsubscribe requests (inputs), their responses and the
        callbacks it receives (outputs). Callbacks received while it was secure stay hidden
        when the setting changes."""
        subscribe_request = _normalize("subscribe", subscribe)
        unsubscribe_request = _normalize_optional("unsubscribe", unsubscribe)
        subscribe_json = json.dumps(subscribe_request, sort_keys=True)
        unsubscribe_json = json.dumps(unsubscribe_request, sort_keys=True)
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT trigger_id, trigger_state, subscribe, unsubscribe, subscription,"
                " trigger_name, trigger_secure FROM workflows WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None or row[0] is None:
                raise HubError(
                    404, f"workflow {name!r} has no HttpWebhook trigger; attach it first"
                )
            _, state, old_subscribe, old_unsubscribe, _subscription, trigger_name, old_secure = row
            effects = Effects()
            owner = Owner.trigger(name)
            if old_secure != secure:
                # Callbacks received while the trigger was secure stay hidden.
                stamp_trigger_callbacks(conn, name, old_secure)
                conn.execute(
                    "UPDATE workflows SET trigger_secure = ? WHERE name = ?", (secure, name)
                )
            # A new secure setting subscribes again too (as Logic Apps does on every save): the
            # subscription shown is then always one made under the setting shown with it.
            same = (
                old_subscribe == subscribe_json
                and old_unsubscribe == unsubscribe_json
                and old_secure == secure
            )
            if state in ("enabled", "enabling") and same:
                last = last_outbox(conn, owner, "subscribe")
                return Outcome({"outbox": last}, effects=effects)
            if state in ("enabled", "enabling") and old_unsubscribe not in (None, "null"):
                # The inputs changed: the old subscription goes before the new one is made.
                _queue_trigger_unsubscribe(
                    conn, name, trigger_name, old_unsubscribe, old_secure, effects
                )
            conn.execute(
                "UPDATE workflows SET trigger_state = 'enabling', subscribe = ?, unsubscribe = ?,"
                " client = CASE hosted WHEN 1 THEN client ELSE ? END, last_error = NULL,"
                " updated = ? WHERE name = ?",
                (subscribe_json, unsubscribe_json, client, now, name),
            )
            outbox_id = insert_outbox(
                conn,
                owner,
                "subscribe",
                subscribe_request,
                _trigger_headers(name, trigger_name),
                secure,
            )
            effects.owners_to_kick.add(owner)
            if not _hosted(conn, name):
                effects.attach = (name, client)
            return Outcome({"outbox": outbox_id}, effects=effects)

        outcome = await self._write(op)
        if outcome.value["outbox"] is not None:
            # The old subscription's unsubscribe may go first: two calls' worth of waiting.
            within = self._longest_call(subscribe_request) + self._longest_call(unsubscribe_request)
            await self.outbox.result(outcome.value["outbox"], within=within)
        return self.views.workflow(name)

    async def disable_trigger(self, name: str) -> dict[str, Any]:
        """Unsubscribe the workflow's trigger; its callback URL answers 409 until re-enabled."""
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT trigger_id, trigger_state, unsubscribe, trigger_name, trigger_secure"
                " FROM workflows WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None or row[0] is None:
                raise HubError(404, f"workflow {name!r} has no HttpWebhook trigger")
            _, state, unsubscribe, trigger_name, secure = row
            effects = Effects()
            outbox_id = None
            if state in ("enabled", "enabling"):
                conn.execute(
                    "UPDATE workflows SET trigger_state = 'disabled', updated = ? WHERE name = ?",
                    (now, name),
                )
                if unsubscribe not in (None, "null"):
                    outbox_id = _queue_trigger_unsubscribe(
                        conn, name, trigger_name, unsubscribe, secure, effects
                    )
            return Outcome({"outbox": outbox_id}, effects=effects)

        outcome = await self._write(op)
        if outcome.value["outbox"] is not None:
            await self.outbox.result(outcome.value["outbox"], within=self._longest_call(None))
        return self.views.workflow(name)

    async def set_settings(self, name: str, settings: TriggerSettings) -> dict[str, Any]:
        """Keep workflow ``name``'s trigger settings (conditions, splitOn, concurrency; see
        :mod:`.trigger_settings`), applied from the next trigger event on.

        A workflow defined again without an HttpWebhook trigger loses the one it had: the old
        subscription is unsubscribed and its callback URL answers 404 (Logic Apps unsubscribes
        a trigger removed from a workflow). Runs waiting to start go as the new limit allows.
        """
        _check_name(name, "workflow name")
        now = time.time()
        text = json.dumps(settings.to_json())

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT trigger_id, trigger_state, unsubscribe, trigger_name, trigger_secure"
                " FROM workflows WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO workflows (name, created, updated, settings) VALUES (?, ?, ?, ?)",
                    (name, now, now, text),
                )
            else:
                conn.execute(
                    "UPDATE workflows SET settings = ?, updated = ? WHERE name = ?",
                    (text, now, name),
                )
            effects = Effects()
            outbox_id = None
            if row is not None and row[0] is not None and settings.kind != "HttpWebhook":
                trigger_id, state, unsubscribe, trigger_name, secure = row
                if state in ("enabled", "enabling") and unsubscribe not in (None, "null"):
                    outbox_id = _queue_trigger_unsubscribe(
                        conn, name, trigger_name, unsubscribe, secure, effects
                    )
                conn.execute(
                    "UPDATE workflows SET trigger_id = NULL, trigger_name = NULL,"
                    " trigger_state = 'none', subscribe = NULL, unsubscribe = NULL,"
                    " subscription = NULL WHERE name = ?",
                    (name,),
                )
                self._trigger_ids.pop(trigger_id, None)
            self._settings[name] = settings
            if _has_held(conn, name):
                self._op_release_held(conn, name, effects)
            return Outcome({"outbox": outbox_id}, effects=effects)

        outcome = await self._write(op)
        if outcome.value["outbox"] is not None:
            await self.outbox.result(outcome.value["outbox"], within=self._longest_call(None))
        return self.views.workflow(name)

    async def delete_workflow(self, name: str) -> dict[str, Any]:
        """Delete workflow ``name`` (Logic Apps: deleting a logic app): its trigger is
        unsubscribed, its unfinished runs are cancelled (their waiting webhook steps
        unsubscribe), every callback URL of it answers 404 from now on, and the server stops
        running its definition. Its runs and trigger history stay, to be read until pruned."""
        now = time.time()
        connected = set(self._channels)

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT trigger_id, trigger_state, unsubscribe, trigger_name, trigger_secure"
                " FROM workflows WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None:
                raise HubError(404, f"no workflow named {name!r}")
            trigger_id, state, unsubscribe, trigger_name, secure = row
            effects = Effects()
            outbox_id = None
            if state in ("enabled", "enabling") and unsubscribe not in (None, "null"):
                outbox_id = _queue_trigger_unsubscribe(
                    conn, name, trigger_name, unsubscribe, secure, effects
                )
            # Its callbacks stay: those of a secure trigger stay hidden without the workflow.
            stamp_trigger_callbacks(conn, name, secure)
            conn.execute("DELETE FROM workflows WHERE name = ?", (name,))
            cancelled = []
            for (run_id,) in conn.execute(
                "SELECT id FROM runs WHERE workflow = ? AND status IN ('Queued', 'Running',"
                " 'Waiting')",
                (name,),
            ).fetchall():
                self._op_cancel_run(conn, run_id, now, connected, effects, final=True)
                cancelled.append(run_id)
            if trigger_id is not None:
                self._trigger_ids.pop(trigger_id, None)
            self._settings.pop(name, None)
            return Outcome(
                {"workflow": name, "deleted": True, "cancelled": cancelled, "outbox": outbox_id},
                effects=effects,
            )

        outcome = await self._write(op)
        self._workflow_client.pop(name, None)
        value = dict(outcome.value)
        outbox_id = value.pop("outbox")
        if outbox_id is not None:
            await self.outbox.result(outbox_id, within=self._longest_call(None))
            (value["unsubscribe"],) = outbox_json(self.store.reader, Owner.trigger(name), 1)
        self._notify_worker({"kind": "definitions", "workflow": name})
        # Watchers stay: they still get the final reports of the runs being cancelled.
        for client in self._watchers.get(name, set()):
            channel = self._channels.get(client)
            if channel is not None:
                channel.notify({"kind": "workflow-state", "workflow": name, "state": "Deleted"})
        return value

    def trigger_history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The workflow's trigger history, newest first (see :meth:`Views.trigger_history`)."""
        return self.views.trigger_history(name, limit)

    # -- runs ------------------------------------------------------------------------------

    async def start_run(
        self,
        workflow: str,
        client: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        queries: Mapping[str, Any] | None = None,
        queued: bool = False,
    ) -> dict[str, Any]:
        """A manual run ("Run trigger"): its trigger inputs are stored like a callback.

        The starting kernel becomes the one that runs the workflow, so that resubmitted runs
        of a workflow without a trigger have a kernel to go to. With ``queued``, the run waits
        for whichever process holds the workflow's lease instead (a workflow the server runs:
        its definitions worker takes it), as a trigger's runs do.
        """
        _check_name(workflow, "workflow name")
        now = time.time()
        request = InboundRequest(
            method="POST",
            headers=list(headers or []),
            queries=dict(queries or {}),
            content_type=content_type,
            body=body,
            received=now,
        )

        settings = self._settings.get(workflow)
        decision = None
        if settings is not None and settings.evaluates:
            decision = decide(settings, workflow, request)

        def op(conn: sqlite3.Connection) -> Outcome:
            if (
                conn.execute("SELECT 1 FROM workflows WHERE name = ?", (workflow,)).fetchone()
                is None
            ):
                conn.execute(
                    "INSERT INTO workflows (name, client, created, updated) VALUES (?, ?, ?, ?)",
                    (workflow, None if queued else client, now, now),
                )
            elif not queued:
                conn.execute(
                    "UPDATE workflows SET client = ?, updated = ? WHERE name = ?",
                    (client, now, workflow),
                )
            if settings is not None and (settings.evaluates or settings.limited):
                # Conditions, splitOn or a concurrency limit apply as to a trigger callback:
                # the runs go to whichever process runs the workflow (this kernel, unless
                # the server does) once they may start.
                effects = Effects(
                    attach=None if queued or _hosted(conn, workflow) else (workflow, client)
                )
                outcome = self._op_trigger_event(
                    conn, workflow, request, decision, "manual", effects
                )
                value = dict(outcome.value)
                value.pop("$headers", None)
                if outcome.status == 202 and "started" in value:
                    first = value["started"][0]
                    value.update(first, status="Queued")
                return Outcome(value, status=outcome.status, effects=outcome.effects)
            run_id = new_run_id()
            callback_id = insert_callback(conn, "manual", workflow, run_id, request)
            _insert_history(conn, workflow, "Fired", request, callback_id, [run_id], 202)
            tracking = tracking_id(request, run_id)
            if queued:
                rowid = conn.execute(
                    "INSERT INTO runs (id, workflow, status, trigger_callback, created,"
                    " tracking_id) VALUES (?, ?, 'Queued', ?, ?, ?)",
                    (run_id, workflow, callback_id, now, tracking),
                ).lastrowid
                effects = Effects()
                effects.deliveries.append(
                    trigger_delivery(int(rowid or 0), workflow, run_id, callback_id, request)
                )
                return Outcome(
                    {
                        "run": run_id,
                        "workflow": workflow,
                        "callback": request.to_json(callback_id),
                        "status": "Queued",
                    },
                    effects=effects,
                )
            conn.execute(
                "INSERT INTO runs (id, workflow, client, status, trigger_callback, created,"
                " started, tracking_id)"
                " VALUES (?, ?, ?, 'Running', ?, ?, ?, ?)",
                (run_id, workflow, client, callback_id, now, now, tracking),
            )
            callback = request.to_json(callback_id)
            return Outcome(
                {"run": run_id, "workflow": workflow, "callback": callback},
                effects=Effects(attach=(workflow, client)),
            )

        outcome = await self._write(op)
        if outcome.status >= 400:
            value = dict(outcome.value)
            raise HubError(outcome.status, value.pop("error"), **value)
        return outcome.value

    async def resubmit(self, run_id: str) -> dict[str, Any]:
        """A new run with the trigger inputs of ``run_id`` (Logic Apps' "resubmit")."""

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT r.workflow, " + CALLBACK_COLUMNS + " FROM runs r"
                " JOIN callbacks c ON c.id = r.trigger_callback WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise HubError(404, f"no run {run_id!r} with stored trigger inputs")
            workflow = row[0]
            old = row[1:]
            new_run = new_run_id()
            now = time.time()
            request = InboundRequest(
                method=old[2],
                headers=[tuple(pair) for pair in _stored_request(old[3])],
                queries=_stored_request(old[4]),
                content_type=old[5],
                body=bytes(old[6]),
                received=now,
            )
            callback_id = insert_callback(conn, "resubmit", workflow, new_run, request)
            settings = self._settings.get(workflow)
            # A resubmitted run waits for a slot like any other (no 429: it was asked for).
            held = bool(
                settings is not None
                and settings.runs is not None
                and _run_load(conn, workflow)[0] >= settings.runs
            )
            rowid = conn.execute(
                "INSERT INTO runs (id, workflow, status, trigger_callback, created, tracking_id,"
                " held) VALUES (?, ?, 'Queued', ?, ?, ?, ?)",
                (new_run, workflow, callback_id, now, tracking_id(request, new_run), int(held)),
            ).lastrowid
            effects = Effects()
            if not held:
                effects.deliveries.append(
                    trigger_delivery(int(rowid or 0), workflow, new_run, callback_id, request)
                )
            return Outcome({"run": new_run, "workflow": workflow}, status=202, effects=effects)

        return (await self._write(op)).value

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Cancel a run, with or without a kernel running it.

        Its open waits end Cancelled (and unsubscribe). A kernel that runs it is told, and ends
        it; a run no kernel runs ends Cancelled here at once. Either way the cancel is stored:
        no kernel that adopts the workflow later brings the run back.
        """
        now = time.time()
        connected = set(self._channels)

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise HubError(404, f"no run {run_id!r}")
            if row[0] in FINISHED_RUN_STATUSES:
                raise HubError(409, f"run {run_id!r} has already ended ({row[0]})", state=row[0])
            effects = Effects()
            status = self._op_cancel_run(conn, run_id, now, connected, effects)
            return Outcome({"run": run_id, "status": status}, effects=effects)

        return (await self._write(op)).value

    async def cancel_runs(
        self, *, workflow: str | None = None, orphaned: bool = True
    ) -> dict[str, Any]:
        """Cancel unfinished runs in bulk: those no kernel runs (``orphaned``), or all of them,
        of one workflow or of every workflow. Returns the ids cancelled."""
        now = time.time()
        connected = set(self._channels)

        def op(conn: sqlite3.Connection) -> Outcome:
            clauses, params = ["status IN ('Queued', 'Running', 'Waiting')"], []
            if workflow is not None:
                clauses.append("workflow = ?")
                params.append(workflow)
            rows = conn.execute(
                f"SELECT id, client FROM runs WHERE {' AND '.join(clauses)}", params
            ).fetchall()
            effects = Effects()
            cancelled = []
            for run_id, client in rows:
                if orphaned and client is not None and client in connected:
                    continue
                self._op_cancel_run(conn, run_id, now, connected, effects)
                cancelled.append(run_id)
            return Outcome({"cancelled": cancelled}, effects=effects)

        return (await self._write(op)).value

    def _op_cancel_run(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        now: float,
        connected: set[str],
        effects: Effects,
        *,
        final: bool = False,
    ) -> str:
        """Cancel one unfinished run; return its status now (Cancelled, or Cancelling while the
        kernel that runs it winds it down). ``final`` ends it Cancelled here at once even when
        a kernel runs it (a deleted workflow: its kernel is told, but may stop it without
        reporting)."""
        status, client, doc, workflow, started, held = conn.execute(
            "SELECT status, client, doc, workflow, started, held FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        # A Queued run is its own delivery (rows.trigger_delivery): ending it Cancelled below
        # takes it back, with no row to find (this made a bulk cancel quadratic: F5).
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
        if status != "Queued":
            running_in = client
        elif not held:
            # Pushed to the kernel that runs its workflow, which may have started it already:
            # its first report, which moves it on from Queued, comes with the kernel's next sync.
            running_in = self._route_client(Route.workflow(workflow))
        else:
            running_in = None
        if running_in not in connected:
            running_in = None
        live = running_in is not None and status != "Queued"
        waits = conn.execute(
            f"SELECT id FROM waits WHERE run_id = ? AND state IN {OPEN_SQL}", (run_id,)
        ).fetchall()
        for (wait_id,) in waits:
            self._op_end_wait(conn, wait_id, "cancelled", now, effects, notify=live)
        if running_in is not None and not waits:
            effects.deliveries.append(
                insert_delivery(
                    conn, Route.client(running_in), "run", event="cancel", run_id=run_id
                )
            )
        if live and not final:
            return "Cancelling"
        reason = "the run was cancelled" + (
            ": its workflow was deleted"
            if final
            else ""
            if status == "Queued"
            else " while no kernel was running it"
        )
        ended_doc = _ended_doc(doc, "Cancelled", reason, now)
        conn.execute(
            "UPDATE runs SET status = 'Cancelled', ended = ?, doc = ? WHERE id = ?",
            (now, ended_doc, run_id),
        )
        self._op_close_runs(conn, {run_id: workflow}, now, effects)
        if running_in is not None:
            # The kernel's own last report may never come: kernels showing the run hear it here.
            effects.reports.append(
                (
                    workflow,
                    {
                        "id": run_id,
                        "status": "Cancelled",
                        "started": started,
                        "ended": now,
                        "doc": ended_doc,
                    },
                )
            )
        return "Cancelled"

    async def sync(
        self,
        client: str,
        acks: Iterable[int],
        runs: Iterable[Mapping[str, Any]],
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Acknowledge deliveries, record finished steps and run progress, in one commit.

        Reports and steps of a run that another kernel has adopted since are refused: their
        ids come back in ``fenced`` and the kernel stops its copy of those runs. A run that
        ends has its open waits closed (and unsubscribed) and its Http calls stopped.
        """
        seqs = {int(seq) for seq in acks}
        reports = [_run_report(report) for report in runs]
        records = [_step_record(record) for record in steps]
        now = time.time()
        watched = frozenset(self._watchers)

        def op(conn: sqlite3.Connection) -> Outcome:
            # A queued run's delivery (a negative seq) needs nothing here: the run's first
            # report, in this same sync, moves it on from Queued.
            rows = [(seq,) for seq in seqs if seq > 0]
            if rows:
                conn.executemany("DELETE FROM deliveries WHERE seq = ?", rows)
            fenced: set[str] = set()
            effects = Effects(acked=(client, seqs))
            # Every run named, read at once: a statement per run would hand the GIL to the
            # event loop and back once more per run (see store.execute_rows).
            known = _runs_client_workflow_status(
                conn, [*(r["run"] for r in records), *(r["id"] for r in reports)]
            )

            def owned(run_id: str) -> bool:
                found = known.get(run_id)
                return found is not None and _may_act_for(found[0], client)

            for record in records:
                if not owned(record["run"]):
                    fenced.add(record["run"])
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO steps (run_id, name, kind, after, first, position,"
                    " state, value, started, ended) VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?, ?)",
                    (
                        record["run"],
                        record["step"],
                        record["kind"],
                        record["after"],
                        record["first"],
                        record["position"],
                        record["value"],
                        record["started"],
                        record["ended"],
                    ),
                )
            closed: dict[str, str] = {}
            # Which reports the run's row takes is decided here, as a statement per report
            # would (a run this kernel may act for, not ended or ended the same way), then the
            # last taken report of each run is written in a few statements for all of them.
            taken: dict[str, tuple[Any, ...]] = {}
            for report in reports:
                run_id, status = report["id"], report["status"]
                if not owned(run_id):
                    fenced.add(run_id)
                    continue
                found = known[run_id]
                if found[2] in FINISHED_RUN_STATUSES and found[2] != status:
                    continue  # the run ended otherwise: it keeps its end
                started = report["started"]
                if started is None and run_id in taken:
                    started = taken[run_id][2]
                taken[run_id] = (run_id, status, started, report["ended"], report["doc"], client)
                known[run_id] = (client, found[1], status)
                workflow = found[1]
                if status in FINISHED_RUN_STATUSES:
                    closed[run_id] = workflow
                if workflow in watched:
                    effects.reports.append((workflow, report))
            execute_rows(
                conn,
                "UPDATE runs SET status = v.column2, started = COALESCE(v.column3, runs.started),"
                " ended = v.column4, doc = v.column5, client = v.column6 FROM (VALUES",
                "(?, ?, ?, ?, ?, ?)",
                list(taken.values()),
                ") AS v WHERE runs.id = v.column1",
            )
            if closed:
                self._op_close_runs(conn, closed, now, effects)
            return Outcome(
                {"acked": len(seqs), "runs": len(reports), "fenced": sorted(fenced)},
                effects=effects,
            )

        return (await self._write(op)).value

    def _op_close_runs(
        self, conn: sqlite3.Connection, closed: Mapping[str, str], now: float, effects: Effects
    ) -> None:
        """Runs have ended (``closed``: run id → workflow): waits they left open end Cancelled
        (and unsubscribe), Http calls still under way for them stop (after the commit), and
        runs their workflows held back may start. A few statements for any number of runs."""
        for batch in in_batches(list(closed)):
            for (wait_id,) in conn.execute(
                f"SELECT id FROM waits WHERE run_id IN ({marks(batch)}) AND state IN {OPEN_SQL}",
                batch,
            ).fetchall():
                self._op_end_wait(conn, wait_id, "cancelled", now, effects, notify=False)
        effects.runs_closed.update(closed)
        for workflow in dict.fromkeys(closed.values()):
            if _has_held(conn, workflow):
                self._op_release_held(conn, workflow, effects)

    # -- definitions the server runs ----------------------------------------------------------

    async def host_definition(self, name: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """Hand workflow ``name``'s Logic Apps definition to the server, which runs it (its
        definitions worker takes the workflow's lease) with no kernel needed, until it is
        taken back.

        ``document`` is ``{"definition": {...}, "parameters": {...}, "endpoints": {...}}``.
        A definition that cannot run is refused (400) with the reader's message.
        """
        _check_name(name, "workflow name")
        text = _definition_document(document)
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            if conn.execute("SELECT 1 FROM workflows WHERE name = ?", (name,)).fetchone() is None:
                conn.execute(
                    "INSERT INTO workflows (name, created, updated) VALUES (?, ?, ?)",
                    (name, now, now),
                )
            # The worker takes the lease from whichever kernel held it (runs that kernel has
            # under way stay with it).
            conn.execute(
                "UPDATE workflows SET definition = ?, hosted = 1, updated = ?,"
                " client = CASE WHEN client = ? THEN client END WHERE name = ?",
                (text, now, self.worker_client, name),
            )
            return Outcome()

        await self._write(op)
        if self._workflow_client.get(name) not in (None, self.worker_client):
            del self._workflow_client[name]
        self.on_hosted()
        self._notify_worker({"kind": "definitions", "workflow": name})
        state = json.loads(text)["state"]
        for client in self._watchers.get(name, ()):
            channel = self._channels.get(client)
            if channel is not None:
                channel.notify({"kind": "workflow-state", "workflow": name, "state": state})
        return self.views.workflow(name)

    async def unhost_definition(self, name: str) -> dict[str, Any]:
        """Take workflow ``name`` back from the server: its worker stops running it (runs it has
        under way become orphans that a kernel defining the workflow adopts)."""

        worker = self.worker_client

        def op(conn: sqlite3.Connection) -> Outcome:
            changed = conn.execute(
                "UPDATE workflows SET hosted = 0, updated = ? WHERE name = ? AND hosted = 1",
                (time.time(), name),
            ).rowcount
            if not changed:
                raise HubError(404, f"workflow {name!r} is not run by the server")
            if worker is not None:
                # Released at once, so a kernel taking the workflow back adopts its runs now;
                # the worker stops its copies when it hears (a late report of one is fenced).
                self._op_release(conn, name, worker, time.time())
            return Outcome()

        await self._write(op)
        if worker is not None and self._workflow_client.get(name) == worker:
            del self._workflow_client[name]
        self._notify_worker({"kind": "definitions", "workflow": name})
        return self.views.workflow(name)

    def hosted_definitions(self) -> list[dict[str, Any]]:
        """The definitions the server runs: ``{"name", "document", "version"}`` each, the
        version changing exactly when the document does."""
        return [
            {
                "name": name,
                "document": json.loads(text),
                "version": hashlib.sha256(text.encode()).hexdigest()[:16],
            }
            for name, text in self.store.reader.execute(
                "SELECT name, definition FROM workflows WHERE hosted = 1 ORDER BY name"
            )
        ]

    @property
    def has_hosted_definitions(self) -> bool:
        return (
            self.store.reader.execute("SELECT 1 FROM workflows WHERE hosted = 1 LIMIT 1").fetchone()
            is not None
        )

    def watch(self, name: str, client: str) -> dict[str, Any]:
        """``client`` shows workflow ``name`` live: it gets the workflow's run reports as
        notices from now on, starting with its recent runs."""
        _check_name(name, "workflow name")
        _check_name(client, "client id")
        self._watchers.setdefault(name, set()).add(client)
        channel = self._channels.get(client)
        runs = self.views.runs(workflow=name, limit=50)
        if channel is not None:
            for run in reversed(runs):
                channel.notify({"kind": "run-report", "workflow": name, "run": run})
        return {"workflow": name, "runs": len(runs)}

    def _notify_watchers(self, workflow: str, report: Mapping[str, Any]) -> None:
        clients = self._watchers.get(workflow)
        if not clients:
            return
        run = {
            "id": report["id"],
            "workflow": workflow,
            "status": report["status"],
            "started": report["started"],
            "ended": report["ended"],
            **json.loads(report["doc"]),
        }
        for client in list(clients):
            channel = self._channels.get(client)
            if channel is None:
                clients.discard(client)  # gone; it watches again when it reconnects
            else:
                channel.notify({"kind": "run-report", "workflow": workflow, "run": run})

    def _notify_worker(self, event: dict[str, Any]) -> None:
        channel = self._channels.get(self.worker_client or "")
        if channel is not None:
            channel.notify(event)

    # -- kernels that are gone: adopting their runs ----------------------------------------

    def is_connected(self, client: str | None) -> bool:
        """Whether ``client`` (a kernel) has its push channel open right now."""
        return client is not None and client in self._channels

    async def adopt(self, name: str, client: str) -> AdoptAnswer:
        """``client`` defines workflow ``name``: give it the workflow's lease and the unfinished
        runs whose kernel is gone, with their histories to replay.

        One live kernel holds a workflow's lease (it gets the trigger's runs and adopts orphans):
        a second live kernel is refused (409, naming the holder) and adopts nothing. Right after
        the hub starts, kernels that ran workflows before and have not reconnected yet get
        ``reconnect_grace`` seconds to do so before their runs count as orphaned (503 with
        ``retryAfter`` meanwhile). Runs
        cancelled while orphaned end Cancelled here instead of being adopted.
        """
        _check_name(name, "workflow name")
        _check_name(client, "client id")
        now = time.time()
        connected = set(self._channels)
        grace_left = self.reconnect_grace - (now - self.started)
        if grace_left <= 0:
            self._seen_clients = None
        seen = frozenset(self._seen_clients or ())

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute("SELECT client FROM workflows WHERE name = ?", (name,)).fetchone()
            holder = row[0] if row is not None else None
            if holder not in (None, client) and holder in connected:
                return Outcome(
                    {
                        "lease": "held",
                        "holder": holder,
                        "error": f"workflow {name!r} is run by another kernel that is connected "
                        f"({holder}): this kernel adopts none of its runs",
                    },
                    status=409,
                )
            orphans = [
                (run_id, owner, cancelled)
                for run_id, owner, cancelled in conn.execute(
                    "SELECT id, client, cancel_requested FROM runs WHERE workflow = ?"
                    " AND status IN ('Running', 'Waiting')",
                    (name,),
                )
                if owner != client and owner not in connected
            ]
            reconnecting = {owner for _, owner, _ in orphans} | {holder}
            if grace_left > 0 and any(
                other not in (None, client) and other not in seen for other in reconnecting
            ):
                return Outcome(
                    {
                        "lease": "pending",
                        "retryAfter": round(grace_left, 3),
                        "error": "the hub has just started: kernels that ran this workflow may "
                        "still reconnect",
                    },
                    status=503,
                )
            if row is None:
                conn.execute(
                    "INSERT INTO workflows (name, client, created, updated) VALUES (?, ?, ?, ?)",
                    (name, client, now, now),
                )
            else:
                conn.execute(
                    "UPDATE workflows SET client = ?, updated = ? WHERE name = ?",
                    (client, now, name),
                )
            effects = Effects(attach=(name, client))
            adopted, finalized = [], []
            for run_id, _, cancelled in orphans:
                if cancelled:
                    self._op_cancel_run(conn, run_id, now, connected, effects)
                    finalized.append(run_id)
                    continue
                conn.execute(
                    "UPDATE runs SET client = ?, adopted = ?, replays = replays + 1 WHERE id = ?",
                    (client, now, run_id),
                )
                conn.execute(
                    f"UPDATE waits SET client = ? WHERE run_id = ? AND state IN {OPEN_SQL}",
                    (client, run_id),
                )
                adopted.append(run_id)
            # Events their old kernels never acknowledged go to the new one (the histories it
            # gets below say the same; the kernel tells the two apart by wait id). In batches:
            # deliveries have no index by run, so each statement reads the whole table.
            for batch in in_batches(adopted):
                conn.execute(
                    "UPDATE deliveries SET route = ? WHERE route LIKE 'client:%'"
                    f" AND run_id IN ({marks(batch)})",
                    (str(Route.client(client)), *batch),
                )
            return Outcome(
                {"lease": "granted", "adopted": adopted, "finalized": finalized}, effects=effects
            )

        outcome = await self._write(op)
        if outcome.status != 200:
            raise HubError(outcome.status, outcome.value.pop("error"), **outcome.value)
        value = outcome.value
        value["runs"] = self.views.histories(value.pop("adopted"))
        self._catch_up(client, [Route.client(client), Route.workflow(name)])
        return value

    async def release(self, name: str, client: str) -> dict[str, Any]:
        """``client`` stops running workflow ``name`` (the definitions worker, when the server
        no longer runs it): its unfinished runs become orphans that a kernel defining the
        workflow adopts, and the lease is free."""
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            released = self._op_release(conn, name, client, now)
            return Outcome({"workflow": name, "released": released})

        value = (await self._write(op)).value
        if self._workflow_client.get(name) == client:
            del self._workflow_client[name]
        return value

    def _op_release(self, conn: sqlite3.Connection, name: str, client: str, now: float) -> int:
        conn.execute(
            "UPDATE workflows SET client = NULL, updated = ? WHERE name = ? AND client = ?",
            (now, name, client),
        )
        released = conn.execute(
            "UPDATE runs SET client = NULL WHERE workflow = ? AND client = ?"
            " AND status IN ('Running', 'Waiting')",
            (name, client),
        ).rowcount
        conn.execute(
            f"UPDATE waits SET client = NULL WHERE workflow = ? AND client = ?"
            f" AND state IN {OPEN_SQL}",
            (name, client),
        )
        return int(released)

    # -- the Http action: calls made by the hub, one per step ------------------------------

    async def http_step(
        self,
        run_id: str,
        step: str,
        client: str,
        request: Mapping[str, Any],
        *,
        timeout: float | None,
        async_pattern: bool,
        order: StepOrder | None = None,
        secure: int = 0,
    ) -> tuple[int, dict[str, Any]]:
        """Make a run's Http step (once): return the API status and answer.

        ``secure`` (``rows.SECURE_*`` bits) is kept with the step in the run's history.

        The call belongs to the run, not to the kernel's request: it goes on if the kernel
        goes away, and its outcome joins the run's history, so a kernel that adopts the run
        gets it without calling again. A step already made answers what it answered; one still
        under way is waited for. The call stops when the run ends or is cancelled.
        """
        _check_name(step, "action name")
        key = (run_id, step)
        task = self._http_calls.get(key)
        if task is None:
            row = self.store.reader.execute(
                "SELECT state, value FROM steps WHERE run_id = ? AND name = ?", (run_id, step)
            ).fetchone()
            if row is not None and row[0] == "done":
                recorded = json.loads(row[1])
                return int(recorded["status"]), recorded["answer"]
            now = time.time()
            order = order or StepOrder()

            def op(conn: sqlite3.Connection) -> Outcome:
                found = conn.execute(
                    "SELECT workflow, status FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
                if found is None:
                    raise HubError(404, f"no run {run_id!r}")
                workflow, status = found
                if status in FINISHED_RUN_STATUSES:
                    raise HubError(
                        409, f"run {run_id!r} has already ended ({status})", state=status
                    )
                if client:  # a kernel that names itself is fenced off from runs adopted since
                    _check_owner(conn, run_id, client)
                insert_step(conn, run_id, step, "Http", order, now, secure=secure)
                return Outcome(workflow)

            workflow = (await self._write(op)).value
            task = self._http_calls.get(key)  # another request may have started it meanwhile
            if task is None:
                task = asyncio.get_running_loop().create_task(
                    self._make_http_call(
                        run_id, workflow, step, request, timeout, async_pattern, secure
                    )
                )
                self._http_calls[key] = task
                task.add_done_callback(lambda _: self._http_calls.pop(key, None))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise HubError(409, f"run {run_id!r} ended before its Http step finished") from None
            raise

    async def _make_http_call(
        self,
        run_id: str,
        workflow: str,
        step: str,
        request: Mapping[str, Any],
        timeout: float | None,
        async_pattern: bool,
        secure: int = 0,
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "x-ms-client-tracking-id": run_id,
            "x-ms-workflow-run-id": run_id,
            "x-ms-workflow-name": workflow,
            "x-ms-workflow-operation-name": step,
        }
        status, answer = await perform(
            self.outbox.outbound,
            request,
            extra_headers=headers,
            async_pattern=async_pattern,
            timeout=float(timeout or self.default_action_timeout),
            what=f"Http {step}",
            log_request=not secure & SECURE_INPUTS,
        )
        recorded = json.dumps({"status": status, "answer": answer})
        ended = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            conn.execute(
                "UPDATE steps SET state = 'done', value = ?, ended = ?"
                " WHERE run_id = ? AND name = ?",
                (recorded, ended, run_id, step),
            )
            return Outcome()

        await self._write(op)
        return status, answer

    def _stop_http_calls(self, run_ids: set[str]) -> None:
        """Stop the Http calls still under way for these (ended) runs: one pass over the
        calls, whatever the number of runs."""
        for (owner, _), task in list(self._http_calls.items()):
            if owner in run_ids:
                task.cancel()

    # -- waits (the HttpWebhook action) ----------------------------------------------------

    async def open_wait(
        self,
        run_id: str,
        step: str,
        client: str,
        *,
        timeout: float | None = None,
        verify: Any = None,
        order: StepOrder | None = None,
        secure: int = 0,
    ) -> OpenedWait:
        """Create the callback URL and deadline for one HttpWebhook action step of a run.

        ``verify`` adds a sender-signature check to the step's callback URL. The step joins the
        run's history (``order`` places it), so a kernel that adopts the run re-attaches to
        this wait instead of subscribing again. ``secure`` (``rows.SECURE_*`` bits, the step's
        secureData) is what views hide: its subscribe and unsubscribe requests (inputs), their
        responses and its callback (outputs); the kernel's own answers and the run's history
        keep them.
        """
        _check_name(step, "action name")
        order = order or StepOrder()
        try:
            verifier = make_verifier(verify)
        except ValueError as exc:
            raise HubError(400, str(exc)) from None
        timeout = self.default_action_timeout if timeout is None else float(timeout)
        if not 0 < timeout <= 366 * 86400:
            raise HubError(400, "timeout must be between 0 and 366 days")
        now = time.time()
        deadline = now + timeout
        wait_id = new_callback_id()

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT workflow, status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise HubError(404, f"no run {run_id!r}")
            workflow, status = row
            if status in FINISHED_RUN_STATUSES:
                raise HubError(409, f"run {run_id!r} has already ended ({status})", state=status)
            _check_owner(conn, run_id, client)
            if (
                insert_step(
                    conn, run_id, step, "HttpWebhook", order, now, wait_id=wait_id, secure=secure
                )
                is None
            ):
                raise HubError(409, f"run {run_id!r} already has a step named {step!r}")
            conn.execute(
                "INSERT INTO waits (id, run_id, workflow, step, client, state, deadline, verify,"
                " created, secure) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                (
                    wait_id,
                    run_id,
                    workflow,
                    step,
                    client,
                    deadline,
                    json.dumps(verifier.to_json()) if verifier else None,
                    now,
                    secure,
                ),
            )
            conn.execute(
                "UPDATE runs SET status = 'Waiting', client = ?"
                " WHERE id = ? AND status != 'Waiting'",
                (client, run_id),
            )
            effects = Effects(deadlines=[(deadline, wait_id)])
            return Outcome(
                {
                    "id": wait_id,
                    "run": run_id,
                    "step": step,
                    "callbackUrl": self.callback_url(wait_id),
                    "deadline": deadline,
                },
                status=201,
                effects=effects,
            )

        return (await self._write(op)).value

    async def subscribe_wait(
        self,
        wait_id: str,
        subscribe: Mapping[str, Any],
        unsubscribe: Any = None,
        *,
        unsubscribe_later: bool = False,
    ) -> WaitView:
        """Make the step's subscribe call (once; repeating the request returns the outcome).

        ``unsubscribe`` is the evaluated unsubscribe request, or ``unsubscribe_later=True``
        when the kernel can only compute it from the subscribe response (``action()`` in a
        Logic Apps template, or a Python callable) and will send it with
        :meth:`set_wait_unsubscribe`.
        """
        subscribe_request = _normalize("subscribe", subscribe)
        unsubscribe_request = _normalize_optional("unsubscribe", unsubscribe)

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute(
                "SELECT run_id, workflow, step, state, secure FROM waits WHERE id = ?", (wait_id,)
            ).fetchone()
            if row is None:
                raise HubError(404, f"no wait {wait_id!r}")
            run_id, workflow, step, state, secure = row
            owner = Owner.wait(wait_id)
            if state != "open":
                return Outcome({"outbox": last_outbox(conn, owner, "subscribe")})
            if unsubscribe_request is not None:
                unsub_state = "ready"
            else:
                unsub_state = "pending" if unsubscribe_later else "none"
            conn.execute(
                "UPDATE waits SET state = 'subscribing', unsubscribe = ?, unsub_state = ?"
                " WHERE id = ?",
                (
                    None if unsubscribe_request is None else json.dumps(unsubscribe_request),
                    unsub_state,
                    wait_id,
                ),
            )
            outbox_id = insert_outbox(
                conn,
                owner,
                "subscribe",
                subscribe_request,
                _wait_headers(run_id, workflow, step),
                secure,
            )
            return Outcome({"outbox": outbox_id}, effects=Effects(owners_to_kick={owner}))

        outcome = await self._write(op)
        if outcome.value["outbox"] is not None:
            within = self._longest_call(subscribe_request)
            await self.outbox.result(outcome.value["outbox"], within=within)
        # The kernel's answer: the subscribe response as it came, secure or not.
        return self.views.wait(wait_id, reveal=True)

    async def set_wait_unsubscribe(self, wait_id: str, unsubscribe: Any) -> WaitView:
        """Provide an unsubscribe request computed from the subscribe response."""
        request = _normalize_optional("unsubscribe", unsubscribe)

        def op(conn: sqlite3.Connection) -> Outcome:
            row = conn.execute("SELECT unsub_state FROM waits WHERE id = ?", (wait_id,)).fetchone()
            if row is None:
                raise HubError(404, f"no wait {wait_id!r}")
            if row[0] != "pending":
                raise HubError(409, "this wait's unsubscribe request is already set", state=row[0])
            conn.execute(
                "UPDATE waits SET unsubscribe = ?, unsub_state = ? WHERE id = ?",
                (
                    None if request is None else json.dumps(request),
                    "ready" if request is not None else "none",
                    wait_id,
                ),
            )
            effects = Effects()
            self._op_queue_wait_unsubscribe(conn, wait_id, effects)
            return Outcome(None, effects=effects)

        await self._write(op)
        return self.views.wait(wait_id, reveal=True)

    async def cancel_wait(self, wait_id: str, *, notify: bool = False) -> WaitView:
        """End an open wait as Cancelled (its unsubscribe call follows).

        ``notify`` sends a ``cancelled`` event to the kernel; a kernel cancelling its own step
        does not need one.
        """
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            if conn.execute("SELECT 1 FROM waits WHERE id = ?", (wait_id,)).fetchone() is None:
                raise HubError(404, f"no wait {wait_id!r}")
            effects = Effects()
            self._op_end_wait(conn, wait_id, "cancelled", now, effects, notify=notify)
            return Outcome(None, effects=effects)

        await self._write(op)
        # The kernel's answer: a callback that won the race is the step's outputs.
        return self.views.wait(wait_id, reveal=True)

    def _on_deadlines(self, wait_ids: list[str]) -> asyncio.Task[Any] | None:
        if self._stopping:
            return None
        now = time.time()

        def op(conn: sqlite3.Connection) -> Outcome:
            effects = Effects()
            for wait_id in wait_ids:
                # Each wait in its own savepoint: one that cannot time out (a bad row, a bug)
                # fails by itself, with the reason stored, and the others still time out.
                conn.execute("SAVEPOINT deadline")
                mine = Effects()
                try:
                    self._op_end_wait(conn, wait_id, "timedout", now, mine, notify=True)
                except Exception as exc:
                    conn.execute("ROLLBACK TO deadline")
                    self.log.exception("hooknb could not time out wait %s", wait_id)
                    conn.execute(
                        f"UPDATE waits SET state = 'failed', error = ?, ended = ?"
                        f" WHERE id = ? AND state IN {OPEN_SQL}",
                        (
                            f"the timeout could not be applied ({type(exc).__name__}: {exc})"[
                                :2000
                            ],
                            now,
                            wait_id,
                        ),
                    )
                else:
                    effects.deliveries.extend(mine.deliveries)
                    effects.owners_to_kick |= mine.owners_to_kick
                conn.execute("RELEASE deadline")
            return Outcome(None, effects=effects)

        return self._spawn(self._write(op))

    def _op_end_wait(
        self,
        conn: sqlite3.Connection,
        wait_id: str,
        state: str,
        now: float,
        effects: Effects,
        *,
        notify: bool,
    ) -> bool:
        """Move an open wait to a final state; the conditional update decides races."""
        changed = conn.execute(
            f"UPDATE waits SET state = ?, ended = ? WHERE id = ? AND state IN {OPEN_SQL}",
            (state, now, wait_id),
        ).rowcount
        if not changed:
            return False
        if notify:
            run_id, workflow, step, client = conn.execute(
                "SELECT run_id, workflow, step, client FROM waits WHERE id = ?", (wait_id,)
            ).fetchone()
            event = {"timedout": "timedout", "cancelled": "cancelled"}[state]
            effects.deliveries.append(
                insert_delivery(
                    conn,
                    Route.client(client),
                    "wait",
                    event=event,
                    run_id=run_id,
                    wait_id=wait_id,
                    extra={"step": step, "workflow": workflow},
                )
            )
        self._op_queue_wait_unsubscribe(conn, wait_id, effects)
        return True

    def _op_queue_wait_unsubscribe(
        self, conn: sqlite3.Connection, wait_id: str, effects: Effects
    ) -> None:
        row = conn.execute(
            "SELECT state, unsubscribe, unsub_state, run_id, workflow, step, secure FROM waits"
            " WHERE id = ?",
            (wait_id,),
        ).fetchone()
        state, unsubscribe, unsub_state, run_id, workflow, step, secure = row
        if state in OPEN_WAIT_STATES or unsub_state != "ready" or unsubscribe is None:
            return
        owner = Owner.wait(wait_id)
        insert_outbox(
            conn,
            owner,
            "unsubscribe",
            _stored_request(unsubscribe),
            _wait_headers(run_id, workflow, step),
            secure,
        )
        conn.execute("UPDATE waits SET unsub_state = 'queued' WHERE id = ?", (wait_id,))
        effects.owners_to_kick.add(owner)

    # -- outcomes of outbound calls -------------------------------------------------------

    def _op_call_done(
        self,
        conn: sqlite3.Connection,
        owner: Owner,
        purpose: str,
        outbox_id: int,
        result: dict[str, Any],
        now: float,
    ) -> Outcome:
        effects = Effects()
        if owner.kind == "wait":
            self._op_wait_call_done(conn, owner.name, purpose, result, now, effects)
        else:
            self._op_trigger_call_done(conn, owner.name, purpose, outbox_id, result, now)
        return Outcome(result, effects=effects)

    def _op_wait_call_done(
        self,
        conn: sqlite3.Connection,
        wait_id: str,
        purpose: str,
        result: dict[str, Any],
        now: float,
        effects: Effects,
    ) -> None:
        if purpose == "subscribe":
            if result["state"] == "done":
                conn.execute(
                    "UPDATE waits SET subscription = ?,"
                    " state = CASE state WHEN 'subscribing' THEN 'waiting' ELSE state END"
                    " WHERE id = ?",
                    (json.dumps(result["response"]), wait_id),
                )
                # A wait that ended while its subscribe call was in flight unsubscribes now.
                self._op_queue_wait_unsubscribe(conn, wait_id, effects)
            else:
                conn.execute(
                    "UPDATE waits SET state = 'failed', error = ?, ended = ?"
                    " WHERE id = ? AND state = 'subscribing'",
                    (result["error"], now, wait_id),
                )
        else:
            conn.execute(
                "UPDATE waits SET unsub_state = ?, error = COALESCE(?, error) WHERE id = ?",
                (
                    {"done": "done", "skipped": "skipped"}.get(result["state"], "failed"),
                    result["error"] if result["state"] == "failed" else None,
                    wait_id,
                ),
            )

    def _op_trigger_call_done(
        self,
        conn: sqlite3.Connection,
        name: str,
        purpose: str,
        outbox_id: int,
        result: dict[str, Any],
        now: float,
    ) -> None:
        if purpose == "subscribe":
            if last_outbox(conn, Owner.trigger(name), "subscribe") != outbox_id:
                return  # the inputs changed again since; the newer subscribe decides the state
            if result["state"] == "done":
                conn.execute(
                    "UPDATE workflows SET trigger_state = CASE trigger_state WHEN 'enabling'"
                    " THEN 'enabled' ELSE trigger_state END, subscription = ?, updated = ?"
                    " WHERE name = ?",
                    (json.dumps(result["response"]), now, name),
                )
            else:
                conn.execute(
                    "UPDATE workflows SET trigger_state = CASE trigger_state WHEN 'enabling'"
                    " THEN 'disabled' ELSE trigger_state END, last_error = ?, updated = ?"
                    " WHERE name = ?",
                    (result["error"], now, name),
                )
        elif result["state"] == "failed":
            conn.execute(
                "UPDATE workflows SET last_error = ?, updated = ? WHERE name = ?",
                (f"unsubscribe failed: {result['error']}", now, name),
            )

    # -- access keys -----------------------------------------------------------------------

    def keys(self) -> list[dict[str, Any]]:
        """The access keys (never their values) and when each was made."""
        created = dict(
            self.store.reader.execute(
                "SELECT key, value FROM meta WHERE key LIKE 'key:%:created'"
            ).fetchall()
        )
        return [
            {"keyType": key_type, "created": created.get(f"key:{key_type}:created")}
            for key_type in KEY_TYPES
        ]

    async def regenerate_key(self, key_type: str) -> dict[str, Any]:
        """Replace an access key: every callback URL signed with it stops working (404).

        As in Logic Apps, triggers keep their ids; enabling them again hands the services
        their new URLs. Open waits signed with the key cannot be called back any more and
        end at their deadline.
        """
        try:
            key_type = normalize_key_type(key_type)
        except ValueError as exc:
            raise HubError(400, str(exc)) from None

        def op(conn: sqlite3.Connection) -> Outcome:
            value = Signer.regenerate(conn, key_type)
            triggers = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM workflows WHERE key_type = ? AND trigger_state = 'enabled'",
                    (key_type,),
                )
            ]
            waits = conn.execute(
                f"SELECT COUNT(*) FROM waits WHERE key_type = ? AND state IN {OPEN_SQL}",
                (key_type,),
            ).fetchone()[0]
            return Outcome({"key": value, "triggers": triggers, "waits": waits})

        result = (await self._write(op)).value
        self.signer.replace_key(key_type, result["key"])
        self.log.warning("hooknb %s access key regenerated", key_type)
        if self.on_keys_changed is not None:
            self.on_keys_changed()
        return {
            "keyType": key_type,
            "enabledTriggersToReEnable": result["triggers"],
            "openWaitsInvalidated": result["waits"],
        }

    # -- push channels ---------------------------------------------------------------------

    def open_channel(self, client: str) -> Channel:
        """Register a kernel's push channel and queue everything it has not acknowledged."""
        _check_name(client, "client id")
        old = self._channels.get(client)
        if old is not None:
            old.close()
        if self._seen_clients is not None:
            self._seen_clients.add(client)
        channel = Channel(client)
        self._channels[client] = channel
        routes = [Route.client(client)] + [
            Route.workflow(name) for name, owner in self._workflow_client.items() if owner == client
        ]
        self._catch_up(client, routes)
        return channel

    def close_channel(self, channel: Channel) -> None:
        channel.close()
        if self._channels.get(channel.client) is channel:
            del self._channels[channel.client]
            self.last_seen[channel.client] = time.time()

    def _catch_up(self, client: str, routes: list[Route]) -> None:
        """Send ``client`` what it has not acknowledged on ``routes``: the deliveries rows of its
        own runs' events, then the queued runs of the workflows it runs (each run is its
        trigger delivery: rows.trigger_delivery), oldest first."""
        channel = self._channels.get(client)
        if channel is None:
            return
        reader = self.store.reader
        bad: list[tuple[int, str | None, str]] = []
        clients = [str(route) for route in routes if route.kind == "client"]
        workflows = [route.name for route in routes if route.kind == "workflow"]
        if clients:
            cursor = reader.execute(
                "SELECT d.seq, d.kind, d.event, d.run_id, d.wait_id, d.data, d.route, "
                + CALLBACK_COLUMNS
                + f" FROM deliveries d LEFT JOIN callbacks c ON c.id = d.callback"
                f" WHERE d.route IN ({marks(clients)}) ORDER BY d.seq",
                clients,
            )
            for row in cursor:
                seq, kind, event, run_id, wait_id, data, route = row[:7]
                try:
                    value: dict[str, Any] = {"seq": seq, "kind": kind, "run": run_id}
                    if event:
                        value["event"] = event
                    if wait_id:
                        value["wait"] = wait_id
                    if data:
                        value.update(jsonsafe.loads(data))
                    if kind == "trigger":
                        value.setdefault("workflow", Route.parse(route).name)
                    if row[7] is not None:
                        value["callback"] = callback_from_row(row[7:])
                except Exception as exc:
                    # One unreadable delivery must not keep a kernel from ever connecting.
                    self.log.exception("hooknb cannot read delivery %s", seq)
                    bad.append((seq, run_id, f"{type(exc).__name__}: {exc}"[:2000]))
                    continue
                channel.send(value)
        for workflow in workflows:
            # (workflow, status, id): the index runs_by_workflow_status, in creation order.
            cursor = reader.execute(
                "SELECT r.rowid, r.id, " + CALLBACK_COLUMNS + " FROM runs r"
                " JOIN callbacks c ON c.id = r.trigger_callback"
                " WHERE r.workflow = ? AND r.status = 'Queued' AND r.held = 0 ORDER BY r.id",
                (workflow,),
            )
            for row in cursor:
                seq, run_id = queued_run_seq(row[0]), row[1]
                try:
                    value = {
                        "seq": seq,
                        "kind": "trigger",
                        "run": run_id,
                        "workflow": workflow,
                        "callback": callback_from_row(row[2:]),
                    }
                except Exception as exc:
                    self.log.exception("hooknb cannot read the trigger inputs of run %s", run_id)
                    bad.append((seq, run_id, f"{type(exc).__name__}: {exc}"[:2000]))
                    continue
                channel.send(value)
        if bad:
            self._spawn(self._write(lambda conn: _op_drop_deliveries(conn, bad)))

    # -- status ----------------------------------------------------------------------------

    def has_open_waits(self) -> bool:
        """Whether any run waits for a callback (read from the store: cheap, indexed)."""
        row = self.store.reader.execute(
            f"SELECT 1 FROM waits WHERE state IN {OPEN_SQL} LIMIT 1"
        ).fetchone()
        return row is not None

    async def status(self) -> dict[str, Any]:
        """Counts and URLs for the status API and the page.

        ``callbackBase`` is where callback URLs point; ``reachable``/``warning`` say whether
        outside services can probably reach it (a loopback or internal address: no), and
        ``receiver`` describes a hooknb receiver under JupyterHub, when one is configured.
        The counts are made off the event loop: with a million open waits they take tens of
        milliseconds, which callbacks and deadlines must not wait for.
        """
        counts = await self.store.read_off_loop(_status_counts)
        notes = {"reachable": True, "warning": None, "receiver": None}
        if self._status_notes is not None:
            notes.update(self._status_notes())
        return {
            "publicBase": self.public_base,
            "callbackBase": self.callback_base,
            **notes,
            "store": str(self.store.path),
            "started": self.started,
            **counts,
            "connectedKernels": len(self._channels),
            "uploads": self.uploads.status(),
        }

    # -- helpers ---------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_task_failure)
        return task


def _status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """The store's counts for :meth:`Hub.status`, in one read transaction."""

    def count(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    conn.execute("BEGIN")
    try:
        return {
            "workflows": count("SELECT COUNT(*) FROM workflows"),
            "enabledTriggers": count(
                "SELECT COUNT(*) FROM workflows WHERE trigger_state = 'enabled'"
            ),
            "runs": count("SELECT COUNT(*) FROM runs"),
            "openWaits": count(
                "SELECT COUNT(*) FROM waits WHERE state IN ('open', 'subscribing', 'waiting')"
            ),
            "pendingDeliveries": count("SELECT COUNT(*) FROM deliveries")
            + count("SELECT COUNT(*) FROM runs WHERE status = 'Queued' AND held = 0"),
            "pendingCalls": count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
        }
    finally:
        conn.execute("COMMIT")


def _forwarded(
    forward_id: str, request: InboundRequest, op: Callable[[sqlite3.Connection], Outcome] | Outcome
) -> Callable[[sqlite3.Connection], Outcome]:
    """``op`` (or a fixed outcome) made idempotent by a receiver's forward id, in one commit."""

    def forwarded_op(conn: sqlite3.Connection) -> Outcome:
        seen = conn.execute(
            "SELECT status, answer FROM forwarded WHERE id = ?", (forward_id,)
        ).fetchone()
        if seen is not None:
            return Outcome(json.loads(seen[1]), status=seen[0])
        outcome = op if isinstance(op, Outcome) else op(conn)
        conn.execute(
            "INSERT INTO forwarded (id, status, answer, received) VALUES (?, ?, ?, ?)",
            (forward_id, outcome.status, json.dumps(outcome.value), request.received),
        )
        return outcome

    return forwarded_op


def _stored_request(text: str) -> Any:
    """A request (or headers, queries) the hub stored itself, read back to use: never deeper
    than the API let in, and a ValueError, not a RecursionError, if the row is damaged."""
    return jsonsafe.loads(text, max_depth=jsonsafe.MAX_REQUEST_DEPTH)


def _op_drop_deliveries(
    conn: sqlite3.Connection, bad: list[tuple[int, str | None, str]]
) -> Outcome:
    """Deliveries that cannot be read: the run they would start or resume fails, with the
    reason stored, instead of the delivery blocking its kernel's channel."""
    now = time.time()
    for seq, run_id, reason in bad:
        if seq > 0:  # a queued run's delivery ends with the run, below
            conn.execute("DELETE FROM deliveries WHERE seq = ?", (seq,))
        if run_id is not None:
            doc = json.dumps({"error": {"code": "DeliveryUnreadable", "message": reason}})
            conn.execute(
                "UPDATE runs SET status = 'Failed', ended = ?, doc = ? WHERE id = ?"
                " AND status NOT IN ('Succeeded', 'Failed', 'Cancelled', 'TimedOut')",
                (now, doc, run_id),
            )
    return Outcome(None)


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("hooknb background task failed", exc_info=task.exception())


def _workflow_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM workflows WHERE name = ?", (name,)).fetchone() is not None


def _has_held(conn: sqlite3.Connection, workflow: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM runs WHERE workflow = ? AND held = 1 LIMIT 1", (workflow,)
        ).fetchone()
        is not None
    )


def _run_load(conn: sqlite3.Connection, workflow: str) -> tuple[int, int]:
    """How many runs of ``workflow`` are under way (delivered, not ended) and how many wait to
    start (held back by its concurrency limit)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(held = 0), 0), COALESCE(SUM(held = 1), 0) FROM runs"
        " WHERE workflow = ? AND status IN ('Queued', 'Running', 'Waiting')",
        (workflow,),
    ).fetchone()
    return int(row[0]), int(row[1])


def _insert_history(
    conn: sqlite3.Connection,
    workflow: str,
    status: str,
    request: InboundRequest,
    callback_id: int | None,
    runs: list[str],
    code: int,
    reason: str | None = None,
) -> str:
    """Add a trigger history entry; return its name (what ``x-ms-trigger-history-name`` says)."""
    cursor = conn.execute(
        "INSERT INTO trigger_history (workflow, status, received, callback, runs, reason, code)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            workflow,
            status,
            request.received,
            callback_id,
            json.dumps(runs) if runs else None,
            reason[:2000] if reason else None,
            code,
        ),
    )
    return history_name(int(cursor.lastrowid or 0))


def _usable_cores() -> int:
    """The CPUs this process may run on (its affinity), where the OS says."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def history_name(history_id: int) -> str:
    return f"{history_id:020d}"


def _correlation_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives it at half the cost
    (every trigger callback's answer carries one)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _history_headers(workflow: str, history: str) -> dict[str, str]:
    correlation = _correlation_id()
    return {
        "x-ms-workflow-name": workflow,
        "x-ms-trigger-history-name": history,
        "x-ms-correlation-id": correlation,
        "x-ms-tracking-id": correlation,
    }


def _run_headers(workflow: str, run_id: str, tracking: str, history: str) -> dict[str, str]:
    """The headers of a trigger's 202, as Logic Apps sends them."""
    return {
        **_history_headers(workflow, history),
        "x-ms-workflow-run-id": run_id,
        "x-ms-client-tracking-id": tracking,
    }


def _check_name(value: str, what: str) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 200
        or any(ord(c) < 32 for c in value)
    ):
        raise HubError(400, f"{what} must be 1-200 printable characters")


def _normalize(field_name: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise HubError(400, f"{field_name} must be an object with method and uri")
    try:
        return normalize_request(spec, what=field_name)
    except ValueError as exc:
        raise HubError(400, str(exc)) from None


def _normalize_optional(field_name: str, spec: Any) -> dict[str, Any] | None:
    # `{}` is the common real-world "no unsubscribe" (Logic Apps definitions use it).
    if spec is None or (isinstance(spec, Mapping) and not spec):
        return None
    return _normalize(field_name, spec)


def _queue_trigger_unsubscribe(
    conn: sqlite3.Connection,
    name: str,
    trigger_name: str | None,
    unsubscribe: str,
    secure: Any,
    effects: Effects,
) -> int:
    """Queue the unsubscribe call of workflow ``name``'s trigger (stored request JSON) and
    have its outbox owner woken once the write is committed; the outbox row's id."""
    owner = Owner.trigger(name)
    outbox_id = insert_outbox(
        conn,
        owner,
        "unsubscribe",
        _stored_request(unsubscribe),
        _trigger_headers(name, trigger_name),
        secure,
    )
    effects.owners_to_kick.add(owner)
    return outbox_id


def _trigger_headers(workflow: str, trigger_name: str | None) -> dict[str, str]:
    return {
        "x-ms-workflow-name": workflow,
        "x-ms-workflow-operation-name": trigger_name or "HTTP_Webhook",
    }


def _wait_headers(run_id: str, workflow: str, step: str) -> dict[str, str]:
    # Logic Apps documents these two on unsubscribe so a service can tell subscribers apart;
    # it sends them (and more x-ms-* headers) on subscribe too.
    return {
        "x-ms-client-tracking-id": run_id,
        "x-ms-workflow-operation-name": step,
        "x-ms-workflow-name": workflow,
        "x-ms-workflow-run-id": run_id,
    }


def _run_report(report: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(report, Mapping):
        raise HubError(400, "each run report must be an object")
    run_id = report.get("id")
    status = report.get("status")
    if not isinstance(run_id, str) or status not in RUN_STATUSES:
        raise HubError(400, f"run report needs an id and a status in {', '.join(RUN_STATUSES)}")
    doc = {k: v for k, v in report.items() if k not in ("id", "status", "started", "ended")}
    with contextlib.suppress(TypeError, ValueError):
        text = dumps_bytes(doc).decode()
        # A step's outputs may hold whatever a sender sent: kept whole up to jsonsafe's
        # depth, deeper parts stored as cut text, so that views can always parse and show
        # the report. Decided on the text (a count in C, unless it has that many brackets)
        # rather than by walking every report.
        if too_deep(text):
            text = json.dumps(clip_depth(doc))
        return {
            "id": run_id,
            "status": status,
            "started": _opt_float(report.get("started")),
            "ended": _opt_float(report.get("ended")),
            "doc": text,
        }
    raise HubError(400, "run report has invalid times")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _hosted(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT hosted FROM workflows WHERE name = ?", (name,)).fetchone()
    return bool(row and row[0])


def _owns_run(conn: sqlite3.Connection, run_id: str, client: str) -> bool:
    row = conn.execute("SELECT client FROM runs WHERE id = ?", (run_id,)).fetchone()
    return row is not None and _may_act_for(row[0], client)


def _may_act_for(run_client: str | None, client: str) -> bool:
    """Whether ``client`` may act for a run that ``run_client`` runs: it is that kernel, or
    nobody runs the run yet."""
    return run_client in (None, client)


def _runs_client_workflow_status(
    conn: sqlite3.Connection, run_ids: list[str]
) -> dict[str, tuple[str | None, str, str]]:
    """The kernel running each of ``run_ids``, its workflow and status, for those that exist."""
    found: dict[str, tuple[str | None, str, str]] = {}
    for batch in in_batches(list(dict.fromkeys(run_ids))):
        for run_id, client, workflow, status in conn.execute(
            f"SELECT id, client, workflow, status FROM runs WHERE id IN ({marks(batch)})", batch
        ):
            found[run_id] = (client, workflow, status)
    return found


def _check_owner(conn: sqlite3.Connection, run_id: str, client: str) -> None:
    if not _owns_run(conn, run_id, client):
        raise HubError(
            409,
            f"run {run_id!r} is now run by another kernel, which adopted it: this kernel "
            "stops its copy",
            fenced=True,
        )


_MAX_STEP_VALUE = 64 * 1024 * 1024


def _step_record(record: Any) -> dict[str, Any]:
    """A finished step a kernel reports (for the run's history), checked."""
    if not isinstance(record, Mapping):
        raise HubError(400, "each step record must be an object")
    run_id, step, kind, value = (record.get(k) for k in ("run", "step", "kind", "value"))
    if not isinstance(run_id, str) or not isinstance(step, str) or not isinstance(kind, str):
        raise HubError(400, "a step record needs 'run', 'step' and 'kind' (strings)")
    _check_name(step, "step name")
    _check_name(kind, "step kind")
    if not isinstance(value, str) or len(value) > _MAX_STEP_VALUE:
        raise HubError(400, "a step record's 'value' must be JSON text of at most 64 MiB")
    order = StepOrder.from_json(record)
    with contextlib.suppress(TypeError, ValueError):
        return {
            "run": run_id,
            "step": step,
            "kind": kind,
            "after": order.after,
            "first": int(order.first),
            "position": order.position,
            "value": value,
            "started": _opt_float(record.get("started")),
            "ended": _opt_float(record.get("ended")),
        }
    raise HubError(400, "step record has invalid times")


def _ended_doc(doc: str | None, status: str, reason: str, now: float) -> str:
    """A run's stored report, ended by the hub (no kernel ran it): its unfinished steps end with
    the run, as a kernel would have ended them."""
    try:
        value = json.loads(doc) if doc else {}
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    actions = value.get("actions")
    if isinstance(actions, dict):
        for action in actions.values():
            if isinstance(action, dict) and action.get("status") in ("Running", "Waiting"):
                action["status"] = status
                action["endTime"] = stamp
    value["error"] = reason
    return json.dumps(value)


_MAX_DEFINITION = 4 * 1024 * 1024


def _definition_document(document: Any) -> str:
    """A definition handed to the server, checked (it must load as it will run) and as JSON."""
    from ..wdl.definitions import load

    if not isinstance(document, Mapping) or not isinstance(document.get("definition"), Mapping):
        raise HubError(400, "give the workflow as {'definition': {...}, 'parameters': {...}}")
    parameters = document.get("parameters") or {}
    endpoints = document.get("endpoints") or {}
    if not isinstance(parameters, Mapping) or not isinstance(endpoints, Mapping):
        raise HubError(400, "'parameters' and 'endpoints' must be objects")
    state = document.get("state", "Disabled")
    if state not in ("Enabled", "Disabled"):
        raise HubError(400, "'state' must be Enabled or Disabled")
    value = {
        "definition": dict(document["definition"]),
        "parameters": dict(parameters),
        "endpoints": dict(endpoints),
        # Whether a trigger the worker keeps (a Recurrence's schedule) is on.
        "state": state,
    }
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise HubError(400, f"the definition is not JSON: {exc}") from None
    if len(text) > _MAX_DEFINITION:
        raise HubError(413, "the definition is larger than 4 MiB")
    try:
        load(value["definition"], value["parameters"], endpoints=value["endpoints"])
    except ValueError as exc:  # DefinitionError: the reader's message says where
        raise HubError(400, f"the server cannot run this definition: {exc}") from None
    except RecursionError:
        raise HubError(400, "the definition is nested too deeply") from None
    return text
