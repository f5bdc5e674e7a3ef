"""The shape every public callback route shares: a user's server (``hooknb/callback/<id>``) and
the hooknb receiver under JupyterHub (``callback/<user>/<id>``).

A callback route is a plain tornado handler: its only credential is the signed capability in
its URL, so Jupyter's login, XSRF, Origin and Host checks (made for browsers holding a Jupyter
session) do not apply to it, and skipping them keeps the hot path short. Whatever happens, the
sender gets a JSON answer with the right status, never an HTML page or a traceback.

Memory and time are bounded per request and overall (:mod:`hooknb.server.uploads`): a body
over ``max_body_size`` is a ``413`` (chunked too), one that does not fit in the server's byte
budget or the URL's upload bound a ``503`` with ``Retry-After``, one not received within
``body_timeout`` seconds a ``408``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import web

from .rows import InboundRequest
from .uploads import RETRY_AFTER_SECONDS, Ticket, UploadGate

# How many times the body limit a refused body is read (and dropped) before its answer: a
# server that answers and closes while the sender still writes makes a reverse proxy in front
# (JupyterHub's) answer with its own HTML 503, and the sender sees a reset, not the answer.
DRAIN_FACTOR = 4
# tornado's own limit would answer a chunked body 400 and reset the connection: it is kept out
# of the way (body_timeout bounds the reading) and data_received counts.
_UNLIMITED = 1 << 50


#: The key of a hub answer that holds headers for the sender (not part of the JSON answer).
ANSWER_HEADERS = "$headers"


def json_error(handler: web.RequestHandler, status: int, message: str, **extra: Any) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps({"error": message, **extra}))


@web.stream_request_body
class CallbackRoute(web.RequestHandler):
    """``POST <callback URL>?sig=<signature>``: bounded body, JSON answers, public.

    Subclasses say whether the signature is valid (:meth:`signature_valid`, checked before the
    body is read when it can be decided at once), which callback URL a body counts against
    (:meth:`upload_key`) and what to do with the request (:meth:`accept`).
    """

    max_body_size: int
    body_timeout: float
    uploads: UploadGate | None
    signature: str

    def initialize(
        self,
        max_body_size: int,
        body_timeout: float = 60.0,
        uploads: UploadGate | None = None,
    ) -> None:
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.uploads = uploads
        self.signature = ""
        self._chunks: list[bytes] = []
        self._size = 0
        self._rejection: tuple[int, str] | None = None
        self._ticket: Ticket | None = None
        self._timer: asyncio.TimerHandle | None = None

    def check_xsrf_cookie(self) -> None:
        # No browser session is involved: the signed URL is the credential.
        return None

    def signature_valid(self) -> bool | None:
        """True/False when the signature can be checked at once; None to check in accept()."""
        return None

    def upload_key(self) -> str:
        """The callback URL a body counts against for the per-URL upload bound."""
        return self.request.path

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        """Take a request whose signature passed; return the status and JSON answer."""
        raise NotImplementedError

    @property
    def _drain_limit(self) -> int:
        # A refused body is still read (and dropped, within body_timeout), so that the sender,
        # busy sending, reads the answer instead of a reset. A declared size beyond this is
        # answered at once (and the connection closed): reading it would take too long.
        return DRAIN_FACTOR * self.max_body_size + 65536

    def prepare(self) -> None:
        limit = self.max_body_size
        declared = self.request.headers.get("Content-Length")
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
            self.set_header("Allow", "POST")
            self._rejection = (405, "callback URLs accept POST only")
            return
        # The parsed query as is (get_query_argument decodes and strips every value).
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
                expects = self.request.headers.get("Expect", "").lower() == "100-continue"
                self._busy(reason, now=expects)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._rejection is not None:
            return  # dropped; read on (within body_timeout) so that the answer is read
        if self._size > self.max_body_size:
            # A chunked body over the limit (a declared one is refused in prepare).
            self._refuse(413, f"body larger than the limit of {self.max_body_size} bytes")
            return
        if self._ticket is not None:
            reason = self._ticket.grow(self._size)
            if reason is not None:
                self._busy(reason)
                return
        self._chunks.append(chunk)

    @allow_unauthenticated
    async def post(self, **_path: str) -> None:
        self._cancel_timer()
        if self._rejection is not None:
            self._answer_now()
            return
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
        status, answer = await self.accept(inbound)
        self.set_status(status)
        # Headers the hub gives the answer: a trigger's x-ms-workflow-run-id and tracking ids,
        # as Logic Apps answers a trigger callback.
        headers = answer.pop(ANSWER_HEADERS, None) if isinstance(answer, dict) else None
        for name, value in (headers or {}).items():
            self.set_header(str(name), str(value))
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
            json_error(self, *self._rejection)

    def _too_slow(self) -> None:
        self._timer = None
        if not self._finished:
            self.clear_header("Retry-After")
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
