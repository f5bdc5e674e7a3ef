"""The trigger writer: plain trigger callbacks stored by a process of their own.

Under a steady stream of trigger callbacks the server's event loop and the store's writer
thread take turns on one GIL: while the writer stores a batch, the loop has nothing to read
(every sender waits for its answer), and while the loop reads the next batch the writer
cannot run (a thread that needs the GIL while the loop runs Python waits for up to the switch
interval). A child process has a GIL of its own: it stores the batch, commits and syncs the
WAL while the loop goes on reading and answering (BENCHMARKS.md, issue 15's twelfth round).

Only the busiest write goes there: a trigger callback with nothing to decide before its
write (what :meth:`hooknb.server.hub.Hub.ingest_at_once` takes) and a small body. The child
starts when ``c.HookNB.trigger_writer_process`` says (by default the first time such
callbacks come as a stream) and stays until the server stops. Everything else stays with
the store's writer thread. The two writers take turns through an exclusive ``flock`` on
``<store>.write-lock`` around each transaction, so every state change is still made by one
writer at a time: the child reads whether the trigger is enabled, and the next ids, inside
its transaction.

The protocol is two pipes of length-prefixed :mod:`marshal` frames (plain values only; both
ends are hooknb's own): the server sends ``[token, workflow, method, headers, queries,
content_type, body, received]`` items; the child answers, once the batch's commit is on
disk, one list per batch of ``[token, callback_id, run_rowid, history_id, run_id,
tracking]`` (stored), ``[token, None]`` (the trigger is not enabled: the server takes the
callback as any other) or ``[token, False, message]`` (the write failed; nothing was
stored). An empty list says the child is ready. If the child exits, the callbacks it had
not answered get a 503 (they may or may not be stored, as after a crash) and the server
stores the next ones itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import signal
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .rows import InboundRequest, insert_trigger_callbacks, next_trigger_ids, trigger_enabled
from .store import _WRITER_SCHEMA, _sync_data, locked, open_write_lock

_HEADER = struct.Struct("<I")
#: Bodies up to this size go to the child; larger ones are stored by the writer thread (a
#: body is copied through the pipe once each way it travels).
MAX_BODY = 64 * 1024
#: Callbacks sent and not yet answered beyond which the next ones are stored in-process.
MAX_PENDING = 4096
_READ_SIZE = 1 << 20

#: What a reply is handed to: a list of (context, reply) for one batch of the child.
Replies = Callable[[list[tuple[Any, list[Any]]]], None]


def _frames(buffer: bytearray) -> list[Any]:
    """The complete frames at the start of ``buffer``, removed from it."""
    frames = []
    offset = 0
    while len(buffer) - offset >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, offset)
        end = offset + _HEADER.size + size
        if len(buffer) < end:
            break
        # Frames of hooknb's own two ends, plain values (marshal makes no objects of classes).
        frames.append(marshal.loads(bytes(buffer[offset + _HEADER.size : end])))  # noqa: S302
        offset = end
    del buffer[:offset]
    return frames


def _frame(value: Any) -> bytes:
    data = marshal.dumps(value)
    return _HEADER.pack(len(data)) + data


class TriggerWriter:
    """The server's side of the child: sends it callbacks, hands its replies to ``replies``
    on the event loop (the one that started it). Event-loop thread only."""

    def __init__(
        self, store_path: str | os.PathLike[str], replies: Replies, log: logging.Logger
    ) -> None:
        self.store_path = str(store_path)
        self._replies = replies
        self.log = log
        self.ready = False
        self.alive = False
        self._stopping = False
        self._process: subprocess.Popen[bytes] | None = None
        self._to_child = -1
        self._from_child = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, Any] = {}
        self._next_token = 0
        self._unsent: list[bytes] = []
        self._outgoing = bytearray()
        self._incoming = bytearray()

    def start(self) -> None:
        """Start the child; until it says it is ready, :meth:`can_take` is False."""
        self._loop = asyncio.get_running_loop()
        child_in, self._to_child = os.pipe()
        self._from_child, child_out = os.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "hooknb.server.trigger_writer",
                    self.store_path,
                    str(child_in),
                    str(child_out),
                ],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        os.set_blocking(self._to_child, False)
        os.set_blocking(self._from_child, False)
        self._loop.add_reader(self._from_child, self._readable)
        self.alive = True

    def can_take(self, body_size: int) -> bool:
        return (
            self.ready and self.alive and body_size <= MAX_BODY and len(self._pending) < MAX_PENDING
        )

    def send(self, workflow: str, request: InboundRequest, context: Any) -> None:
        """Queue a trigger callback of ``workflow`` for the child; its reply comes with
        ``context``. Frames queued in one turn of the loop go out in one write, at its end."""
        assert self._loop is not None
        token = self._next_token
        self._next_token += 1
        self._pending[token] = context
        if not self._unsent:
            self._loop.call_soon(self._flush)
        self._unsent.append(
            _frame(
                [
                    token,
                    workflow,
                    request.method,
                    request.headers,
                    request.queries,
                    request.content_type,
                    request.body,
                    request.received,
                ]
            )
        )

    def _flush(self) -> None:
        if not self.alive:
            self._unsent.clear()
            return
        self._outgoing += b"".join(self._unsent)
        self._unsent.clear()
        self._write()

    def _write(self) -> None:
        assert self._loop is not None
        try:
            while self._outgoing:
                written = os.write(self._to_child, self._outgoing)
                del self._outgoing[:written]
        except BlockingIOError:
            self._loop.add_writer(self._to_child, self._writable)
            return
        except OSError:
            self._exited()

    def _writable(self) -> None:
        assert self._loop is not None
        self._loop.remove_writer(self._to_child)
        self._write()

    def _readable(self) -> None:
        try:
            data = os.read(self._from_child, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._exited()
            return
        self._incoming += data
        for batch in _frames(self._incoming):
            if not batch:
                self.ready = True
                continue
            self._replies([(self._pending.pop(reply[0]), reply) for reply in batch])

    def _exited(self) -> None:
        """The child is gone: what it had not answered is failed, nothing more is sent."""
        if not self.alive:
            return
        self.alive = False
        self.ready = False
        self._close_pipes()
        pending, self._pending = self._pending, {}
        if pending:
            self.log.error(
                "hooknb: the trigger writer process exited with %d callbacks unanswered;"
                " the server stores trigger callbacks itself from now on",
                len(pending),
            )
            self._replies(
                [
                    (context, [token, False, "the trigger writer exited"])
                    for token, context in pending.items()
                ]
            )
        elif not self._stopping:
            self.log.warning(
                "hooknb: the trigger writer process exited; the server stores trigger"
                " callbacks itself from now on"
            )

    def _close_pipes(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._from_child)
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._to_child)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._to_child = self._from_child = -1

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the child answer what it has, then end it (it exits when its input closes)."""
        if self._process is None:
            return
        self._stopping = True
        if self.alive:
            # What this turn queued goes too; what the pipe does not take now is answered 503
            # below. The pipe leaves the loop's selector before it is closed.
            self._flush()
        if self.alive:
            assert self._loop is not None
            self._loop.remove_writer(self._to_child)
            with contextlib.suppress(OSError):
                os.close(self._to_child)
            self._to_child = -1
        try:
            await asyncio.to_thread(self._process.wait, timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
        # Its last replies (if any) are read before the pipes close.
        if self.alive:
            with contextlib.suppress(Exception):
                self._readable()
        self._exited()
        self._process.wait()


# -- the child -----------------------------------------------------------------------------


def _serve(store_path: str, from_server: int, to_server: int) -> None:
    # Ctrl-C in the server's terminal reaches its whole process group: the server decides
    # whether to stop, and the child ends when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = sqlite3.connect(store_path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # As the store's writer: the commit itself with NORMAL, then the WAL's sync (what FULL
    # adds), before any answer.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_WRITER_SCHEMA)
    wal = os.open(f"{store_path}-wal", os.O_RDONLY)
    lock = open_write_lock(store_path)
    os.write(to_server, _frame([]))
    incoming = bytearray()
    while True:
        data = os.read(from_server, _READ_SIZE)
        if not data:
            return
        incoming += data
        items = _frames(incoming)
        if not items:
            continue
        try:
            with locked(lock):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    names = {item[1] for item in items}
                    enabled = {name: trigger_enabled(conn, name) for name in names}
                    taken = [item for item in items if enabled[item[1]]]
                    stored = insert_trigger_callbacks(
                        conn, [_callback(item) for item in taken], next_trigger_ids(conn)
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            _sync_data(wal)
            replies: list[Any] = [
                [item[0], *made] for item, made in zip(taken, stored, strict=True)
            ]
            replies += [[item[0], None] for item in items if not enabled[item[1]]]
            disk_failed = False
        except Exception as exc:  # not stored, or not synced: each gets a 503
            replies = [[item[0], False, f"{type(exc).__name__}: {exc}"] for item in items]
            # The disk failed (the WAL's sync, most likely): no later commit of this process
            # would count as durable. It ends; the server stores callbacks itself, and its
            # own sync finds out the same.
            disk_failed = isinstance(exc, OSError)
        os.write(to_server, _frame(replies))
        if disk_failed:
            return


def _callback(item: list[Any]) -> tuple[str, InboundRequest]:
    """(workflow, request) of a frame's item (as :meth:`TriggerWriter.send` makes it)."""
    _, workflow, method, headers, queries, content_type, body, received = item
    request = InboundRequest(
        method=method,
        headers=[(str(name), str(value)) for name, value in headers],
        queries=queries,
        content_type=content_type,
        body=body,
        received=received,
    )
    return workflow, request


def main(argv: list[str]) -> None:
    _serve(argv[1], int(argv[2]), int(argv[3]))


if __name__ == "__main__":
    main(sys.argv)
