"""This server's link to a hooknb receiver: the JupyterHub service that takes callbacks for
every user at stable URLs under the Hub (:mod:`hooknb.jupyterhub`).

With a receiver, callback URLs point at ``<receiver>/callback/<user>/<id>?sig=...`` instead of
this server, so they keep working while the server is stopped: the receiver checks the
signature, stores the callback, and forwards it to this server's ``hooknb/api/forwarded`` route
when it runs. The signatures are still made here, with this server's access keys; the receiver
needs the same keys to check them, so this server registers them (and its URL prefix) with the
receiver over the receiver's Hub-authenticated API, using the server's own Hub token. The keys
travel nowhere else: not in the environment, not to kernels, not in any URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from .public_urls import Identity, with_slash

_MAX_RETRY_SECONDS = 60.0


class ReceiverLink:
    """Registers this server's keys with the receiver at start and whenever they change."""

    def __init__(
        self,
        *,
        public_url: str,
        api_url: str,
        token: str,
        identity: Identity,
        keys: Callable[[], dict[str, str]],
        log: logging.Logger,
        timeout: float = 30.0,
    ) -> None:
        self.public_url = with_slash(public_url)
        self.api_url = with_slash(api_url or public_url)
        self._token = token
        self.identity = identity
        self._keys = keys
        self.log = log
        self._timeout = timeout
        self.registered = False
        self.error: str | None = None
        self.last_registered: float | None = None
        self.pending: int | None = None
        self._wanted = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def callback_base(self) -> str:
        """Where this server's callback ids go: ``<receiver>callback/<user>/[<server>/]``."""
        base = f"{self.public_url}callback/{quote(self.identity.user, safe='')}/"
        if self.identity.server:
            base += quote(self.identity.server, safe="") + "/"
        return base

    async def start(self, first_attempt_timeout: float = 5.0) -> None:
        """Start registering in the background; return after the first attempt (bounded)."""
        self._wanted.set()
        self._task = asyncio.get_running_loop().create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), first_attempt_timeout)

    def keys_changed(self) -> None:
        """Register again (after an access key was regenerated)."""
        self.registered = False
        self._wanted.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 1.0
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self._register()
            except Exception as exc:
                self.registered = False
                self.error = _describe(exc)
                self.log.warning(
                    "hooknb: cannot register with the receiver at %s (retrying in %.0f s): %s",
                    self.api_url,
                    delay,
                    self.error,
                )
                self._first_attempt.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY_SECONDS)
                self._wanted.set()
                continue
            delay = 1.0
            self._first_attempt.set()

    async def _register(self) -> None:
        body = {
            "server": self.identity.server,
            "prefix": self.identity.prefix,
            "keys": self._keys(),
        }
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(
                f"{self.api_url}api/register",
                json=body,
                headers={"Authorization": f"token {self._token}"},
            )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        answer = response.json()
        self.registered = True
        self.error = None
        self.last_registered = time.time()
        self.pending = answer.get("pending")
        self.log.info(
            "hooknb: registered with the receiver at %s (%s callbacks waiting for this server)",
            self.api_url,
            self.pending,
        )

    def describe(self) -> dict[str, Any]:
        """The link's state for the status API and the page (no keys, no token)."""
        return {
            "url": self.public_url,
            "registered": self.registered,
            "lastRegistered": self.last_registered,
            "error": self.error,
        }


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc) or type(exc).__name__
