"""The store's group commit on a real SQLite file: batching, and a failing op in a batch."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hooknb.server.store import Store, StoreError, execute_rows
from hooknb.server.views import Views


def test_a_failing_op_in_a_batch_commits_nothing_of_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite").open()
    store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v TEXT)"))

    def insert(value: str, fail: bool = False):
        def op(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
            if fail:
                raise ValueError(f"refused {value}")
            return value

        return op

    async def main() -> list[object]:
        # Queued together, so the writer takes them as one batch.
        futures = [store.write(insert(f"ok{i}")) for i in range(5)]
        futures.insert(2, store.write(insert("bad", fail=True)))
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        results = asyncio.run(main())
        assert [r for r in results if isinstance(r, str)] == [f"ok{i}" for i in range(5)]
        (error,) = [r for r in results if isinstance(r, BaseException)]
        assert isinstance(error, ValueError) and str(error) == "refused bad"
        rows = sorted(v for (v,) in store.reader.execute("SELECT v FROM t"))
        assert rows == [f"ok{i}" for i in range(5)]  # the failing op's insert is not there
        assert store.stats.ops >= 6
    finally:
        store.close()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 15, 16, 31, 32, 33, 64, 100, 1024])
def test_insert_rows_stores_every_row_once_in_order(tmp_path: Path, count: int) -> None:
    """Rows go in multi-row statements of up to 32 rows: any count, every row once, in order,
    in as few statements as that allows."""
    conn = sqlite3.connect(tmp_path / "rows.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, kind TEXT)")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(i + 1, f"v{i}") for i in range(count)]
    execute_rows(conn, "INSERT INTO t (id, v, kind) VALUES", "(?, ?, 'fixed')", rows)
    conn.set_trace_callback(None)
    stored = conn.execute("SELECT id, v, kind FROM t ORDER BY rowid").fetchall()
    assert stored == [(i, v, "fixed") for i, v in rows]
    # 100 rows: 32 + 32 + 32 + 4 (four statements, not 100); 31 rows: one.
    assert len(statements) == -(-count // 32)


def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite").open()
    store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    store.stats.reset()

    async def main() -> None:
        await asyncio.gather(
            *(
                store.write(lambda conn, i=i: conn.execute("INSERT INTO t VALUES (?)", (i,)))
                for i in range(200)
            )
        )

    try:
        asyncio.run(main())
        assert store.reader.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 200
        assert store.stats.batches < 200 and store.stats.max_batch > 1
    finally:
        store.close()


def test_a_second_process_cannot_open_the_same_store(tmp_path: Path) -> None:
    first = Store(tmp_path / "s.sqlite").open()
    try:
        with pytest.raises(StoreError, match="in use by another process"):
            Store(tmp_path / "s.sqlite").open()
    finally:
        first.close()


def test_the_store_directory_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    """A real Jupyter server started under umask 000 (everything world-writable by default)."""
    import os
    import stat

    from processes import ServerProcess

    store = tmp_path / "made-by-hooknb" / "hooknb.sqlite"
    server = ServerProcess(tmp_path)
    server.store = store
    old = os.umask(0)
    try:
        server.start()
    finally:
        os.umask(old)
    try:
        server.api("PUT", "workflows/w", json={"client": "c"})
        mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
        assert mode(store.parent) == 0o700
        files = sorted(store.parent.iterdir())
        assert {p.name for p in files} >= {"hooknb.sqlite", "hooknb.sqlite.lock"}
        assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
    finally:
        server.stop()


def test_an_existing_store_directory_keeps_its_mode(tmp_path: Path) -> None:
    import os
    import stat

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    Store(shared / "s.sqlite").open().close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # the operator's directory, not ours


def test_read_off_loop_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """A slow read (Hub.status counting a million open waits) runs in a worker thread on its
    own connection: the loop goes on meanwhile, and the read sees committed writes."""
    import threading
    import time

    store = Store(tmp_path / "s.sqlite").open()
    store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    store.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (1), (2), (3)"))
    loop_thread = threading.get_ident()

    def slow_count(conn: sqlite3.Connection) -> tuple[int, bool]:
        time.sleep(0.3)
        return conn.execute("SELECT COUNT(*) FROM t").fetchone()[0], (
            threading.get_ident() != loop_thread
        )

    async def main() -> tuple[tuple[int, bool], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        try:
            result = await store.read_off_loop(slow_count)
        finally:
            ticker.cancel()
        return result, ticks

    try:
        (count, elsewhere), ticks = asyncio.run(main())
        assert count == 3 and elsewhere
        assert ticks >= 10  # the loop ran while the read took 0.3 s
    finally:
        store.close()
    with pytest.raises(StoreError):
        asyncio.run(store.read_off_loop(slow_count))


def test_a_store_with_runs_by_workflow_loses_it_and_still_finds_a_workflows_latest_run(
    tmp_path: Path,
) -> None:
    # Stores made before issue 15 have the index runs (workflow, created); it is dropped on
    # open (one B-tree less per trigger callback), and the views' "last seen" of a workflow
    # whose kernel is gone (its latest run's creation) reads runs (workflow, status, id).
    path = tmp_path / "s.sqlite"
    store = Store(path).open()
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX runs_by_workflow ON runs (workflow, created)")
    runs = [
        # (ids as new_run_id makes them: they sort by creation time)
        (f"{created:014x}abcdef", workflow, status, created)
        for created, (workflow, status) in enumerate(
            [("w", "Succeeded"), ("w", "Failed"), ("other", "Queued"), ("w", "Running")] * 50
            + [("w", "Waiting"), ("other", "Running")]
        )
    ]
    conn.executemany("INSERT INTO runs (id, workflow, status, created) VALUES (?, ?, ?, ?)", runs)
    conn.commit()
    conn.close()
    store = Store(path).open()
    try:
        names = {name for (name,) in store.reader.execute("SELECT name FROM sqlite_master")}
        assert "runs_by_workflow" not in names and "runs_by_workflow_status" in names
        views = Views(store, callback_url=lambda callback_id, key_type: "")
        assert views.last_seen("w", "gone-kernel", updated=0.5) == 200.0  # its Waiting run
        assert views.last_seen("other", "gone-kernel", updated=500.0) == 500.0
        assert views.last_seen("nothing", "gone-kernel", updated=None) is None
    finally:
        store.close()


def test_write_stamp_changes_with_every_change_and_every_rollback(tmp_path: Path) -> None:
    """What a writer op read stays true while the stamp is unchanged: a read leaves it, a row
    changed moves it, and so does a rolled-back batch, even one whose ops changed nothing."""
    store = Store(tmp_path / "s.sqlite").open()
    try:
        store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
        first = store.write_sync(store.write_stamp)
        store.write_sync(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone())
        assert store.write_sync(store.write_stamp) == first
        store.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
        changed = store.write_sync(store.write_stamp)
        assert changed != first

        def refuse(conn: sqlite3.Connection) -> None:
            raise ValueError("nothing written")

        with pytest.raises(ValueError):
            store.write_sync(refuse)
        assert store.write_sync(store.write_stamp) != changed
    finally:
        store.close()


class _GatedSync:
    """``os.fdatasync`` (the store's sync of the WAL) that waits for a gate before the real
    one, and notes each file synced."""

    def __init__(self, real: Callable[[int], None], *, error: OSError | None = None) -> None:
        self.real = real
        self.error = error
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.files: list[str] = []

    def __call__(self, fd: int) -> None:
        self.files.append(os.readlink(f"/proc/self/fd/{fd}"))
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise AssertionError("the test never opened the gate")
        if self.error is not None:
            raise self.error
        self.real(fd)


def _wait_until(check: Callable[[], bool], seconds: float = 10) -> None:
    give_up = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < give_up, "timed out"
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="Linux: reads /proc/self/fd")
def test_a_write_resolves_after_the_fsync_of_its_commit_while_the_writer_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A durable store answers only once the WAL holding the commit is fsynced, and commits
    the next batch while that fsync is under way (SQLite's own syncs are not os.fdatasync)."""
    fsync = _GatedSync(os.fdatasync)
    monkeypatch.setattr(os, "fdatasync", fsync)
    store = Store(tmp_path / "s.sqlite").open()
    assert store.durable

    def rows() -> list[int]:
        return [v for (v,) in store.reader.execute("SELECT v FROM t ORDER BY v")]

    async def main() -> None:
        fsync.gate.clear()
        fsync.entered.clear()
        first = store.write(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount)
        await asyncio.to_thread(_wait_until, fsync.entered.is_set)
        assert rows() == [1]  # committed: the syncer has it, the writer is free
        second = store.write(lambda conn: conn.execute("INSERT INTO t VALUES (2)").rowcount)
        await asyncio.to_thread(_wait_until, lambda: rows() == [1, 2])
        await asyncio.sleep(0.2)
        assert not first.done() and not second.done()  # neither is on disk yet
        fsync.gate.set()
        assert await asyncio.wait_for(asyncio.gather(first, second), 10) == [1, 1]

    try:
        store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
        store.stats.reset()
        asyncio.run(main())
        assert set(fsync.files) == {str((tmp_path / "s.sqlite-wal").resolve())}
        # The second commit came after the first fsync had begun: a fsync of its own.
        assert store.stats.syncs == 2 and store.stats.synced_commits == 2
    finally:
        fsync.gate.set()
        store.close()


@pytest.mark.skipif(not hasattr(os, "fdatasync"), reason="the store syncs with fdatasync")
def test_a_failed_fsync_fails_its_writes_and_every_write_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed fsync nothing is known about what reached the disk: the writes it
    covered fail, and the store takes no more (a restart reopens it from what is on disk)."""
    store = Store(tmp_path / "s.sqlite").open()
    store.write_sync(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    fsync = _GatedSync(os.fdatasync, error=OSError(errno.EIO, "Input/output error"))
    monkeypatch.setattr(os, "fdatasync", fsync)

    async def main() -> None:
        with pytest.raises(StoreError, match=r"to disk failed .*Input/output error"):
            await asyncio.wait_for(
                store.write(lambda conn: conn.execute("INSERT INTO t VALUES (1)")), 10
            )
        with pytest.raises(StoreError, match="to disk failed"):
            store.write(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))

    try:
        asyncio.run(main())
        with pytest.raises(StoreError, match="to disk failed"):
            store.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (3)"))
        assert len(fsync.files) == 1  # no fsync was tried again
    finally:
        store.close()
    monkeypatch.undo()
    reopened = Store(tmp_path / "s.sqlite").open()
    try:
        # The failed write is not known to be lost (the page cache may still write it): the
        # store is consistent either way, and takes writes again.
        assert reopened.write_sync(
            lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        ) in (0, 1)
        reopened.write_sync(lambda conn: conn.execute("INSERT INTO t VALUES (4)"))
    finally:
        reopened.close()
