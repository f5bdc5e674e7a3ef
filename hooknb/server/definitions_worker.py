"""The definitions worker: the process in which the server runs the Logic Apps definitions
handed to it, so that their runs need no kernel.

The worker is a client of this server exactly as a kernel is (``python -m
hooknb.kernel.worker``, talking to the API with the server's own token): one run engine, one
path to the hub. The server starts it when it has definitions to run, starts it again (backing
off) if it exits, and stops it with the server. The worker also exits by itself when its stdin
closes, so a server killed with ``kill -9`` takes its worker along, and the next server's
worker adopts the runs it left (they are orphans like any gone kernel's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Sequence

_FIRST_DELAY = 1.0
_MAX_DELAY = 60.0
# A worker that ran this long before exiting was working: start the next one without delay.
_HEALTHY_SECONDS = 30.0


class DefinitionsWorker:
    """Starts, watches and stops the definitions worker process of one server."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        log: logging.Logger,
        command: Sequence[str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.log = log
        #: The worker's client id, so the hub can tell it about new definitions.
        self.client = f"hooknb-worker-{secrets.token_hex(6)}"
        self.command = list(command or [sys.executable, "-m", "hooknb.kernel.worker"])
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def ensure_running(self) -> None:
        """Start the worker unless it runs (or is about to be started again)."""
        if self._stopping or (self._supervisor is not None and not self._supervisor.done()):
            return
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="hooknb-definitions-worker"
        )

    async def _supervise(self) -> None:
        delay = _FIRST_DELAY
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            try:
                await self._start()
            except OSError as exc:
                self.log.error("hooknb could not start its definitions worker: %s", exc)
            else:
                assert self._process is not None
                code = await self._process.wait()
                if self._stopping:
                    return
                self.log.warning(
                    "hooknb's definitions worker exited (%s); starting it again in %.0f s",
                    code,
                    delay,
                )
            if loop.time() - started > _HEALTHY_SECONDS:
                delay = _FIRST_DELAY
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)

    async def _start(self) -> None:
        env = {
            **os.environ,
            "HOOKNB_URL": self.url,
            "HOOKNB_TOKEN": self.token,
            "HOOKNB_CLIENT_ID": self.client,
        }
        # The worker's own URL choice must not go through a proxy: it calls this server.
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        self._process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, env=env
        )
        self.starts += 1
        self.log.info("hooknb definitions worker started (pid %s)", self._process.pid)

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to finish (its stdin closes), then end it if it does not."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
