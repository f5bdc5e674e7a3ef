"""The receiver's store on SQLite and PostgreSQL: keys, leases that replicas cannot both win,
answers recorded once, nothing pending ever forgotten."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hooknb.jupyterhub.store import ReceiverStore
from hooknb.server.callback_signing import Signer
from hooknb.server.rows import InboundRequest


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReceiverStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'receiver.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = ReceiverStore(url)
    store.create()
    store.create()  # idempotent: every replica does it at start
    yield store
    if request.param == "postgresql":
        from hooknb.jupyterhub.store import metadata

        metadata.drop_all(store.engine)
    store.close()


def request_at(received: float, body: bytes = b"{}") -> InboundRequest:
    return InboundRequest("POST", [("Content-Type", "application/json")], {}, None, body, received)


KEYS = {"primary": "A" * 43, "secondary": "B" * 43}


def test_keys_are_registered_per_server_and_replaced(store: ReceiverStore) -> None:
    assert store.keys("alice", "") is None
    assert store.register("alice", "", KEYS, 1.0) == 0
    new = Signer({"primary": b"p" * 32, "secondary": b"s" * 32}).export()
    store.register("alice", "", new, 2.0)
    store.register("alice", "gpu", KEYS, 2.0)
    assert store.keys("alice", "") == new
    assert store.keys("alice", "gpu") == KEYS
    assert store.keys("bob", "") is None
    assert [s["server"] for s in sorted(store.servers_of("alice"), key=str)] == ["", "gpu"]


def test_only_one_replica_wins_each_lease(store: ReceiverStore) -> None:
    store.register("alice", "", KEYS, 1.0)
    now = time.time()
    ids = [
        store.add("alice", "", f"cb{i:020d}", request_at(now - 100 + i), "first") for i in range(30)
    ]
    # The first owner's leases (taken when each was stored) run out...
    store.retry_later(ids, "first", "server not running", now - 1)

    async def claim_all() -> list[list[str]]:
        # Through the store's executor, as the receiver does: SQLite runs them one after the
        # other (one writer thread), PostgreSQL on several connections at once.
        claims = [store.run(store.claim, f"replica-{i}", time.time(), 60) for i in range(4)]
        return [[row.id for row in rows] for rows in await asyncio.gather(*claims)]

    claims = asyncio.run(claim_all())
    won = [row_id for owned in claims for row_id in owned]
    assert sorted(won) == sorted(ids)  # every row leased, none twice
    # Leased rows are not due for anyone else until the lease ends.
    assert store.claim("late", time.time(), 60) == []


def test_a_servers_rows_come_oldest_first_and_answers_are_kept(store: ReceiverStore) -> None:
    store.register("alice", "", KEYS, 1.0)
    now = time.time()
    second = store.add("alice", "", "b" * 22, request_at(now - 1, b"2"), "x")
    first = store.add("alice", "", "a" * 22, request_at(now - 2, b"1"), "x")
    store.add("bob", "", "c" * 22, request_at(now), "x")
    store.retry_later([first, second], "x", "stopped", now + 3600)  # not due...
    rows = store.claim("me", now, 60, user="alice", server="")  # ...but the server is back
    assert [row.id for row in rows] == [first, second]
    assert rows[0].request.body == b"1" and rows[0].attempts == 1
    assert rows[0].forward_body()["request"]["body"] == {"encoding": "utf-8", "data": "1"}

    store.finish(first, 202, {"run": "r"}, now)
    store.finish(first, 500, {"late": "replica"}, now)  # a second answer changes nothing
    store.finish(second, 409, {"error": "finished"}, now)
    listed = {row["id"]: row for row in store.list_for("alice", None, 10)}
    assert (listed[first]["state"], listed[first]["status"]) == ("delivered", 202)
    assert (listed[second]["state"], listed[second]["status"]) == ("refused", 409)
    assert "body" not in listed[first] and len(store.list_for("bob", None, 10)) == 1

    assert store.purge(now + 1) == 2  # finished rows go after the retention...
    assert [row["callback_id"] for row in store.list_for("bob", None, 10)] == ["c" * 22]
    assert store.purge(now + 10**9) == 0  # ...pending ones never


def test_a_store_that_is_down_is_a_503_for_the_sender(tmp_path: Path) -> None:
    from hooknb.jupyterhub.receiver import Receiver, Settings

    settings = Settings(
        db_url=f"postgresql://hooknb@/hooknb?host={tmp_path}/no-such-socket-dir",
        proxy_url="http://127.0.0.1:9/",
        hub_api_url="http://127.0.0.1:9/hub/api",
        api_token="unused",
        service_url="http://127.0.0.1:9",
        prefix="/services/hooknb/",
    )

    async def take() -> tuple[int, dict]:
        receiver = Receiver(settings, ReceiverStore(settings.db_url))
        try:
            return await receiver.take("alice", "", "a" * 22, "sig", request_at(time.time()))
        finally:
            await receiver.stop()
            receiver.store.close()

    status, answer = asyncio.run(take())
    assert status == 503 and "retry later" in answer["error"]
