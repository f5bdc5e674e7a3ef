"""The store's group commit on a real SQLite file: batching, and a failing op in a batch."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hooknb.server.store import Store, StoreError


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
