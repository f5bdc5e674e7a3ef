"""The base of the Jupyter-authenticated API handlers, and what they share to read requests.

Every API method is ``@web.authenticated`` (so the routes also work with
``ServerApp.allow_unauthenticated_access=False``); answers are JSON, refusals
``{"error": ...}`` with the status a :class:`~hooknb.server.http_errors.HubError` names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..http_model.wire import decode_wire_body
from ..jsonsafe import MAX_REQUEST_DEPTH, JSONTooDeep, dumps_anything, loads
from .http_errors import HubError
from .rows import InboundRequest

if TYPE_CHECKING:
    from .hub import Hub

#: Deepest request body the API parses. More than the depth views keep (jsonsafe.MAX_DEPTH:
#: a kernel's run report may carry a deeper value, which the hub stores cut), and far from
#: the recursion limit of the handlers that parse and encode it.
API_MAX_DEPTH = MAX_REQUEST_DEPTH


class HookNBAPIHandler(APIHandler):
    """Base for the kernel-facing API: JSON in and out, errors as ``{"error": ...}``."""

    hub: Hub

    def initialize(self, hub: Hub, **kwargs: Any) -> None:
        self.hub = hub
        super().initialize(**kwargs)

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        await self.hub.ready()

    def json_body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            value = loads(self.request.body, max_depth=API_MAX_DEPTH)
        except JSONTooDeep:
            raise HubError(
                400, f"request body is nested deeper than {API_MAX_DEPTH} levels"
            ) from None
        except ValueError as exc:
            raise HubError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise HubError(400, "request body must be a JSON object")
        return value

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        # Views are built from stored rows, which may hold anything (bytes, lone surrogates):
        # the answer is JSON whatever they hold.
        self.finish(dumps_anything(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        if isinstance(exc, HubError):
            body = exc.to_json()
            if isinstance(exc.extra.get("retryAfter"), int | float):
                self.set_header("Retry-After", str(max(1, math.ceil(exc.extra["retryAfter"]))))
        elif isinstance(exc, web.HTTPError):
            body = {"error": exc.log_message or self._reason}
        else:
            body = {"error": self._reason}
        self.finish(json.dumps(body))


def required(body: Mapping[str, Any], name: str, kind: type = str) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is str and not value):
        raise HubError(400, f"{name!r} is required ({kind.__name__})")
    return value


def headers_list(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [tuple(pair) for pair in value if isinstance(pair, list | tuple) and len(pair) == 2]
    else:
        raise HubError(400, "headers must be an object or a list of [name, value] pairs")
    return [(str(name), str(val)) for name, val in pairs]


def inbound_request(value: Any) -> InboundRequest:
    """A callback request in its wire form (:func:`hooknb.server.rows.callback_json`), read back."""
    if not isinstance(value, Mapping):
        raise HubError(400, "'request' must be an object")
    method = value.get("method")
    received = value.get("received")
    content_type = value.get("contentType")
    queries = value.get("queries") or {}
    body = value.get("body") or {"encoding": "utf-8", "data": ""}
    if not isinstance(method, str) or not method:
        raise HubError(400, "request.method is required")
    if not isinstance(received, int | float) or isinstance(received, bool):
        raise HubError(400, "request.received must be a time in seconds")
    if content_type is not None and not isinstance(content_type, str):
        raise HubError(400, "request.contentType must be a string")
    if not isinstance(queries, Mapping) or not isinstance(body, Mapping):
        raise HubError(400, "request.queries and request.body must be objects")
    return InboundRequest(
        method=method,
        headers=headers_list(value.get("headers")),
        queries=dict(queries),
        content_type=content_type,
        body=decode_body(body),
        received=float(received),
    )


def decode_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes of a request's ``{"encoding", "data"}`` body; a bad one is a 400."""
    try:
        return decode_wire_body(payload)
    except ValueError as exc:
        raise HubError(400, str(exc)) from None
