"""A Logic Apps HTTP request object, validated and normalized.

The object is the ``subscribe``/``unsubscribe`` of an HTTP Webhook trigger or action and the
inputs of an HTTP action
(https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers)::

    {"method": "POST", "uri": "https://service/subscribe", "headers": {...}, "queries": {...},
     "body": {...}, "authentication": {...}, "retryPolicy": {...}}

``url`` is accepted as an alias of ``uri`` (the Logic Apps doc template uses it); giving both
with different values is an error. Unknown fields are errors, so typos surface early.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .authentication import normalize_authentication
from .retry_policy import normalize_retry_policy

__all__ = ["BINARY_BODY_KEYS", "HTTP_REQUEST_KEYS", "METHODS", "normalize_request", "str_map"]

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: The fields of a Logic Apps HTTP request object (subscribe, unsubscribe, Http inputs).
HTTP_REQUEST_KEYS = (
    "method",
    "uri",
    "url",
    "headers",
    "queries",
    "body",
    "cookie",
    "authentication",
    "retryPolicy",
)
#: A body ``{"$content-type": ..., "$content": <base64>}`` is Logic Apps' form of binary content.
BINARY_BODY_KEYS = frozenset({"$content-type", "$content"})

_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 header field name


def _scalar_to_str(value: Any, where: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"  # JSON spelling, as an expression would produce
    elif isinstance(value, int | float):
        text = json.dumps(value)
    else:
        raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
    if any(c in text for c in "\r\n\0"):
        raise ValueError(f"{where}: must not contain line breaks or NUL characters")
    return text


def str_map(obj: Any, where: str, *, header_names: bool) -> dict[str, str]:
    """``headers`` or ``queries`` as str→str; ValueError names the wrong entry.

    With ``header_names``, names must be HTTP header names and unique regardless of case.
    """
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object of name/value strings, got {obj!r}")
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: names must be non-empty strings, got {name!r}")
        if header_names:
            if not _TOKEN_RE.match(name):
                raise ValueError(f"{where}: {name!r} is not a valid HTTP header name")
            if name.lower() in seen:
                raise ValueError(
                    f"{where}: {seen[name.lower()]!r} and {name!r} are the same header "
                    "(names are case-insensitive)"
                )
            seen[name.lower()] = name
        out[name] = _scalar_to_str(value, f"{where}.{name}")
    return out


def _check_uri(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{where}: expected an http(s) URL string, got {raw!r}")
    uri = raw.strip()
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{where}: {uri!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        raise ValueError(f"{where}: only http and https URLs are supported, not {scheme!r}")
    if not host:
        raise ValueError(f"{where}: {uri!r} has no host name")
    if any(c.isspace() or ord(c) < 32 for c in uri):
        raise ValueError(f"{where}: the URL must not contain spaces or control characters")
    return uri


def _check_body(body: Any, where: str) -> Any:
    if isinstance(body, Mapping) and set(body) == BINARY_BODY_KEYS:
        if not isinstance(body["$content-type"], str) or not isinstance(body["$content"], str):
            raise ValueError(f"{where}: $content-type and $content must be strings")
        try:
            base64.b64decode(body["$content"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}.$content: not valid base64") from None
        return dict(body)
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a JSON value ({exc})") from None
    return body


def normalize_request(spec: Mapping[str, Any], *, what: str = "subscribe") -> dict[str, Any]:
    """Validate a Logic Apps HTTP request object and return it normalized.

    ``url`` becomes ``uri``; the method is upper-cased (GET, PUT, POST, PATCH, DELETE, HEAD,
    OPTIONS); ``headers`` and ``queries`` become str→str (numbers and booleans are converted the
    way an expression would print them); ``authentication`` gets its canonical type name and
    defaults; ``retryPolicy`` is validated and always present (``{"type": "default"}`` when
    absent). The result is plain JSON and passes through this function unchanged.

    Raises ValueError naming the wrong field, prefixed by ``what``, e.g.
    ``subscribe.authentication.type: 'Foo' is not one of Basic, Raw, ...``.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{what}: expected an object with at least method and uri, got {spec!r}")
    unknown = sorted(str(k) for k in spec if k not in HTTP_REQUEST_KEYS)
    if unknown:
        raise ValueError(
            f"{what}: unexpected field(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(HTTP_REQUEST_KEYS)})"
        )
    out: dict[str, Any] = {}

    method = spec.get("method")
    if method is None:
        raise ValueError(f"{what}.method: missing; it must be one of {', '.join(METHODS)}")
    if not isinstance(method, str) or method.strip().upper() not in METHODS:
        raise ValueError(f"{what}.method: {method!r} is not one of {', '.join(METHODS)}")
    out["method"] = method.strip().upper()

    uri, url = spec.get("uri"), spec.get("url")
    if uri is not None and url is not None and uri != url:
        raise ValueError(f"{what}: both uri and url are given and they differ; give only uri")
    if uri is None and url is None:
        raise ValueError(f"{what}.uri: missing; give the endpoint URL to call")
    key = "uri" if uri is not None else "url"
    out["uri"] = _check_uri(spec[key], f"{what}.{key}")

    out["headers"] = str_map(spec.get("headers"), f"{what}.headers", header_names=True)
    out["queries"] = str_map(spec.get("queries"), f"{what}.queries", header_names=False)
    if spec.get("body") is not None:
        out["body"] = _check_body(spec["body"], f"{what}.body")
    if spec.get("cookie") is not None:
        out["cookie"] = _scalar_to_str(spec["cookie"], f"{what}.cookie")
    if spec.get("authentication") is not None:
        out["authentication"] = normalize_authentication(
            spec["authentication"], f"{what}.authentication"
        )
    out["retryPolicy"] = normalize_retry_policy(spec.get("retryPolicy"), f"{what}.retryPolicy")
    return out
