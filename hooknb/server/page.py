"""The run-history page, ``GET <base_url>hooknb/``: workflows, triggers, runs and callbacks.

One handler serves two views of the same snapshot:

* ``GET hooknb/`` is the HTML page. The snapshot is embedded in it (so the first paint needs no
  round trip) and a small script, inlined with a CSP nonce, renders it with DOM APIs only
  (``textContent``, never ``innerHTML``), so nothing from outside - bodies, headers, names - can
  become markup. No build step, no external CSS/JS/fonts: it works on an air-gapped machine.
* ``GET hooknb/?format=json`` is the snapshot the page polls every ~1.5 s: one request, bodies
  previewed (never shipped whole: a callback may hold 16 MiB), and an ETag so an unchanged
  snapshot costs a 304. Polling the generic API instead would take one request per run for its
  waits and carry every full body each time.

The page's buttons call the existing JSON API with the browser's Jupyter session (cookie), so
POST/DELETE send ``X-XSRFToken`` from the ``_xsrf`` cookie; this handler sets that cookie by
touching ``self.xsrf_token``. Both views need Jupyter authentication (``@web.authenticated``),
also with ``ServerApp.allow_unauthenticated_access=False``.
"""

from __future__ import annotations

import html
import json
import reprlib
import secrets
from collections.abc import Mapping
from functools import cache, cached_property
from importlib import resources
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .._version import __version__
from ..http_model.redaction import redact_shown
from ..jsonsafe import dumps, dumps_anything
from .hub import Hub
from .views import (
    RUN_STATUSES,
    callback_previews,
    run_status_counts,
    run_trigger_callbacks,
    run_waits,
)

POLL_MS = 1500
DEFAULT_RUN_LIMIT = 50
MAX_RUN_LIMIT = 500
CALLBACK_LIMIT = 30
# Trigger history entries shown per workflow.
TRIGGER_HISTORY_LIMIT = 10
#: Unfinished runs shown at the top of the page (the rest: filter by workflow or status).
OPEN_RUN_LIMIT = 50
# Structured values (results, outputs, subscribe responses) are shown as JSON text cut here.
PREVIEW_CHARS = 4000
ACTIVE_RUN_STATUSES = ("Queued", "Running", "Waiting")
ACTIVE_TRIGGER_STATES = ("Enabled", "Enabling")


# --------------------------------------------------------------------------- the snapshot


def clip(value: Any, limit: int = PREVIEW_CHARS) -> dict[str, Any] | None:
    """A value as (pretty JSON) text for the page, cut at ``limit`` characters."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("$truncated"):
        # The kernel already cut this one (its report limit); say so rather than show the marker.
        return {"text": str(value.get("repr") or ""), "truncated": True, "size": value.get("size")}
    if isinstance(value, str):
        text = value
    else:
        try:
            text = dumps(value, indent=2, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):  # circular or too deep: views bound depth anyway
            text = reprlib.repr(value)
    return {"text": text[:limit], "truncated": len(text) > limit, "size": len(text)}


def _epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string (the kernel reports step times so)."""
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def call_view(call: dict[str, Any]) -> dict[str, Any]:
    """An outbound subscribe/unsubscribe call, in brief (a secure one's request or response
    is the text that says so)."""
    request = call.get("request") or {}
    if not isinstance(request, dict):  # secure inputs: the text stands for the whole request
        request = {"uri": request, "body": request}
    response = call.get("response") or {}
    if not isinstance(response, dict) or response.get("$truncated"):
        response = {"body": response}  # a stored answer cut or unreadable: shown as such
    attempts = [a for a in call.get("attempts") or [] if isinstance(a, dict)]
    status_code = response.get("statusCode")
    if status_code is None and attempts:
        status_code = attempts[-1].get("statusCode")
    return {
        "id": call.get("id"),
        "purpose": call.get("purpose"),
        "method": request.get("method"),
        "uri": request.get("uri") or request.get("url"),
        "state": call.get("state"),
        "statusCode": status_code,
        "attempts": len(attempts),
        "error": call.get("error"),
        "created": call.get("created"),
        "finished": call.get("finished"),
        "request": clip(request.get("body"), 1500),
        "response": clip(response.get("body"), 1500),
    }


def _last(calls: list[dict[str, Any]], purpose: str) -> dict[str, Any] | None:
    for call in calls[::-1]:  # (reversed() loses the item type to mypy)
        if call["purpose"] == purpose:
            return call
    return None


def workflow_view(
    workflow: dict[str, Any], history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    trigger = workflow.get("trigger")
    view: dict[str, Any] = {
        "name": workflow["name"],
        "client": workflow.get("client"),
        "kernel": workflow.get("kernel"),
        "lastSeen": workflow.get("lastSeen"),
        "created": workflow.get("created"),
        "updated": workflow.get("updated"),
        "trigger": None,
        "canDisable": False,
        "canDelete": True,
        "settings": workflow.get("settings"),
        "runsUnderWay": workflow.get("runsUnderWay"),
        "runsWaitingToStart": workflow.get("runsWaitingToStart"),
        # The latest trigger events (Fired, Skipped, Failed), without their requests: the
        # Callbacks section and the API show those.
        "triggerHistory": [
            {k: entry.get(k) for k in ("name", "status", "received", "runs", "reason", "code")}
            for entry in history or []
        ],
    }
    if trigger:
        calls = [call_view(call) for call in trigger.get("calls") or []]
        subscription = trigger.get("subscription") or {}
        if not isinstance(subscription, dict) or subscription.get("$truncated"):
            subscription = {"body": subscription}
        view["trigger"] = {
            "name": trigger.get("name"),
            "state": trigger.get("state"),
            "callbackUrl": trigger.get("callbackUrl"),
            "error": trigger.get("error"),
            # A service may echo the callback URL (and its sig=) in its answer: masked here.
            "subscription": clip(redact_shown(subscription.get("body")), 1500),
            "calls": calls,
            "lastSubscribe": _last(calls, "subscribe"),
            "lastUnsubscribe": _last(calls, "unsubscribe"),
        }
        view["canDisable"] = trigger.get("state") in ACTIVE_TRIGGER_STATES
    return view


def wait_view(hub: Hub, wait: dict[str, Any]) -> dict[str, Any]:
    calls = [call_view(call) for call in wait["calls"]]
    return {
        "id": wait["id"],
        "state": wait["state"],
        "outcome": wait["outcome"],
        "deadline": wait["deadline"],
        "callback": wait["callback"],
        "callbackUrl": hub.views.callback_url(wait["id"], wait.get("keyType")),
        "error": wait["error"],
        "unsubscribe": wait["unsubscribe"],
        "lastSubscribe": _last(calls, "subscribe"),
        "lastUnsubscribe": _last(calls, "unsubscribe"),
        "created": wait["created"],
        "ended": wait["ended"],
    }


def step_views(hub: Hub, run: dict[str, Any], waits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's steps as the kernel reported them, each with its wait as the server knows it.

    A webhook step the kernel has not reported yet (or whose kernel is gone) still shows, from
    its wait alone.
    """
    by_id = {wait["id"]: wait for wait in waits}
    by_step = {wait["step"]: wait for wait in waits}  # the latest wait of a step wins
    used: set[str] = set()
    steps = []
    actions = run.get("actions") or {}
    for name, action in actions.items() if isinstance(actions, dict) else ():
        if not isinstance(action, dict):
            continue
        wait = by_id.get(action.get("wait") or "") or by_step.get(name)
        if wait is not None:
            used.add(wait["id"])
        outputs = action.get("outputs") if isinstance(action.get("outputs"), dict) else None
        steps.append(
            {
                "name": name,
                "type": action.get("type"),
                "status": action.get("status"),
                "start": _epoch(action.get("startTime")),
                "end": _epoch(action.get("endTime")),
                "error": action.get("error"),
                "callbackUrl": action.get("callbackUrl"),
                "deadline": action.get("deadline"),
                "statusCode": outputs.get("statusCode") if outputs else None,
                "outputs": clip(outputs.get("body")) if outputs else None,
                "wait": None if wait is None else wait_view(hub, wait),
            }
        )
    for wait in waits:
        if wait["id"] in used:
            continue
        view = wait_view(hub, wait)
        steps.append(
            {
                "name": wait["step"],
                "type": "HttpWebhook",
                "status": wait["outcome"] or "Waiting",
                "start": wait["created"],
                "end": wait["ended"],
                "error": wait["error"],
                "callbackUrl": view["callbackUrl"],
                "deadline": wait["deadline"],
                "statusCode": None,
                "outputs": None,
                "wait": view,
            }
        )
    return steps


def run_view(
    hub: Hub,
    run: dict[str, Any],
    waits: list[dict[str, Any]],
    trigger: dict[str, Any] | None,
) -> dict[str, Any]:
    status = run.get("status")
    return {
        "id": run["id"],
        "workflow": run.get("workflow"),
        "client": run.get("client"),
        "status": status,
        "created": run.get("created"),
        "started": run.get("started"),
        "ended": run.get("ended"),
        "trigger": run.get("trigger"),
        "startedBy": trigger["kind"] if trigger else None,
        "clientTrackingId": run.get("clientTrackingId"),
        "waitingToStart": bool(run.get("waitingToStart")),
        "triggerInputs": trigger,
        "error": run.get("error"),
        "result": clip(run.get("result")),
        "steps": step_views(hub, run, waits),
        "canCancel": status in ACTIVE_RUN_STATUSES,
        # "gone": nothing runs it until a kernel defines its workflow again (or it is ended).
        "kernel": run.get("kernel"),
        "canResubmit": trigger is not None,
    }


def snapshot(
    hub: Hub,
    status_info: Mapping[str, Any],
    *,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_RUN_LIMIT,
    before: str | None = None,
) -> dict[str, Any]:
    """Everything the page shows for one filter, from the store's reader (event-loop thread).

    ``openRuns`` (unfinished runs, shown first) and ``runs`` (a page of every run, newest
    first, older than run id ``before``; ``nextBefore`` continues it) are read through
    indexes from where they start, so a page costs its size, not the store's. The filters
    apply to everything: workflows are listed when they have runs of the status asked for,
    and with a status the callbacks are those that started the runs shown. Workflows whose
    kernel is gone come apart (``goneWorkflows``, with when they were last seen).
    ``status_info`` is :meth:`Hub.status` (whose counts are made off the event loop).
    """
    conn = hub.store.reader
    limit = max(1, min(int(limit), MAX_RUN_LIMIT))
    runs = hub.views.runs(workflow=workflow, status=status, limit=limit + 1, before=before)
    more = len(runs) > limit
    runs = runs[:limit]
    open_statuses = [s for s in ACTIVE_RUN_STATUSES if status in (None, s)]
    open_runs = (
        hub.views.runs(workflow=workflow, statuses=open_statuses, limit=OPEN_RUN_LIMIT + 1)
        if open_statuses
        else []
    )
    more_open = len(open_runs) > OPEN_RUN_LIMIT
    open_runs = open_runs[:OPEN_RUN_LIMIT]
    shown = {run["id"]: run for run in [*open_runs, *runs]}
    run_ids = list(shown)
    trigger_ids = run_trigger_callbacks(conn, run_ids)
    triggers = {
        callback["id"]: callback
        for callback in callback_previews(
            conn, ids=sorted(set(trigger_ids.values())), limit=max(1, len(trigger_ids))
        )
    }
    waits = run_waits(conn, run_ids)
    views = {
        run_id: run_view(hub, run, waits.get(run_id, []), triggers.get(trigger_ids.get(run_id)))
        for run_id, run in shown.items()
    }
    status_info = dict(status_info)
    status_info.pop("started", None)  # constant; keeps the snapshot (and its ETag) stable
    status_info.pop("uploads", None)  # moves with every upload; the page does not show it
    workflows = hub.views.workflows()
    listed = [
        workflow_view(w, hub.views.trigger_history(w["name"], TRIGGER_HISTORY_LIMIT))
        for w in workflows
        if (not workflow or w["name"] == workflow) and _has_runs(conn, w["name"], status)
    ]
    if status:  # the callbacks that started the runs shown
        callbacks = sorted(triggers.values(), key=lambda c: c["id"], reverse=True)
    else:
        callbacks = callback_previews(conn, workflow=workflow, limit=CALLBACK_LIMIT)
    return {
        "version": __version__,
        "status": status_info,
        "filters": {"workflow": workflow or "", "status": status or "", "limit": limit},
        "before": before or "",
        "workflowNames": [w["name"] for w in workflows],
        "statuses": list(RUN_STATUSES),
        "counts": run_status_counts(conn, workflow),
        "orphaned": orphaned_count(hub, workflow) if status in (None, "Waiting") else 0,
        "workflows": [w for w in listed if w["kernel"] != "gone"],
        "goneWorkflows": sorted(
            (w for w in listed if w["kernel"] == "gone"),
            key=lambda w: -(w["lastSeen"] or 0),
        ),
        "openRuns": [views[run["id"]] for run in open_runs],
        "moreOpenRuns": more_open,
        "runs": [views[run["id"]] for run in runs],
        "moreRuns": more,
        "nextBefore": runs[-1]["id"] if more and runs else None,
        "callbacks": callbacks,
    }


def _has_runs(conn: Any, workflow: str, status: str | None) -> bool:
    """Whether ``workflow`` has a run with ``status`` (always, without a status filter)."""
    if not status:
        return True
    found = conn.execute(
        "SELECT 1 FROM runs WHERE workflow = ? AND status = ? LIMIT 1", (workflow, status)
    ).fetchone()
    return found is not None


def orphaned_count(hub: Hub, workflow: str | None) -> int:
    """Unfinished runs (of one workflow, or all) whose kernel is gone: what the page's bulk
    button ends (``POST api/runs/cancel {"orphaned": true}``)."""
    sql = "SELECT client, COUNT(*) FROM runs WHERE status IN (?, ?, ?)"
    params: list[Any] = list(ACTIVE_RUN_STATUSES)
    if workflow:
        sql += " AND workflow = ?"
        params.append(workflow)
    rows = hub.store.reader.execute(sql + " GROUP BY client", params).fetchall()
    return sum(
        count for client, count in rows if client is not None and not hub.is_connected(client)
    )


# --------------------------------------------------------------------------- the page


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``</script>``, no
    ``<!--``, whatever the strings hold (``<``, ``>`` and ``&`` become ``\\u`` escapes, and so
    do non-ASCII characters: a lone surrogate from a hostile row cannot break the encoding)."""
    return (
        dumps_anything(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>hooknb \u00b7 run history</title>
<style nonce="{nonce}">{css}</style>
</head>
<body>
<header class="top">
  <div class="brand">
    <span class="logo" aria-hidden="true">\u21c4</span>
    <h1>hooknb <span class="sub">run history</span></h1>
  </div>
  <div class="live" data-role="live" data-live="starting" role="status">
    <span class="dot" aria-hidden="true"></span><span data-role="live-text">starting\u2026</span>
  </div>
</header>
<main>
  <div class="summary" data-role="summary" aria-label="server status"></div>
  <form class="filters" method="get" action="{page}" data-role="filters">
    <label>Workflow <select name="workflow" data-filter="workflow"></select></label>
    <label>Status <select name="status" data-filter="status"></select></label>
    <button type="submit" class="apply">Apply</button>
    <a class="clear" href="{page}" data-role="clear">Clear filters</a>
  </form>
  <div class="messages" data-role="messages" aria-live="polite"></div>
  <noscript><p class="notice error">This page needs JavaScript to render its data.</p></noscript>
  <section aria-labelledby="h-open" data-role="open-section">
    <h2 id="h-open">Open runs and waits <span class="count" data-role="open-count"></span></h2>
    <div class="orphans" data-role="orphans"></div>
    <div class="runs" data-role="open-runs"></div>
  </section>
  <section aria-labelledby="h-runs">
    <h2 id="h-runs">Runs <span class="count" data-role="runs-count"></span></h2>
    <div class="runs" data-role="runs"></div>
    <nav class="pager" aria-label="pages of runs">
      <button type="button" class="more" data-role="newest" hidden>← Newest runs</button>
      <button type="button" class="more" data-role="more" hidden>Older runs →</button>
    </nav>
  </section>
  <section aria-labelledby="h-workflows">
    <h2 id="h-workflows">Workflows &amp; triggers</h2>
    <div class="workflows" data-role="workflows"></div>
    <details class="gone" data-role="gone" data-key="gone-workflows" hidden>
      <summary data-role="gone-summary"></summary>
      <div class="workflows" data-role="gone-workflows"></div>
    </details>
  </section>
  <section aria-labelledby="h-callbacks">
    <h2 id="h-callbacks">Callbacks <span class="count" data-role="callbacks-count"></span></h2>
    <div class="callbacks" data-role="callbacks"></div>
  </section>
</main>
<footer>hooknb {version} \u00b7 API <a href="{api}status">{api}</a></footer>
<script type="application/json" id="hooknb-data">{data}</script>
<script nonce="{nonce}">{js}</script>
</body>
</html>
"""


class PageHandler(JupyterHandler):
    """Workflows, runs and callbacks of this server, for people (HTML), and as the JSON
    snapshot the page polls (``?format=json``)."""

    hub: Hub

    def initialize(self, hub: Hub, **kwargs: Any) -> None:
        self.hub = hub
        super().initialize(**kwargs)

    @cached_property
    def nonce(self) -> str:
        """This response's CSP nonce (the page's script and style carry it)."""
        return secrets.token_urlsafe(18)

    @property
    def wants_json(self) -> bool:
        return self.get_query_argument("format", "") == "json"

    def page_content_security_policy(self) -> str:
        """Only this page's own (nonced) script and style run; it talks to this server only.

        Set on the page itself and nowhere else: Jupyter's own pages (its error page for a
        refused filter, a login redirect) keep Jupyter's policy, under which their
        stylesheets and scripts load. Defence in depth: the script never builds markup from
        data anyway. A policy the operator configured (``headers`` setting) is left alone,
        as JupyterHandler does.
        """
        if "Content-Security-Policy" in self.settings.get("headers", {}):
            return self.content_security_policy
        return "; ".join(
            [
                self.content_security_policy,
                "default-src 'none'",
                f"script-src 'nonce-{self.nonce}'",
                f"style-src 'nonce-{self.nonce}'",
                "connect-src 'self'",
                "img-src 'self' data:",
                "base-uri 'none'",
                "form-action 'self'",
            ]
        )

    def get_login_url(self) -> str:
        # The page's poll must see 403 (and say "log in again"), not a redirect to HTML.
        if self.wants_json and not self.current_user:
            raise web.HTTPError(403)
        return super().get_login_url()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self.wants_json:
            super().write_error(status_code, **kwargs)
            return
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message or self._reason}))

    def _filters(self) -> dict[str, Any]:
        try:
            limit = int(self.get_query_argument("limit", str(DEFAULT_RUN_LIMIT)))
        except ValueError:
            raise web.HTTPError(400, "'limit' must be an integer") from None
        status = self.get_query_argument("status", "") or None
        if status is not None and status not in RUN_STATUSES:
            raise web.HTTPError(400, f"'status' must be one of {', '.join(RUN_STATUSES)}")
        return {
            "workflow": self.get_query_argument("workflow", "") or None,
            "status": status,
            "limit": limit,
            "before": self.get_query_argument("before", "") or None,
        }

    @web.authenticated
    async def get(self) -> None:
        await self.hub.ready()
        filters = self._filters()
        data = snapshot(self.hub, await self.hub.status(), **filters)
        # private: the snapshot is per user; no-cache: revalidate every poll (ETag -> 304).
        self.set_header("Cache-Control", "private, no-cache")
        if self.wants_json:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(dumps_anything(data))
            return
        page = url_path_join(self.base_url, "hooknb/")
        api = url_path_join(self.base_url, "hooknb/api/")
        config = {
            "page": page,
            "api": api,
            "pollMs": POLL_MS,
            # Touching xsrf_token sets the _xsrf cookie the page's POST/DELETE calls echo back;
            # the value is also given here for browsers that hide the cookie from scripts.
            "xsrf": self.xsrf_token.decode("ascii"),
        }
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", self.page_content_security_policy())
        self.finish(
            _PAGE.format(
                nonce=self.nonce,
                css=_asset("page.css"),
                js=_asset("page.js"),
                page=html.escape(page),
                api=html.escape(api),
                version=html.escape(__version__),
                data=script_json({"config": config, "snapshot": data}),
            )
        )
