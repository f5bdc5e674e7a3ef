"""Outbound subscribe/unsubscribe calls: persisted in the outbox, made in order per owner.

Each owner (a trigger or a wait) has its calls made one at a time, in the order they were
queued, so an unsubscribe never overtakes the subscribe it undoes, and a subscription whose
subscribe call failed is never "unsubscribed". Rows still pending at shutdown are made when
the server starts again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .. import jsonsafe
from ..http_model.redaction import redact_shown
from .outbound import OutboundCaller, OutboundError
from .rows import SECURE_INPUTS, Owner
from .store import Store

# (conn, owner, purpose, outbox id, result, now) -> an op outcome for the hub
OnDone = Callable[[sqlite3.Connection, Owner, str, int, dict[str, Any], float], Any]


class Outbox:
    """Runs the outbox's pending calls and records their outcome."""

    def __init__(
        self,
        store: Store,
        outbound: OutboundCaller,
        *,
        write: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]],
        on_done: OnDone,
        log: logging.Logger,
    ) -> None:
        self.store = store
        self.outbound = outbound
        self._write = write
        self._on_done = on_done
        self.log = log
        self._owner_tasks: dict[Owner, asyncio.Task[None]] = {}
        self._waiters: dict[int, list[asyncio.Future[dict[str, Any]]]] = {}
        self._stopping = False

    def resume(self) -> int:
        """Start the owners that have calls left pending (e.g. by a restart); return how many."""
        owners = [
            Owner.parse(row[0])
            for row in self.store.reader.execute(
                "SELECT DISTINCT owner FROM outbox WHERE state = 'pending'"
            )
        ]
        for owner in owners:
            self.kick(owner)
        return len(owners)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._owner_tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.outbound.aclose()

    def kick(self, owner: Owner) -> None:
        """Make the owner's pending calls, in order, unless that is already under way."""
        if self._stopping:
            return
        task = self._owner_tasks.get(owner)
        if task is not None and not task.done():
            return
        self._owner_tasks[owner] = asyncio.get_running_loop().create_task(self._run_owner(owner))

    async def result(self, outbox_id: int, within: float | None = None) -> dict[str, Any] | None:
        """Wait for a call's outcome (at once if it is already made); None if it is still
        pending after ``within`` seconds (the caller answers with the state as it is)."""
        row = self.store.reader.execute(
            "SELECT state, error FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is not None and row[0] != "pending":
            return {"state": row[0], "error": row[1]}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(outbox_id, []).append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(outbox_id)
            if waiters is not None and future in waiters and not future.done():
                waiters.remove(future)
                future.cancel()

    async def _run_owner(self, owner: Owner) -> None:
        # One bad call must not stop this owner's queue (nor, restart after restart, the
        # server's): whatever one call raises fails that call, visibly, and the next goes on.
        tried: set[int] = set()
        try:
            while True:
                row = self.store.reader.execute(
                    "SELECT id, purpose, request, headers, secure FROM outbox"
                    " WHERE owner = ? AND state = 'pending' ORDER BY id LIMIT 1",
                    (str(owner),),
                ).fetchone()
                if row is None:
                    return
                outbox_id = row[0]
                if outbox_id in tried:
                    # Even recording its failure did not take (the store refused twice):
                    # leave it pending for the next start rather than spin on it.
                    self.log.error(
                        "hooknb outbox call %d stays pending: cannot record it", outbox_id
                    )
                    self._resolve(
                        outbox_id, _failed("the outcome of this call could not be stored")
                    )
                    return
                tried.add(outbox_id)
                await self._perform(owner, *row)
        finally:
            if self._owner_tasks.get(owner) is asyncio.current_task():
                del self._owner_tasks[owner]

    async def _perform(
        self,
        owner: Owner,
        outbox_id: int,
        purpose: str,
        request_json: Any,
        headers_json: Any,
        secure: Any = 0,
    ) -> None:
        try:
            result = await self._call(owner, outbox_id, purpose, request_json, headers_json, secure)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a hostile answer: this call fails, not the queue
            self.log.exception("hooknb %s for %s %s raised", purpose, owner.kind, owner.name)
            result = _failed(f"internal error ({type(exc).__name__}: {exc})"[:2000])
        level = logging.INFO if result["state"] != "failed" else logging.WARNING
        self.log.log(
            level,
            "hooknb %s for %s %s: %s",
            purpose,
            owner.kind,
            owner.name,
            redact_shown(result["error"]) or "ok",
        )
        try:
            await self._record(owner, outbox_id, purpose, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The outcome itself could not be stored (e.g. an answer JSON cannot encode):
            # record the call as failed, without the answer, so that its owner moves on.
            self.log.exception("hooknb could not store the outcome of outbox call %d", outbox_id)
            result = _failed(
                f"the answer could not be stored ({type(exc).__name__}: {exc})"[:2000],
                attempts=result.get("attempts") or [],
            )
            try:
                await self._record(owner, outbox_id, purpose, result)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("hooknb could not record outbox call %d as failed", outbox_id)
                return
        self._resolve(outbox_id, result)

    async def _record(
        self, owner: Owner, outbox_id: int, purpose: str, result: dict[str, Any]
    ) -> None:
        now = time.time()
        attempts = jsonsafe.dumps(result["attempts"])
        response = jsonsafe.dumps(result["response"])

        def op(conn: sqlite3.Connection) -> Any:
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = ?, response = ?, error = ?, finished = ?"
                " WHERE id = ?",
                (result["state"], attempts, response, result["error"], now, outbox_id),
            )
            return self._on_done(conn, owner, purpose, outbox_id, result, now)

        await self._write(op)

    def _resolve(self, outbox_id: int, result: dict[str, Any]) -> None:
        for future in self._waiters.pop(outbox_id, []):
            if not future.done():
                future.set_result(result)

    async def _call(
        self,
        owner: Owner,
        outbox_id: int,
        purpose: str,
        request_json: Any,
        headers_json: Any,
        secure: Any = 0,
    ) -> dict[str, Any]:
        if purpose == "unsubscribe":
            previous = self.store.reader.execute(
                "SELECT state FROM outbox WHERE owner = ? AND purpose = 'subscribe' AND id < ?"
                " ORDER BY id DESC LIMIT 1",
                (str(owner), outbox_id),
            ).fetchone()
            if previous is None or previous[0] != "done":
                return {
                    "state": "skipped",
                    "error": "the subscribe call did not succeed: nothing to unsubscribe",
                    "response": None,
                    "attempts": [],
                }
        try:
            depth = jsonsafe.MAX_REQUEST_DEPTH
            request = jsonsafe.loads(request_json, max_depth=depth)
            headers = jsonsafe.loads(headers_json, max_depth=depth)
        except (TypeError, ValueError) as exc:
            return _failed(f"the stored request cannot be read: {exc}")
        try:
            outcome = await self.outbound.call(
                request,
                extra_headers=headers,
                what=purpose,
                # Secure inputs (rows.SECURE_INPUTS) stay out of the log.
                log_request=not (isinstance(secure, int) and secure & SECURE_INPUTS),
            )
        except OutboundError as exc:
            return {
                "state": "failed",
                "error": str(exc),
                "response": exc.response.to_json() if exc.response else None,
                "attempts": [attempt_json(a) for a in exc.attempts],
            }
        return {
            "state": "done",
            "error": None,
            "response": outcome.response.to_json(),
            "attempts": [attempt_json(a) for a in outcome.attempts],
        }


def _failed(error: str, attempts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"state": "failed", "error": error, "response": None, "attempts": attempts or []}


def attempt_json(attempt: Any) -> dict[str, Any]:
    """One try of an outbound call, as stored and shown."""
    return {
        "started": attempt.started_at,
        "duration": attempt.duration,
        "statusCode": attempt.status_code,
        "error": attempt.error,
    }
