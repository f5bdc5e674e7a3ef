"""The HTTP action: ``POST <base>hooknb/api/runs/<run>/http`` makes a run's request.

Kernels never call outside services themselves: as for webhook subscriptions, the hub makes
the call, with the request's ``retryPolicy`` and ``authentication`` (:class:`OutboundCaller`).

Request body::

    {"step": "<action name>", "request": {<Logic Apps HTTP request object>},
     "timeout": <seconds or null>, "asyncPattern": true}

Answer ``200`` with the final response, whatever its status (a non-2xx one fails the action
on the kernel side, as in Logic Apps)::

    {"statusCode": 200, "headers": {...}, "body": ..., "attempts": [...], "polls": 0}

The asynchronous polling pattern
(https://learn.microsoft.com/azure/logic-apps/logic-apps-create-api-app):
when the response is ``202 Accepted`` with a ``location`` header, the hub waits
``retry-after`` seconds (default 1) and GETs that URL (with the request's retry policy; with
its credentials - ``authentication``, ``cookie``, Authorization and Cookie headers - only when
the URL is on the first request's origin, as httpx does on redirects), again while it answers
202, until another status; that one is the result.
``"asyncPattern": false`` (``DisableAsyncPattern``) returns the 202 as is. ``timeout`` (the
action's ``limit.timeout``; default: the hub's action timeout) bounds the whole call.

Errors: ``400`` for a request object that is not valid (``kind: config``); ``404`` for an
unknown run; ``409`` when the run has ended; ``502`` when no response came (connection,
credentials; with the attempts); ``504`` with ``"timedOut": true`` when ``timeout`` passed.

The call belongs to the run, not to the kernel's request (see ``Hub.http_step``): it goes on
if the kernel goes away, its outcome joins the run's history, and it stops when the run ends or
is cancelled. A call under way when the server restarts is made again when the run's kernel
asks for the step again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from tornado import web

from ._retry import parse_retry_after
from .api_handler import HookNBAPIHandler, required
from .http_errors import HubError
from .outbound import Attempt, OutboundCaller, OutboundError, OutboundResponse
from .rows import StepOrder, secure_bits

__all__ = ["RunHttpHandler", "perform"]

#: How long to wait between polls when a 202 gives no ``retry-after`` (Logic Apps: 1 s).
DEFAULT_POLL_INTERVAL = 1.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


async def perform(
    caller: OutboundCaller,
    request: Mapping[str, Any],
    *,
    extra_headers: Mapping[str, str] | None = None,
    async_pattern: bool = True,
    timeout: float,
    what: str = "Http",
    log_request: bool = True,
) -> tuple[int, dict[str, Any]]:
    """Make the request (and poll a 202's ``location``); return (API status, API answer).
    ``log_request=False``: a secure request, kept out of the debug log."""
    attempts: list[Attempt] = []
    polls = 0
    response: OutboundResponse | None = None
    started = time.monotonic()

    async def call(spec: Mapping[str, Any], label: str) -> OutboundResponse | dict[str, Any]:
        try:
            result = await caller.call(
                spec, extra_headers=extra_headers, what=label, log_request=log_request
            )
        except OutboundError as exc:
            attempts.extend(exc.attempts)
            if exc.kind == "http" and exc.response is not None:
                return exc.response
            return {"error": str(exc), "kind": exc.kind}
        attempts.extend(result.attempts)
        return result.response

    try:
        async with asyncio.timeout(timeout):
            outcome = await call(request, what)
            url = str(request.get("uri") or request.get("url") or "")
            while True:
                if isinstance(outcome, dict):
                    status = 400 if outcome["kind"] == "config" else 502
                    return status, {**outcome, "attempts": _attempts(attempts), "polls": polls}
                response = outcome
                location = _header(response.headers, "location")
                if not (async_pattern and response.status_code == 202 and location):
                    break
                delay = parse_retry_after(_header(response.headers, "retry-after"))
                await asyncio.sleep(DEFAULT_POLL_INTERVAL if delay is None else delay)
                url = urljoin(url, location)
                poll = _poll_request(request, url)
                polls += 1
                outcome = await call(poll, f"{what} poll {polls}")
    except TimeoutError:
        elapsed = time.monotonic() - started
        answer: dict[str, Any] = {
            "error": f"no final response within {timeout:g} s "
            f"({elapsed:.1f} s, {polls} poll(s) of the location)",
            "kind": "timeout",
            "timedOut": True,
            "attempts": _attempts(attempts),
            "polls": polls,
        }
        if response is not None:
            answer["lastResponse"] = response.to_json()
        return 504, answer
    return 200, {**response.to_json(), "attempts": _attempts(attempts), "polls": polls}


# Request headers that carry credentials: sent on a poll only to the first request's origin.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _poll_request(request: Mapping[str, Any], url: str) -> dict[str, Any]:
    """The GET of a 202's ``location``: with the action's retry policy, and with its
    credentials (``authentication``, ``cookie``, Authorization/Cookie headers) only when the
    location is on the first request's origin, as httpx does on redirects. A service must not
    be able to send the action's credentials to a host of its choosing."""
    poll: dict[str, Any] = {"method": "GET", "uri": url}
    if request.get("retryPolicy") is not None:
        poll["retryPolicy"] = request["retryPolicy"]
    first = str(request.get("uri") or request.get("url") or "")
    if _origin(first) != _origin(url):
        return poll
    if request.get("authentication") is not None:
        poll["authentication"] = request["authentication"]
    if request.get("cookie") is not None:
        poll["cookie"] = request["cookie"]
    headers = request.get("headers")
    if isinstance(headers, Mapping):
        kept = {k: v for k, v in headers.items() if str(k).lower() in _CREDENTIAL_HEADERS}
        if kept:
            poll["headers"] = kept
    return poll


def _attempts(attempts: list[Attempt]) -> list[dict[str, Any]]:
    return [a.to_json() for a in attempts]


class RunHttpHandler(HookNBAPIHandler):
    """``POST api/runs/<run>/http``: an Http action's request, made by the hub for the run
    (``secure``: the parts the step keeps secure, kept with it in the run's history)."""

    @web.authenticated
    async def post(self, run_id: str) -> None:
        body = self.json_body()
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise HubError(400, "'timeout' must be a positive number of seconds")
        async_pattern = body.get("asyncPattern", True)
        if not isinstance(async_pattern, bool):
            raise HubError(400, "'asyncPattern' must be true or false")
        status, answer = await self.hub.http_step(
            run_id,
            required(body, "step"),
            str(body.get("client") or ""),
            required(body, "request", dict),
            timeout=timeout,
            async_pattern=async_pattern,
            order=StepOrder.from_json(body),
            secure=secure_bits(body.get("secure")),
        )
        self.reply(answer, status)
