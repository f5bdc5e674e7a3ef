"""The store's rows, written and read: inserts used by the hub's operations, and the JSON
views the API, the run-history page and the push channel show."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .outbound import redact
from .store import Store

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
    " key_type, error, created, ended"
)


@dataclass(frozen=True)
class InboundRequest:
    """A request received on a callback URL, as stored: byte-exact body, ordered headers."""

    method: str
    headers: list[tuple[str, str]]
    queries: dict[str, Any]
    content_type: str | None
    body: bytes
    received: float

    def to_json(self, callback_id: int) -> dict[str, Any]:
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


def encode_body(body: bytes) -> dict[str, str]:
    """A body for JSON transport: UTF-8 text when it is, base64 otherwise."""
    try:
        return {"encoding": "utf-8", "data": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(body).decode("ascii")}


def callback_json(
    callback_id: int,
    received: float,
    method: str,
    headers: list[tuple[str, str]] | list[list[str]],
    queries: Mapping[str, Any],
    content_type: str | None,
    body: bytes,
) -> dict[str, Any]:
    """The wire form of a stored callback request (channel events and the API)."""
    return {
        "id": callback_id,
        "received": received,
        "method": method,
        "headers": [list(pair) for pair in headers],
        "queries": dict(queries),
        "contentType": content_type,
        "body": encode_body(body),
    }


def callback_from_row(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    callback_id, received, method, headers, query, content_type, body = row
    return callback_json(
        callback_id,
        received,
        method,
        json.loads(headers),
        json.loads(query),
        content_type,
        bytes(body),
    )


def insert_callback(
    conn: sqlite3.Connection, kind: str, target: str, run_id: str | None, request: InboundRequest
) -> int:
    cursor = conn.execute(
        "INSERT INTO callbacks (kind, target, run_id, received, method, headers, query,"
        " content_type, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind,
            target,
            run_id,
            request.received,
            request.method,
            json.dumps(request.headers),
            json.dumps(request.queries),
            request.content_type,
            request.body,
        ),
    )
    return int(cursor.lastrowid or 0)


def insert_delivery(
    conn: sqlite3.Connection,
    route: str,
    kind: str,
    *,
    event: str | None = None,
    run_id: str | None = None,
    wait_id: str | None = None,
    callback_id: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Insert a delivery row and return the event to push (the callback is not stored twice)."""
    extra = dict(extra or {})
    stored = {k: v for k, v in extra.items() if k != "callback"}
    cursor = conn.execute(
        "INSERT INTO deliveries (route, kind, event, run_id, wait_id, callback, data, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            route,
            kind,
            event,
            run_id,
            wait_id,
            callback_id,
            json.dumps(stored) if stored else None,
            time.time(),
        ),
    )
    value: dict[str, Any] = {"seq": cursor.lastrowid, "kind": kind, "run": run_id, "_route": route}
    if event:
        value["event"] = event
    if wait_id:
        value["wait"] = wait_id
    value.update(extra)
    return value


def insert_outbox(
    conn: sqlite3.Connection,
    owner: str,
    purpose: str,
    request: Mapping[str, Any],
    headers: Mapping[str, str],
) -> int:
    cursor = conn.execute(
        "INSERT INTO outbox (owner, purpose, request, headers, state, created)"
        " VALUES (?, ?, ?, ?, 'pending', ?)",
        (owner, purpose, json.dumps(request), json.dumps(dict(headers)), time.time()),
    )
    return int(cursor.lastrowid or 0)


def last_outbox(conn: sqlite3.Connection, owner: str, purpose: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM outbox WHERE owner = ? AND purpose = ? ORDER BY id DESC LIMIT 1",
        (owner, purpose),
    ).fetchone()
    return None if row is None else row[0]


def outbox_json(conn: sqlite3.Connection, owner: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, purpose, request, state, attempts, response, error, created, finished"
        " FROM outbox WHERE owner = ? ORDER BY id DESC LIMIT ?",
        (owner, limit),
    ).fetchall()
    calls = []
    for (
        outbox_id,
        purpose,
        request,
        state,
        attempts,
        response,
        error,
        created,
        finished,
    ) in reversed(rows):
        calls.append(
            {
                "id": outbox_id,
                "purpose": purpose,
                "request": redact(json.loads(request)),
                "state": state,
                "attempts": json.loads(attempts) if attempts else [],
                "response": json.loads(response) if response else None,
                "error": error,
                "created": created,
                "finished": finished,
            }
        )
    return calls


def attempt_json(attempt: Any) -> dict[str, Any]:
    return {
        "started": attempt.started_at,
        "duration": attempt.duration,
        "statusCode": attempt.status_code,
        "error": attempt.error,
    }


class NotFound(LookupError):
    """No such workflow, run, wait or callback; the message says which."""


class Views:
    """Read-only JSON views of the store, for the API and the pages (event-loop thread only)."""

    def __init__(self, store: Store, callback_url: Callable[[str, str], str]) -> None:
        self.store = store
        self.callback_url = callback_url

    def workflow(self, name: str) -> dict[str, Any]:
        """The workflow's record as the API shows it."""
        value = self._workflow_json(name)
        if value is None:
            raise NotFound(f"no workflow named {name!r}")
        return value

    def workflows(self) -> list[dict[str, Any]]:
        names = [
            row[0] for row in self.store.reader.execute("SELECT name FROM workflows ORDER BY name")
        ]
        return [self.workflow(name) for name in names]

    def _workflow_json(self, name: str) -> dict[str, Any] | None:
        conn = self.store.reader
        row = conn.execute(
            "SELECT name, client, trigger_id, trigger_name, trigger_state, subscription,"
            " last_error, key_type, created, updated FROM workflows WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        (
            name,
            client,
            trigger_id,
            trigger_name,
            state,
            subscription,
            error,
            key_type,
            created,
            updated,
        ) = row
        calls = outbox_json(conn, f"trigger:{name}", limit=10)
        return {
            "name": name,
            "client": client,
            "trigger": None
            if trigger_id is None
            else {
                "name": trigger_name,
                "state": TRIGGER_STATE.get(state, state),
                "callbackUrl": self.callback_url(trigger_id, key_type),
                "subscription": json.loads(subscription) if subscription else None,
                "error": error,
                "calls": calls,
            },
            "created": created,
            "updated": updated,
        }

    def runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if workflow:
            clauses.append("workflow = ?")
            params.append(workflow)
        if status:
            clauses.append("status = ?")
            params.append(status)
        if before:
            clauses.append("id < ?")
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.store.reader.execute(
            "SELECT id, workflow, client, status, created, started, ended, doc, trigger_callback"
            f" FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*params, max(1, min(int(limit), 1000))),
        ).fetchall()
        return [self._run_json(row) for row in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.store.reader.execute(
            "SELECT id, workflow, client, status, created, started, ended, doc, trigger_callback"
            " FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        value = self._run_json(row)
        value["waits"] = self.waits(run_id=run_id)
        trigger_callback = row[8]
        if trigger_callback is not None:
            value["trigger"] = self.callback(trigger_callback)
        return value

    def _run_json(self, row: tuple[Any, ...]) -> dict[str, Any]:
        run_id, workflow, client, status, created, started, ended, doc, _ = row
        value = {
            "id": run_id,
            "workflow": workflow,
            "client": client,
            "status": status,
            "created": created,
            "started": started,
            "ended": ended,
        }
        if doc:
            value.update(json.loads(doc))
        return value

    def callback(self, callback_id: int) -> dict[str, Any] | None:
        row = self.store.reader.execute(
            f"SELECT {CALLBACK_COLUMNS} FROM callbacks c WHERE c.id = ?", (callback_id,)
        ).fetchone()
        return None if row is None else callback_from_row(row)

    def callbacks(self, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, params = ("WHERE c.target = ?", [target]) if target else ("", [])
        rows = self.store.reader.execute(
            f"SELECT {CALLBACK_COLUMNS}, c.kind, c.target, c.run_id FROM callbacks c {where}"
            " ORDER BY c.id DESC LIMIT ?",
            (*params, max(1, min(int(limit), 1000))),
        ).fetchall()
        result = []
        for row in rows:
            value = callback_from_row(row[:7])
            value.update({"kind": row[7], "target": row[8], "run": row[9]})
            result.append(value)
        return result

    def wait(self, wait_id: str) -> dict[str, Any]:
        row = self.store.reader.execute(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE id = ?", (wait_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no wait {wait_id!r}")
        return self._wait_json(row)

    def waits(
        self, *, run_id: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if run_id:
            clauses.append("run_id = ?")
            params.append(run_id)
        if state == "open":
            clauses.append(f"state IN {OPEN_SQL}")
        elif state:
            clauses.append("state = ?")
            params.append(state)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.store.reader.execute(
            f"SELECT {WAIT_COLUMNS} FROM waits {where} ORDER BY created LIMIT ?",
            (*params, max(1, min(int(limit), 10000))),
        ).fetchall()
        return [self._wait_json(row) for row in rows]

    def _wait_json(self, row: tuple[Any, ...]) -> dict[str, Any]:
        (
            wait_id,
            run_id,
            workflow,
            step,
            client,
            state,
            deadline,
            unsub_state,
            subscription,
            callback_id,
            key_type,
            error,
            created,
            ended,
        ) = row
        return {
            "id": wait_id,
            "run": run_id,
            "workflow": workflow,
            "step": step,
            "client": client,
            "state": state,
            "outcome": WAIT_OUTCOME.get(state),
            "callbackUrl": self.callback_url(wait_id, key_type),
            "deadline": deadline,
            "subscription": json.loads(subscription) if subscription else None,
            "unsubscribe": unsub_state,
            "callback": None if callback_id is None else self.callback(callback_id),
            "error": error,
            "calls": outbox_json(self.store.reader, f"wait:{wait_id}"),
            "created": created,
            "ended": ended,
        }
