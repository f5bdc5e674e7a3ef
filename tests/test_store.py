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
