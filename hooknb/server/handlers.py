"""The handlers: the public callback route and the Jupyter-authenticated API
(:mod:`hooknb.server.routes` lists them under their URLs).

The callback route is a plain tornado handler: its only credential is the signed capability in
its URL, so Jupyter's login, XSRF, Origin and Host checks (made for browsers holding a Jupyter
session) do not apply to it, and skipping them keeps the hot path short. Every API method is
``@web.authenticated``, so the routes also work with
``ServerApp.allow_unauthenticated_access=False``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import web
from tornado.iostream import StreamClosedError

from .._version import __version__
from .api_handler import HookNBAPIHandler, decode_body, headers_list, required
from .http_errors import HubError
from .hub import Hub
from .rows import InboundRequest
from .uploads import RETRY_AFTER_SECONDS, Ticket

API_VERSION = 1
KEEPALIVE_SECONDS = 15.0
CALLBACK_ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_CALLBACK_ID = re.compile(CALLBACK_ID_PATTERN)
_UNLIMITED = 1 << 50


def _json_error(handler: web.RequestHandler, status: int, message: str, **extra: Any) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps({"error": message, **extra}))


@web.stream_request_body
class CallbackHandler(web.RequestHandler):
    """``POST <base>hooknb/callback/<id>?sig=<signature>``: a webhook callback, public.

    Memory and time are bounded per request and overall (:mod:`hooknb.server.uploads`): a body
    over ``max_body_size`` is a ``413`` (chunked too), one that does not fit in the server's
    byte budget or the URL's upload bound a ``503`` with ``Retry-After``, one not received
    within ``body_timeout`` seconds a ``408``.
    """

    hub: Hub

    def initialize(self, hub: Hub) -> None:
        self.hub = hub
        self._chunks: list[bytes] = []
        self._size = 0
        self._rejection: tuple[int, str] | None = None
        self._ticket: Ticket | None = None
        self._timer: asyncio.TimerHandle | None = None

    def check_xsrf_cookie(self) -> None:
        # No browser session is involved: the signed URL is the credential.
        return None

    @property
    def _drain_limit(self) -> int:
        # A refused body is still read (and dropped, within body_timeout), so that the sender,
        # busy sending, reads the answer instead of a reset. A declared size beyond this is
        # answered at once (and the connection closed): reading it would take too long.
        return 2 * self.hub.max_body_size

    def prepare(self) -> None:
        limit = self.hub.max_body_size
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        # tornado's own limit would answer a chunked body 400 and reset the connection: it is
        # kept out of the way (body_timeout bounds the reading), and data_received counts.
        self.request.connection.set_max_body_size(_UNLIMITED)  # type: ignore[union-attr]
        self._timer = asyncio.get_running_loop().call_later(self.hub.body_timeout, self._too_slow)
        if size is not None and size > limit:
            self._refuse(
                413, f"body larger than the limit of {limit} bytes", now=size > self._drain_limit
            )
            return
        # Refusals are answered after the (bounded) body is read: closing a socket with unread
        # data makes the kernel send a reset, which can destroy the answer in flight.
        if self.request.method != "POST":
            self.set_header("Allow", "POST")
            self._rejection = (405, "callback URLs accept POST only")
            return
        callback_id = self.path_kwargs.get("callback_id") or ""
        # The parsed query as is (get_query_argument decodes and strips every value).
        given = self.request.query_arguments.get("sig")
        signature = given[-1].decode("ascii", "replace") if given else ""
        if not _CALLBACK_ID.fullmatch(callback_id) or not self.hub.signer.verify(
            callback_id, signature
        ):
            # Unknown id and bad signature look the same to the sender.
            self._rejection = (404, "not found")
            return
        # Only bodies that will be kept are held in memory, so only they take from the budget;
        # a declared size is decided on before any of the body is read.
        self._ticket = self.hub.uploads.ticket(callback_id)
        if size is not None:
            reason = self._ticket.grow(size)
            if reason is not None:
                # Decided before any of the body is read (it is read and dropped). A sender
                # that waits to be told (``Expect: 100-continue``) is answered at once and
                # sends nothing; any other is answered when it has sent its body, since one
                # busy sending would see a reset instead of an answer.
                expects = self.request.headers.get("Expect", "").lower() == "100-continue"
                self._busy(reason, now=expects)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._rejection is not None:
            return  # dropped; read on (within body_timeout) so that the answer is read
        if self._size > self.hub.max_body_size:
            # A chunked body over the limit (a declared one is refused in prepare).
            self._refuse(413, f"body larger than the limit of {self.hub.max_body_size} bytes")
            return
        if self._ticket is None:
            return
        reason = self._ticket.grow(self._size)
        if reason is not None:
            self._busy(reason)
            return
        self._chunks.append(chunk)

    @allow_unauthenticated
    async def post(self, callback_id: str | None = None) -> None:
        self._cancel_timer()
        if self._rejection is not None:
            self._answer_now()
            return
        if not self.hub.is_ready:
            await self.hub.ready()
        request = self.request
        queries: dict[str, Any] = {}
        for name, values in request.query_arguments.items():
            if name == "sig":
                continue
            decoded = [v.decode("utf-8", "replace") for v in values]
            queries[name] = decoded[0] if len(decoded) == 1 else decoded
        body = b"".join(self._chunks)
        self._chunks = []  # one copy of the body from here on
        inbound = InboundRequest(
            method=request.method or "POST",
            headers=list(request.headers.get_all()),
            queries=queries,
            content_type=request.headers.get("Content-Type"),
            body=body,
            received=time.time(),
        )
        status, answer = await self.hub.ingest(callback_id, inbound)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer))

    def _refuse(self, status: int, message: str, *, now: bool = False) -> None:
        """Decide a refusal: the body is no longer kept (nor counted); the answer goes when
        the body has been read, or at once when ``now`` (tornado then closes the connection)."""
        self._rejection = (status, message)
        self._chunks = []
        self._release()
        if now:
            self._answer_now()

    def _busy(self, reason: str, *, now: bool = False) -> None:
        self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self._refuse(503, reason, now=now)

    def _answer_now(self) -> None:
        self._cancel_timer()
        if not self._finished:
            assert self._rejection is not None
            _json_error(self, *self._rejection)

    def _too_slow(self) -> None:
        self._timer = None
        if not self._finished:
            self.clear_header("Retry-After")
            self._refuse(
                408,
                f"the body was not received within {self.hub.body_timeout:g} seconds",
                now=True,
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        if self._ticket is not None:
            self._ticket.release()

    def on_finish(self) -> None:
        self._cancel_timer()
        self._release()

    def on_connection_close(self) -> None:
        # The sender went away mid-body: its bytes are no longer held.
        self._cancel_timer()
        self._chunks = []
        self._release()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Never a traceback or an HTML page to an outside sender. Methods other than POST
        # reach tornado's "not implemented" 405, which carries the message from prepare().
        self.set_header("Content-Type", "application/json")
        if status_code == 405:
            self.set_header("Allow", "POST")  # send_error() cleared the headers set earlier
        message = self._rejection[1] if self._rejection else self._reason
        self.finish(json.dumps({"error": message}))

    def _request_summary(self) -> str:
        # tornado's own access-log line must not carry the signature either.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"


class VersionHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"version": __version__, "api": API_VERSION})


class StatusHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"version": __version__, "api": API_VERSION, **self.hub.status()})


class ChannelHandler(HookNBAPIHandler):
    """``GET api/channel?client=<id>``: a server-sent-event stream of deliveries for a kernel."""

    _channel: Any = None
    _flush_scheduled = False

    @web.authenticated
    async def get(self) -> None:
        client = self.get_query_argument("client", "")
        channel = self.hub.open_channel(client)
        self._channel = channel
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        hello = {"client": client, "version": __version__, "api": API_VERSION}
        try:
            self.write(f"event: hello\ndata: {json.dumps(hello)}\n\n")
            await self.flush()
            channel.attach(self._write_events)
            while not channel.closed:
                try:
                    await asyncio.wait_for(channel.wait_closed(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    self.write(": keepalive\n\n")
                    await self.flush()
        except StreamClosedError:
            pass
        finally:
            self.hub.close_channel(channel)
        if not self._finished:
            self.finish()

    def _write_events(self, events: list[dict[str, Any]]) -> None:
        if self._finished:
            return
        self.write("".join(f"id: {e['seq']}\ndata: {json.dumps(e)}\n\n" for e in events))
        # One flush for everything written in this turn of the loop (a commit resolves a
        # whole batch of callbacks at once): few large writes under load, and at low load
        # the event leaves right after the sender's 202.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if not self._finished:
            self.flush().add_done_callback(self._flushed)

    def _flushed(self, future: Any) -> None:
        if not future.cancelled() and future.exception() and self._channel is not None:
            self.hub.close_channel(self._channel)

    def on_connection_close(self) -> None:
        if self._channel is not None:
            self.hub.close_channel(self._channel)


class SyncHandler(HookNBAPIHandler):
    """``POST api/sync``: acknowledge deliveries and report run progress, in one commit."""

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        client = required(body, "client")
        acks = body.get("acks") or []
        runs = body.get("runs") or []
        if not isinstance(acks, list) or not all(isinstance(a, int) for a in acks):
            raise HubError(400, "'acks' must be a list of delivery sequence numbers")
        if not isinstance(runs, list):
            raise HubError(400, "'runs' must be a list of run reports")
        self.reply(await self.hub.sync(client, acks, runs))


class WorkflowsHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"workflows": self.hub.views.workflows()})


class WorkflowHandler(HookNBAPIHandler):
    """``PUT api/workflows/<name>``: this kernel runs the workflow (attach)."""

    @web.authenticated
    def get(self, name: str) -> None:
        self.reply(self.hub.views.workflow(name))

    @web.authenticated
    async def put(self, name: str) -> None:
        body = self.json_body()
        trigger_name = body.get("trigger")
        if trigger_name is not None and not isinstance(trigger_name, str):
            raise HubError(400, "'trigger' must be the trigger's name")
        self.reply(
            await self.hub.attach(
                name,
                required(body, "client"),
                trigger_name=trigger_name,
                key_type=body.get("keyType"),
                verify=body.get("verify"),
            )
        )


class TriggerHandler(HookNBAPIHandler):
    """``PUT`` enables (subscribes) and ``DELETE`` disables (unsubscribes) a workflow's trigger."""

    @web.authenticated
    async def put(self, name: str) -> None:
        body = self.json_body()
        client = required(body, "client")
        subscribe = required(body, "subscribe", dict)
        self.reply(await self.hub.enable_trigger(name, client, subscribe, body.get("unsubscribe")))

    @web.authenticated
    async def delete(self, name: str) -> None:
        self.reply(await self.hub.disable_trigger(name))


class WorkflowRunsHandler(HookNBAPIHandler):
    """``POST api/workflows/<name>/runs``: start a manual run."""

    @web.authenticated
    async def post(self, name: str) -> None:
        body = self.json_body()
        client = required(body, "client")
        payload = body.get("body")
        if payload is None:
            raw, content_type = b"", None
        elif isinstance(payload, Mapping) and set(payload) == {"encoding", "data"}:
            raw, content_type = decode_body(payload), body.get("contentType")
        else:
            raw, content_type = json.dumps(payload).encode(), "application/json"
        queries = body.get("queries") or {}
        if not isinstance(queries, Mapping):
            raise HubError(400, "'queries' must be an object")
        value = await self.hub.start_run(
            name,
            client,
            headers=headers_list(body.get("headers")),
            body=raw,
            content_type=body.get("contentType", content_type),
            queries=queries,
        )
        self.reply(value, status=201)


class RunsHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        try:
            limit = int(self.get_query_argument("limit", "100"))
        except ValueError:
            raise HubError(400, "'limit' must be an integer") from None
        self.reply(
            {
                "runs": self.hub.views.runs(
                    workflow=self.get_query_argument("workflow", None),
                    status=self.get_query_argument("status", None),
                    limit=limit,
                    before=self.get_query_argument("before", None),
                )
            }
        )


class RunHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self, run_id: str) -> None:
        self.reply(self.hub.views.run(run_id))


class RunCancelHandler(HookNBAPIHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        self.reply(await self.hub.cancel_run(run_id), status=202)


class RunResubmitHandler(HookNBAPIHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        self.reply(await self.hub.resubmit(run_id), status=202)


class RunWaitsHandler(HookNBAPIHandler):
    """``POST api/runs/<id>/waits``: open an HttpWebhook action step (callback URL + deadline)."""

    @web.authenticated
    async def post(self, run_id: str) -> None:
        body = self.json_body()
        timeout = body.get("timeout")
        if timeout is not None and not isinstance(timeout, int | float):
            raise HubError(400, "'timeout' must be a number of seconds")
        value = await self.hub.open_wait(
            run_id,
            required(body, "step"),
            required(body, "client"),
            timeout=timeout,
            verify=body.get("verify"),
        )
        self.reply(value, status=201)


class WaitsHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply(
            {
                "waits": self.hub.views.waits(
                    run_id=self.get_query_argument("run", None),
                    state=self.get_query_argument("state", None),
                )
            }
        )


class WaitHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self, wait_id: str) -> None:
        self.reply(self.hub.views.wait(wait_id))


class WaitSubscribeHandler(HookNBAPIHandler):
    @web.authenticated
    async def post(self, wait_id: str) -> None:
        body = self.json_body()
        value = await self.hub.subscribe_wait(
            wait_id,
            required(body, "subscribe", dict),
            body.get("unsubscribe"),
            unsubscribe_later=bool(body.get("unsubscribeLater")),
        )
        self.reply(value)


class WaitUnsubscribeHandler(HookNBAPIHandler):
    @web.authenticated
    async def put(self, wait_id: str) -> None:
        body = self.json_body()
        self.reply(await self.hub.set_wait_unsubscribe(wait_id, body.get("unsubscribe")))


class WaitCancelHandler(HookNBAPIHandler):
    @web.authenticated
    async def post(self, wait_id: str) -> None:
        body = self.json_body()
        self.reply(await self.hub.cancel_wait(wait_id, notify=bool(body.get("notify", True))))


class KeysHandler(HookNBAPIHandler):
    """``GET api/keys``: the callback-signing access keys (types and ages, never values)."""

    @web.authenticated
    def get(self) -> None:
        self.reply({"keys": self.hub.keys()})


class KeyRegenerateHandler(HookNBAPIHandler):
    """``POST api/keys/<primary|secondary>/regenerate``: URLs signed with the old key die."""

    @web.authenticated
    async def post(self, key_type: str) -> None:
        self.reply(await self.hub.regenerate_key(key_type))


class CallbacksHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply(
            {"callbacks": self.hub.views.callbacks(target=self.get_query_argument("target", None))}
        )
