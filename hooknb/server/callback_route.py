"""The shape every public callback route shares: a user's server (``hooknb/callback/<id>``) and
the hooknb receiver under JupyterHub (``callback/<user>/<id>``).

A callback route is a plain tornado handler: its only credential is the signed capability in
its URL, so Jupyter's login, XSRF, Origin and Host checks (made for browsers holding a Jupyter
session) do not apply to it, and skipping them keeps the hot path short. Whatever happens, the
sender gets a JSON answer with the right status, never an HTML page or a traceback.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import web

from .rows import InboundRequest

# How many times the body limit a refused body is read (and dropped) before the 413.
DRAIN_FACTOR = 4


def json_error(handler: web.RequestHandler, status: int, message: str, **extra: Any) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps({"error": message, **extra}))


@web.stream_request_body
class CallbackRoute(web.RequestHandler):
    """``POST <callback URL>?sig=<signature>``: bounded body, JSON answers, public.

    Subclasses say whether the signature is valid (:meth:`signature_valid`, checked before the
    body is read when it can be decided at once) and what to do with the request
    (:meth:`accept`).
    """

    max_body_size: int
    signature: str

    def initialize(self, max_body_size: int) -> None:
        self.max_body_size = max_body_size
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._rejection: tuple[int, str] | None = None

    def check_xsrf_cookie(self) -> None:
        # No browser session is involved: the signed URL is the credential.
        return None

    def signature_valid(self) -> bool | None:
        """True/False when the signature can be checked at once; None to check in accept()."""
        return None

    async def accept(self, request: InboundRequest) -> tuple[int, dict[str, Any]]:
        """Take a request whose signature passed; return the status and JSON answer."""
        raise NotImplementedError

    def prepare(self) -> None:
        limit = self.max_body_size
        # A body over the limit is read and dropped before the 413, up to a few times the
        # limit: a server that answers and closes while the sender still writes makes a
        # reverse proxy in front (JupyterHub's) answer with its own HTML 503 instead.
        drain = DRAIN_FACTOR * limit + 65536
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > drain:
            # Answered before the body is read: reading it all would cost more than a reset.
            json_error(self, 413, f"body larger than the limit of {limit} bytes")
            return
        # Bodies are counted (and dropped past the limit) in data_received.
        self.request.connection.set_max_body_size(drain)  # type: ignore[union-attr]
        # Other refusals are answered after the (bounded) body is read: closing a socket with
        # unread data makes the kernel send a reset, which can destroy the answer in flight.
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

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.max_body_size:
            self._too_large = True
            self._chunks = []
        if self._too_large or self._rejection is not None:
            return
        self._chunks.append(chunk)

    @allow_unauthenticated
    async def post(self, **_path: str) -> None:
        if self._too_large:
            json_error(self, 413, f"body larger than the limit of {self.max_body_size} bytes")
            return
        if self._rejection is not None:
            json_error(self, *self._rejection)
            return
        request = self.request
        queries: dict[str, Any] = {}
        for name, values in request.query_arguments.items():
            if name == "sig":
                continue
            decoded = [v.decode("utf-8", "replace") for v in values]
            queries[name] = decoded[0] if len(decoded) == 1 else decoded
        inbound = InboundRequest(
            method=request.method or "POST",
            headers=list(request.headers.get_all()),
            queries=queries,
            content_type=request.headers.get("Content-Type"),
            body=b"".join(self._chunks),
            received=time.time(),
        )
        status, answer = await self.accept(inbound)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Never a traceback or an HTML page to an outside sender. Methods other than POST
        # reach tornado's "not implemented" 405, which carries the message from prepare().
        self.set_header("Content-Type", "application/json")
        if status_code == 405:
            self.set_header("Allow", "POST")  # send_error() cleared the headers set earlier
        message = self._rejection[1] if self._rejection else self._reason
        self.finish(json.dumps({"error": message}))
