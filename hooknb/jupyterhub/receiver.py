"""The hooknb receiver: a JupyterHub service that takes every user's callbacks at stable URLs.

``POST <hub>/services/hooknb/callback/<user>/[<server>/]<id>?sig=<signature>``: the signature
is checked with the keys that user's server registered (constant time, both access keys); the
callback is stored and committed, then forwarded to the server's ``hooknb/api/forwarded`` route
through the proxy if the server runs. The sender gets the server's own answer when it was
delivered at once, and ``202`` when the server is stopped (the callback waits in the store and
is forwarded when the server registers again at its next start, or by the periodic sweep).

The API under ``api/`` needs a JupyterHub token (``Authorization: token ...``), checked with the
Hub: ``register`` (a server's keys, with the server's own token), ``callbacks`` and ``status``
(the token owner's own, nobody else's).

Run by JupyterHub as a managed service (see :func:`hooknb.jupyterhub.configure`), configured by
the environment: ``HOOKNB_RECEIVER_DB`` (SQLAlchemy URL), ``HOOKNB_PROXY_URL`` (where user
servers are reached), ``HOOKNB_START_SERVERS``, ``HOOKNB_MAX_BODY_SIZE``,
``HOOKNB_RECEIVER_RETENTION`` (seconds finished callbacks are kept), ``HOOKNB_RECEIVER_SWEEP``
(seconds between retries of pending ones), plus JupyterHub's ``JUPYTERHUB_*`` service variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import sqlalchemy as sa
from jupyterhub.services.auth import HubAuth, check_scopes
from tornado import web
from tornado.httputil import HTTPServerRequest

from .._version import __version__
from ..server import log_scrub
from ..server.callback_route import CallbackRoute, CallbackRouter
from ..server.callback_signing import Signer
from ..server.handlers import CALLBACK_ID_PATTERN
from ..server.rows import InboundRequest
from .store import ReceiverStore, StoredCallback

log = logging.getLogger("hooknb.receiver")

_CALLBACK_ID = re.compile(CALLBACK_ID_PATTERN)
_MAX_BACKOFF = 300.0
_LEASE_SECONDS = 120.0
_READY_WAIT = 60.0
_START_EVERY = 10.0


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """The receiver's configuration, from the environment JupyterHub gives the service."""

    db_url: str
    proxy_url: str
    hub_api_url: str
    api_token: str
    service_url: str
    prefix: str
    start_servers: bool = False
    max_body_size: int = 16 * 1024 * 1024
    retention: float = 7 * 86400.0
    sweep_interval: float = 10.0
    deliver_timeout: float = 10.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            db_url=os.environ.get("HOOKNB_RECEIVER_DB")
            or "sqlite:///" + os.path.abspath("hooknb-receiver.sqlite"),
            proxy_url=os.environ.get("HOOKNB_PROXY_URL") or "http://127.0.0.1:8000/",
            hub_api_url=os.environ.get("JUPYTERHUB_API_URL") or "http://127.0.0.1:8081/hub/api",
            api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            service_url=os.environ.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:8766",
            prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/services/hooknb/",
            start_servers=_env_bool("HOOKNB_START_SERVERS"),
            max_body_size=int(os.environ.get("HOOKNB_MAX_BODY_SIZE") or 16 * 1024 * 1024),
            retention=float(os.environ.get("HOOKNB_RECEIVER_RETENTION") or 7 * 86400),
            sweep_interval=float(os.environ.get("HOOKNB_RECEIVER_SWEEP") or 10),
            deliver_timeout=float(os.environ.get("HOOKNB_RECEIVER_DELIVER_TIMEOUT") or 10),
        )


class Undelivered(Exception):
    """The server did not take a forwarded callback (stopped, starting, unreachable)."""


class Receiver:
    """Takes callbacks, keeps them durably, forwards them to their users' servers."""

    def __init__(self, settings: Settings, store: ReceiverStore) -> None:
        self.settings = settings
        self.store = store
        # This process's name in row leases: unique per replica and per start.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.hub_auth = HubAuth(
            api_url=settings.hub_api_url, api_token=settings.api_token, cache_max_age=60
        )
        self._http = httpx.AsyncClient(timeout=settings.deliver_timeout, trust_env=False)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- taking callbacks ------------------------------------------------------------------

    async def take(
        self, user: str, server: str, callback_id: str, signature: str, request: InboundRequest
    ) -> tuple[int, dict[str, Any]]:
        """Check, store and (if the server runs) forward one callback; the sender's answer."""
        try:
            keys = await self.store.run(self.store.keys, user, server)
        except sa.exc.SQLAlchemyError as exc:
            return self._store_failed(exc)
        # Unknown server, unknown id and bad signature all look the same to the sender.
        if keys is None or not Signer.from_export(keys).verify(callback_id, signature):
            return 404, {"error": "not found"}
        try:
            row_id = await self.store.run(
                self.store.add, user, server, callback_id, request, self.owner
            )
        except sa.exc.SQLAlchemyError as exc:
            return self._store_failed(exc)
        stored = StoredCallback(row_id, user, server, callback_id, request, 0)
        delivered = await self.forward_all(user, server, [stored])
        if row_id in delivered:
            return delivered[row_id]
        return 202, {
            "status": "Accepted",
            "queued": True,
            "id": row_id,
            "detail": "stored by the hooknb receiver; forwarded when the user's server runs",
        }

    def _store_failed(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        log.error("hooknb receiver: the store failed: %s", type(exc).__name__)
        return 503, {"error": "the receiver cannot store callbacks right now; retry later"}

    # -- forwarding ------------------------------------------------------------------------

    async def forward_all(
        self, user: str, server: str, rows: Sequence[StoredCallback]
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Forward ``rows`` (leased to us, one server's, oldest first) while the server takes
        them; the rest get their leases back with a later next attempt."""
        answers: dict[str, tuple[int, dict[str, Any]]] = {}
        try:
            target = await self.server_url(user, server)
            for row in rows:
                status, answer = await self._forward(target, row)
                await self.store.run(self.store.finish, row.id, status, answer, time.time())
                answers[row.id] = (status, answer)
        except (Undelivered, sa.exc.SQLAlchemyError) as exc:
            rest = [row for row in rows if row.id not in answers]
            attempts = min(row.attempts for row in rest)
            when = time.time() + min(5.0 * 2**attempts, _MAX_BACKOFF)
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                await self.store.run(
                    self.store.retry_later, [r.id for r in rest], self.owner, str(exc), when
                )
        return answers

    async def server_url(self, user: str, server: str) -> str:
        """The URL (through the proxy) of a running server; Undelivered if it is not ready."""
        model = await self._hub_api("GET", f"users/{quote(user, safe='')}")
        spawner = (model or {}).get("servers", {}).get(server) if model else None
        if not spawner or not spawner.get("ready"):
            state = "starting" if spawner and spawner.get("pending") else "not running"
            if state == "not running" and self.settings.start_servers and model is not None:
                await self._start(user, server)
            raise Undelivered(f"the server is {state}")
        url = str(spawner["url"])
        if "://" in url:  # subdomains: the Hub gives a full URL
            return url
        parts = urlsplit(self.settings.proxy_url)
        return f"{parts.scheme}://{parts.netloc}{url}"

    async def _forward(self, target: str, row: StoredCallback) -> tuple[int, dict[str, Any]]:
        try:
            response = await self._http.post(
                f"{target}hooknb/api/forwarded",
                json=row.forward_body(),
                headers={"Authorization": f"token {self.settings.api_token}"},
            )
        except httpx.HTTPError as exc:
            raise Undelivered(f"{type(exc).__name__}: {exc}") from None
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:
            answer = None
        # Only hooknb's forward route answers this way: a proxy's or the Hub's page (server
        # stopped in between, route not there yet) is not a delivery.
        if not isinstance(answer, dict) or answer.get("forwarded") != row.id:
            raise Undelivered(f"HTTP {response.status_code} from {target}")
        return int(answer["status"]), answer["answer"]

    async def _start(self, user: str, server: str) -> None:
        # Once in a while across replicas: until the Hub shows the spawn as pending, several
        # callbacks (and replicas) would otherwise all ask; the Hub refuses extra starts anyway.
        asked = await self.store.run(
            self.store.note_start_request, user, server, time.time(), _START_EVERY
        )
        if not asked:
            return
        path = f"users/{quote(user, safe='')}/" + (
            f"servers/{quote(server, safe='')}" if server else "server"
        )
        try:
            await self._hub_api("POST", path)
            log.info("hooknb receiver: asked the Hub to start %s/%s", user, server)
        except Undelivered as exc:
            log.warning("hooknb receiver: could not start %s/%s: %s", user, server, exc)

    async def _hub_api(self, method: str, path: str) -> dict[str, Any] | None:
        url = f"{self.settings.hub_api_url.rstrip('/')}/{path}"
        try:
            response = await self._http.request(
                method, url, headers={"Authorization": f"token {self.settings.api_token}"}
            )
        except httpx.HTTPError as exc:
            raise Undelivered(f"the Hub API is unreachable: {type(exc).__name__}") from None
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 400:
            raise Undelivered(f"the Hub API answered {response.status_code}")
        return response.json() if response.content else {}

    async def deliver_pending(self, user: str, server: str) -> None:
        """After a server registered (it is starting): wait until the Hub says it is ready,
        then forward everything that waits for it, oldest first."""
        give_up = time.monotonic() + _READY_WAIT
        while time.monotonic() < give_up and not self._stopping:
            try:
                await self.server_url(user, server)
                break
            except Undelivered:
                await asyncio.sleep(0.5)
        while not self._stopping:
            rows = await self.store.run(
                self.store.claim, self.owner, time.time(), _LEASE_SECONDS, user=user, server=server
            )
            if not rows:
                return
            delivered = await self.forward_all(user, server, rows)
            if len(delivered) < len(rows):
                return  # the rest wait for the sweep

    async def sweep(self) -> None:
        """Forward the pending callbacks whose next attempt is due (any replica may)."""
        rows = await self.store.run(self.store.claim, self.owner, time.time(), _LEASE_SECONDS)
        by_server: dict[tuple[str, str], list[StoredCallback]] = {}
        for row in rows:
            by_server.setdefault((row.user, row.server), []).append(row)
        await asyncio.gather(
            *(self.forward_all(user, server, group) for (user, server), group in by_server.items())
        )

    async def run_sweeps(self) -> None:
        last_purge = 0.0
        while not self._stopping:
            try:
                await self.sweep()
                if time.time() - last_purge > 3600:
                    last_purge = time.time()
                    purged = await self.store.run(
                        self.store.purge, time.time() - self.settings.retention
                    )
                    if purged:
                        log.info("hooknb receiver: forgot %d finished callbacks", purged)
            except Exception:
                log.exception("hooknb receiver: sweep failed")
            await asyncio.sleep(self.settings.sweep_interval)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("hooknb receiver: background task failed", exc_info=task.exception())


# -- HTTP ----------------------------------------------------------------------------------


class ReceiverCallbackHandler(CallbackRoute):
    """``POST callback/<user>/[<server>/]<id>?sig=...``: public, answers JSON only."""

    def __init__(
        self, request: HTTPServerRequest, path_kwargs: Mapping[str, str], receiver: Receiver
    ) -> None:
        super().__init__(request, path_kwargs, receiver.settings.max_body_size)
        self.receiver = receiver

    def signature_valid(self) -> bool | None:
        # Malformed ids are refused at once; the keys are read from the store in accept().
        callback_id = self.path_kwargs.get("callback_id") or ""
        return None if _CALLBACK_ID.fullmatch(callback_id) else False

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        return await self.receiver.take(
            self.path_kwargs["user"],
            self.path_kwargs.get("server") or "",
            self.path_kwargs["callback_id"],
            self.signature,
            request,
        )


class ReceiverAPIHandler(web.RequestHandler):
    """Base of the API: a JupyterHub user's token is required, answers are JSON."""

    receiver: Receiver
    hub_user: dict[str, Any]

    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise web.HTTPError(403, "a JupyterHub token is required (Authorization: token ...)")
        try:
            model = await self.receiver.hub_auth.user_for_token(token.strip(), sync=False)
        except web.HTTPError:
            raise web.HTTPError(502, "cannot check the token with the Hub") from None
        if not model or model.get("kind") != "user":
            raise web.HTTPError(403, "this API is for JupyterHub users' tokens")
        self.hub_user = model

    @property
    def user(self) -> str:
        return str(self.hub_user["name"])

    def require_server_access(self, server: str) -> None:
        """The token must reach this user's server (a server's own token does)."""
        needed = f"access:servers!server={self.user}/{server}"
        if not check_scopes({needed}, set(self.hub_user.get("scopes", []))):
            raise web.HTTPError(403, f"the token lacks {needed}")

    async def db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A store call; its failure is the client's 503, not a 500 with a traceback."""
        try:
            return await self.receiver.store.run(fn, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            log.error("hooknb receiver: the store failed: %s", type(exc).__name__)
            raise web.HTTPError(503, "the receiver's store is unavailable; retry later") from None

    def json_body(self) -> dict[str, Any]:
        try:
            value = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPError(400, "the body must be JSON") from None
        if not isinstance(value, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return value

    def reply(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) else None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message or self._reason}))


def _server_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 255 or any(ord(c) < 32 for c in value):
        raise web.HTTPError(400, "'server' must be the server's name ('' for the default)")
    return value


class RegisterHandler(ReceiverAPIHandler):
    """``POST api/register`` ``{"server": name, "keys": {...}}``: a server's access keys.

    Called by the hooknb extension of a user's server at start and after a key changes, with
    the server's own token. Callbacks waiting for that server are forwarded once it is ready.
    """

    async def post(self) -> None:
        body = self.json_body()
        server = _server_name(body.get("server", ""))
        self.require_server_access(server)
        keys = body.get("keys")
        try:
            Signer.from_export(keys)  # type: ignore[arg-type]
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        pending = await self.db(self.receiver.store.register, self.user, server, keys, time.time())
        log.info("hooknb receiver: %s/%s registered (%d waiting)", self.user, server, pending)
        self.reply({"user": self.user, "server": server, "pending": pending})
        if pending:
            self.receiver.spawn(self.receiver.deliver_pending(self.user, server))


class CallbacksHandler(ReceiverAPIHandler):
    """``GET api/callbacks[?server=&limit=]``: the token owner's callbacks (no bodies)."""

    async def get(self) -> None:
        server = self.get_query_argument("server", None)
        try:
            limit = max(1, min(int(self.get_query_argument("limit", "100")), 1000))
        except ValueError:
            raise web.HTTPError(400, "'limit' must be an integer") from None
        rows = await self.db(self.receiver.store.list_for, self.user, server, limit)
        self.reply({"user": self.user, "callbacks": rows})


class StatusHandler(ReceiverAPIHandler):
    """``GET api/status``: the receiver's version and the token owner's servers."""

    async def get(self) -> None:
        servers = await self.db(self.receiver.store.servers_of, self.user)
        self.reply({"version": __version__, "user": self.user, "servers": servers})


class NotFoundHandler(web.RequestHandler):
    """Anything else: a JSON 404 (senders and scripts never get an HTML page)."""

    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": "not found"}))


def make_app(receiver: Receiver) -> web.Application:
    prefix = receiver.settings.prefix.rstrip("/")
    ids = r"(?P<user>[^/]+)/(?:(?P<server>[^/]+)/)?(?P<callback_id>[^/]+)"
    args = {"receiver": receiver}
    callbacks = CallbackRouter(ReceiverCallbackHandler, receiver=receiver)
    return web.Application(
        [
            (rf"{prefix}/callback/{ids}", callbacks),
            (rf"{prefix}/callback(?:/.*)?", callbacks),
            (rf"{prefix}/api/register", RegisterHandler, args),
            (rf"{prefix}/api/callbacks", CallbacksHandler, args),
            (rf"{prefix}/api/status", StatusHandler, args),
        ],
        default_handler_class=NotFoundHandler,
    )


# -- process -------------------------------------------------------------------------------


def setup_logging() -> None:
    """Log to stderr (JupyterHub collects a managed service's output), signatures scrubbed."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(levelname).1s %(asctime)s %(name)s] %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # httpx logs every request at INFO; the access log already says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log_scrub.install(root)


async def serve(settings: Settings) -> None:
    """Run the receiver until SIGTERM or SIGINT."""
    store = ReceiverStore(settings.db_url)
    await asyncio.get_running_loop().run_in_executor(None, store.create)
    receiver = Receiver(settings, store)
    bind = urlsplit(settings.service_url)
    server = make_app(receiver).listen(bind.port or 80, bind.hostname or "127.0.0.1")
    log.info(
        "hooknb receiver %s at %s%s (store: %s)",
        __version__,
        settings.service_url.rstrip("/"),
        settings.prefix,
        store.engine.url.render_as_string(hide_password=True),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sweeps = loop.create_task(receiver.run_sweeps())
    await stop.wait()
    server.stop()
    sweeps.cancel()
    await receiver.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeps
    store.close()


def main() -> None:
    setup_logging()
    asyncio.run(serve(Settings.from_env()))
