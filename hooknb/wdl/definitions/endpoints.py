"""Endpoints (URI rewrites applied at run time; see the package docs) and ARM expressions.

ARM template expressions (``"[parameters('x')]"``) are not WDL: ARM replaces them when it deploys
a template (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import DefinitionError


def _check_endpoints(endpoints: Mapping[str, str] | None) -> dict[str, str]:
    if endpoints is None:
        return {}
    if not isinstance(endpoints, Mapping):
        raise DefinitionError("endpoints is a mapping of URI (or URI prefix) to URL")
    out = {}
    for key, value in endpoints.items():
        if not isinstance(key, str) or not key or not isinstance(value, str) or not value:
            raise DefinitionError(f"endpoints: {key!r} -> {value!r} is not a pair of strings")
        out[key] = value
    return out


def is_arm_expression(value: Any) -> bool:
    """Whether a string is an ARM template expression: ``[function(...)...]``.

    ``[[`` escapes a literal ``[`` in ARM, and a bracketed word such as ``[hubname]`` is a
    placeholder, not an expression (ARM expressions start with a function call).
    """
    return isinstance(value, str) and bool(_ARM_EXPRESSION.match(value))


_ARM_EXPRESSION = re.compile(r"\[(?!\[)\s*[A-Za-z_][\w.]*\s*\(.*\]\s*\Z", re.DOTALL)


def apply_endpoints(request: Any, endpoints: Mapping[str, str]) -> Any:
    """``request`` with its ``uri``/``url`` rewritten by ``endpoints`` (a new dict).

    An exact key wins; otherwise the longest key ending in ``/`` that prefixes the URI.
    """
    if not endpoints or not isinstance(request, Mapping):
        return request
    out = dict(request)
    for key in ("uri", "url"):
        uri = out.get(key)
        if isinstance(uri, str):
            out[key] = rewrite_uri(uri, endpoints)
    return out


def rewrite_uri(uri: str, endpoints: Mapping[str, str]) -> str:
    """One URI rewritten by ``endpoints`` (see :func:`apply_endpoints`)."""
    if uri in endpoints:
        return endpoints[uri]
    best = ""
    for key in endpoints:
        if key.endswith("/") and uri.startswith(key) and len(key) > len(best):
            best = key
    return endpoints[best] + uri[len(best) :] if best else uri
