"""The durable state: one SQLite database in WAL mode, written by one thread with group commit.

Every state change goes through :meth:`Store.write`, which runs a small function against the
writer connection inside a transaction shared with whatever other writes are queued at that
moment, and resolves the caller's future only once that commit is on disk. A durable store
commits with ``synchronous=NORMAL`` and a second thread, the syncer, then fsyncs the WAL (what
``synchronous=FULL`` adds to each commit) before it resolves the futures of every commit the
fsync covers: concurrent requests share one commit, consecutive commits share one fsync, and
the writer runs the next batch while the disk writes the last. So every answer and every
announcement waits for the fsync; only reads (listings, the page) may show a commit while its
fsync is under way. A single writer also serialises every state transition,
which is what makes "exactly one outcome" races (callback vs. timeout vs. cancel) easy to get
right: each transition is a conditional ``UPDATE`` whose row count says who won.

Reads for listings use a second connection on the event-loop thread; WAL lets them run
alongside the writer.

Once the trigger writer process runs (``c.HookNB.trigger_writer_process``), a child process
stores plain trigger callbacks too (:mod:`hooknb.server.trigger_writer`): the writer thread
and the child then take an exclusive lock around each of their transactions, so the store
still has one writer at a time (:meth:`Store.share_writes`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Sized
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB
);
-- One row per workflow name known to this server. A workflow with an HttpWebhook trigger has a
-- stable trigger callback id; `client` is the kernel currently running it (its lease). A Logic
-- Apps definition handed to the server (`hosted`) is run by the server's definitions worker.
CREATE TABLE IF NOT EXISTS workflows (
    name          TEXT PRIMARY KEY,
    client        TEXT,
    trigger_id    TEXT UNIQUE,
    trigger_name  TEXT,
    trigger_state TEXT NOT NULL DEFAULT 'none',
    subscribe     TEXT,
    unsubscribe   TEXT,
    subscription  TEXT,
    last_error    TEXT,
    key_type      TEXT NOT NULL DEFAULT 'primary',
    verify        TEXT,
    created       REAL NOT NULL,
    updated       REAL NOT NULL,
    definition    TEXT,
    hosted        INTEGER NOT NULL DEFAULT 0,
    settings      TEXT,
    trigger_secure INTEGER NOT NULL DEFAULT 0
);
-- `client` is the kernel running the run (NULL while Queued); a kernel that adopts the run after
-- its kernel is gone takes it over (and the old one is fenced off). `cancel_requested` survives
-- the kernel: no later kernel brings a cancelled run back.
CREATE TABLE IF NOT EXISTS runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    client           TEXT,
    status           TEXT NOT NULL,
    trigger_callback INTEGER,
    created          REAL NOT NULL,
    started          REAL,
    ended            REAL,
    doc              TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    adopted          REAL,
    replays          INTEGER NOT NULL DEFAULT 0,
    tracking_id      TEXT,
    held             INTEGER NOT NULL DEFAULT 0
);
-- Pages of runs newest first (ids grow with time) for a status, or a workflow and a status:
-- each walks one of these from its cursor (views.runs). (status, id) replaced (status).
DROP INDEX IF EXISTS runs_by_status;
CREATE INDEX IF NOT EXISTS runs_by_status_id ON runs (status, id);
CREATE INDEX IF NOT EXISTS runs_by_workflow_status ON runs (workflow, status, id);
-- Every trigger event of a workflow (Logic Apps' trigger history): Fired (with the runs it
-- started), Skipped (its conditions were false) or Failed (a condition or splitOn could not be
-- evaluated, or too many runs were waiting), with the request (a callbacks row).
CREATE TABLE IF NOT EXISTS trigger_history (
    id       INTEGER PRIMARY KEY,
    workflow TEXT NOT NULL,
    status   TEXT NOT NULL,
    received REAL NOT NULL,
    callback INTEGER,
    runs     TEXT,
    reason   TEXT,
    code     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trigger_history_by_workflow ON trigger_history (workflow, id);
-- One row per HttpWebhook action step that paused a run. `secure` (as `workflows.trigger_secure`,
-- `steps.secure`, `outbox.secure`): the parts views hide (1 inputs, 2 outputs; secureData).
CREATE TABLE IF NOT EXISTS waits (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    workflow     TEXT NOT NULL,
    step         TEXT NOT NULL,
    client       TEXT,
    state        TEXT NOT NULL,
    deadline     REAL,
    unsubscribe  TEXT,
    unsub_state  TEXT NOT NULL DEFAULT 'none',
    subscription TEXT,
    callback     INTEGER,
    fingerprint  TEXT,
    key_type     TEXT NOT NULL DEFAULT 'primary',
    verify       TEXT,
    error        TEXT,
    created      REAL NOT NULL,
    ended        REAL,
    secure       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS waits_by_run ON waits (run_id);
-- Open waits by deadline (the index `waits_due`, made by _migrate) are what the deadline
-- scheduler reads, a window at a time.
-- A run's history: one row per step it asked for, by the step's name (name and occurrence:
-- "Approval", "Approval_2"). A kernel that adopts the run replays it against these rows: a `done`
-- step returns `value` without running again; an HttpWebhook step re-attaches to `wait_id`.
-- `after` (the step the same flow asked for before) and `first` (the first step of a concurrent
-- branch) let the kernel tell when its code no longer asks for what the history holds.
CREATE TABLE IF NOT EXISTS steps (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    after    TEXT,
    first    INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL,
    state    TEXT NOT NULL,
    value    TEXT,
    wait_id  TEXT,
    started  REAL,
    ended    REAL,
    secure   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
-- Every request received on a callback URL (and every manual trigger), byte-exact. `secure`: NULL
-- while views follow its wait's or its workflow's trigger's setting; the trigger's setting as it
-- was, once that changed or the workflow was deleted.
CREATE TABLE IF NOT EXISTS callbacks (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    run_id       TEXT,
    received     REAL NOT NULL,
    method       TEXT NOT NULL,
    headers      TEXT NOT NULL,
    query        TEXT NOT NULL,
    content_type TEXT,
    body         BLOB NOT NULL,
    secure       INTEGER
);
CREATE INDEX IF NOT EXISTS callbacks_by_target ON callbacks (target, id);
-- What the kernel side has not yet acknowledged of its runs' events: `route` is 'client:<id>'.
-- A trigger's run has no row here: while it is Queued (and not held) the run row is its delivery
-- to whichever kernel runs the workflow (schema 4; rows.trigger_delivery).
CREATE TABLE IF NOT EXISTS deliveries (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    route    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    event    TEXT,
    run_id   TEXT,
    wait_id  TEXT,
    callback INTEGER,
    data     TEXT,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_route ON deliveries (route, seq);
-- Sender delivery ids already taken (webhook-id, X-GitHub-Delivery, Stripe event id): a retry or
-- replay of a verified callback is answered like the first one and starts nothing new.
CREATE TABLE IF NOT EXISTS delivery_ids (
    target      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    run_id      TEXT,
    expires     REAL NOT NULL,
    PRIMARY KEY (target, delivery_id)
);
-- Callbacks forwarded by a hooknb receiver (a JupyterHub service that stores them while this
-- server is stopped), by the receiver's id: a forward repeated after a lost answer gets the
-- first answer again and changes nothing.
CREATE TABLE IF NOT EXISTS forwarded (
    id       TEXT PRIMARY KEY,
    status   INTEGER NOT NULL,
    answer   TEXT NOT NULL,
    received REAL NOT NULL
);
-- Outbound subscribe/unsubscribe calls, so that they survive a restart and can be shown.
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY,
    owner     TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    request   TEXT NOT NULL,
    headers   TEXT NOT NULL,
    state     TEXT NOT NULL,
    attempts  TEXT,
    response  TEXT,
    error     TEXT,
    created   REAL NOT NULL,
    finished  REAL,
    secure    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_owner ON outbox (owner, id);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state) WHERE state = 'pending';
"""

# On the writer's connection only: a trigger callback's three rows (its request, its Queued run
# and its Fired trigger history entry, Hub._op_insert_trigger_callbacks) as one row of a view
# whose INSTEAD OF trigger inserts them. A batch of callbacks is then one statement, which the
# sqlite3 module steps once: one hand-over of the GIL, where three INSERTs took three (each of
# them waits for the busy event loop to let go of the GIL, and the batch's senders wait on it).
_WRITER_SCHEMA = """
CREATE TEMP VIEW trigger_callback_rows (
    callback_id, workflow, run_id, received, method, headers, query, content_type, body,
    run_rowid, tracking_id, history_id, history_runs
) AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER trigger_callback_rows_insert INSTEAD OF INSERT ON trigger_callback_rows
BEGIN
    INSERT INTO callbacks (id, kind, target, run_id, received, method, headers, query,
                           content_type, body)
    VALUES (NEW.callback_id, 'trigger', NEW.workflow, NEW.run_id, NEW.received, NEW.method,
            NEW.headers, NEW.query, NEW.content_type, NEW.body);
    INSERT INTO runs (rowid, id, workflow, status, trigger_callback, created, tracking_id)
    VALUES (NEW.run_rowid, NEW.run_id, NEW.workflow, 'Queued', NEW.callback_id, NEW.received,
            NEW.tracking_id);
    INSERT INTO trigger_history (id, workflow, status, received, callback, runs, code)
    VALUES (NEW.history_id, NEW.workflow, 'Fired', NEW.received, NEW.callback_id,
            NEW.history_runs, 202);
END;
"""

# A writer op gets the connection and returns a value. The ops of a batch share one
# transaction; when one raises, the batch is rolled back and replayed one op per transaction
# (Store._run_batch), so a failing op does not undo the others.
WriteOp = Callable[[sqlite3.Connection], T]

_STOP = object()
_MAX_BATCH = 1024
# execute_rows: at most this many rows per statement (SQLite allows 32,766 bound values; before
# 3.32, 999: 32 rows of up to 31 values).
_ROWS_PER_STATEMENT = 32


class Grouped:
    """A write that the writer runs together with the ones of the same ``group`` queued right
    after it: ``group(conn, items)`` gets them all (each with its ``args``) and returns one
    result per item, in order. For the busiest writes (trigger callbacks): one statement for
    a whole batch instead of several per item, so the writer thread spends less time in
    Python and hands the GIL over far less often. Alone (``write_sync``, or a batch replayed
    one op at a time) it is a group of one.
    """

    __slots__ = ("args", "group")

    def __init__(self, group: Callable[[sqlite3.Connection, list[Grouped]], list[Any]], args: Any):
        self.group = group
        self.args = args

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.group(conn, [self])[0]


class StoreError(RuntimeError):
    """The store cannot be opened or used."""


class StoreStats:
    """Group-commit counters, each updated by one thread only, the writer's or the syncer's
    (plain numbers: no lock needed for a reader that tolerates a snapshot taken between two
    updates). Benchmarks read them to check that concurrent requests really share commits."""

    # Upper bounds of the batch-size histogram buckets: 1, 2-3, 4-7, ... 512-1023, 1024.
    BUCKETS = (1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, _MAX_BATCH)

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.batches = 0
        self.ops = 0
        self.max_batch = 0
        self.batch_seconds = 0.0
        self.commit_seconds = 0.0
        self.max_commit_seconds = 0.0
        self.slow_commits = 0  # COMMITs that took 10 ms or more
        # Durable stores: the syncer's fsyncs of the WAL, and the commits each covered.
        self.syncs = 0
        self.synced_commits = 0
        self.sync_seconds = 0.0
        self.max_sync_seconds = 0.0
        self.slow_syncs = 0  # fsyncs that took 10 ms or more
        self.histogram = [0] * len(self.BUCKETS)

    def record(self, size: int, batch_seconds: float, commit_seconds: float) -> None:
        self.batches += 1
        self.ops += size
        self.max_batch = max(self.max_batch, size)
        self.batch_seconds += batch_seconds
        self.commit_seconds += commit_seconds
        self.max_commit_seconds = max(self.max_commit_seconds, commit_seconds)
        self.slow_commits += commit_seconds >= 0.01
        for index, bound in enumerate(self.BUCKETS):
            if size <= bound:
                self.histogram[index] += 1
                break

    def record_sync(self, commits: int, seconds: float) -> None:
        self.syncs += 1
        self.synced_commits += commits
        self.sync_seconds += seconds
        self.max_sync_seconds = max(self.max_sync_seconds, seconds)
        self.slow_syncs += seconds >= 0.01

    def snapshot(self) -> dict[str, Any]:
        labels, low = [], 1
        for bound in self.BUCKETS:
            labels.append(str(low) if low == bound else f"{low}-{bound}")
            low = bound + 1
        return {
            "batches": self.batches,
            "ops": self.ops,
            "mean_batch": round(self.ops / self.batches, 2) if self.batches else None,
            "max_batch": self.max_batch,
            "batch_seconds": round(self.batch_seconds, 4),
            "commit_seconds": round(self.commit_seconds, 4),
            "max_commit_ms": round(self.max_commit_seconds * 1000, 3),
            "commits_over_10ms": self.slow_commits,
            "syncs": self.syncs,
            "commits_per_sync": (
                round(self.synced_commits / self.syncs, 2) if self.syncs else None
            ),
            "sync_seconds": round(self.sync_seconds, 4),
            "max_sync_ms": round(self.max_sync_seconds * 1000, 3),
            "syncs_over_10ms": self.slow_syncs,
            "histogram": {
                label: count for label, count in zip(labels, self.histogram, strict=True) if count
            },
        }


class Store:
    """SQLite state with a single writer thread and group commit.

    ``durable=True`` (the default): a commit is fsynced before any of its writer futures
    resolves (see the module doc). ``durable=False`` uses ``synchronous=NORMAL``, which survives a
    process crash but not a power loss; it exists for benchmarks that want to show the cost.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        # Lists of (op, loop, future), or [_STOP]: write() hands over what a turn of the loop
        # queued as one list, so the writer thread is woken at most once per turn.
        self._queue: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()
        self._unsent: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        # ROLLBACKs so far: with the writer's total_changes, what write_stamp() tells.
        self._rollbacks = 0
        # Set by share_writes(): the lock the writer thread holds around each transaction
        # once another process writes too (the trigger writer), and a stamp that never
        # repeats from then on.
        self._write_lock: Any = None
        self._shared_stamps = 0
        self._lock_file: Any = None
        self._reader: sqlite3.Connection | None = None
        self._latest: sqlite3.Connection | None = None
        # read_off_loop's connection, used by one worker thread at a time.
        self._counter: sqlite3.Connection | None = None
        self._counter_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Durable stores: outcomes of commits whose fsync is still to come, in commit order
        # (lists of outcomes, or _STOP), read by the syncer thread (see _run_syncer).
        self._unsynced: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._syncer: threading.Thread | None = None
        self._disk_error: StoreError | None = None
        self._closed = False
        self.stats = StoreStats()

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> Store:
        """Create the file (mode 0600) and schema, take the lock, start the writer thread."""
        self._make_directory()
        self._take_lock()
        if not self.path.exists():
            # Created by us first so that SQLite (and its -wal/-shm siblings, which copy the
            # main file's mode) never exist world-readable: the store holds signing keys.
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run_writer, args=(ready,), name="hooknb-store-writer", daemon=True
        )
        self._thread.start()
        ready.result()
        self._reader = self._read_connection()
        return self

    def close(self) -> None:
        """Finish queued writes, stop the writer and release the lock."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            for loop in list(self._unsent):
                self._hand_over(loop)
            self._queue.put([_STOP])
            self._thread.join(timeout=30)
        if self._reader is not None:
            self._reader.close()
        if self._latest is not None:
            self._latest.close()
        with self._counter_lock:
            if self._counter is not None:
                self._counter.close()
                self._counter = None
        if self._write_lock is not None:
            self._write_lock.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _make_directory(self) -> None:
        """Create the store's directory ``0700`` whatever the umask (it holds the signing keys,
        the lock file and SQLite's -wal/-shm files). A directory that already exists is the
        operator's (``store_path`` may point anywhere): its mode is left alone."""
        directory = self.path.parent
        if directory.is_dir():
            return
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made by someone else meanwhile: theirs
            return
        # mkdir's mode is filtered by the umask; the mode set here is not.
        os.chmod(directory, 0o700)

    def _take_lock(self) -> None:
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        # 0600 like the store itself, whatever the umask (os.open's mode is filtered by it).
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o600)
        handle = os.fdopen(fd, "a+")  # held for the store's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreError(
                f"the hooknb store {self.path} is in use by another process (another Jupyter "
                "server or embedded hub). Give each one its own store with "
                "c.HookNB.store_path or HOOKNB_STORE."
            ) from None
        self._lock_file = handle

    def _read_connection(self) -> sqlite3.Connection:
        conn = self._connect(check_same_thread=False)
        # Views read whatever a row holds: text that is not UTF-8 (no hooknb code writes it,
        # but a hand-edited or damaged store may) reads with U+FFFD instead of failing.
        conn.text_factory = _lenient_text
        return conn

    def _connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=check_same_thread,
            timeout=30,
            cached_statements=256,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    # -- writing ---------------------------------------------------------------------------

    def write(self, op: WriteOp[T]) -> asyncio.Future[T]:
        """Queue ``op``; the returned future resolves (on the calling loop) once its commit
        is on disk (committed, for a store that is not durable)."""
        if self._closed:
            raise StoreError("the hooknb store is closed")
        if self._disk_error is not None:
            raise self._disk_error
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        unsent = self._unsent.get(loop)
        if unsent is None:
            # Waking the writer is a futex call, and on a busy core often two context
            # switches (it wakes, finds the GIL taken, sleeps again): once per turn of the
            # loop, for everything its handlers queued, rather than once per write.
            unsent = self._unsent[loop] = []
            loop.call_soon(self._hand_over, loop)
        unsent.append((op, loop, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._unsent.pop(loop, None)
        if items:
            self._queue.put(items)

    def write_sync(self, op: WriteOp[T]) -> T:
        """Run ``op`` in the writer and block until it is committed (start-up and tests)."""
        if self._closed:
            raise StoreError("the hooknb store is closed")
        if self._disk_error is not None:
            raise self._disk_error
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put([(op, None, future)])
        return future.result()

    def write_stamp(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """For writer ops: a value that changes whenever a row of the store may have changed
        since it was taken (every row a statement or trigger changed on the writer's
        connection counts; so does every rollback, which undoes rows without counting).
        What an op read while it is unchanged is still true. Once another process writes
        too (:meth:`share_writes`), it is new at each call."""
        if self._write_lock is not None:
            self._shared_stamps += 1
            return -1, self._shared_stamps
        return conn.total_changes, self._rollbacks

    def share_writes(self) -> None:
        """From now on another process writes this store too (the trigger writer,
        :mod:`hooknb.server.trigger_writer`): the writer thread holds the write lock it
        takes around each of its transactions as well, and nothing it read in one
        transaction counts as still true in the next. Event-loop thread; once."""
        if self._write_lock is None:
            self._write_lock = open_write_lock(self.path)

    def _run_writer(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            conn = self._connect()
            conn.executescript(_SCHEMA)
            _migrate(conn)
            conn.executescript(_WRITER_SCHEMA)
            wal_fd = self._start_syncer(conn) if self.durable else None
        except Exception as exc:
            ready.set_exception(StoreError(f"cannot open the hooknb store {self.path}: {exc}"))
            return
        ready.set_result(None)
        stopping = False
        while not stopping:
            batch = self._queue.get()
            while len(batch) < _MAX_BATCH:
                try:
                    batch.extend(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._run_batch(conn, batch)
        if wal_fd is not None:  # a durable store: its syncer resolves what is queued first
            assert self._syncer is not None
            self._unsynced.put(_STOP)
            self._syncer.join()
            os.close(wal_fd)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        started = time.perf_counter()
        outcomes, committing = self._commit(conn, batch)
        if outcomes is None:
            # An op failed (a refused request, usually). Its partial writes must not be
            # committed with the others, so the batch is replayed one op per transaction;
            # ops only read and write the store, so running them again is safe.
            outcomes = []
            for item in batch:
                single, committing = self._commit(conn, [item])
                outcomes.extend(single or [])
        finished = time.perf_counter()
        self.stats.record(len(batch), finished - started, finished - committing)
        if self._syncer is None:
            self._resolve(outcomes)
        else:
            self._unsynced.put(outcomes)

    def _start_syncer(self, conn: sqlite3.Connection) -> int:
        """Hand the fsync of every commit to a thread of its own; return the WAL's descriptor.

        ``synchronous=FULL`` in WAL mode is ``NORMAL`` plus an fsync of the WAL after each
        commit (SQLite's documentation of the pragma). Here the writer commits with ``NORMAL``
        and the syncer makes that fsync, then resolves the commit's futures: an answer still
        waits for the fsync that covers its commit, but the writer runs the next batch
        meanwhile instead of waiting for the disk, and one fsync covers every commit made
        before it started. Checkpoints keep NORMAL's own syncs (the WAL before it is copied
        into the database, the database after).
        """
        conn.execute("PRAGMA synchronous=NORMAL")
        # The WAL exists (the schema was just written in WAL mode) and keeps its inode while
        # the writer's connection is open: SQLite resets and truncates it, never deletes it.
        wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        self._syncer = threading.Thread(
            target=self._run_syncer, args=(wal_fd,), name="hooknb-store-syncer", daemon=True
        )
        self._syncer.start()
        return wal_fd

    def _run_syncer(self, wal_fd: int) -> None:
        """Until _STOP: sync the WAL once for every commit queued so far, then resolve them."""
        stopping = False
        while not stopping:
            pending = [self._unsynced.get()]
            while True:
                try:
                    pending.append(self._unsynced.get_nowait())
                except queue.Empty:
                    break
            if pending[-1] is _STOP:
                stopping = True
                pending.pop()
            if not pending:
                continue
            if self._disk_error is None:
                started = time.perf_counter()
                try:
                    _sync_data(wal_fd)
                except OSError as exc:
                    # What the OS did with the pages it could not write is unknown (Linux
                    # may drop them and report nothing on the next fsync): no commit counts
                    # as durable from now on, and no write is taken any more.
                    self._disk_error = StoreError(
                        f"hooknb store: writing {self.path} to disk failed ({exc}); restart the "
                        "server once the disk is fixed"
                    )
                self.stats.record_sync(len(pending), time.perf_counter() - started)
            for outcomes in pending:
                if self._disk_error is not None:
                    outcomes = [
                        (loop, future, None, self._disk_error) for loop, future, *_ in outcomes
                    ]
                self._resolve(outcomes)

    def _commit(
        self, conn: sqlite3.Connection, batch: list[Any]
    ) -> tuple[list[tuple[Any, Any, Any, BaseException | None]] | None, float]:
        """Run ``batch`` in one transaction; None when an op of several raised (rolled back).

        A batch of one always gets its outcome, the failure included.

        No savepoint per op: on the hot path (every callback) that would be two more
        statements, and two more hand-overs of the GIL, per request.
        """
        lock = self._write_lock
        if lock is None:
            return self._commit_alone(conn, batch)
        with locked(lock):
            return self._commit_alone(conn, batch)

    def _commit_alone(
        self, conn: sqlite3.Connection, batch: list[Any]
    ) -> tuple[list[tuple[Any, Any, Any, BaseException | None]] | None, float]:
        outcomes: list[tuple[Any, Any, Any, BaseException | None]] = []
        committing = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            index, size = 0, len(batch)
            while index < size:
                op, loop, future = batch[index]
                if type(op) is not Grouped:
                    outcomes.append((loop, future, op(conn), None))
                    index += 1
                    continue
                end = index + 1
                while end < size:
                    other = batch[end][0]
                    if type(other) is not Grouped or other.group != op.group:
                        break
                    end += 1
                items = batch[index:end]
                results = op.group(conn, [item[0] for item in items])
                outcomes.extend(
                    (loop, future, result, None)
                    for (_, loop, future), result in zip(items, results, strict=True)
                )
                index = end
            committing = time.perf_counter()
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollbacks += 1
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                _, loop, future = batch[0]
                error = (
                    exc
                    if not isinstance(exc, sqlite3.Error)
                    else StoreError(f"hooknb store write failed: {exc}")
                )
                return [(loop, future, None, error)], committing
            return None, committing
        return outcomes, committing

    def _resolve(self, outcomes: list[tuple[Any, Any, Any, BaseException | None]]) -> None:
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for loop, future, result, exc in outcomes:
            if loop is None:
                if exc is None:
                    future.set_result(result)
                else:
                    future.set_exception(exc)
            else:
                by_loop.setdefault(loop, []).append((future, result, exc))
        for loop, resolved in by_loop.items():
            # One wake-up of the event loop per batch, not one per request.
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(_resolve_all, resolved)

    # -- reading ---------------------------------------------------------------------------

    @property
    def reader(self) -> sqlite3.Connection:
        """The read connection; use it only from the server's event-loop thread."""
        if self._reader is None:
            raise StoreError("the hooknb store is not open")
        return self._reader

    @property
    def latest(self) -> sqlite3.Connection:
        """A read connection for short reads that must see every commit made before them
        (a wait's sender verification, the deadline scheduler's next window): only code that
        fetches every row at once uses it, so no statement of another reader keeps it on an
        older snapshot. Event-loop thread only."""
        if self._reader is None or self._closed:
            raise StoreError("the hooknb store is not open")
        if self._latest is None:
            self._latest = self._read_connection()
        return self._latest

    async def read_off_loop(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """``read(conn)`` in a worker thread, on a read connection of its own: for reads whose
        time grows with the store (counting a million open waits takes tens of milliseconds),
        which would otherwise hold up every callback on the event loop."""
        return await asyncio.to_thread(self._read_with_counter, read)

    def _read_with_counter(self, read: Callable[[sqlite3.Connection], T]) -> T:
        with self._counter_lock:
            if self._closed:
                raise StoreError("the hooknb store is closed")
            if self._counter is None:
                self._counter = self._read_connection()
            return read(self._counter)


#: Values per ``IN (...)`` list: SQLite before 3.32 allows 999 parameters in a statement.
IN_LIST_SIZE = 500


def in_batches(items: Sequence[T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: one ``IN (...)`` statement each."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(values: Sized) -> str:
    """The ``?, ?, …`` of an ``IN (...)`` list of ``values``."""
    return ", ".join("?" * len(values))


def execute_rows(
    conn: sqlite3.Connection,
    head: str,
    placeholders: str,
    rows: Sequence[Sequence[Any]],
    tail: str = "",
) -> None:
    """``head`` with ``rows`` as a ``VALUES`` list, then ``tail``, several rows per statement:
    an ``INSERT INTO t (a, b) VALUES`` (no tail), or an ``UPDATE t SET … FROM (VALUES`` with
    the tail ``) AS v WHERE t.key = v.column1``.

    ``executemany`` steps its statement once per row, and the sqlite3 module lets go of the
    GIL around every step: on a busy server each step can wait for the event loop to hand the
    GIL back. Up to 32 rows go in one statement, so a writer's batch usually takes one step;
    the connection caches the statement of each row count it meets (at most 32 per ``head``).
    """
    index, count = 0, len(rows)
    while index < count:
        size = min(count - index, _ROWS_PER_STATEMENT)
        sql = head + " " + ", ".join([placeholders] * size) + tail
        conn.execute(sql, [value for row in rows[index : index + size] for value in row])
        index += size


def open_write_lock(store_path: str | os.PathLike[str]) -> Any:
    """The file (``<store>.write-lock``, ``0600``) whose ``flock`` the store's writers (its
    writer thread and the trigger writer process, :mod:`hooknb.server.trigger_writer`) hold
    around each transaction once there are two (:meth:`Store.share_writes`)."""
    fd = os.open(f"{store_path}.write-lock", os.O_CREAT | os.O_RDWR, 0o600)
    return os.fdopen(fd, "r+b", buffering=0)


@contextlib.contextmanager
def locked(lock: Any) -> Iterator[None]:
    """Hold the write lock (blocking; the GIL is let go while waiting)."""
    import fcntl  # POSIX only, as the store's own lock: hooknb imports on other systems

    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


def _sync_data(fd: int) -> None:
    """What SQLite calls on the WAL at a ``synchronous=FULL`` commit: ``fdatasync`` where the
    OS has it (the file's data and size, not its times), else ``fsync``."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS
        os.fsync(fd)


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _resolve_all(resolved: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, exc in resolved:
        if future.done():
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)


# Columns added since schema version 1 (CREATE TABLE IF NOT EXISTS leaves old tables as they were).
_ADDED_COLUMNS = {
    "workflows": (
        ("definition", "TEXT"),
        ("hosted", "INTEGER NOT NULL DEFAULT 0"),
        ("settings", "TEXT"),
        ("trigger_secure", "INTEGER NOT NULL DEFAULT 0"),
    ),
    "runs": (
        ("cancel_requested", "INTEGER NOT NULL DEFAULT 0"),
        ("adopted", "REAL"),
        ("replays", "INTEGER NOT NULL DEFAULT 0"),
        ("tracking_id", "TEXT"),
        ("held", "INTEGER NOT NULL DEFAULT 0"),
    ),
    # Schema 4: secure data (runtimeConfiguration.secureData), hidden in views.
    "waits": (("secure", "INTEGER NOT NULL DEFAULT 0"),),
    "steps": (("secure", "INTEGER NOT NULL DEFAULT 0"),),
    "outbox": (("secure", "INTEGER NOT NULL DEFAULT 0"),),
    "callbacks": (("secure", "INTEGER"),),
}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older hooknb up to :data:`SCHEMA_VERSION`, in one transaction.

    A store made by a newer hooknb is refused rather than half-understood.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row is not None else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store was written by a newer hooknb (schema {version}; this one knows "
            f"{SCHEMA_VERSION}): upgrade hooknb"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, columns in _ADDED_COLUMNS.items():
            present = {info[1] for info in conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns:
                if name not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        # Runs waiting for a concurrency slot (`held`), oldest first, per workflow: made here,
        # after the column exists in a store made by an older hooknb.
        conn.execute(
            "CREATE INDEX IF NOT EXISTS runs_held ON runs (workflow, created) WHERE held = 1"
        )
        # Schema 4: open waits by (deadline, id), so that the deadline scheduler (deadlines.py)
        # reads on from any key exactly, a window at a time, from the index alone (`state`
        # makes it covering); it replaces waits_open (deadline only), which every open wait's
        # deadline was read from at each start.
        conn.execute("DROP INDEX IF EXISTS waits_open")
        # runs (workflow, created) went: runs_by_workflow_status answers every lookup by
        # workflow, and one B-tree less is written for each trigger callback (issue 15).
        conn.execute("DROP INDEX IF EXISTS runs_by_workflow")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS waits_due ON waits (deadline, id, state)"
            " WHERE state IN ('open', 'subscribing', 'waiting')"
        )
        if version < 4:
            # Schema 4: a Queued run is its own trigger delivery. The rows that stood for
            # them go; each run that was still to be delivered (Queued, not held) is pending
            # as it is, the others had been delivered.
            conn.execute("DELETE FROM deliveries WHERE kind = 'trigger'")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
