"""Masking credentials in HTTP request objects and texts, so they can be shown and logged.

The rules are deliberately broad: over-masking a log line or a view is harmless, a leaked
secret is not. Run views end up in shared notebooks, so kernels mask with the same rules as
the server's logs and API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .authentication import SECRET_FIELDS

__all__ = [
    "MASK",
    "SECRET_HEADER_RE",
    "SECURED",
    "redact",
    "redact_shown",
    "redact_text",
    "scrub",
    "secret_values",
]

MASK = "*****"
#: What views show instead of a step's or trigger's secure inputs or outputs (Logic Apps'
#: ``runtimeConfiguration.secureData``, in Logic Apps' words).
SECURED = "Content not shown due to security configuration."

#: Header names that carry credentials.
SECRET_HEADER_RE = re.compile(
    r"auth|cookie|token|secret|passw|api-?key|apikey|subscription-key|functions-key|signature"
    r"|credential|session",
    re.IGNORECASE,
)
# Query parameters that carry credentials (SAS signatures, Functions keys, tokens).
_SECRET_QUERY_RE = re.compile(
    r"^(sig|signature|code|key|sas|pwd|.*api[-_]?key|.*token|.*secret|.*password)$",
    re.IGNORECASE,
)
# JSON body keys that hold credentials.
_SECRET_KEY_RE = re.compile(
    r"passw|secret|token|api[-_]?key|connectionstring|sharedaccesskey|accountkey|credential"
    r"|private[-_]?key",
    re.IGNORECASE,
)
# Both are applied to text from outside (a service's answer), so neither may restart a long
# scan at every position: a name stops at the next '?', a scheme starts only where a run of
# scheme characters starts ('????...' or 'a.a.a...' would otherwise take quadratic time).
_QUERY_PARAM_IN_TEXT_RE = re.compile(r"([?&])([^=&#?\s\"']+)=([^&#\s\"']*)")
_USERINFO_RE = re.compile(
    r"((?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s\"']+):([^/@\s\"']+)@"
)
_CONN_STRING_KEY_RE = re.compile(
    r"((?:SharedAccessKey|AccountKey|SharedAccessSignature|Password|Pwd)=)([^;\s\"']+)",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Mask credentials recognisable inside free text (URLs, connection strings, tokens)."""

    def query(match: re.Match[str]) -> str:
        sep, name, value = match.groups()
        return f"{sep}{name}={MASK}" if value and _SECRET_QUERY_RE.match(name) else match[0]

    text = _QUERY_PARAM_IN_TEXT_RE.sub(query, text)
    text = _USERINFO_RE.sub(lambda m: f"{m[1]}:{MASK}@", text)
    text = _CONN_STRING_KEY_RE.sub(lambda m: f"{m[1]}{MASK}", text)
    return _BEARER_RE.sub(lambda m: f"{m[1]} {MASK}", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY_RE.search(k) else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request spec (raw or normalized, valid or not) that is safe to show or log.

    Masked with ``*****``: the secret fields of ``authentication`` (password, pfx, secret,
    value), credential-like headers (Authorization, Cookie, *key*, *token*, ...), credential-like
    query parameters (``sig``, ``code``, ``key``, ...) in ``uri`` and ``queries``, passwords in
    URLs, and - best effort - credential-looking keys and strings in the body.
    """
    if not isinstance(spec, Mapping):
        return {"$invalid": MASK}
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "authentication" and isinstance(value, Mapping):
            out[key] = {
                k: MASK if k in SECRET_FIELDS and v is not None else v for k, v in value.items()
            }
        elif key == "headers" and isinstance(value, Mapping):
            out[key] = {
                k: MASK if SECRET_HEADER_RE.search(str(k)) else _redact_value(v)
                for k, v in value.items()
            }
        elif key == "queries" and isinstance(value, Mapping):
            out[key] = {
                k: MASK if _SECRET_QUERY_RE.match(str(k)) else _redact_value(v)
                for k, v in value.items()
            }
        else:
            out[key] = _redact_value(value)
    return out


def redact_shown(value: Any) -> Any:
    """A copy of any value shown to people (a response, an error message) with credentials
    masked as in :func:`redact`'s body: ``sig=`` and other secret query parameters in URLs,
    passwords in URLs, tokens, credential-named keys. A service that echoes the callback URL
    it was given does not leak its signature this way."""
    return _redact_value(value)


def secret_values(req: Mapping[str, Any]) -> list[str]:
    """Literal secrets of a normalized request, to scrub from anything echoed back."""
    found: list[str] = []
    auth = req.get("authentication") or {}
    found += [v for k, v in auth.items() if k in SECRET_FIELDS and isinstance(v, str)]
    found += [v for k, v in req.get("headers", {}).items() if SECRET_HEADER_RE.search(k)]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (from :func:`secret_values`) and recognisable
    credentials masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return redact_text(text)
