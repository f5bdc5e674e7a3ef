"""The outbound HTTP caller for webhook subscribe/unsubscribe requests.

A subscribe/unsubscribe request is a Logic Apps HTTP request object::

    {"method": "POST", "uri": "https://service/subscribe", "headers": {...}, "queries": {...},
     "body": {...}, "authentication": {...}, "retryPolicy": {...}}

:func:`hooknb.http_model.normalize_request` validates one, :class:`OutboundCaller` performs it
with Logic Apps' retry policies and authentication types, and
:func:`hooknb.http_model.redact` makes a copy that is safe to show or log.

Decisions where Logic Apps is silent or where we deliberately differ:

* Redirects are not followed (a 3xx is a non-2xx final status): following them would forward
  credentials to wherever the redirect points.
* ``queries`` are appended to the URI's existing query string, which is kept byte-for-byte
  (callback URLs carry signatures that must not be re-encoded).
* JSON bodies are sent compact (``separators=(",", ":")``), UTF-8, non-ASCII unescaped.
  A body ``{"$content-type": ..., "$content": <base64>}`` (Logic Apps' binary representation)
  is sent as those bytes with that content type.
* When ``authentication`` is given, its ``Authorization`` header replaces one in ``headers``.
  ``Content-Length``, ``Transfer-Encoding`` and ``Connection`` from ``headers`` are dropped:
  the HTTP client owns message framing.
* TLS certificate verification failures are not retried: they cannot heal by themselves.
* Credentials that fail transiently (token endpoint unreachable, 5xx, 429, 408) are retried
  under the request's retry policy; definite failures (bad secret, bad PFX) are not.
* The 5-second minimum retry interval of Logic Apps is not enforced
  (see :mod:`hooknb.http_model.retry_policy`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from hooknb import jsonsafe
from hooknb._version import __version__

from ..http_model.redaction import redact, redact_text, scrub, secret_values
from ..http_model.request import BINARY_BODY_KEYS, normalize_request, str_map
from ..http_model.wire import ResponseWire, is_json_type
from ..wdl.content import envelope, kept_as_content
from ._retry import RetryPolicy, is_retryable_status, parse_retry_after
from .outbound_auth import (
    AuthError,
    TokenProvider,
    basic_header,
    client_cert_ssl_context,
    load_pfx,
    make_verify_context,
    pfx_cache_key,
)

__all__ = [
    "USER_AGENT",
    "Attempt",
    "OutboundCaller",
    "OutboundError",
    "OutboundResponse",
    "OutboundResult",
]

USER_AGENT = f"hooknb/{__version__} (+https://github.com/hooknb/hooknb)"
# Logic Apps' message size limit (100 MB,
# https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config); a bigger response
# is an error, not a hang.
DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024
# JSON answers longer than this are kept as text, not parsed: 100 MB of "[1,1,1,..." would
# become hundreds of megabytes of Python objects.
MAX_PARSED_RESPONSE_CHARS = 16 * 1024 * 1024

ErrorKind = Literal["config", "auth", "connection", "timeout", "http"]

_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


# --------------------------------------------------------------------------- results


@dataclass
class Attempt:
    """One try of the request."""

    started_at: float  # epoch seconds
    duration: float  # seconds
    status_code: int | None = None  # None when no response arrived
    error: str | None = None  # why the attempt failed without a response (or credentials)
    delay: float | None = None  # seconds waited after this attempt before the next one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OutboundResponse:
    """The final response, in the shape Logic Apps exposes as action outputs."""

    status_code: int
    headers: dict[str, str]
    body: Any  # JSON value, str, {"$content-type", "$content"} for binary, or None when empty

    def to_json(self) -> ResponseWire:
        """``{"statusCode", "headers", "body"}`` (Logic Apps action-output shape)."""
        return {"statusCode": self.status_code, "headers": dict(self.headers), "body": self.body}


@dataclass
class OutboundResult:
    """A successful (2xx) call: its response and every attempt it took."""

    response: OutboundResponse
    attempts: list[Attempt] = field(default_factory=list)


class OutboundError(Exception):
    """The call failed for good (after retries). ``str(e)`` is a one-line message for users.

    ``kind`` is ``"config"`` (bad request spec), ``"auth"`` (could not get credentials),
    ``"connection"``, ``"timeout"`` or ``"http"`` (non-2xx final status; ``response`` is set).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        attempts: list[Attempt] | None = None,
        response: OutboundResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = list(attempts or [])
        self.response = response

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None


# --------------------------------------------------------------------------- encoding


def _build_url(req: Mapping[str, Any]) -> str:
    uri: str = req["uri"]
    parts = urlsplit(uri)
    query = parts.query
    if req["queries"]:
        extra = urlencode(req["queries"], quote_via=quote)
        query = f"{query}&{extra}" if query else extra
    # The fragment is never sent over HTTP.
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _encode_body(req: Mapping[str, Any]) -> tuple[bytes | None, str | None]:
    """The bytes to send and the default Content-Type for them."""
    if "body" not in req:
        return None, None
    body = req["body"]
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    if isinstance(body, Mapping) and set(body) == BINARY_BODY_KEYS:
        return base64.b64decode(body["$content"]), body["$content-type"]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8"), "application/json"


def _merge_headers(
    req: Mapping[str, Any],
    extra_headers: Mapping[str, str] | None,
    content_type: str | None,
) -> dict[str, tuple[str, str]]:
    """Headers keyed by lower-case name, keeping each name's spelling."""
    merged: dict[str, tuple[str, str]] = {"user-agent": ("User-Agent", USER_AGENT)}
    if content_type is not None:
        merged["content-type"] = ("Content-Type", content_type)
    if "cookie" in req:
        merged["cookie"] = ("Cookie", req["cookie"])
    for name, value in req["headers"].items():
        if name.lower() not in _FRAMING_HEADERS:
            merged[name.lower()] = (name, value)
    user_names = {name.lower() for name in req["headers"]}
    extra = str_map(extra_headers, "extra_headers", header_names=True)
    for name, value in extra.items():
        lower = name.lower()
        if lower in _FRAMING_HEADERS:
            continue
        # Logic Apps always sends its own x-ms-* tracking headers; for anything else the
        # workflow author's explicit header is the one they meant.
        if lower.startswith("x-ms-") or lower not in user_names:
            merged[lower] = (name, value)
    return merged


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    mime, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip().strip('"')
    return mime.strip().lower(), charset


def parse_body(content: bytes, content_type: str | None) -> Any:
    """Decode a response body the way Logic Apps represents it in outputs: JSON parsed, text
    as text, XML, form data and binary as ``{"$content-type", "$content"}``
    (https://learn.microsoft.com/azure/logic-apps/logic-apps-content-type), which xml(),
    xpath() and base64() read."""
    if not content:
        return None
    if kept_as_content(content_type):
        return envelope(content, content_type)
    mime, charset = _media_type(content_type)
    try:
        text = content.decode(charset or "utf-8")
    except LookupError:  # unknown charset name: fall back to UTF-8
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    except UnicodeDecodeError:
        text = None
    if text is not None and is_json_type(mime):
        try:
            return jsonsafe.loads(text, max_chars=MAX_PARSED_RESPONSE_CHARS)
        except ValueError:
            pass  # not JSON, too deep or too big to handle safely: kept as its exact text
    if text is not None:
        return text
    return {
        "$content-type": content_type or "application/octet-stream",
        "$content": base64.b64encode(content).decode("ascii"),
    }


def _response_headers(response: httpx.Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    names: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        first = names.setdefault(name.lower(), name)
        headers[first] = f"{headers[first]}, {value}" if first in headers else value
    return headers


# --------------------------------------------------------------------------- transport errors


class _SendError(Exception):
    def __init__(self, kind: ErrorKind, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


def _describe(exc: BaseException) -> tuple[str, bool]:
    """A short description of a transport failure, and whether retrying can help."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or current.reason or str(current)
            return f"TLS certificate verification failed: {detail}", False
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current}", True
        if isinstance(current, ConnectionRefusedError):
            return "connection refused", True
        if isinstance(current, socket.gaierror):
            return f"could not resolve the host name ({current.strerror or current})", True
        if isinstance(current, ConnectionResetError):
            return "connection reset by the server", True
        current = current.__cause__ or current.__context__
    return (str(exc) or type(exc).__name__), True


# --------------------------------------------------------------------------- the caller


class OutboundCaller:
    """Performs subscribe/unsubscribe requests with Logic Apps' retry and auth semantics.

    ``timeout`` limits each attempt, from connecting to the last byte of the response (Logic
    Apps' outbound limit is 120 s); ``verify`` is True, False or the path of a CA bundle or
    directory trusted for HTTPS (a missing path raises here). Responses larger than
    ``max_response_bytes`` fail with kind ``"connection"``. ``rng`` draws the exponential
    retry delays (seed it for reproducible runs). One caller keeps connection pools and a
    token cache; close it with :meth:`aclose` (or ``async with``).
    """

    def __init__(
        self,
        *,
        timeout: float = 120.0,
        verify: bool | str = True,
        log: logging.Logger | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.timeout = float(timeout)
        self.verify = verify
        self.log = log or logging.getLogger(__name__)
        self.max_response_bytes = max_response_bytes
        self._rng = rng or random.Random()
        # Built now so a bad CA path fails at construction, not in the middle of a call.
        self._verify_ctx = make_verify_context(verify)
        self._client: httpx.AsyncClient | None = None
        self._cert_clients: dict[str, httpx.AsyncClient] = {}
        self._tokens = TokenProvider(timeout=self.timeout, log=self.log)

    async def __aenter__(self) -> OutboundCaller:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection pool and forget cached tokens."""
        clients = [self._client, *self._cert_clients.values()]
        self._client = None
        self._cert_clients = {}
        self._tokens.clear()
        for client in clients:
            if client is not None:
                await client.aclose()

    # -- clients ----------------------------------------------------------------

    def _new_client(self, ctx: ssl.SSLContext) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=ctx,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def _main_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._new_client(self._verify_ctx)
        return self._client

    def _cert_client(self, pfx_b64: str, password: str | None) -> httpx.AsyncClient:
        key = pfx_cache_key(pfx_b64, password)
        client = self._cert_clients.get(key)
        if client is None:
            pfx = load_pfx(pfx_b64, password, "ClientCertificate pfx")
            client = self._new_client(client_cert_ssl_context(pfx, self.verify))
            self._cert_clients[key] = client
        return client

    async def _authenticate(
        self, auth: Mapping[str, Any] | None
    ) -> tuple[httpx.AsyncClient, str | None]:
        """The client to use and the Authorization header value (None: no header)."""
        if not auth:
            return self._main_client(), None
        kind = auth["type"]
        if kind == "Basic":
            return self._main_client(), basic_header(auth["username"], auth["password"])
        if kind == "Raw":
            return self._main_client(), auth["value"]
        if kind == "ClientCertificate":
            return self._cert_client(auth["pfx"], auth.get("password")), None
        if kind == "ActiveDirectoryOAuth":
            token = await self._tokens.aad_token(self._main_client(), auth)
            return self._main_client(), f"Bearer {token}"
        if kind == "ManagedServiceIdentity":
            token = await self._tokens.msi_token(self._main_client(), auth)
            return self._main_client(), f"Bearer {token}"
        return self._main_client(), None

    # -- one attempt -------------------------------------------------------------

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
    ) -> tuple[httpx.Response, bytes]:
        try:
            async with asyncio.timeout(self.timeout):
                request = client.build_request(method, url, headers=headers, content=content)
                response = await client.send(request, stream=True)
                try:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            raise _SendError(
                                "connection",
                                f"the response body exceeds {self.max_response_bytes} bytes",
                                retryable=False,
                            )
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise _SendError(
                "timeout", f"no complete response within {self.timeout:g} s", retryable=True
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise _SendError("config", f"invalid URL: {exc}", retryable=False) from None
        except httpx.HTTPError as exc:
            message, retryable = _describe(exc)
            raise _SendError("connection", message, retryable=retryable) from None
        return response, b"".join(chunks)

    # -- the call ----------------------------------------------------------------

    async def call(
        self,
        spec: Mapping[str, Any],
        *,
        extra_headers: Mapping[str, str] | None = None,
        what: str = "subscribe",
        log_request: bool = True,
    ) -> OutboundResult:
        """Perform the request, retrying per its ``retryPolicy``; return the 2xx response.

        ``extra_headers`` (e.g. ``x-ms-client-tracking-id``) win over the spec's headers for
        ``x-ms-*`` names only. ``log_request=False`` keeps the request out of the debug log
        (a step's or trigger's secure inputs). Raises :class:`OutboundError` when the call
        fails for good.
        """
        try:
            req = normalize_request(spec, what=what)
            policy = RetryPolicy.from_json(req["retryPolicy"], f"{what}.retryPolicy")
            url = _build_url(req)
            content, content_type = _encode_body(req)
            merged = _merge_headers(req, extra_headers, content_type)
        except ValueError as exc:
            raise OutboundError(str(exc), kind="config") from None

        method = req["method"]
        secrets_ = secret_values(req)
        label = f"{what} {method} {redact_text(url)}"
        # A step's or trigger's secure inputs stay out of the log too (secureData).
        shown = json.dumps(redact(req)) if log_request else "(secure inputs: not logged)"
        self.log.debug("%s: request %s", label, shown)
        attempts: list[Attempt] = []

        while True:
            started_at, t0 = time.time(), time.monotonic()
            attempt = Attempt(started_at=started_at, duration=0.0)
            attempts.append(attempt)
            retry_after: float | None = None
            result: OutboundResponse | None = None
            try:
                client, authorization = await self._authenticate(req.get("authentication"))
                headers = dict(merged)
                if authorization is not None:
                    headers["authorization"] = ("Authorization", authorization)
                response, body = await self._send(
                    client, method, url, list(headers.values()), content
                )
            except AuthError as exc:
                attempt.duration = time.monotonic() - t0
                attempt.error = scrub(f"auth: {exc}", secrets_)
                kind, message, retryable = "auth", scrub(str(exc), secrets_), exc.transient
            except _SendError as exc:
                attempt.duration = time.monotonic() - t0
                attempt.error = scrub(f"{exc.kind}: {exc}", secrets_)
                kind, message, retryable = exc.kind, scrub(str(exc), secrets_), exc.retryable
            else:
                attempt.duration = time.monotonic() - t0
                attempt.status_code = response.status_code
                result = OutboundResponse(
                    status_code=response.status_code,
                    headers=_response_headers(response),
                    body=parse_body(body, response.headers.get("content-type")),
                )
                if 200 <= response.status_code <= 299:
                    return OutboundResult(result, attempts)
                kind, retryable = "http", is_retryable_status(response.status_code)
                message = self._http_message(result, response.reason_phrase, secrets_)
                retry_after = parse_retry_after(response.headers.get("retry-after"))

            retry = len(attempts)  # the number of the retry we would do next
            if not retryable or retry > policy.count:
                raise OutboundError(
                    self._final_message(label, kind, message, len(attempts)),
                    kind=kind,  # type: ignore[arg-type]
                    attempts=attempts,
                    response=result,
                )
            if retry_after is not None:
                delay = min(retry_after, policy.retry_after_cap)
            else:
                delay = policy.delay(retry, self._rng)
            attempt.delay = delay
            self.log.info(
                "%s: attempt %d failed (%s); retry %d of %d in %.3g s",
                label,
                len(attempts),
                message,
                retry,
                policy.count,
                delay,
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _http_message(response: OutboundResponse, reason: str, secrets_: list[str]) -> str:
        message = f"HTTP {response.status_code}{' ' + reason if reason else ''}"
        body = response.body
        if body is None:
            return message
        if isinstance(body, dict) and set(body) == BINARY_BODY_KEYS:
            size = len(base64.b64decode(body["$content"]))
            excerpt = f"<{size} bytes of {body['$content-type']}>"
        elif isinstance(body, str):
            excerpt = body[:4000]
        else:
            excerpt = json.dumps(body, ensure_ascii=False)[:4000]
        excerpt = scrub(" ".join(excerpt.split()), secrets_)
        if len(excerpt) > 200:
            excerpt = excerpt[:199] + "…"
        return f"{message}: {excerpt}" if excerpt else message

    @staticmethod
    def _final_message(label: str, kind: str, message: str, attempts: int) -> str:
        after = f" after {attempts} attempts" if attempts > 1 else ""
        if kind == "auth":
            return f"{label}: could not get credentials{after}: {message}"
        return f"{label} failed{after}: {message}"
