"""The base of the Jupyter-authenticated API handlers, and what they share to read requests.

Every API method is ``@web.authenticated`` (so the routes also work with
``ServerApp.allow_unauthenticated_access=False``); answers are JSON, refusals
``{"error": ...}`` with the status a :class:`~hooknb.server.http_errors.HubError` names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..jsonsafe import MAX_REQUEST_DEPTH, JSONTooDeep, dumps_anything, loads
from .http_errors import HubError
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


def decode_body(payload: Mapping[str, Any]) -> bytes:
    data = payload.get("data")
    if not isinstance(data, str):
        raise HubError(400, "body.data must be a string")
    if payload.get("encoding") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise HubError(400, "body.data is not valid base64") from None
    return data.encode("utf-8")
