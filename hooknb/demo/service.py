"""A small, real webhook service for hooknb's tutorials, terminal demo and tests.

It implements the subscribe/unsubscribe pattern that Azure Logic Apps expects from a custom
API (the "webhook trigger" and "webhook action" patterns of the custom-API guide):

* **Topics** serve the webhook *trigger*: a workflow subscribes a callback URL to a topic;
  every event published to the topic is POSTed to all subscribed callback URLs.
* **Approvals** serve the webhook *action* ("wait for a human approval"): a paused step
  subscribes with its callback URL; when a person clicks Approve/Reject on the service's web
  page (or calls the decision API) the service POSTs the decision to that URL.

Every subscribe, unsubscribe, event and decision request is recorded under ``GET /requests``
so a tutorial can show that hooknb really unsubscribed.

Routes (all JSON unless noted)::

    GET    /                                    HTML page: pending/decided approvals, topics
    GET    /health                              {"ok": true}
    GET    /requests[?kind=K]                   request log (subscribe/unsubscribe/event/decision)
    DELETE /requests                            clear the log
    GET    /topics                              topics with their subscriptions
    GET    /topics/{topic}/subscriptions        list
    POST   /topics/{topic}/subscriptions        subscribe {"callbackUrl": ...} or "<url>"  -> 201
    GET    /topics/{topic}/subscriptions/{id}   one subscription
    DELETE /topics/{topic}/subscriptions/{id}   unsubscribe by id -> 204
    POST   /topics/{topic}/unsubscribe          unsubscribe by {"callbackUrl": ...} -> 200
    POST   /topics/{topic}/events               publish: POST the body to every subscriber
    GET    /approvals                           list
    POST   /approvals                           subscribe {"callbackUrl", "subject", ...} -> 201
    GET    /approvals/{id}                      one approval
    DELETE /approvals/{id}                      unsubscribe (withdraw if still pending) -> 204
    POST   /approvals/{id}/decision             {"decision": "approve"|"reject", ...}
    POST   /approvals/{id}/approve|reject       HTML form variant, 303 back to the page
    GET    /approvals/{id}/view                 HTML page for one approval
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
import re
import secrets
import signal
import sys
import threading
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import tornado.httpserver
import tornado.netutil
import tornado.web

from .._version import __version__

__all__ = ["DemoService", "make_app", "serve"]

log = logging.getLogger("hooknb.demo")
access_log = logging.getLogger("hooknb.demo.access")

#: Largest request body the service accepts; larger ones get 413.
MAX_BODY_BYTES = 1024 * 1024
#: Bodies above this are cut off by tornado itself (a bare 400 and a closed connection)
#: so a misbehaving client cannot make the service buffer arbitrary amounts of data.
SERVER_MAX_BODY_BYTES = 16 * 1024 * 1024
#: How many entries ``GET /requests`` keeps.
REQUEST_LOG_LIMIT = 1000
#: Seconds to wait for a callback URL to answer.
CALLBACK_TIMEOUT = 10.0

_LOGGED_BODY_CHARS = 64 * 1024
_MAX_SUBJECT_CHARS = 1000
_MAX_URL_CHARS = 8192
_TOPIC_RE = re.compile(r"[A-Za-z0-9._~-]{1,100}")
_AUTO_COMMENT = "auto-approved by the demo service"
_STATE_KEY = "hooknb_demo_state"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


class ApiError(tornado.web.HTTPError):
    """An error answered to the sender as ``{"error": message}``."""

    def __init__(self, status_code: int, message: str) -> None:
        # Kept out of ``log_message`` because tornado %-formats that.
        super().__init__(status_code)
        self.message = message


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass
class _Subscription:
    id: str
    topic: str
    callback_url: str
    fields: dict[str, Any]
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "callbackUrl": self.callback_url,
            "fields": self.fields,
            "created": self.created,
        }


@dataclass
class _Topic:
    name: str
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    events: int = 0
    last_event: dict[str, Any] | None = None


@dataclass
class _Approval:
    id: str
    subject: str
    details: Any
    requester: str | None
    callback_url: str
    created: str
    status: str = "Pending"
    decided: str | None = None
    by: str | None = None
    comment: str | None = None
    via: str | None = None
    callback: dict[str, Any] | None = None
    unsubscribed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject": self.subject,
            "details": self.details,
            "requester": self.requester,
            "status": self.status,
            "created": self.created,
            "decided": self.decided,
            "by": self.by,
            "comment": self.comment,
            "decidedVia": self.via,
            "callbackUrl": self.callback_url,
            "callback": self.callback,
            "unsubscribed": self.unsubscribed,
        }


def _http_client() -> httpx.AsyncClient:
    # Loopback callbacks (a local Jupyter server) must never be routed through a proxy
    # picked up from HTTP(S)_PROXY; a None mount means "no proxy" for that host.
    no_proxy: dict[str, httpx.AsyncBaseTransport | None] = {
        "all://127.0.0.1": None,
        "all://localhost": None,
        "all://[::1]": None,
    }
    return httpx.AsyncClient(
        timeout=CALLBACK_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": f"hooknb-demo-service/{__version__}"},
        mounts=no_proxy,
    )


async def _post_callback(
    client: httpx.AsyncClient, url: str, content: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """POST ``content`` (JSON) to ``url``; report the outcome instead of raising."""
    try:
        resp = await client.post(
            url, content=content, headers={"Content-Type": "application/json", **headers}
        )
    except Exception as exc:
        # A broken callback must neither undo a decision nor turn into a 500 for whoever
        # triggered it, so every failure becomes data in the answer.
        text = str(exc)
        return {
            "status": None,
            "body": None,
            "error": f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
        }
    body: Any = None
    if resp.content:
        with contextlib.suppress(ValueError):
            body = resp.json()
    ok = 200 <= resp.status_code < 300
    return {
        "status": resp.status_code,
        "body": body,
        "error": None if ok else f"callback answered HTTP {resp.status_code}",
    }


class _State:
    """Everything the service remembers; touched only from the service's event loop."""

    def __init__(self, auto_approve_after: float | None) -> None:
        self.auto_approve_after = auto_approve_after
        self.topics: dict[str, _Topic] = {}
        self.approvals: dict[str, _Approval] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._request_seq = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- request log ---------------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        self._request_seq += 1
        entry = {"seq": self._request_seq, **entry}
        self.requests.append(entry)
        return entry

    # -- topics --------------------------------------------------------------------------

    def topic(self, name: str) -> _Topic:
        if name not in self.topics:
            self.topics[name] = _Topic(name)
        return self.topics[name]

    def subscribe(self, topic: str, callback_url: str, fields: dict[str, Any]) -> _Subscription:
        sub = _Subscription(_new_id("sub"), topic, callback_url, fields, _now())
        self.topic(topic).subscriptions[sub.id] = sub
        log.info("topic %s: subscribed %s -> %s", topic, sub.id, callback_url)
        return sub

    def unsubscribe_id(self, topic: str, sub_id: str) -> bool:
        t = self.topics.get(topic)
        if t is None or sub_id not in t.subscriptions:
            return False
        del t.subscriptions[sub_id]
        log.info("topic %s: unsubscribed %s", topic, sub_id)
        return True

    def unsubscribe_url(self, topic: str, callback_url: str) -> list[str]:
        t = self.topics.get(topic)
        if t is None:
            return []
        removed = [s.id for s in t.subscriptions.values() if s.callback_url == callback_url]
        for sub_id in removed:
            del t.subscriptions[sub_id]
        log.info("topic %s: unsubscribed %s by callback URL", topic, removed or "nothing")
        return removed

    async def publish(self, topic: str, body: bytes) -> dict[str, Any]:
        t = self.topic(topic)
        event_id = _new_id("evt")
        subs = list(t.subscriptions.values())
        headers = {"X-Demo-Topic": topic, "X-Demo-Event-Id": event_id}
        async with _http_client() as client:
            results = await asyncio.gather(
                *(_post_callback(client, s.callback_url, body, headers) for s in subs)
            )
        deliveries = [
            {
                "subscription": s.id,
                "status": r["status"],
                "error": r["error"],
                "response": r["body"],
            }
            for s, r in zip(subs, results, strict=True)
        ]
        t.events += 1
        t.last_event = {"id": event_id, "time": _now(), "deliveries": len(deliveries)}
        log.info("topic %s: event %s delivered to %d subscriber(s)", topic, event_id, len(subs))
        return {"event_id": event_id, "topic": topic, "deliveries": deliveries}

    # -- approvals -----------------------------------------------------------------------

    def create_approval(
        self, subject: str, details: Any, requester: str | None, callback_url: str
    ) -> _Approval:
        item = _Approval(_new_id("apr"), subject, details, requester, callback_url, _now())
        self.approvals[item.id] = item
        log.info("approval %s: pending %r -> %s", item.id, subject, callback_url)
        if self.auto_approve_after is not None:
            loop = asyncio.get_running_loop()
            self._timers[item.id] = loop.call_later(
                self.auto_approve_after, self._auto_approve, item.id
            )
        return item

    def _auto_approve(self, approval_id: str) -> None:
        self._timers.pop(approval_id, None)
        item = self.approvals.get(approval_id)
        if item is None or item.status != "Pending":
            return
        self._spawn(self.decide(item, "Approved", _AUTO_COMMENT, "demo service", "auto"))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        # Keep a reference so the task is not garbage-collected mid-flight.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def withdraw(self, item: _Approval) -> None:
        timer = self._timers.pop(item.id, None)
        if timer is not None:
            timer.cancel()
        if item.status == "Pending":
            item.status = "Withdrawn"
        # Logic Apps also unsubscribes after a successful callback; that keeps the outcome.
        item.unsubscribed = item.unsubscribed or _now()
        log.info("approval %s: unsubscribed (%s)", item.id, item.status)

    async def decide(
        self, item: _Approval, status: str, comment: str | None, by: str | None, via: str
    ) -> dict[str, Any]:
        if item.status != "Pending":
            raise ApiError(409, f"approval {item.id} is already {item.status}")
        # Everything up to the first await runs atomically on the loop, so a concurrent
        # second decision sees the new status and gets 409.
        timer = self._timers.pop(item.id, None)
        if timer is not None:
            timer.cancel()
        item.status = status
        item.decided = _now()
        item.comment = comment
        item.by = by
        item.via = via
        payload = {
            "id": item.id,
            "subject": item.subject,
            "decision": status,
            "comment": comment,
            "by": by,
            "decidedAt": item.decided,
        }
        content = json.dumps(payload).encode()
        async with _http_client() as client:
            result = await _post_callback(
                client, item.callback_url, content, {"X-Demo-Approval-Id": item.id}
            )
        item.callback = {**result, "at": _now()}
        log.info(
            "approval %s: %s by %s; callback -> %s %s",
            item.id,
            status,
            by,
            result["status"],
            result["error"] or "",
        )
        return result

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()


# --------------------------------------------------------------------------------------
# Input parsing
# --------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would make us emit invalid JSON later.
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "request body must be JSON")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None


def _check_callback_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "callbackUrl is required and must be a string")
    url = value.strip()
    if len(url) > _MAX_URL_CHARS:
        raise ApiError(400, "callbackUrl is too long")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise ApiError(400, "callbackUrl is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ApiError(400, "callbackUrl must be an absolute http:// or https:// URL")
    if any(c.isspace() for c in url):
        raise ApiError(400, "callbackUrl must not contain whitespace")
    return url


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    return value


def _parse_decision(value: Any) -> str:
    decisions = {
        "approve": "Approved",
        "approved": "Approved",
        "reject": "Rejected",
        "rejected": "Rejected",
    }
    if isinstance(value, str) and value.strip().lower() in decisions:
        return decisions[value.strip().lower()]
    raise ApiError(400, 'decision must be "approve" or "reject"')


def _safe_next(value: str | None) -> str:
    # Only same-site paths: "//host" or "/\host" would make this an open redirect.
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(c.isspace() or ord(c) < 0x20 for c in value)
    ):
        return "/"
    return value


# --------------------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------------------


class _BaseHandler(tornado.web.RequestHandler):
    #: method -> (kind, resource) for requests recorded in ``GET /requests``.
    log_kinds: dict[str, tuple[str, str]] = {}

    _log_entry: dict[str, Any] | None = None

    @property
    def state(self) -> _State:
        state: _State = self.application.settings[_STATE_KEY]
        return state

    def base_url(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def prepare(self) -> None:
        kind = self.log_kinds.get(self.request.method or "")
        if kind is not None:
            self._log_entry = self.state.log_request(
                {
                    "time": _now(),
                    "method": self.request.method,
                    "path": self.request.path,
                    "query": self.request.query,
                    "kind": kind[0],
                    "resource": kind[1],
                    "headers": self._headers_dict(),
                    "body": self._body_for_log(),
                    "status": None,
                }
            )
        if len(self.request.body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes")

    def on_finish(self) -> None:
        if self._log_entry is not None:
            self._log_entry["status"] = self.get_status()

    def _headers_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.request.headers.get_all():
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def _body_for_log(self) -> Any:
        body = self.request.body
        if not body:
            return None
        if len(body) > MAX_BODY_BYTES:
            return f"<{len(body)} bytes, over the limit>"
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            return json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            text = body.decode("utf-8", "replace")
            return text if len(text) <= _LOGGED_BODY_CHARS else text[:_LOGGED_BODY_CHARS] + "…"

    def json_body(self) -> Any:
        return _parse_json(self.request.body)

    def json_object(self) -> dict[str, Any]:
        data = self.json_body()
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        return data

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def send_html(self, text: str) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        # The page has no scripts at all; say so to the browser as well.
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            message = exc.log_message or self._reason
        else:
            # Never leak internals to the sender; the traceback is in the service's log.
            message = "internal error in the demo service"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": message, "status": status_code}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Client errors are normal traffic for a demo service, not warnings.
        if isinstance(value, tornado.web.HTTPError):
            access_log.debug("%s %s: %s", self.request.method, self.request.uri, value)
        else:
            super().log_exception(typ, value, tb)


class _NotFoundHandler(_BaseHandler):
    def prepare(self) -> None:
        raise ApiError(404, f"no such route: {self.request.path}")


class _HealthHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json({"ok": True})


class _RequestsHandler(_BaseHandler):
    def get(self) -> None:
        kind = self.get_query_argument("kind", None)
        entries = [e for e in self.state.requests if kind is None or e["kind"] == kind]
        self.send_json(entries)

    def delete(self) -> None:
        self.state.requests.clear()
        self.set_status(204)
        self.finish()


def _check_topic(topic: str) -> str:
    if not _TOPIC_RE.fullmatch(topic):
        raise ApiError(400, "topic names are 1-100 characters from A-Z a-z 0-9 . _ ~ -")
    return topic


class _TopicsHandler(_BaseHandler):
    def get(self) -> None:
        self.send_json(
            [
                {
                    "topic": t.name,
                    "subscriptions": [s.to_json() for s in t.subscriptions.values()],
                    "events": t.events,
                    "lastEvent": t.last_event,
                }
                for t in self.state.topics.values()
            ]
        )


class _SubscriptionsHandler(_BaseHandler):
    log_kinds = {"POST": ("subscribe", "topic")}

    def get(self, topic: str) -> None:
        t = self.state.topics.get(_check_topic(topic))
        self.send_json([s.to_json() for s in t.subscriptions.values()] if t else [])

    def post(self, topic: str) -> None:
        _check_topic(topic)
        data = self.json_body()
        # Logic Apps' sample subscriber binds the whole body as the URL string.
        if isinstance(data, str):
            data = {"callbackUrl": data}
        if not isinstance(data, dict):
            raise ApiError(400, "body must be {'callbackUrl': ...} or a JSON string URL")
        url = _check_callback_url(data.get("callbackUrl"))
        fields = {k: v for k, v in data.items() if k != "callbackUrl"}
        sub = self.state.subscribe(topic, url, fields)
        self.set_header(
            "Location", f"{self.base_url()}/topics/{quote(topic)}/subscriptions/{sub.id}"
        )
        self.send_json(sub.to_json(), 201)


class _SubscriptionHandler(_BaseHandler):
    log_kinds = {"DELETE": ("unsubscribe", "topic")}

    def _find(self, topic: str, sub_id: str) -> _Subscription:
        t = self.state.topics.get(topic)
        if t is None or sub_id not in t.subscriptions:
            raise ApiError(404, f"no subscription {sub_id!r} on topic {topic!r}")
        return t.subscriptions[sub_id]

    def get(self, topic: str, sub_id: str) -> None:
        self.send_json(self._find(topic, sub_id).to_json())

    def delete(self, topic: str, sub_id: str) -> None:
        self._find(topic, sub_id)
        self.state.unsubscribe_id(topic, sub_id)
        self.set_status(204)
        self.finish()


class _UnsubscribeHandler(_BaseHandler):
    log_kinds = {"POST": ("unsubscribe", "topic")}

    def post(self, topic: str) -> None:
        _check_topic(topic)
        data = self.json_body()
        if isinstance(data, str):
            data = {"callbackUrl": data}
        if not isinstance(data, dict):
            raise ApiError(400, "body must be {'callbackUrl': ...} or a JSON string URL")
        url = _check_callback_url(data.get("callbackUrl"))
        # Unsubscribing an unknown URL is not an error: unsubscribe must be idempotent.
        removed = self.state.unsubscribe_url(topic, url)
        self.send_json({"topic": topic, "removed": removed})


class _EventsHandler(_BaseHandler):
    log_kinds = {"POST": ("event", "topic")}

    async def post(self, topic: str) -> None:
        _check_topic(topic)
        self.json_body()  # validate only: subscribers get the exact bytes we received
        result = await self.state.publish(topic, self.request.body)
        self.send_json(result)


class _ApprovalBase(_BaseHandler):
    def _find(self, approval_id: str) -> _Approval:
        item = self.state.approvals.get(approval_id)
        if item is None:
            raise ApiError(404, f"no approval {approval_id!r}")
        return item

    def _item_json(self, item: _Approval) -> dict[str, Any]:
        return {**item.to_json(), "url": f"{self.base_url()}/approvals/{item.id}/view"}


class _ApprovalsHandler(_ApprovalBase):
    log_kinds = {"POST": ("subscribe", "approval")}

    def get(self) -> None:
        self.send_json([self._item_json(a) for a in self.state.approvals.values()])

    def post(self) -> None:
        data = self.json_object()
        url = _check_callback_url(data.get("callbackUrl"))
        subject = data.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise ApiError(400, "subject is required and must be a non-empty string")
        if len(subject) > _MAX_SUBJECT_CHARS:
            raise ApiError(400, f"subject is longer than {_MAX_SUBJECT_CHARS} characters")
        requester = _optional_str(data, "requester")
        item = self.state.create_approval(subject, data.get("details"), requester, url)
        self.set_header("Location", f"{self.base_url()}/approvals/{item.id}")
        body = {"id": item.id, "status": item.status, "url": self._item_json(item)["url"]}
        self.send_json(body, 201)


class _ApprovalHandler(_ApprovalBase):
    log_kinds = {"DELETE": ("unsubscribe", "approval")}

    def get(self, approval_id: str) -> None:
        self.send_json(self._item_json(self._find(approval_id)))

    def delete(self, approval_id: str) -> None:
        self.state.withdraw(self._find(approval_id))
        self.set_status(204)
        self.finish()


class _DecisionHandler(_ApprovalBase):
    log_kinds = {"POST": ("decision", "approval")}

    async def post(self, approval_id: str) -> None:
        item = self._find(approval_id)
        data = self.json_object()
        status = _parse_decision(data.get("decision"))
        comment = _optional_str(data, "comment")
        by = _optional_str(data, "by")
        result = await self.state.decide(item, status, comment, by, "api")
        self.send_json({"id": item.id, "status": item.status, "callback": result})


class _FormDecisionHandler(_ApprovalBase):
    log_kinds = {"POST": ("decision", "approval")}

    async def post(self, approval_id: str, action: str) -> None:
        item = self._find(approval_id)
        status = "Approved" if action == "approve" else "Rejected"
        comment = self.get_body_argument("comment", "").strip() or None
        by = self.get_body_argument("by", "").strip() or "demo page"
        target = _safe_next(self.get_body_argument("next", None))
        # A double-click or a stale page must not show an error: the page already tells
        # the outcome, so an already-decided item just goes back to it.
        if item.status == "Pending":
            await self.state.decide(item, status, comment, by, "page")
        self.redirect(target, status=303)


class _ApprovalPageHandler(_ApprovalBase):
    def get(self, approval_id: str) -> None:
        item = self._find(approval_id)
        self.send_html(_render_approval_page(item, _refresh_arg(self), self.request.uri or "/"))


class _IndexHandler(_BaseHandler):
    def get(self) -> None:
        self.send_html(_render_index(self.state, _refresh_arg(self), self.request.uri or "/"))


def _refresh_arg(handler: tornado.web.RequestHandler) -> int | None:
    raw = handler.get_query_argument("refresh", None)
    try:
        seconds = int(raw) if raw is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 1 <= seconds <= 3600 else None


def _access_log(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.INFO if status < 500 else logging.ERROR
    access_log.log(
        level,
        "%d %s %s %.1fms",
        status,
        handler.request.method,
        handler.request.uri,
        1000.0 * handler.request.request_time(),
    )


def make_app(*, auto_approve_after: float | None = None) -> tornado.web.Application:
    """Build the demo service's tornado application (fresh, empty state).

    ``auto_approve_after``: if set, every new approval is approved by the service itself
    after that many seconds (for unattended demos), with the comment
    ``"auto-approved by the demo service"``.
    """
    if auto_approve_after is not None and auto_approve_after < 0:
        raise ValueError("auto_approve_after must be >= 0")
    topic = r"([^/]+)"
    item = r"([^/]+)"
    routes = [
        (r"/", _IndexHandler),
        (r"/health", _HealthHandler),
        (r"/requests", _RequestsHandler),
        (r"/topics", _TopicsHandler),
        (rf"/topics/{topic}/subscriptions", _SubscriptionsHandler),
        (rf"/topics/{topic}/subscriptions/{item}", _SubscriptionHandler),
        (rf"/topics/{topic}/unsubscribe", _UnsubscribeHandler),
        (rf"/topics/{topic}/events", _EventsHandler),
        (r"/approvals", _ApprovalsHandler),
        (rf"/approvals/{item}", _ApprovalHandler),
        (rf"/approvals/{item}/decision", _DecisionHandler),
        (rf"/approvals/{item}/(approve|reject)", _FormDecisionHandler),
        (rf"/approvals/{item}/view", _ApprovalPageHandler),
    ]
    settings: dict[str, Any] = {_STATE_KEY: _State(auto_approve_after)}
    return tornado.web.Application(
        routes,
        default_handler_class=_NotFoundHandler,
        log_function=_access_log,
        **settings,
    )


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f6f7f9;color:#1f2328}
header{background:#24292f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:2px 0 0;color:#c9d1d9;font-size:13px}
header a{color:#9ecbff}
main{max-width:1150px;margin:0 auto;padding:8px 24px 48px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;
margin:16px 0}
h2{font-size:16px;margin:4px 0 10px}
h3{font-size:14px;margin:12px 0 6px}
h3 .muted{font-weight:400}
time{white-space:nowrap}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-top:1px solid #eaeef2;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#57606a;
border-top:none}
.muted{color:#57606a}
.empty{color:#57606a;font-style:italic;margin:4px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600}
.s-Pending{background:#fff8c5;color:#7d4e00}
.s-Approved{background:#dafbe1;color:#116329}
.s-Rejected{background:#ffebe9;color:#a40e26}
.s-Withdrawn{background:#eaeef2;color:#57606a}
.err{color:#a40e26}
form.decide{display:inline-flex;gap:4px;margin:0 6px 4px 0}
button{font:inherit;padding:3px 12px;border-radius:6px;border:1px solid;cursor:pointer}
button[data-action=approve]{background:#1f883d;border-color:#1a7f37;color:#fff}
button[data-action=reject]{background:#fff;border-color:#cf222e;color:#cf222e}
input[type=text]{font:inherit;font-size:13px;padding:2px 6px;border:1px solid #d0d7de;
border-radius:6px;width:10em}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;
word-break:break-all}
dl.details{margin:0;display:grid;grid-template-columns:auto 1fr;gap:0 8px}
dl.details dt{color:#57606a}
dl.details dd{margin:0;word-break:break-word}
footer{color:#57606a;font-size:13px}
""".strip()


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(value: str | None) -> str:
    if not value:
        return '<span class="muted">—</span>'
    short = value[11:19] + " UTC" if len(value) >= 19 else value
    return f'<time datetime="{_e(value)}" title="{_e(value)}">{_e(short)}</time>'


def _details(value: Any) -> str:
    if value is None or value == {}:
        return '<span class="muted">—</span>'
    if isinstance(value, dict):
        rows = "".join(
            f"<dt>{_e(k)}</dt><dd>{_e(v if isinstance(v, str) else json.dumps(v))}</dd>"
            for k, v in value.items()
        )
        return f'<dl class="details">{rows}</dl>'
    text = value if isinstance(value, str) else json.dumps(value)
    return f'<span class="mono">{_e(text)}</span>'


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(status)}</span>'


def _decide_forms(item: _Approval, next_url: str) -> str:
    forms = []
    for action, label, hint in (
        ("approve", "Approve", "comment (optional)"),
        ("reject", "Reject", "reason (optional)"),
    ):
        forms.append(
            f'<form class="decide" method="post" action="/approvals/{_e(item.id)}/{action}">'
            f'<input type="hidden" name="next" value="{_e(next_url)}">'
            f'<input type="text" name="comment" placeholder="{hint}" aria-label="{hint}">'
            f'<button type="submit" data-action="{action}">{label}</button></form>'
        )
    return "".join(forms)


def _callback_cell(item: _Approval) -> str:
    cb = item.callback
    if cb is None:
        return '<span class="muted">—</span>'
    status = "no answer" if cb.get("status") is None else f"HTTP {cb['status']}"
    if cb.get("error"):
        return f'<span class="err" title="{_e(cb["error"])}">{_e(status)}: {_e(cb["error"])}</span>'
    return _e(status)


def _page(title: str, body: str, refresh: int | None, subtitle: str) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{_e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>hooknb demo service</h1><p>{subtitle}</p></header>\n"
        f"<main>{body}</main></body></html>\n"
    )


def _refresh_links(path: str, refresh: int | None) -> str:
    if refresh:
        return f'auto-refresh every {refresh} s · <a href="{_e(path)}">stop</a>'
    return f'<a href="{_e(path)}?refresh=5">auto-refresh every 5 s</a>'


def _render_index(state: _State, refresh: int | None, uri: str) -> str:
    pending = [a for a in state.approvals.values() if a.status == "Pending"]
    done = sorted(
        (a for a in state.approvals.values() if a.status != "Pending"),
        key=lambda a: a.decided or a.unsubscribed or a.created,
        reverse=True,
    )
    parts: list[str] = []

    parts.append('<section id="pending"><h2>Pending approvals</h2>')
    if pending:
        parts.append(
            "<table><thead><tr><th>Subject</th><th>Details</th><th>Requester</th>"
            "<th>Created</th><th>Decision</th></tr></thead><tbody>"
        )
        for a in pending:
            parts.append(
                f'<tr data-approval-id="{_e(a.id)}" data-status="Pending">'
                f'<td><a href="/approvals/{_e(a.id)}/view">{_e(a.subject)}</a></td>'
                f"<td>{_details(a.details)}</td><td>{_e(a.requester or '—')}</td>"
                f"<td>{_time(a.created)}</td><td>{_decide_forms(a, uri)}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">Nothing is waiting for a decision.</p>')
    parts.append("</section>")

    parts.append('<section id="decided"><h2>Decided and withdrawn</h2>')
    if done:
        parts.append(
            "<table><thead><tr><th>Subject</th><th>Outcome</th><th>By</th><th>Comment</th>"
            "<th>Decided</th><th>Callback</th><th>Unsubscribed</th></tr></thead><tbody>"
        )
        for a in done:
            parts.append(
                f'<tr data-approval-id="{_e(a.id)}" data-status="{_e(a.status)}">'
                f'<td><a href="/approvals/{_e(a.id)}/view">{_e(a.subject)}</a></td>'
                f"<td>{_badge(a.status)}</td><td>{_e(a.by or '—')}</td>"
                f"<td>{_e(a.comment or '—')}</td><td>{_time(a.decided)}</td>"
                f"<td>{_callback_cell(a)}</td><td>{_time(a.unsubscribed)}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">No decisions yet.</p>')
    parts.append("</section>")

    parts.append('<section id="topics"><h2>Topics</h2>')
    if state.topics:
        for t in state.topics.values():
            last = (
                f" · last event {_e(t.last_event['id'])} at {_time(t.last_event['time'])}"
                if t.last_event
                else ""
            )
            parts.append(
                f'<h3 data-topic="{_e(t.name)}"><code>{_e(t.name)}</code> '
                f'<span class="muted">{len(t.subscriptions)} subscription(s) · '
                f"{t.events} event(s){last}</span></h3>"
            )
            if t.subscriptions:
                parts.append(
                    "<table><thead><tr><th>Subscription</th><th>Callback URL</th>"
                    "<th>Created</th></tr></thead><tbody>"
                )
                for s in t.subscriptions.values():
                    parts.append(
                        f'<tr data-subscription-id="{_e(s.id)}"><td><code>{_e(s.id)}</code></td>'
                        f'<td class="mono">{_e(s.callback_url)}</td>'
                        f"<td>{_time(s.created)}</td></tr>"
                    )
                parts.append("</tbody></table>")
    else:
        parts.append(
            '<p class="empty">No topics yet. Subscribe with POST /topics/NAME/subscriptions.</p>'
        )
    parts.append("</section>")

    parts.append(
        "<footer>JSON: <code>/approvals</code> · <code>/topics</code> · "
        f"<code>/requests</code> ({len(state.requests)} recorded) · <code>/health</code>"
        "</footer>"
    )
    subtitle = (
        f"{len(pending)} pending · {len(done)} decided/withdrawn · "
        f"{sum(len(t.subscriptions) for t in state.topics.values())} subscription(s) · "
        f"{_refresh_links('/', refresh)}"
    )
    return _page("hooknb demo service", "".join(parts), refresh, subtitle)


def _render_approval_page(item: _Approval, refresh: int | None, uri: str) -> str:
    path = f"/approvals/{item.id}/view"
    rows = [
        ("Subject", _e(item.subject)),
        ("Status", _badge(item.status)),
        ("Details", _details(item.details)),
        ("Requester", _e(item.requester or "—")),
        ("Created", _time(item.created)),
    ]
    if item.status == "Pending":
        rows.append(("Decision", _decide_forms(item, uri)))
    else:
        rows += [
            ("Decided", _time(item.decided)),
            ("By", _e(item.by or "—")),
            ("Comment", _e(item.comment or "—")),
            ("Callback", _callback_cell(item)),
            ("Unsubscribed", _time(item.unsubscribed)),
        ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    body = (
        f'<section data-approval-id="{_e(item.id)}" data-status="{_e(item.status)}">'
        f"<h2>Approval <code>{_e(item.id)}</code></h2><table>{table}</table></section>"
        '<footer><a href="/">all approvals and topics</a></footer>'
    )
    subtitle = _refresh_links(path, refresh)
    return _page(f"{item.subject} — hooknb demo service", body, refresh, subtitle)


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _display_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard to a connectable address
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _Server:
    """The tornado server plus the state it owns; lives on one event loop."""

    def __init__(self, host: str, port: int, auto_approve_after: float | None) -> None:
        self.app = make_app(auto_approve_after=auto_approve_after)
        self.http = tornado.httpserver.HTTPServer(self.app, max_body_size=SERVER_MAX_BODY_BYTES)
        sockets = tornado.netutil.bind_sockets(port, host or None)
        self.http.add_sockets(sockets)
        self.port: int = sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.http.stop()
        self.app.settings[_STATE_KEY].shutdown()
        await self.http.close_all_connections()


class DemoService:
    """Runs the demo service on its own thread and event loop.

    That way plain scripts, Jupyter kernels (which already run a loop) and tests can all use
    it::

        with DemoService() as svc:
            httpx.post(svc.url + "approvals", json={...})
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auto_approve_after: float | None = None,
    ) -> None:
        if auto_approve_after is not None and auto_approve_after < 0:
            raise ValueError("auto_approve_after must be >= 0")
        self.host = host
        self.port = port
        self.auto_approve_after = auto_approve_after
        self.url = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DemoService {self.url or self.host} {state}>"

    @property
    def running(self) -> bool:
        """Whether the service thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> DemoService:
        """Start listening; returns once the port is bound (``self.url`` is then set)."""
        if self._thread is not None:
            raise RuntimeError("DemoService already started")
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._thread_main, name="hooknb-demo-service", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Stop the service and wait for its thread to end. Safe to call twice."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> DemoService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            # asyncio.Runner rather than asyncio.run: kernels often apply nest_asyncio2, which
            # replaces asyncio.run with a version that reuses the thread's current loop.
            with asyncio.Runner() as runner:
                runner.run(self._main())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("demo service stopped with an error")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = _Server(self.host, self.port, self.auto_approve_after)
        self.port = server.port
        self.url = f"http://{_display_host(self.host)}:{self.port}/"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    auto_approve_after: float | None = None,
) -> None:
    """Run the demo service in the foreground until Ctrl-C or SIGTERM, printing its URL."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not available on Windows or off the main thread; Ctrl-C then arrives as
            # KeyboardInterrupt instead, which is handled below.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        server = _Server(host, port, auto_approve_after)
        url = f"http://{_display_host(host)}:{server.port}/"
        auto = (
            f" (auto-approving after {auto_approve_after:g} s)"
            if auto_approve_after is not None
            else ""
        )
        print(f"hooknb demo service listening on {url}{auto} — Ctrl-C to stop", flush=True)
        try:
            await stop.wait()
        finally:
            await server.close()
            print("hooknb demo service stopped", flush=True)

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner() as runner:
        runner.run(main())
