"""The handlers: the public callback route and the Jupyter-authenticated API
(:mod:`hooknb.server.routes` lists them under their URLs).

The callback route's shape is :class:`~hooknb.server.callback_route.CallbackRoute` (shared with
the hooknb receiver under JupyterHub). Every API method is ``@web.authenticated``, so the routes
also work with ``ServerApp.allow_unauthenticated_access=False``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from jupyter_server.prometheus.metrics import HTTP_REQUEST_DURATION_SECONDS
from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.iostream import StreamClosedError

from .._version import __version__
from .api_handler import HookNBAPIHandler, decode_body, headers_list, inbound_request, required
from .callback_route import CallbackRoute
from .http_errors import HubError
from .hub import Hub
from .rows import InboundRequest, StepOrder, secure_bits
from .trigger_settings import TriggerSettings

API_VERSION = 1
KEEPALIVE_SECONDS = 15.0
CALLBACK_ID_PATTERN = r"[A-Za-z0-9_-]{16,64}"
_CALLBACK_ID = re.compile(CALLBACK_ID_PATTERN)


class CallbackHandler(CallbackRoute):
    """``POST <base>hooknb/callback/<id>?sig=<signature>``: a webhook callback, public."""

    def __init__(
        self, request: HTTPServerRequest, path_kwargs: Mapping[str, str], hub: Hub
    ) -> None:
        super().__init__(request, path_kwargs, hub.max_body_size, hub.body_timeout, hub.uploads)
        self.hub = hub

    def signature_valid(self) -> bool:
        callback_id = self.path_kwargs.get("callback_id") or ""
        return bool(_CALLBACK_ID.fullmatch(callback_id)) and self.hub.signer.verify(
            callback_id, self.signature
        )

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        if not self.hub.is_ready:
            await self.hub.ready()
        return await self.hub.ingest(self.path_kwargs["callback_id"], request)

    def accept_at_once(
        self, request: InboundRequest
    ) -> asyncio.Future[tuple[int, dict[str, Any]]] | None:
        return self.hub.ingest_at_once(self.path_kwargs["callback_id"], request)

    def upload_key(self) -> str:
        return self.path_kwargs.get("callback_id") or ""

    def answered(self, status: int, seconds: float) -> None:
        # Jupyter's request-duration metric counts the callbacks as it did when they went
        # through a RequestHandler (same handler label).
        method = self.request.method
        _callback_metric(method if method in _METHODS else "OTHER", status).observe(seconds)


# A sender chooses the method: labels outside these would grow the metric without bound.
_METHODS = frozenset(web.RequestHandler.SUPPORTED_METHODS)


@functools.cache
def _callback_metric(method: str, status: int) -> Any:
    return HTTP_REQUEST_DURATION_SECONDS.labels(
        method=method, handler=f"{__name__}.CallbackHandler", status_code=status
    )


class VersionHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"version": __version__, "api": API_VERSION})


class StatusHandler(HookNBAPIHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"version": __version__, "api": API_VERSION, **(await self.hub.status())})


class ChannelHandler(HookNBAPIHandler):
    """``GET api/channel?client=<id>``: a server-sent-event stream of deliveries for a kernel."""

    _channel: Any = None
    _unwritten: list[bytes] | None = None

    @web.authenticated
    async def get(self) -> None:
        client = self.get_query_argument("client", "")
        channel = self.hub.open_channel(client)
        self._channel = channel
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
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

    def _write_events(self, events: bytes) -> None:
        # One write and flush for everything sent in this turn of the loop (a commit resolves
        # a whole batch of callbacks at once): few large writes under load, and at low load
        # the event leaves right after the sender's 202.
        if self._unwritten is None:
            self._unwritten = [events]
            asyncio.get_running_loop().call_soon(self._flush_now)
        else:
            self._unwritten.append(events)

    def _flush_now(self) -> None:
        unwritten, self._unwritten = self._unwritten or [], None
        if not self._finished:
            self.write(b"".join(unwritten))
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
        steps = body.get("steps") or []
        if not isinstance(acks, list) or not all(isinstance(a, int) for a in acks):
            raise HubError(400, "'acks' must be a list of delivery sequence numbers")
        if not isinstance(runs, list):
            raise HubError(400, "'runs' must be a list of run reports")
        if not isinstance(steps, list):
            raise HubError(400, "'steps' must be a list of step records")
        self.reply(await self.hub.sync(client, acks, runs, steps))


class WorkflowsHandler(HookNBAPIHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"workflows": self.hub.views.workflows()})


class WorkflowHandler(HookNBAPIHandler):
    """``PUT api/workflows/<name>``: this kernel runs the workflow (attach); ``DELETE`` deletes
    it (unsubscribe, cancel its unfinished runs, its callback URLs answer 404; its runs and
    trigger history stay)."""

    @web.authenticated
    def get(self, name: str) -> None:
        self.reply(self.hub.views.workflow(name))

    @web.authenticated
    async def delete(self, name: str) -> None:
        self.reply(await self.hub.delete_workflow(name))

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


class WorkflowSettingsHandler(HookNBAPIHandler):
    """``PUT api/workflows/<name>/settings``: the trigger's conditions, splitOn and concurrency,
    which the hub applies to every trigger event (see :mod:`.trigger_settings`)."""

    @web.authenticated
    async def put(self, name: str) -> None:
        settings = TriggerSettings.from_json(self.json_body())
        self.reply(await self.hub.set_settings(name, settings))


class WorkflowTriggerHistoryHandler(HookNBAPIHandler):
    """``GET api/workflows/<name>/triggers?limit=``: the trigger history, newest first."""

    @web.authenticated
    def get(self, name: str) -> None:
        try:
            limit = int(self.get_query_argument("limit", "100"))
        except ValueError:
            raise HubError(400, "'limit' must be a whole number") from None
        self.reply({"workflow": name, "history": self.hub.trigger_history(name, limit)})


class TriggerHandler(HookNBAPIHandler):
    """``PUT`` enables (subscribes) and ``DELETE`` disables (unsubscribes) a workflow's trigger.
    ``secure`` (``["inputs", "outputs"]``, either or both) is the trigger's secureData."""

    @web.authenticated
    async def put(self, name: str) -> None:
        body = self.json_body()
        client = required(body, "client")
        subscribe = required(body, "subscribe", dict)
        secure = secure_bits(body.get("secure"))
        self.reply(
            await self.hub.enable_trigger(
                name, client, subscribe, body.get("unsubscribe"), secure=secure
            )
        )

    @web.authenticated
    async def delete(self, name: str) -> None:
        self.reply(await self.hub.disable_trigger(name))


class WorkflowDefinitionHandler(HookNBAPIHandler):
    """``PUT api/workflows/<name>/definition`` hands a Logic Apps definition to the server, which
    runs it; ``DELETE`` takes it back; ``GET`` reads it."""

    @web.authenticated
    def get(self, name: str) -> None:
        for hosted in self.hub.hosted_definitions():
            if hosted["name"] == name:
                self.reply(hosted)
                return
        raise HubError(404, f"workflow {name!r} is not run by the server")

    @web.authenticated
    async def put(self, name: str) -> None:
        self.reply(await self.hub.host_definition(name, self.json_body()))

    @web.authenticated
    async def delete(self, name: str) -> None:
        self.reply(await self.hub.unhost_definition(name))


class DefinitionsHandler(HookNBAPIHandler):
    """``GET api/definitions``: the definitions the server runs (what its worker loads)."""

    @web.authenticated
    def get(self) -> None:
        self.reply({"definitions": self.hub.hosted_definitions()})


class WorkflowWatchHandler(HookNBAPIHandler):
    """``PUT api/workflows/<name>/watch``: send this kernel the workflow's run reports."""

    @web.authenticated
    def put(self, name: str) -> None:
        self.reply(self.hub.watch(name, required(self.json_body(), "client")))


class WorkflowReleaseHandler(HookNBAPIHandler):
    """``POST api/workflows/<name>/release``: this client stops running the workflow; its
    unfinished runs are left for a kernel that defines the workflow to adopt."""

    @web.authenticated
    async def post(self, name: str) -> None:
        self.reply(await self.hub.release(name, required(self.json_body(), "client")))


class WorkflowAdoptHandler(HookNBAPIHandler):
    """``POST api/workflows/<name>/adopt``: this kernel defines the workflow; it takes the lease
    and the runs whose kernel is gone, with their histories to replay."""

    @web.authenticated
    async def post(self, name: str) -> None:
        body = self.json_body()
        self.reply(await self.hub.adopt(name, required(body, "client")))


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
        queued = body.get("queued", False)
        if not isinstance(queued, bool):
            raise HubError(400, "'queued' must be true or false")
        value = await self.hub.start_run(
            name,
            client,
            headers=headers_list(body.get("headers")),
            body=raw,
            content_type=body.get("contentType", content_type),
            queries=queries,
            queued=queued,
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


class RunsCancelHandler(HookNBAPIHandler):
    """``POST api/runs/cancel``: end unfinished runs in bulk — by default those no kernel runs
    (``{"orphaned": true}``), of one ``workflow`` or all."""

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        workflow = body.get("workflow")
        orphaned = body.get("orphaned", True)
        if workflow is not None and not isinstance(workflow, str):
            raise HubError(400, "'workflow' must be a workflow name")
        if not isinstance(orphaned, bool):
            raise HubError(400, "'orphaned' must be true or false")
        self.reply(await self.hub.cancel_runs(workflow=workflow, orphaned=orphaned))


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
    """``POST api/runs/<id>/waits``: open an HttpWebhook action step (callback URL + deadline;
    ``secure``: the parts of the step that views hide)."""

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
            order=StepOrder.from_json(body),
            secure=secure_bits(body.get("secure")),
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


class ForwardedCallbackHandler(HookNBAPIHandler):
    """``POST api/forwarded``: a callback that a hooknb receiver took for this server.

    Under JupyterHub the receiver checks the URL's signature, stores the callback and forwards
    it here (with its Hub token) while this server runs; it is ingested exactly as if it had
    arrived on the callback route. Body: ``{"id": <receiver's id>, "callback": <callback id>,
    "request": <the request's wire form>}``. The answer is always 200 with ``{"forwarded": id,
    "status": <the callback's status>, "answer": <its JSON answer>}``, so that the receiver
    tells this server's answer from a proxy's or the Hub's. Repeating an id repeats its answer.
    """

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        forward_id = required(body, "id")
        callback_id = required(body, "callback")
        if len(forward_id) > 64:
            raise HubError(400, "'id' must be at most 64 characters")
        request = inbound_request(body.get("request"))
        if _CALLBACK_ID.fullmatch(callback_id):
            status, answer = await self.hub.ingest(callback_id, request, forward_id=forward_id)
        else:
            status, answer = 404, {"error": "not found"}
        self.reply({"forwarded": forward_id, "status": status, "answer": answer})
