"""The store's rows as the hub's writer ops make them: requests received on callback URLs,
runs, deliveries to kernels and outbound calls; with the typed names rows are filed under
(:class:`Route` for deliveries, :class:`Owner` for outbox calls) and the wire form of a
stored request. Reading rows back for people is :mod:`hooknb.server.views`."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .. import jsonsafe
from ..http_model.wire import CallbackWire, encode_wire_body
from .http_errors import HubError
from .store import execute_rows, marks

OPEN_WAIT_STATES = ("open", "subscribing", "waiting")
OPEN_SQL = "('open', 'subscribing', 'waiting')"
# How a finished wait is named to a sender that calls its URL again (HTTP 409 body) and in views.
WAIT_OUTCOME = {
    "completed": "Succeeded",
    "timedout": "TimedOut",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
TRIGGER_STATE = {
    "none": "None",
    "disabled": "Disabled",
    "enabling": "Enabling",
    "enabled": "Enabled",
}
CALLBACK_COLUMNS = "c.id, c.received, c.method, c.headers, c.query, c.content_type, c.body"
WAIT_COLUMNS = (
    "id, run_id, workflow, step, client, state, deadline, unsub_state, subscription, callback,"
    " key_type, error, created, ended, verify, secure"
)

# Secure data (Logic Apps' runtimeConfiguration.secureData): the parts of a step or trigger that
# views show as ``redaction.SECURED``, stored as bits (waits.secure, steps.secure, outbox.secure,
# workflows.trigger_secure, callbacks.secure). The stored values stay exact: runs use them.
SECURE_INPUTS = 1
SECURE_OUTPUTS = 2
# A stored callback's secure bits (`c` is the callbacks row): its own once stamped, else its
# wait's (an action's callback) or its workflow's trigger's (a trigger event).
CALLBACK_SECURE_SQL = (
    "COALESCE(c.secure, CASE WHEN c.kind = 'wait'"
    " THEN (SELECT s.secure FROM waits s WHERE s.id = c.target)"
    " ELSE (SELECT s.trigger_secure FROM workflows s WHERE s.name = c.target) END, 0)"
)


def secure_bits(value: Any) -> int:
    """The bits of a ``secure`` list from a kernel (``["inputs", "outputs"]``, either or both;
    None or empty: nothing secure).

    Raises:
        HubError: 400 for anything else.
    """
    if value is None:
        return 0
    if isinstance(value, str):
        value = [value]
    bits = 0
    if isinstance(value, list):
        for part in value:
            if part == "inputs":
                bits |= SECURE_INPUTS
            elif part == "outputs":
                bits |= SECURE_OUTPUTS
            else:
                break
        else:
            return bits
    raise HubError(400, "'secure' must list 'inputs' and/or 'outputs'")


def secure_parts(bits: Any) -> list[str]:
    """The part names of stored secure bits (a hostile row's value reads as its bits)."""
    bits = bits if isinstance(bits, int) and not isinstance(bits, bool) else 0
    return [p for p, bit in (("inputs", SECURE_INPUTS), ("outputs", SECURE_OUTPUTS)) if bits & bit]


@dataclass(slots=True)
class InboundRequest:
    """A request received on a callback URL, as stored: byte-exact body, ordered headers."""

    method: str
    headers: list[tuple[str, str]]
    queries: dict[str, Any]
    content_type: str | None
    body: bytes
    received: float

    def to_json(self, callback_id: int) -> CallbackWire:
        """The wire form of this request once stored as callback ``callback_id``."""
        return callback_json(
            callback_id,
            self.received,
            self.method,
            self.headers,
            self.queries,
            self.content_type,
            self.body,
        )


def new_run_id() -> str:
    """Run ids sort by creation time (microseconds, hex) and carry a random tail."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(3)}"


_MAX_TRACKING_ID = 256


def tracking_id(request: InboundRequest, run_id: str) -> str:
    """The run's client tracking id: the sender's ``x-ms-client-tracking-id``, else the run's
    id (Logic Apps' default: https://learn.microsoft.com/azure/logic-apps/
    logic-apps-workflow-actions-triggers, "x-ms-client-tracking-id")."""
    for name, value in request.headers:
        if name.lower() == "x-ms-client-tracking-id":
            value = value.strip()[:_MAX_TRACKING_ID]
            # Echoed in the answer's headers: control characters would make it unsendable.
            if value and not any(ord(c) < 32 or ord(c) == 127 for c in value):
                return value
    return run_id


class StoredTrigger(NamedTuple):
    """What :func:`insert_trigger_callbacks` stored for one trigger callback."""

    callback_id: int
    run_rowid: int
    history_id: int
    run_id: str
    tracking: str


def trigger_enabled(conn: sqlite3.Connection, workflow: str) -> bool:
    """Whether ``workflow``'s trigger takes callbacks (Enabled, or Enabling)."""
    return (
        conn.execute(
            "SELECT 1 FROM workflows WHERE name = ? AND trigger_state IN ('enabled', 'enabling')",
            (workflow,),
        ).fetchone()
        is not None
    )


def next_trigger_ids(conn: sqlite3.Connection) -> list[int]:
    """The ids the next trigger callback's rows get (callback, run rowid, history entry): the
    largest so far plus one, as SQLite would give them; read inside the writing
    transaction, so no other writer takes them meanwhile."""
    return [
        (largest or 0) + 1
        for largest in conn.execute(
            "SELECT (SELECT MAX(id) FROM callbacks), (SELECT MAX(rowid) FROM runs),"
            " (SELECT MAX(id) FROM trigger_history)"
        ).fetchone()
    ]


def insert_trigger_callbacks(
    conn: sqlite3.Connection, callbacks: Sequence[tuple[str, InboundRequest]], next_ids: list[int]
) -> list[StoredTrigger]:
    """Store trigger callbacks ``(workflow, request)`` that start a run each: the request,
    its Queued run (which is its delivery: :func:`trigger_delivery`) and a Fired entry in
    the trigger history, as rows of the writer's ``trigger_callback_rows`` view
    (:mod:`hooknb.server.store`), up to 32 callbacks a statement. The ids are ``next_ids``
    (:func:`next_trigger_ids`), given explicitly so that the rows can refer to each other,
    and advanced past the ones taken. Used by the store's writer thread and by the trigger
    writer process alike (:mod:`hooknb.server.trigger_writer`)."""
    callback_id, rowid, history_id = next_ids
    rows = []
    stored = []
    for name, request in callbacks:
        run_id = new_run_id()
        tracking = tracking_id(request, run_id)
        rows.append(
            (
                callback_id,
                name,
                run_id,
                request.received,
                request.method,
                json.dumps(request.headers),
                json.dumps(request.queries) if request.queries else "{}",
                request.content_type,
                request.body,
                rowid,
                tracking,
                history_id,
                f'["{run_id}"]',  # (run ids are hex digits: nothing to escape)
            )
        )
        stored.append(StoredTrigger(callback_id, rowid, history_id, run_id, tracking))
        callback_id += 1
        rowid += 1
        history_id += 1
    if rows:
        execute_rows(
            conn, "INSERT INTO trigger_callback_rows VALUES", "(" + marks(rows[0]) + ")", rows
        )
    next_ids[:] = [callback_id, rowid, history_id]
    return stored


def callback_json(
    callback_id: int,
    received: float,
    method: str,
    headers: list[tuple[str, str]] | list[list[str]],
    queries: Mapping[str, Any],
    content_type: str | None,
    body: bytes,
) -> CallbackWire:
    """The wire form of a stored callback request (channel events and the API)."""
    return {
        "id": callback_id,
        "received": received,
        "method": method,
        "headers": [list(pair) for pair in headers],
        "queries": dict(queries),
        "contentType": content_type,
        "body": encode_wire_body(body),
    }


def callback_from_row(row: sqlite3.Row | tuple[Any, ...]) -> CallbackWire:
    callback_id, received, method, headers, query, content_type, body = row
    return callback_json(
        callback_id,
        received,
        method,
        jsonsafe.loads(headers),
        jsonsafe.loads(query),
        content_type,
        bytes(body),
    )


_INSERT_CALLBACK = (
    "INSERT INTO callbacks (kind, target, run_id, received, method, headers, query,"
    " content_type, body) "
)


def _callback_values(
    kind: str, target: str, run_id: str | None, request: InboundRequest
) -> tuple[Any, ...]:
    return (
        kind,
        target,
        run_id,
        request.received,
        request.method,
        json.dumps(request.headers),
        json.dumps(request.queries),
        request.content_type,
        request.body,
    )


def insert_callback(
    conn: sqlite3.Connection, kind: str, target: str, run_id: str | None, request: InboundRequest
) -> int:
    cursor = conn.execute(
        _INSERT_CALLBACK + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _callback_values(kind, target, run_id, request),
    )
    return int(cursor.lastrowid or 0)


def insert_trigger_callback(
    conn: sqlite3.Connection, workflow: str, run_id: str, request: InboundRequest
) -> int | None:
    """Store a trigger callback if ``workflow``'s trigger is enabled; None (nothing stored) if not.

    One statement for the check and the insert: this is the busiest write there is.
    """
    cursor = conn.execute(
        _INSERT_CALLBACK + "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM"
        " workflows WHERE name = ? AND trigger_state IN ('enabled', 'enabling'))",
        (*_callback_values("trigger", workflow, run_id, request), workflow),
    )
    return int(cursor.lastrowid or 0) if cursor.rowcount == 1 else None


@dataclass(frozen=True, slots=True)
class Route:
    """Who a delivery is for, stored as ``"<kind>:<name>"``: one kernel (``client``) or whichever
    kernel runs a workflow at the time (``workflow``: trigger runs wait for it)."""

    kind: Literal["client", "workflow"]
    name: str

    @classmethod
    def client(cls, client: str) -> Route:
        return cls("client", client)

    @classmethod
    def workflow(cls, name: str) -> Route:
        return cls("workflow", name)

    @classmethod
    def parse(cls, text: str) -> Route:
        kind, _, name = text.partition(":")
        if kind not in ("client", "workflow"):
            raise ValueError(f"not a delivery route: {text!r}")
        return cls(kind, name)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose outbound calls an outbox row holds, stored as ``"<kind>:<name>"``: a workflow's
    trigger (``trigger``, by workflow name) or an action step (``wait``, by wait id)."""

    kind: Literal["trigger", "wait"]
    name: str

    @classmethod
    def trigger(cls, workflow: str) -> Owner:
        return cls("trigger", workflow)

    @classmethod
    def wait(cls, wait_id: str) -> Owner:
        return cls("wait", wait_id)

    @classmethod
    def parse(cls, text: str) -> Owner:
        kind, _, name = text.partition(":")
        if kind not in ("trigger", "wait"):
            raise ValueError(f"not an outbox owner: {text!r}")
        return cls(kind, name)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(slots=True)
class Delivery:
    """A delivery row just inserted, to push to its kernel once the insert is committed.

    The callback request it carries is turned into its wire form only when a connected kernel
    gets the event (most trigger callbacks under load are read back later, in catch-up).
    """

    seq: int
    route: Route
    kind: str
    run: str | None
    event: str | None = None
    wait: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    request: InboundRequest | None = None
    callback_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as the push channel sends it."""
        value: dict[str, Any] = {"seq": self.seq, "kind": self.kind, "run": self.run}
        if self.event:
            value["event"] = self.event
        if self.wait:
            value["wait"] = self.wait
        value.update(self.extra)
        if self.request is not None and self.callback_id is not None:
            value["callback"] = self.request.to_json(self.callback_id)
        return value


def trigger_delivery(
    run_rowid: int,
    workflow: str,
    run_id: str,
    callback_id: int,
    request: InboundRequest | None,
) -> Delivery:
    """The delivery of a Queued run to whichever kernel runs ``workflow``.

    A queued run *is* its trigger delivery: no deliveries row is written. It is pending while
    the run is Queued and not held back (``held = 0``), and its ``seq`` is the run row's rowid,
    negated so that it never meets a deliveries row's seq (:func:`queued_run_seq`). The kernel
    acknowledges it with the run's first report, which moves the run on from Queued.
    """
    return Delivery(
        seq=queued_run_seq(run_rowid),
        route=Route.workflow(workflow),
        kind="trigger",
        run=run_id,
        extra={"workflow": workflow},
        request=request,
        callback_id=callback_id,
    )


def queued_run_seq(run_rowid: int) -> int:
    """The delivery seq of a queued run (see :func:`trigger_delivery`): always negative."""
    return -run_rowid


def insert_delivery(
    conn: sqlite3.Connection,
    route: Route,
    kind: str,
    *,
    event: str | None = None,
    run_id: str | None = None,
    wait_id: str | None = None,
    request: InboundRequest | None = None,
    callback_id: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Delivery:
    """Insert a delivery row and return it, to push after the commit.

    ``request`` is the stored callback ``callback_id`` that the event carries; it is not stored
    twice, nor is a trigger delivery's workflow (its route names it).
    """
    extra = dict(extra or {})
    stored = {
        k: v for k, v in extra.items() if not (k == "workflow" and route == Route.workflow(v))
    }
    cursor = conn.execute(
        "INSERT INTO deliveries (route, kind, event, run_id, wait_id, callback, data, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(route),
            kind,
            event,
            run_id,
            wait_id,
            callback_id,
            json.dumps(stored) if stored else None,
            time.time(),
        ),
    )
    return Delivery(
        seq=int(cursor.lastrowid or 0),
        route=route,
        kind=kind,
        run=run_id,
        event=event,
        wait=wait_id,
        extra=extra,
        request=request,
        callback_id=callback_id,
    )


def insert_outbox(
    conn: sqlite3.Connection,
    owner: Owner,
    purpose: str,
    request: Mapping[str, Any],
    headers: Mapping[str, str],
    secure: int = 0,
) -> int:
    """Queue an outbound call; ``secure``: its owner's secure bits (the request is an input,
    the response an output), which views honour."""
    cursor = conn.execute(
        "INSERT INTO outbox (owner, purpose, request, headers, state, created, secure)"
        " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        (
            str(owner),
            purpose,
            json.dumps(request),
            json.dumps(dict(headers)),
            time.time(),
            secure,
        ),
    )
    return int(cursor.lastrowid or 0)


def last_outbox(conn: sqlite3.Connection, owner: Owner, purpose: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM outbox WHERE owner = ? AND purpose = ? ORDER BY id DESC LIMIT 1",
        (str(owner), purpose),
    ).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class StepOrder:
    """Where a step stands in its run, as the kernel asked for it: its ``position`` (the nth step
    the run asked for), ``after`` (the step the same flow asked for just before) and ``first``
    (the first step of a concurrent branch). Stored for the kernel's replay checks."""

    position: int = 0
    after: str | None = None
    first: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> StepOrder:
        position = body.get("position", 0)
        after = body.get("after")
        first = body.get("first", False)
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise HubError(400, "'position' must be a whole number of at least 0")
        if after is not None and (not isinstance(after, str) or len(after) > 200):
            raise HubError(400, "'after' must be a step name")
        if not isinstance(first, bool):
            raise HubError(400, "'first' must be true or false")
        return cls(position, after, first)


def insert_step(
    conn: sqlite3.Connection,
    run_id: str,
    name: str,
    kind: str,
    order: StepOrder,
    now: float,
    *,
    wait_id: str | None = None,
    secure: int = 0,
) -> int | None:
    """Add a step the hub itself carries out (a webhook's wait, an Http call) to the run's
    history, with its ``secure`` bits; None when the run already has a step of that name."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO steps (run_id, name, kind, after, first, position, state, wait_id,"
        " started, secure) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
        (run_id, name, kind, order.after, int(order.first), order.position, wait_id, now, secure),
    )
    return cursor.rowcount or None


def stamp_trigger_callbacks(conn: sqlite3.Connection, workflow: str, secure: int) -> None:
    """Give ``workflow``'s trigger events stored so far its trigger's ``secure`` bits as their
    own, before the setting changes or goes with the workflow: what came in while the trigger
    was secure stays hidden. (Nothing to do for a trigger that was not secure: its callbacks
    follow the workflow's setting, which hides them only when it becomes secure.)"""
    if secure:
        conn.execute(
            "UPDATE callbacks SET secure = ? WHERE target = ? AND kind != 'wait'"
            " AND secure IS NULL",
            (secure, workflow),
        )
