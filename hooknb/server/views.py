"""Read-only JSON views of the store: what the API, the run-history page and the push channel
show (event-loop thread only; writes are :mod:`hooknb.server.rows` inside the hub's ops)."""

from __future__ import annotations

import codecs
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..http_model.redaction import MASK, SECURED, redact, redact_shown
from ..http_model.wire import CallbackWire, WireBody, encode_wire_body
from ..jsonsafe import dumps, truncated_marker, try_loads
from ..protocol import RunHistory, WaitView
from .http_errors import NotFound
from .rows import (
    CALLBACK_COLUMNS,
    CALLBACK_SECURE_SQL,
    OPEN_SQL,
    SECURE_INPUTS,
    SECURE_OUTPUTS,
    TRIGGER_STATE,
    WAIT_COLUMNS,
    WAIT_OUTCOME,
    Owner,
    callback_from_row,
    callback_json,
    secure_parts,
)
from .store import Store, in_batches, marks

# Stored JSON longer than this is shown as a cut marker rather than parsed for a view (the
# kernel's run reports and subscribe responses are far smaller; the cap bounds a hostile row).
MAX_SHOWN_JSON_CHARS = 16 * 1024 * 1024
# Outbound calls are listed (20 per owner, on every page poll) from at most this much of each
# stored column: their requests and responses are for people to glance at.
CALL_COLUMN_CHARS = 64 * 1024
# Inbound headers that carry the sender's credentials: masked in every view of stored requests
# (the stored bytes, and the channel event to the kernel, keep them exact).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def stored_json(text: str | bytes | None, default: Any = None) -> Any:
    """A stored JSON column for a view: parsed when it is JSON of bounded depth and size,
    else a ``$truncated`` marker with its start (never an exception: rows may be hostile)."""
    if text is None or text == "":
        return default
    if isinstance(text, bytes | memoryview):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        return truncated_marker(repr(text))
    if len(text) > MAX_SHOWN_JSON_CHARS:
        return truncated_marker(text)
    ok, value = try_loads(text)
    return value if ok else truncated_marker(text)


def shown_headers(stored: Any, limit: int | None = None) -> list[list[str]]:
    """Stored inbound headers as ``[name, value]`` pairs for a view, credentials masked;
    with ``limit``, at most that many characters of them (the page's previews)."""
    value = stored_json(stored, [])
    if isinstance(value, dict) and value.get("$truncated"):
        return [["$unreadable", str(value.get("repr", ""))]]
    if not isinstance(value, list):
        return [["$unreadable", dumps(redact_shown(value))[:2000]]]
    pairs = []
    for pair in value:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            name, text = str(pair[0]), str(pair[1])
        else:
            name, text = "$unreadable", dumps(redact_shown(pair))[:2000]
        pairs.append([name, MASK if name.lower() in CREDENTIAL_HEADERS else text])
    if limit is None:
        return pairs
    cut: list[list[str]] = []
    left = limit
    for name, text in pairs:
        if left <= 0:
            cut.append(["$truncated", f"{len(pairs) - len(cut)} more headers"])
            break
        cut.append([name[:left], text[: max(0, left - len(name))]])
        left -= len(name) + len(text)
    return cut


def _mask_step_headers(run: dict[str, Any]) -> None:
    """Credential headers in the outputs of a run's steps (a callback's headers, as the
    kernel reported them) masked in place, as in every view of a stored request."""
    actions = run.get("actions")
    for action in actions.values() if isinstance(actions, dict) else ():
        outputs = action.get("outputs") if isinstance(action, dict) else None
        headers = outputs.get("headers") if isinstance(outputs, dict) else None
        if isinstance(outputs, dict) and isinstance(headers, dict):
            outputs["headers"] = {
                k: MASK if str(k).lower() in CREDENTIAL_HEADERS else v for k, v in headers.items()
            }


def shown_queries(stored: Any) -> dict[str, Any]:
    """Stored query parameters for a view (an object, whatever the row holds), credentials
    masked as in every view of a request."""
    value = stored_json(stored, {})
    if isinstance(value, dict) and not value.get("$truncated"):
        return dict(redact({"queries": value})["queries"])
    return {"$unreadable": redact_shown(value)}


def shown_callback(row: tuple[Any, ...]) -> CallbackWire:
    """A stored callback request (``CALLBACK_COLUMNS``) as a view shows it: whole body,
    credential headers masked, hostile columns shown rather than raised on."""
    callback_id, received, method, headers, query, content_type, body = row
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    return callback_json(
        callback_id,
        received,
        str(method),
        shown_headers(headers),
        shown_queries(query),
        content_type if isinstance(content_type, str) or content_type is None else None,
        bytes(body or b""),
    )


def secured_callback(value: dict[str, Any]) -> dict[str, Any]:
    """A callback view of a secure-outputs step or trigger: what the sender sent (headers,
    query, body, content type) replaced by :data:`SECURED`, as Logic Apps shows it."""
    value.update(
        {
            "headers": SECURED,
            "queries": SECURED,
            "contentType": None,
            "body": SECURED,
            "secure": ["outputs"],
        }
    )
    return value


def _is_secure(bits: Any, part: int) -> bool:
    return isinstance(bits, int) and bool(bits & part)


# A listing (api/callbacks, api/waits) shows at most this much of each body, and this much
# of all bodies together: 1,000 callbacks of 16 MiB must not become one 16 GB answer. A single
# callback (api/runs/<id>, api/waits/<id>) is shown whole.
LISTED_BODY_BYTES = 64 * 1024
LISTING_BODY_BUDGET = 16 * 1024 * 1024
_LISTED_CALLBACK_COLUMNS = (
    "c.id, c.received, c.method, c.headers, c.query, c.content_type, substr(c.body, 1, ?),"
    " length(c.body)"
)


class ListingBudget:
    """How much of the bodies one listing answer still shows."""

    def __init__(self, total: int = LISTING_BODY_BUDGET) -> None:
        self.left = total

    def shown(self, row: tuple[Any, ...], secure: Any = 0) -> dict[str, Any]:
        """A callback row (``_LISTED_CALLBACK_COLUMNS``) with as much body as allowed; a cut
        body says ``"truncated": true`` and its whole ``size``. With ``secure`` outputs bits,
        nothing of what was sent (:func:`secured_callback`)."""
        *columns, head, size = row
        if _is_secure(secure, SECURE_OUTPUTS):
            return secured_callback(dict(shown_callback((*columns[:3], "[]", "{}", None, b""))))
        head = bytes(head or b"") if not isinstance(head, str) else head.encode()
        size = size or 0
        kept = head[: max(0, min(len(head), self.left))]
        self.left -= len(kept)
        value: dict[str, Any] = dict(shown_callback((*columns, kept)))
        if len(kept) < size:
            value["body"] = {**_cut_body(kept), "truncated": True, "size": size}
        return value


def _cut_body(head: bytes) -> WireBody:
    """The start of a body for JSON: UTF-8 text when it is (a character split by the cut is
    left out), base64 otherwise."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return encode_wire_body(head)
    return {"encoding": "utf-8", "data": text}


def _call_column(text: Any, size: int | None) -> Any:
    """An outbox column read with at most ``CALL_COLUMN_CHARS`` of it (see outbox_json)."""
    if text is None:
        return None
    if size is not None and size > CALL_COLUMN_CHARS:
        marker = truncated_marker(str(text), CALL_COLUMN_CHARS)
        marker["size"] = size
        return marker
    return stored_json(text)


def outbox_json(conn: sqlite3.Connection, owner: Owner, limit: int = 20) -> list[dict[str, Any]]:
    """An owner's latest outbound calls, for people: secrets (``sig=`` included) masked in
    requests, responses and errors, each column read only up to ``CALL_COLUMN_CHARS``; the
    request of a call whose owner keeps its inputs secure, and the response of one that keeps
    its outputs secure, are :data:`SECURED` (``secure`` names them)."""
    cap = CALL_COLUMN_CHARS
    rows = conn.execute(
        f"SELECT id, purpose, substr(request, 1, {cap}), length(request), state,"
        f" substr(attempts, 1, {cap}), length(attempts), substr(response, 1, {cap}),"
        f" length(response), substr(error, 1, {cap}), created, finished, secure"
        " FROM outbox WHERE owner = ? ORDER BY id DESC LIMIT ?",
        (str(owner), limit),
    ).fetchall()
    calls = []
    for (
        outbox_id,
        purpose,
        request,
        request_size,
        state,
        attempts,
        attempts_size,
        response,
        response_size,
        error,
        created,
        finished,
        secure,
    ) in reversed(rows):
        attempts_value = _call_column(attempts, attempts_size)
        call = {
            "id": outbox_id,
            "purpose": purpose,
            "request": SECURED
            if _is_secure(secure, SECURE_INPUTS)
            else redact(_call_column(request, request_size) or {}),
            "state": state,
            "attempts": attempts_value if isinstance(attempts_value, list) else [],
            "response": SECURED
            if _is_secure(secure, SECURE_OUTPUTS) and response is not None
            else redact_shown(_call_column(response, response_size)),
            "error": redact_shown(error),
            "created": created,
            "finished": finished,
        }
        if secure:
            call["secure"] = secure_parts(secure)
        calls.append(call)
    return calls


#: Every status a run can have (the hub's and the page's list too).
RUN_STATUSES = ("Queued", "Running", "Waiting", "Succeeded", "Failed", "Cancelled", "TimedOut")

# When a workflow's latest run was created: run ids sort by creation time, so it is the run
# with the largest id of any status, each found at once in runs (workflow, status, id).
_LATEST_RUN_CREATED = (
    "SELECT MAX(created) FROM runs WHERE id IN ("
    + " UNION ALL ".join(
        ["SELECT MAX(id) FROM runs WHERE workflow = ? AND status = ?"] * len(RUN_STATUSES)
    )
    + ")"
)


class Views:
    """Read-only JSON views of the store, for the API and the pages (event-loop thread only)."""

    def __init__(
        self,
        store: Store,
        callback_url: Callable[[str, str], str],
        is_connected: Callable[[str | None], bool] = lambda client: False,
        last_seen: Callable[[str], float | None] = lambda client: None,
    ) -> None:
        self.store = store
        self._callback_url = callback_url
        self.is_connected = is_connected
        self._last_seen = last_seen

    def callback_url(self, callback_id: Any, key_type: Any = "primary") -> str | None:
        """A callback URL as views show it; None for a row that cannot have one (an id or a
        key type no hooknb code stores)."""
        try:
            return self._callback_url(str(callback_id), key_type or "primary")
        except (KeyError, TypeError, ValueError):
            return None

    def kernel_state(self, client: str | None) -> str | None:
        """``connected`` while the kernel ``client`` has its channel open, ``gone`` after, None
        when no kernel was ever given the work."""
        if client is None:
            return None
        return "connected" if self.is_connected(client) else "gone"

    def last_seen(self, name: str, client: str, updated: Any) -> float | None:
        """When a workflow whose kernel is gone last had a sign of it: its channel closing
        (known since this server started), else the latest change to the workflow or one of
        its runs; None when no row says (a store not written by hooknb)."""
        latest = self.store.reader.execute(
            _LATEST_RUN_CREATED, [value for status in RUN_STATUSES for value in (name, status)]
        ).fetchone()[0]
        times = [
            x
            for x in (self._last_seen(client), updated, latest)
            if isinstance(x, int | float) and not isinstance(x, bool)
        ]
        return max(times, default=None)

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
            " last_error, key_type, created, updated, verify, settings, trigger_secure"
            " FROM workflows WHERE name = ?",
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
            verify,
            settings,
            secure,
        ) = row
        calls = outbox_json(conn, Owner.trigger(name), limit=10)
        shown_settings = stored_json(settings) if settings else None
        if isinstance(shown_settings, dict):
            # Parameter values are the workflow's; views name them without their values.
            shown_settings.pop("parameters", None)
        load = conn.execute(
            "SELECT COALESCE(SUM(held = 0), 0), COALESCE(SUM(held = 1), 0) FROM runs"
            " WHERE workflow = ? AND status IN ('Queued', 'Running', 'Waiting')",
            (name,),
        ).fetchone()
        kernel = self.kernel_state(client)
        return {
            "name": name,
            "client": client,
            "kernel": kernel,
            "lastSeen": self.last_seen(name, client, updated) if kernel == "gone" else None,
            "trigger": None
            if trigger_id is None
            else {
                "name": trigger_name,
                "state": TRIGGER_STATE.get(state, state),
                "callbackUrl": self.callback_url(trigger_id, key_type),
                "keyType": key_type,
                "verify": _describe_verify(verify),
                # Shown as the service answered (the kernel computes unsubscribe from it);
                # the page masks what it shows of it. A secure trigger's is an output.
                "subscription": SECURED
                if _is_secure(secure, SECURE_OUTPUTS) and subscription is not None
                else stored_json(subscription),
                "error": redact_shown(error),
                "calls": calls,
                **({"secure": secure_parts(secure)} if secure else {}),
            },
            "created": created,
            "updated": updated,
            "settings": shown_settings,
            "runsUnderWay": load[0],
            "runsWaitingToStart": load[1],
        }

    def trigger_history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The workflow's trigger events, newest first: ``status`` Fired (``runs`` it started),
        Skipped or Failed (``reason``), the HTTP status the sender got (``code``) and the request
        (as listings show callbacks)."""
        rows = self.store.reader.execute(
            "SELECT id, status, received, callback, runs, reason, code FROM trigger_history"
            " WHERE workflow = ? ORDER BY id DESC LIMIT ?",
            (name, max(1, min(int(limit), 1000))),
        ).fetchall()
        budget = ListingBudget()
        entries = []
        for history_id, status, received, callback_id, runs, reason, code in rows:
            request = None
            if callback_id is not None:
                request = self.callback(callback_id, budget)
            entries.append(
                {
                    "name": f"{history_id:020d}",
                    "status": status,
                    "received": received,
                    "runs": stored_json(runs) if runs else [],
                    "reason": redact_shown(reason),
                    "code": code,
                    "request": request,
                }
            )
        return entries

    def runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 100,
        before: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs newest first (ids grow with time), of one workflow or all, with one ``status``
        or any of ``statuses`` (default: every status), older than run id ``before``.

        One query per status, each walking the index on (status, id) or (workflow, status,
        id) from ``before`` down, merged here: a page costs its size, not the store's, whatever
        the filters (one query over every status would sort all the workflow's runs).
        """
        wanted = [status] if status else list(statuses if statuses is not None else RUN_STATUSES)
        limit = max(1, min(int(limit), 1000))
        ids: list[str] = []
        for one in wanted:
            clauses, params = ["status = ?"], [one]
            if workflow:
                clauses.append("workflow = ?")
                params.append(workflow)
            if before:
                clauses.append("id < ?")
                params.append(before)
            ids.extend(
                row[0]
                for row in self.store.reader.execute(
                    f"SELECT id FROM runs WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
                    (*params, limit),
                )
            )
        ids = sorted(ids, reverse=True)[:limit]
        if not ids:
            return []
        rows = self.store.reader.execute(
            "SELECT id, workflow, client, status, created, started, ended, doc, trigger_callback,"
            f" tracking_id, held FROM runs WHERE id IN ({marks(ids)})"
            " ORDER BY id DESC",
            ids,
        ).fetchall()
        return [self._run_json(row) for row in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.store.reader.execute(
            "SELECT id, workflow, client, status, created, started, ended, doc, trigger_callback,"
            " tracking_id, held FROM runs WHERE id = ?",
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
        run_id, workflow, client, status, created, started, ended, doc, _, tracking, held = row
        value = {
            "id": run_id,
            "workflow": workflow,
            "client": client,
            "status": status,
            "created": created,
            "started": started,
            "ended": ended,
            # The sender's x-ms-client-tracking-id, else the run's id (Logic Apps' default).
            "clientTrackingId": tracking or run_id,
        }
        if held and status == "Queued":
            # Held back by the workflow's concurrency limit: it starts when a run ends.
            value["waitingToStart"] = True
        if doc:
            report = stored_json(doc, {})
            if isinstance(report, dict) and not report.get("$truncated"):
                value.update({k: v for k, v in report.items() if k not in value})
                _mask_step_headers(value)
            else:
                value["doc"] = report
        if status in ("Queued", "Running", "Waiting"):
            # Whether a kernel is running it: a run whose kernel is gone waits for a kernel to
            # define its workflow again (and adopt it), or to be cancelled.
            value["kernel"] = self.kernel_state(client)
        return value

    def histories(self, run_ids: list[str]) -> list[RunHistory]:
        """What a kernel needs to replay these runs: each run's trigger request and its steps in
        the order they were asked for, with their recorded values (JSON text, decoded by the
        kernel) and, for webhook steps, their wait: state, callback URL, deadline, and the
        callback when one came."""
        result: list[dict[str, Any]] = []
        for batch in in_batches(run_ids):
            result.extend(self._histories(list(batch)))
        return cast("list[RunHistory]", result)  # built from the rows as RunHistory says

    def _histories(self, run_ids: list[str]) -> list[dict[str, Any]]:
        conn = self.store.reader
        in_list = marks(run_ids)
        runs: dict[str, dict[str, Any]] = {}
        callbacks: dict[int, list[tuple[dict[str, Any], str]]] = {}
        for run_id, workflow, status, created, started, trigger, replays in conn.execute(
            "SELECT id, workflow, status, created, started, trigger_callback, replays FROM runs"
            f" WHERE id IN ({in_list})",
            run_ids,
        ):
            run = {
                "id": run_id,
                "workflow": workflow,
                "status": status,
                "created": created,
                "started": started,
                "replays": replays,
                "trigger": None,
                "steps": [],
            }
            runs[run_id] = run
            if trigger is not None:
                callbacks.setdefault(trigger, []).append((run, "trigger"))
        for row in conn.execute(
            "SELECT s.run_id, s.name, s.kind, s.after, s.first, s.position, s.state, s.value,"
            " s.started, s.ended, s.wait_id, w.state, w.deadline, w.unsub_state, w.subscription,"
            " w.key_type, w.error, w.callback"
            f" FROM steps s LEFT JOIN waits w ON w.id = s.wait_id WHERE s.run_id IN ({in_list})"
            " ORDER BY s.position",
            run_ids,
        ):
            (run_id, name, kind, after, first, position, state, value, started, ended) = row[:10]
            step: dict[str, Any] = {
                "step": name,
                "kind": kind,
                "after": after,
                "first": bool(first),
                "position": position,
                "state": state,
                "value": value,
                "started": started,
                "ended": ended,
            }
            wait_id = row[10]
            if wait_id is not None and row[11] is not None:
                w_state, deadline, unsub, subscription, key_type, error, callback = row[11:]
                wait: dict[str, Any] = {
                    "id": wait_id,
                    "state": w_state,
                    "outcome": WAIT_OUTCOME.get(w_state),
                    "deadline": deadline,
                    "callbackUrl": self.callback_url(wait_id, key_type),
                    "subscription": stored_json(subscription),
                    "unsubscribe": unsub,
                    "error": error,
                    "callback": None,
                }
                step["wait"] = wait
                if callback is not None:
                    callbacks.setdefault(callback, []).append((wait, "callback"))
            runs[run_id]["steps"].append(step)
        if callbacks:
            ids = list(callbacks)
            for row in conn.execute(
                f"SELECT {CALLBACK_COLUMNS} FROM callbacks c"
                f" WHERE c.id IN ({', '.join('?' for _ in ids)})",
                ids,
            ):
                wire = callback_from_row(row)
                for holder, key in callbacks[row[0]]:
                    holder[key] = wire
        return [runs[run_id] for run_id in run_ids if run_id in runs]

    def callback(
        self, callback_id: int, budget: ListingBudget | None = None, *, reveal: bool = False
    ) -> dict[str, Any] | None:
        """A stored callback; its whole body, or in a listing (``budget``) what it allows.

        A callback of a step or trigger that keeps its outputs secure shows nothing of what was
        sent (:func:`secured_callback`) unless ``reveal`` (answers to the kernel running it)."""
        if budget is None:
            row = self.store.reader.execute(
                f"SELECT {CALLBACK_COLUMNS}, {CALLBACK_SECURE_SQL} FROM callbacks c WHERE c.id = ?",
                (callback_id,),
            ).fetchone()
            if row is None:
                return None
            if not reveal and _is_secure(row[7], SECURE_OUTPUTS):
                return secured_callback(dict(shown_callback((*row[:3], "[]", "{}", None, b""))))
            return dict(shown_callback(row[:7]))
        row = self.store.reader.execute(
            f"SELECT {_LISTED_CALLBACK_COLUMNS}, {CALLBACK_SECURE_SQL} FROM callbacks c"
            " WHERE c.id = ?",
            (LISTED_BODY_BYTES, callback_id),
        ).fetchone()
        if row is None:
            return None
        return budget.shown(row[:8], 0 if reveal else row[8])

    def callbacks(self, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest stored callbacks, bodies as a listing shows them (``ListingBudget``)."""
        where, params = ("WHERE c.target = ?", [target]) if target else ("", [])
        rows = self.store.reader.execute(
            f"SELECT {_LISTED_CALLBACK_COLUMNS}, c.kind, c.target, c.run_id,"
            f" {CALLBACK_SECURE_SQL} FROM callbacks c"
            f" {where} ORDER BY c.id DESC LIMIT ?",
            (LISTED_BODY_BYTES, *params, max(1, min(int(limit), 1000))),
        ).fetchall()
        budget = ListingBudget()
        result = []
        for row in rows:
            value = budget.shown(row[:8], row[11])
            value.update({"kind": row[8], "target": row[9], "run": row[10]})
            result.append(value)
        return result

    def wait(self, wait_id: str, *, reveal: bool = False) -> WaitView:
        """A wait as views show it; with ``reveal``, as the kernel running its step gets it
        (its subscribe response and callback even when the step keeps its outputs secure)."""
        row = self.store.reader.execute(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE id = ?", (wait_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no wait {wait_id!r}")
        return self._wait_json(row, reveal=reveal)

    def waits(
        self, *, run_id: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[WaitView]:
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
        budget = ListingBudget()
        return [self._wait_json(row, budget) for row in rows]

    def _wait_json(
        self, row: tuple[Any, ...], budget: ListingBudget | None = None, *, reveal: bool = False
    ) -> WaitView:
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
            verify,
            secure,
        ) = row
        hidden = not reveal and _is_secure(secure, SECURE_OUTPUTS)
        value: WaitView = {
            "id": wait_id,
            "run": run_id,
            "workflow": workflow,
            "step": step,
            "client": client,
            "state": state,
            "outcome": WAIT_OUTCOME.get(state),
            "callbackUrl": self.callback_url(wait_id, key_type),
            "deadline": deadline,
            "subscription": SECURED
            if hidden and subscription is not None
            else stored_json(subscription),
            "unsubscribe": unsub_state,
            "callback": None
            if callback_id is None
            else self.callback(callback_id, budget, reveal=reveal),
            "error": redact_shown(error),
            "calls": outbox_json(self.store.reader, Owner.wait(wait_id)),
            "verify": _describe_verify(verify),
            "created": created,
            "ended": ended,
        }
        if secure:
            value["secure"] = secure_parts(secure)
        return value


def _describe_verify(stored: str | None) -> dict[str, Any] | None:
    """A sender-verification setting without its secret."""
    if not stored:
        return None
    config = stored_json(stored, {})
    if not isinstance(config, dict) or config.get("$truncated"):
        return {"type": None, "tolerance": None}
    return {"type": config.get("type"), "tolerance": config.get("tolerance")}


# --------------------------------------------------------------------------- the run-history page
# Read-only helpers for the page's snapshot (hooknb/server/page.py). The page polls every second
# or two, so these never load a whole callback body (up to the 16 MiB limit each): sizes come from
# SQL's length(), which does not read a BLOB's content, and previews from incremental BLOB reads.

BODY_PREVIEW_BYTES = 4096
# Headers shown per callback on the page (tornado lets 64 KiB of them in; a row can hold more).
PREVIEW_HEADER_CHARS = 65536


def body_preview(head: bytes, size: int, content_type: str | None) -> dict[str, Any]:
    """A body as people see it: ``text`` (``json`` when it parses) or ``binary`` with its size.

    ``head`` is the body's first bytes (all of it when ``len(head) == size``). Text that is cut
    short loses at most an incomplete UTF-8 sequence at the cut, never a character in the middle.
    """
    if size == 0:
        return {"kind": "empty", "size": 0, "contentType": content_type}
    truncated = len(head) < size
    try:
        # An incremental decoder tolerates a multi-byte character split by the cut (final=False)
        # but still rejects invalid bytes anywhere else.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=not truncated)
    except UnicodeDecodeError:
        return {"kind": "binary", "size": size, "contentType": content_type}
    kind = "text"
    if not truncated and text.lstrip()[:1] in ("{", "["):
        # Pretty-printed only when it parses within jsonsafe's depth; else shown as sent.
        ok, value = try_loads(text)
        if ok:
            text = dumps(value, indent=2, ensure_ascii=False)
            kind = "json"
    return {
        "kind": kind,
        "size": size,
        "contentType": content_type,
        "text": text,
        "truncated": truncated,
    }


def _blob_head(
    conn: sqlite3.Connection, table: str, column: str, rowid: int, size: int
) -> bytes | None:
    """The first bytes of a BLOB, read without loading the rest; None if the row is gone."""
    if size <= 0:
        return b""
    try:
        with conn.blobopen(table, column, rowid, readonly=True) as blob:
            return blob.read(min(size, BODY_PREVIEW_BYTES))
    except sqlite3.OperationalError:  # deleted between the query and this read
        return None


def callback_previews(
    conn: sqlite3.Connection,
    *,
    ids: list[int] | None = None,
    workflow: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Stored callbacks, newest first, with headers, queries and a body preview.

    Each names its ``workflow``, its ``run`` and, for an action's callback, the ``step``.
    ``ids`` selects callbacks by id; ``workflow`` keeps one workflow's callbacks.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if ids is not None:
        if not ids:
            return []
        clauses.append(f"c.id IN ({', '.join('?' for _ in ids)})")
        params.extend(ids)
    owner = "COALESCE(w.workflow, r.workflow, CASE WHEN c.kind != 'wait' THEN c.target END)"
    if workflow:
        clauses.append(f"{owner} = ?")
        params.append(workflow)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        "SELECT c.id, c.kind, c.run_id, c.received, c.method, c.headers, c.query,"
        f" c.content_type, length(c.body), {owner}, w.step, {CALLBACK_SECURE_SQL}"
        " FROM callbacks c"
        " LEFT JOIN waits w ON c.kind = 'wait' AND w.id = c.target"
        " LEFT JOIN runs r ON r.id = c.run_id"
        f" {where} ORDER BY c.id DESC LIMIT ?",
        (*params, max(1, min(int(limit), 1000))),
    ).fetchall()
    result = []
    for (
        callback_id,
        kind,
        run_id,
        received,
        method,
        headers,
        query,
        content_type,
        size,
        owner_name,
        step,
        secure,
    ) in rows:
        preview: dict[str, Any] = {
            "id": callback_id,
            "kind": kind,
            "workflow": owner_name,
            "run": run_id,
            "step": step,
            "received": received,
            "method": method,
        }
        if _is_secure(secure, SECURE_OUTPUTS):
            preview.update(
                headers=[],
                queries={},
                contentType=None,
                body={"kind": "secured", "size": None, "text": SECURED},
                secure=["outputs"],
            )
        else:
            head = _blob_head(conn, "callbacks", "body", callback_id, size or 0)
            if head is None:
                continue
            preview.update(
                headers=shown_headers(headers, PREVIEW_HEADER_CHARS),
                queries=shown_queries(query),
                contentType=content_type,
                body=body_preview(head, size or 0, content_type),
            )
        result.append(preview)
    return result


def run_status_counts(conn: sqlite3.Connection, workflow: str | None = None) -> dict[str, int]:
    """How many runs have each status (of one workflow, or all)."""
    where, params = ("WHERE workflow = ?", (workflow,)) if workflow else ("", ())
    rows = conn.execute(
        f"SELECT status, COUNT(*) FROM runs {where} GROUP BY status", params
    ).fetchall()
    return {status: count for status, count in rows}


def run_trigger_callbacks(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, int]:
    """The stored trigger-callback id of each run that has one (what a resubmit replays)."""
    if not run_ids:
        return {}
    rows = conn.execute(
        "SELECT id, trigger_callback FROM runs WHERE trigger_callback IS NOT NULL"
        f" AND id IN ({', '.join('?' for _ in run_ids)})",
        run_ids,
    ).fetchall()
    return {run_id: callback_id for run_id, callback_id in rows}


def run_waits(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The waits (webhook action steps) of these runs, by run, oldest first.

    Like ``Views.wait`` but the callback is named by id only (its body is not loaded).
    """
    if not run_ids:
        return {}
    in_list = marks(run_ids)
    rows = conn.execute(
        "SELECT id, run_id, step, state, deadline, unsub_state, callback, error, created, ended,"
        f" key_type, secure FROM waits WHERE run_id IN ({in_list}) ORDER BY created",
        run_ids,
    ).fetchall()
    result: dict[str, list[dict[str, Any]]] = {}
    for (
        wait_id,
        run_id,
        step,
        state,
        deadline,
        unsub,
        callback_id,
        error,
        created,
        ended,
        key_type,
        secure,
    ) in rows:
        result.setdefault(run_id, []).append(
            {
                "id": wait_id,
                "step": step,
                "state": state,
                "outcome": WAIT_OUTCOME.get(state),
                "deadline": deadline,
                "unsubscribe": unsub,
                "callback": callback_id,
                "error": redact_shown(error),
                "calls": outbox_json(conn, Owner.wait(wait_id)),
                "created": created,
                "ended": ended,
                "keyType": key_type,
                "secure": secure_parts(secure),
            }
        )
    return result
