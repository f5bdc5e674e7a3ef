"""Outputs of triggers and actions: headers, body, queries, status code, raw bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..http_model import CallbackWire, ResponseWire, decode_wire_body, is_json_type
from ..wdl.content import envelope, kept_as_content

_TEXT_PREVIEW = 2000


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """JSON when the content type says so (and it parses), else text, else the bytes."""
    if not raw:
        return None
    if is_json_type(content_type):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # not JSON after all, or nested beyond reason
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


@dataclass
class Outputs:
    """What a trigger or action produced, in Logic Apps' terms.

    ``headers`` is case-insensitive; ``body`` is parsed JSON for JSON content
    (``application/json``, ``text/json``, ``+json``), text for other UTF-8 content, bytes
    otherwise. ``raw`` is the exact bytes received for a callback (a trigger's or a webhook
    step's); for an HTTP step's response, which the hub sends already parsed, it is the body
    serialised again (text as UTF-8, anything else as JSON), not the bytes on the wire.
    """

    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: Any = None
    queries: dict[str, Any] = field(default_factory=dict)
    status_code: int | None = None
    raw: bytes = b""
    content_type: str | None = None
    method: str | None = None
    received: float | None = None

    @classmethod
    def from_callback(cls, callback: CallbackWire, status_code: int | None = None) -> Outputs:
        """From the hub's wire form of a stored callback request."""
        raw = decode_wire_body(callback.get("body"))
        content_type = callback.get("contentType")
        return cls(
            headers=httpx.Headers([(name, value) for name, value in callback.get("headers", [])]),
            body=decode_body(raw, content_type),
            queries=dict(callback.get("queries") or {}),
            status_code=status_code,
            raw=raw,
            content_type=content_type,
            method=callback.get("method"),
            received=callback.get("received"),
        )

    @classmethod
    def from_response(cls, response: ResponseWire | Mapping[str, Any] | None) -> Outputs:
        """From an outbound call's response as the hub reports it (statusCode/headers/body)."""
        response = response or {}
        body = response.get("body")
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = httpx.Headers(response.get("headers") or {})
        return cls(
            headers=headers,
            body=body,
            status_code=response.get("statusCode"),
            raw=raw if body is not None else b"",
            content_type=headers.get("content-type"),
        )

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Outputs:
        """From the Logic Apps shape :meth:`to_json` makes (as run reports carry it)."""
        body = value.get("body")
        headers = value.get("headers") or {}
        return cls(
            headers=httpx.Headers(headers if isinstance(headers, Mapping) else {}),
            body=body,
            queries=dict(value.get("queries") or {}),
            status_code=value.get("statusCode"),
            raw=b""
            if body is None
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode(),
        )

    def to_json(self) -> dict[str, Any]:
        """The Logic Apps shape (``headers``, ``body``, ``statusCode``, ``queries``), JSON-safe."""
        body = self.body
        if self.raw and kept_as_content(self.content_type):
            # XML, form data and binary content as Logic Apps keeps it ({"$content-type",
            # "$content"}, with "$formdata" or "$multipart"), which xml(), xpath(), base64()
            # and the form-data functions read.
            body = envelope(self.raw, self.content_type)
        value: dict[str, Any] = {
            "headers": headers_dict(self.headers),
            "body": jsonable(body),
        }
        if self.queries:
            value["queries"] = self.queries
        if self.status_code is not None:
            value["statusCode"] = self.status_code
        return value

    def __repr__(self) -> str:
        body = self.body
        if isinstance(body, bytes):
            shown = f"<{len(body)} bytes {self.content_type or ''}>".replace(" >", ">")
        else:
            shown = repr(body)
            if len(shown) > _TEXT_PREVIEW:
                shown = shown[:_TEXT_PREVIEW] + f"... ({len(self.raw)} bytes)"
        return f"Outputs(status_code={self.status_code}, body={shown}, headers={len(self.headers)})"


def headers_dict(headers: httpx.Headers) -> dict[str, str]:
    """Headers as a plain dict, in the sender's spelling (repeated names joined by commas)."""
    merged: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for raw_name, raw_value in headers.raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        key = spelling.setdefault(name.lower(), name)
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def jsonable(value: Any) -> Any:
    """A JSON-safe version of a Python value (bytes → base64 content, others → repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return {
            "$content-type": "application/octet-stream",
            "$content": base64.b64encode(value).decode(),
        }
    if isinstance(value, Outputs):
        return value.to_json()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return repr(value)
