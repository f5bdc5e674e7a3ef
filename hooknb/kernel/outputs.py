"""Outputs of triggers and actions: headers, body, queries, status code, raw bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..http_model import CallbackWire, ResponseWire, decode_wire_body, is_json_type
from ..jsonsafe import MAX_DEPTH, loads, truncated_marker
from ..wdl.content import envelope, kept_as_content

__all__ = ["CREDENTIAL_HEADERS", "Outputs", "decode_body", "headers_dict", "jsonable"]

_TEXT_PREVIEW = 2000

#: Inbound headers that carry the sender's credentials: left out of trigger and action outputs
#: unless asked for (Logic Apps' ``IncludeAuthorizationHeadersInOutputs``).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """JSON when the content type says so (and it parses within ``jsonsafe.MAX_DEPTH``
    levels, as the server does), else text, else the bytes."""
    if not raw:
        return None
    if is_json_type(content_type):
        try:
            return loads(raw)
        except ValueError:  # not JSON after all, or nested deeper than anything is parsed
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
    def from_callback(
        cls,
        callback: CallbackWire,
        status_code: int | None = None,
        *,
        include_authorization_headers: bool = False,
    ) -> Outputs:
        """From the hub's wire form of a stored callback request.

        The sender's ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` headers are
        left out unless ``include_authorization_headers`` (the hub keeps the request exact).
        """
        raw = decode_wire_body(callback.get("body"))
        content_type = callback.get("contentType")
        pairs = [(name, value) for name, value in callback.get("headers", [])]
        if not include_authorization_headers:
            pairs = [(name, val) for name, val in pairs if name.lower() not in CREDENTIAL_HEADERS]
        return cls(
            headers=httpx.Headers(pairs),
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

    def to_json(self, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
        """The Logic Apps shape (``headers``, ``body``, ``statusCode``, ``queries``), JSON-safe
        (the body cut below ``max_depth`` levels, see :func:`jsonable`)."""
        body = self.body
        if self.raw and kept_as_content(self.content_type):
            # XML, form data and binary content as Logic Apps keeps it ({"$content-type",
            # "$content"}, with "$formdata" or "$multipart"), which xml(), xpath(), base64()
            # and the form-data functions read.
            body = envelope(self.raw, self.content_type)
        value: dict[str, Any] = {
            "headers": headers_dict(self.headers),
            "body": jsonable(body, max(max_depth - 1, 1)),
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


# Tuples, not ``bool | int | ...``: a union written in the call builds a new object each time,
# and jsonable runs for every value of every report and expression context.
_SCALARS = (bool, int, float, str)
_MAPPINGS = (dict, Mapping)  # dict first: most values are dicts, and it needs no ABC check
_CONTAINERS = (dict, list, tuple, Mapping, set, frozenset)


def jsonable(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON-safe version of a Python value: bytes become Logic Apps' binary form
    (``$content``, base64), :class:`Outputs` their :meth:`~Outputs.to_json`, mappings and
    sequences copies, other objects their ``repr``. Objects and arrays deeper than
    ``max_depth`` levels become a ``jsonsafe.truncated_marker``, so the result can always be
    encoded, sent and parsed (by the hub too). Iterative: any depth.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        item, parent, key, level = stack.pop()
        if item is None or isinstance(item, _SCALARS):
            parent[key] = item
        elif isinstance(item, bytes):
            parent[key] = {
                "$content-type": "application/octet-stream",
                "$content": base64.b64encode(item).decode(),
            }
        elif isinstance(item, Outputs):
            stack.append((item.to_json(), parent, key, level))
        elif isinstance(item, _CONTAINERS):
            if level > max_depth or (level == max_depth and not _flat(item)):
                parent[key] = truncated_marker(repr(item)[:2000] if _small(item) else _kind(item))
            elif isinstance(item, _MAPPINGS):
                copy: dict[str, Any] = {}
                parent[key] = copy
                for name, child in item.items():
                    copy[str(name)] = None
                    stack.append((child, copy, str(name), level + 1))
            else:
                items: list[Any] = [None] * len(item)
                parent[key] = items
                stack.extend((child, items, i, level + 1) for i, child in enumerate(item))
        else:
            parent[key] = repr(item)
    return root[0]


def _flat(value: Any) -> bool:
    children = value.values() if isinstance(value, Mapping) else value
    return not any(isinstance(c, Mapping | list | tuple | set | frozenset) for c in children)


def _small(value: Any) -> bool:
    # repr() of a deep value recurses: only a shallow look is safe.
    children = value.values() if isinstance(value, Mapping) else value
    return len(value) <= 16 and all(
        not isinstance(c, Mapping | list | tuple | set | frozenset) or not c for c in children
    )


def _kind(value: Any) -> str:
    return f"<{type(value).__name__} of {len(value)} items, nested too deeply to show>"
