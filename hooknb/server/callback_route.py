"""The shape every public callback route shares: a user's server (``hooknb/callback/<id>``) and
the hooknb receiver under JupyterHub (``callback/<user>/<id>``).

A callback route reads its requests at tornado's HTTP layer: a :class:`CallbackRouter` is the
routing target of the URL pattern and hands each request to a :class:`CallbackRoute`, an
``HTTPMessageDelegate`` that receives the headers, the body's chunks and the end of the request
and writes its answer on the connection. Its only credential is the signed capability in its
URL, so none of what ``RequestHandler`` does for every request applies to it (login, XSRF,
cookies, Origin and Host checks, output transforms, the default headers): measured in the same
server, answering a request that way costs ~70 µs less CPU than through a ``RequestHandler``,
more than all of hooknb's own work on a trigger callback (BENCHMARKS.md, issue 15's sixth
round). Whatever happens, the sender gets a JSON answer with the right status, never an HTML
page or a traceback; each answer is logged as Jupyter logs a request.

Memory and time are bounded per request and overall (:mod:`hooknb.server.uploads`): a body
over ``max_body_size`` is a ``413`` (chunked too), one that does not fit in the server's byte
budget or the URL's upload bound a ``503`` with ``Retry-After``, one not received within
``body_timeout`` seconds a ``408``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from http.client import responses
from typing import Any

from tornado import httputil, iostream, routing
from tornado.log import access_log, app_log

from ..jsonsafe import dumps_bytes
from .log_scrub import scrub
from .rows import InboundRequest
from .store import StoreError
from .uploads import RETRY_AFTER_SECONDS, Ticket, UploadGate

# How many times the body limit a refused body is read (and dropped) before its answer: a
# server that answers and closes while the sender still writes makes a reverse proxy in front
# (JupyterHub's) answer with its own HTML 503, and the sender sees a reset, not the answer.
DRAIN_FACTOR = 4
# tornado's own limit would answer a chunked body 400 and reset the connection: it is kept out
# of the way (body_timeout bounds the reading) and data_received counts.
_UNLIMITED = 1 << 50

# What tornado refuses in a header value (a line break would split the answer).
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f]")

#: The key of a hub answer that holds headers for the sender (not part of the JSON answer).
ANSWER_HEADERS = "$headers"

# Requests whose answer is being prepared: the event loop holds its tasks weakly.
_answering: set[asyncio.Task[None]] = set()
# The Date header of the current second (formatting it costs more than the rest of the headers).
_date: tuple[int, str] = (0, "")


def _http_date(now: float) -> str:
    global _date
    second = int(now)
    if _date[0] != second:
        _date = (second, httputil.format_timestamp(second))
    return _date[1]


def _written(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` reaches a handler that writes it. Jupyter's loggers are
    enabled for debug and their handlers drop it: making each success's record only to drop
    it costs more than the rest of the answer."""
    if not logger.isEnabledFor(level):
        return False
    current: logging.Logger | None = logger
    found = False
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level:
                return True
        if not current.propagate:
            break
        current = current.parent
    last_resort = logging.lastResort
    return not found and last_resort is not None and level >= last_resort.level


class CallbackRoute(httputil.HTTPMessageDelegate):
    """``POST <callback URL>?sig=<signature>``: bounded body, JSON answers, public.

    One instance per request. Subclasses say whether the signature is valid
    (:meth:`signature_valid`, checked before the body is read when it can be decided at once),
    which callback URL a body counts against (:meth:`upload_key`), what to do with the request
    (:meth:`accept`) and, if they like, what to record of each answer (:meth:`answered`).
    """

    def __init__(
        self,
        request: httputil.HTTPServerRequest,
        path_kwargs: Mapping[str, str],
        max_body_size: int,
        body_timeout: float = 60.0,
        uploads: UploadGate | None = None,
    ) -> None:
        self.request = request
        self.path_kwargs = path_kwargs
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.uploads = uploads
        self.signature = ""
        self._chunks: list[bytes] = []
        self._size = 0
        self._rejection: tuple[int, str] | None = None
        self._answer_headers: dict[str, str] = {}
        self._answered = False
        self._ticket: Ticket | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- what subclasses say -------------------------------------------------------------

    def signature_valid(self) -> bool | None:
        """True/False when the signature can be checked at once; None to check in accept()."""
        return None

    def upload_key(self) -> str:
        """The callback URL a body counts against for the per-URL upload bound."""
        return self.request.path

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        """Take a request whose signature passed; return the status and JSON answer."""
        raise NotImplementedError

    def accept_at_once(
        self, request: InboundRequest
    ) -> asyncio.Future[tuple[int, dict[str, Any]]] | None:
        """Take ``request`` without a task of its own, when that can be done at once: the
        future of its answer (as :meth:`accept` returns it), or None to go through
        :meth:`accept`. A task per request and the coroutines under it cost the event loop
        up to ~30 µs per trigger callback (BENCHMARKS.md, issue 15's tenth round)."""
        return None

    def answered(self, status: int, seconds: float) -> None:
        """Called once the answer is written (``seconds`` since the request arrived)."""

    # -- tornado's HTTPMessageDelegate ---------------------------------------------------

    @property
    def _drain_limit(self) -> int:
        # A refused body is still read (and dropped, within body_timeout), so that the sender,
        # busy sending, reads the answer instead of a reset. A declared size beyond this is
        # answered at once (and the connection closed): reading it would take too long.
        return DRAIN_FACTOR * self.max_body_size + 65536

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        try:
            self._check_headers(headers)
        except Exception:
            self._fail()

    def _check_headers(self, headers: httputil.HTTPHeaders) -> None:
        limit = self.max_body_size
        declared = headers.get("Content-Length")
        size = int(declared) if declared is not None and declared.isdigit() else None
        self.request.connection.set_max_body_size(_UNLIMITED)  # type: ignore[union-attr]
        self._timer = asyncio.get_running_loop().call_later(self.body_timeout, self._too_slow)
        if size is not None and size > limit:
            self._refuse(
                413, f"body larger than the limit of {limit} bytes", now=size > self._drain_limit
            )
            return
        # Refusals are answered after the (bounded) body is read: closing a socket with unread
        # data makes the kernel send a reset, which can destroy the answer in flight.
        if self.request.method != "POST":
            self._answer_headers["Allow"] = "POST"
            self._rejection = (405, "callback URLs accept POST only")
            return
        # The parsed query as is (values are neither decoded nor stripped).
        given = self.request.query_arguments.get("sig")
        self.signature = given[-1].decode("ascii", "replace") if given else ""
        if self.signature_valid() is False:
            # Unknown id and bad signature look the same to the sender.
            self._rejection = (404, "not found")
            return
        if self.uploads is None:
            return
        # Only bodies that will be kept are held in memory, so only they take from the budget;
        # a declared size is decided on before any of the body is read.
        self._ticket = self.uploads.ticket(self.upload_key())
        if size is not None:
            reason = self._ticket.grow(size)
            if reason is not None:
                # A sender that waits to be told (``Expect: 100-continue``) is answered at once
                # and sends nothing; any other is answered when it has sent its body, since
                # one busy sending would see a reset instead of an answer.
                expects = headers.get("Expect", "").lower() == "100-continue"
                self._busy(reason, now=expects)

    def data_received(self, chunk: bytes) -> None:
        if self._answered:
            return
        self._size += len(chunk)
        if self._rejection is not None:
            return  # dropped; read on (within body_timeout) so that the answer is read
        if self._size > self.max_body_size:
            # A chunked body over the limit (a declared one is refused in headers_received).
            self._refuse(413, f"body larger than the limit of {self.max_body_size} bytes")
            return
        if self._ticket is not None:
            reason = self._ticket.grow(self._size)
            if reason is not None:
                self._busy(reason)
                return
        self._chunks.append(chunk)

    def finish(self) -> None:
        self._cancel_timer()
        if self._answered:
            return
        if self._rejection is not None:
            self._answer_now()
            return
        try:
            inbound = self._inbound()
            taking = self.accept_at_once(inbound)
        except Exception as exc:
            self._not_taken(exc)
            return
        if taking is not None:
            taking.add_done_callback(self._taken)
            return
        task = asyncio.get_running_loop().create_task(self._take(inbound))
        _answering.add(task)
        task.add_done_callback(_answering.discard)

    def on_connection_close(self) -> None:
        # The sender went away mid-body: its bytes are no longer held.
        self._cancel_timer()
        self._chunks = []
        self._release()

    # -- answering -------------------------------------------------------------------------

    def _inbound(self) -> InboundRequest:
        request = self.request
        queries: dict[str, Any] = {}
        for name, values in request.query_arguments.items():
            if name == "sig":
                continue
            decoded = [v.decode("utf-8", "replace") for v in values]
            queries[name] = decoded[0] if len(decoded) == 1 else decoded
        body = b"".join(self._chunks)
        self._chunks = []  # one copy of the body from here on
        return InboundRequest(
            method=request.method or "POST",
            headers=list(request.headers.get_all()),
            queries=queries,
            content_type=request.headers.get("Content-Type"),
            body=body,
            received=time.time(),
        )

    async def _take(self, inbound: InboundRequest) -> None:
        try:
            status, answer = await self.accept(inbound)
        except Exception as exc:
            self._not_taken(exc)
            return
        self._answer_taken(status, answer)

    def _taken(self, taking: asyncio.Future[tuple[int, dict[str, Any]]]) -> None:
        exc = taking.exception()  # (nothing cancels it: only this route waits for it)
        if exc is not None:
            self._not_taken(exc)
            return
        status, answer = taking.result()
        self._answer_taken(status, answer)

    def _answer_taken(self, status: int, answer: Any) -> None:
        try:
            # Headers the hub gives the answer: a trigger's x-ms-workflow-run-id and tracking
            # ids, as Logic Apps answers a trigger callback.
            headers = answer.pop(ANSWER_HEADERS, None) if isinstance(answer, dict) else None
            for name, value in (headers or {}).items():
                if _UNSAFE_IN_HEADER.search(f"{name}{value}"):
                    # What was taken is stored: the answer goes, without what cannot be sent.
                    app_log.warning("hooknb: answer header %r left out (control characters)", name)
                    continue
                self._answer_headers[str(name)] = str(value)
        except Exception:
            self._fail()
            return
        self._respond(status, answer)

    def _not_taken(self, exc: BaseException) -> None:
        if not isinstance(exc, StoreError):
            self._fail(exc)
            return
        # The store takes no writes (its disk failed, or the server is stopping): not a fault
        # of this request, so no traceback, and an answer that asks for a retry.
        app_log.error("hooknb: callback %s not taken: %s", scrub(self.request.path), exc)
        self._answer_headers.clear()
        self._busy("the server cannot store callbacks now; retry later", now=True)

    def _respond(self, status: int, answer: Any) -> None:
        """Write the JSON answer and end the response (once)."""
        if self._answered:
            return
        self._answered = True
        self._cancel_timer()
        self._release()
        now = time.time()
        payload = b"" if self.request.method == "HEAD" else dumps_bytes(answer)
        headers = httputil.HTTPHeaders(self._answer_headers)
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(payload))
        headers["Date"] = _http_date(now)
        connection = self.request.connection
        assert connection is not None
        start = httputil.ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown"))
        try:
            connection.write_headers(start, headers, payload)
            connection.finish()
        except (iostream.StreamClosedError, httputil.HTTPOutputError):
            pass  # the sender is gone; what it sent was handled all the same
        seconds = self.request.request_time()
        self._log(status, seconds)
        self.answered(status, seconds)

    def _log(self, status: int, seconds: float) -> None:
        # Jupyter's levels for its access log: successes at debug, client errors as warnings.
        level = logging.DEBUG
        if status >= 400:
            level = logging.WARNING if status < 500 else logging.ERROR
        if _written(access_log, level):
            request = self.request
            access_log.log(
                level,
                "%d %s %s (%s) %.2fms",
                status,
                request.method,
                scrub(request.uri or ""),
                request.remote_ip,
                seconds * 1000,
            )

    def _fail(self, exc: BaseException | None = None) -> None:
        """An error of ours (``exc``, else the one being handled): logged with its traceback;
        the sender gets a JSON 500."""
        app_log.error(
            "hooknb: uncaught exception answering %s %s",
            self.request.method,
            scrub(self.request.path),
            exc_info=exc if exc is not None else True,
        )
        self._answer_headers.clear()
        self._respond(500, {"error": "Internal Server Error"})

    def _refuse(self, status: int, message: str, *, now: bool = False) -> None:
        """Decide a refusal: the body is no longer kept (nor counted); the answer goes when
        the body has been read, or at once when ``now`` (tornado then closes the connection)."""
        self._rejection = (status, message)
        self._chunks = []
        self._release()
        if now:
            self._answer_now()

    def _busy(self, reason: str, *, now: bool = False) -> None:
        self._answer_headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        self._refuse(503, reason, now=now)

    def _answer_now(self) -> None:
        assert self._rejection is not None
        status, message = self._rejection
        self._respond(status, {"error": message})

    def _too_slow(self) -> None:
        self._timer = None
        if not self._answered:
            self._answer_headers.pop("Retry-After", None)
            self._refuse(
                408, f"the body was not received within {self.body_timeout:g} seconds", now=True
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        if self._ticket is not None:
            self._ticket.release()


class CallbackRouter(routing.Router):
    """The routing target of a callback URL pattern: a ``route`` for each request, made with
    the pattern's named groups (decoded) and ``settings``."""

    def __init__(self, route: type[CallbackRoute], **settings: Any) -> None:
        self.route = route
        self.settings = settings

    def find_handler(
        self, request: httputil.HTTPServerRequest, **target_params: Any
    ) -> CallbackRoute:
        matched = target_params.get("path_kwargs") or {}
        path_kwargs = {
            str(name): value.decode("utf-8", "replace")
            for name, value in matched.items()
            if value is not None
        }
        return self.route(request, path_kwargs, **self.settings)
