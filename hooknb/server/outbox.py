"""Outbound subscribe/unsubscribe calls: persisted in the outbox, made in order per owner.

Each owner (a trigger or a wait) has its calls made one at a time, in the order they were
queued, so an unsubscribe never overtakes the subscribe it undoes, and a subscription whose
subscribe call failed is never "unsubscribed". Rows still pending at shutdown are made when
the server starts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .outbound import OutboundCaller, OutboundError
from .rows import Owner
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

    async def result(self, outbox_id: int) -> dict[str, Any]:
        """Wait for a call's outcome (at once if it is already made)."""
        row = self.store.reader.execute(
            "SELECT state, error FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if row is not None and row[0] != "pending":
            return {"state": row[0], "error": row[1]}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(outbox_id, []).append(future)
        return await future

    async def _run_owner(self, owner: Owner) -> None:
        try:
            while True:
                row = self.store.reader.execute(
                    "SELECT id, purpose, request, headers FROM outbox"
                    " WHERE owner = ? AND state = 'pending' ORDER BY id LIMIT 1",
                    (str(owner),),
                ).fetchone()
                if row is None:
                    return
                await self._perform(owner, *row)
        finally:
            if self._owner_tasks.get(owner) is asyncio.current_task():
                del self._owner_tasks[owner]

    async def _perform(
        self, owner: Owner, outbox_id: int, purpose: str, request_json: str, headers_json: str
    ) -> None:
        result = await self._call(owner, outbox_id, purpose, request_json, headers_json)
        level = logging.INFO if result["state"] != "failed" else logging.WARNING
        self.log.log(
            level,
            "hooknb %s for %s %s: %s",
            purpose,
            owner.kind,
            owner.name,
            result["error"] or "ok",
        )
        now = time.time()

        def op(conn: sqlite3.Connection) -> Any:
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = ?, response = ?, error = ?, finished = ?"
                " WHERE id = ?",
                (
                    result["state"],
                    json.dumps(result["attempts"]),
                    json.dumps(result["response"]),
                    result["error"],
                    now,
                    outbox_id,
                ),
            )
            return self._on_done(conn, owner, purpose, outbox_id, result, now)

        await self._write(op)
        for future in self._waiters.pop(outbox_id, []):
            if not future.done():
                future.set_result(result)

    async def _call(
        self, owner: Owner, outbox_id: int, purpose: str, request_json: str, headers_json: str
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
            outcome = await self.outbound.call(
                json.loads(request_json), extra_headers=json.loads(headers_json), what=purpose
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


def attempt_json(attempt: Any) -> dict[str, Any]:
    """One try of an outbound call, as stored and shown."""
    return {
        "started": attempt.started_at,
        "duration": attempt.duration,
        "statusCode": attempt.status_code,
        "error": attempt.error,
    }
