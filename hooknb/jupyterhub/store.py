"""The receiver's durable store: SQLite by default, PostgreSQL for a hub with several replicas.

Two tables. ``hooknb_servers`` holds each user's server's access keys (registered by that
server), which the receiver needs to check callback signatures while the server is stopped.
``hooknb_callbacks`` holds every callback taken, until its user's server has it.

Nothing that correctness depends on lives in a receiver process: which replica forwards a
callback is decided by a lease in its row (a conditional ``UPDATE`` whose row count says who
won), so any number of replicas can share one PostgreSQL database, and a replica that dies
mid-delivery leaves a lease that expires and another replica delivers (the user's server
ignores a repeated forward id).

SQLAlchemy Core, synchronous: callers run these methods in :class:`ReceiverStore`'s executor
(one thread for SQLite, whose single writer this keeps simple; a few for PostgreSQL).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..server.rows import InboundRequest, callback_json

T = TypeVar("T")

metadata = sa.MetaData()

servers = sa.Table(
    "hooknb_servers",
    metadata,
    sa.Column("user", sa.String(255), primary_key=True),
    sa.Column("server", sa.String(255), primary_key=True),
    # {"primary": <base64url>, "secondary": <base64url>}: as secret as the store itself.
    sa.Column("keys", sa.Text, nullable=False),
    sa.Column("registered", sa.Float, nullable=False),
    # When a replica last asked the Hub to start this server (start_servers=True).
    sa.Column("start_requested", sa.Float),
)

callbacks = sa.Table(
    "hooknb_callbacks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("server", sa.String(255), nullable=False),
    sa.Column("callback_id", sa.String(64), nullable=False),
    sa.Column("received", sa.Float, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("queries", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # pending -> delivered (the server answered 2xx) | refused (it answered 4xx: a finished
    # action, a bad sender signature...); its answer is kept either way.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Column("status", sa.Integer),
    sa.Column("answer", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("finished", sa.Float),
    sa.Index("hooknb_callbacks_by_server", "user", "server", "state", "received"),
    sa.Index("hooknb_callbacks_due", "state", "next_attempt"),
)

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"


@dataclass(frozen=True, slots=True)
class StoredCallback:
    """One callback taken for a user's server, in the form the server's forward route reads."""

    id: str
    user: str
    server: str
    callback_id: str
    request: InboundRequest
    attempts: int

    def forward_body(self) -> dict[str, Any]:
        wire = callback_json(
            0,
            self.request.received,
            self.request.method,
            self.request.headers,
            self.request.queries,
            self.request.content_type,
            self.request.body,
        )
        return {"id": self.id, "callback": self.callback_id, "request": wire}


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url``; ``postgresql://`` uses psycopg 3, SQLite files are made 0600."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = os.path.abspath(parsed.database)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Created by us first so that the file (and its -wal/-shm siblings, which copy its
            # mode) is never readable by others: it holds the users' access keys.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(path, 0o600)
        # hide_parameters: an error message must never quote a key or a callback body.
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            # WAL + synchronous=FULL: a commit is on disk before the sender hears 202.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")

        return engine
    # PostgreSQL commits are durable by default (synchronous_commit=on).
    return sa.create_engine(
        parsed, pool_pre_ping=True, pool_size=8, max_overflow=4, hide_parameters=True
    )


class ReceiverStore:
    """The receiver's tables, with async wrappers that run each operation in a thread."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self.dialect = self.engine.dialect.name
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.dialect == "sqlite" else 8,
            thread_name_prefix="hooknb-receiver-db",
        )

    def create(self) -> None:
        """Create the tables if missing (replicas may race: the loser sees them exist)."""
        try:
            metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError:
            metadata.create_all(self.engine)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the store's threads (the event loop never blocks on it)."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    # -- servers and their keys ------------------------------------------------------------

    def register(self, user: str, server: str, keys: dict[str, str], now: float) -> int:
        """Store (or replace) a server's keys; return how many callbacks wait for it."""
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(servers)
        upsert = insert.values(
            user=user, server=server, keys=json.dumps(keys), registered=now
        ).on_conflict_do_update(
            index_elements=["user", "server"], set_={"keys": json.dumps(keys), "registered": now}
        )
        with self.engine.begin() as conn:
            conn.execute(upsert)
            return self._pending_count(conn, user, server)

    def keys(self, user: str, server: str) -> dict[str, str] | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(servers.c["keys"]).where(
                    servers.c.user == user, servers.c.server == server
                )
            ).scalar()
        return None if value is None else json.loads(value)

    def note_start_request(self, user: str, server: str, now: float, every: float) -> bool:
        """Whether this replica should ask the Hub to start the server now (once per ``every``)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(servers)
                .where(
                    servers.c.user == user,
                    servers.c.server == server,
                    sa.or_(
                        servers.c.start_requested.is_(None),
                        servers.c.start_requested < now - every,
                    ),
                )
                .values(start_requested=now)
            ).rowcount
        return bool(changed)

    # -- callbacks -------------------------------------------------------------------------

    def add(
        self, user: str, server: str, callback_id: str, request: InboundRequest, lease: str
    ) -> str:
        """Store a callback (committed when this returns), leased to ``lease`` for a first try."""
        row_id = secrets.token_hex(16)
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(callbacks).values(
                    id=row_id,
                    user=user,
                    server=server,
                    callback_id=callback_id,
                    received=request.received,
                    method=request.method,
                    headers=json.dumps(request.headers),
                    queries=json.dumps(request.queries),
                    content_type=request.content_type,
                    body=request.body,
                    state=PENDING,
                    attempts=0,
                    next_attempt=request.received,
                    lease_owner=lease,
                    lease_until=request.received + 120,
                )
            )
        return row_id

    def get(self, row_id: str) -> StoredCallback | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(callbacks).where(callbacks.c.id == row_id)).first()
        return None if row is None else _stored(row)

    def claim(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        *,
        user: str | None = None,
        server: str | None = None,
        limit: int = 100,
    ) -> list[StoredCallback]:
        """Lease pending callbacks to ``owner``: the due ones, or all of one server's.

        Each row is leased by a conditional update, so concurrent replicas never both get it.
        """
        free = sa.or_(callbacks.c.lease_until.is_(None), callbacks.c.lease_until < now)
        query = sa.select(callbacks.c.id).where(callbacks.c.state == PENDING, free)
        if user is None:
            query = query.where(callbacks.c.next_attempt <= now)
        else:
            query = query.where(callbacks.c.user == user, callbacks.c.server == server)
        query = query.order_by(callbacks.c.received).limit(limit)
        claimed = []
        with self.engine.begin() as conn:
            for (row_id,) in conn.execute(query).all():
                won = conn.execute(
                    sa.update(callbacks)
                    .where(callbacks.c.id == row_id, callbacks.c.state == PENDING, free)
                    .values(lease_owner=owner, lease_until=now + lease_seconds)
                ).rowcount
                if won:
                    claimed.append(row_id)
            if not claimed:
                return []
            rows = conn.execute(
                sa.select(callbacks)
                .where(callbacks.c.id.in_(claimed))
                .order_by(callbacks.c.received)
            ).all()
        return [_stored(row) for row in rows]

    def finish(self, row_id: str, status: int, answer: Any, now: float) -> None:
        """Record the server's answer (2xx: delivered; anything else it said: refused).

        Idempotent: a replica whose lease expired may deliver the same row again; the server
        answers a repeated forward id with its first answer, and the first record stays."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(callbacks)
                .where(callbacks.c.id == row_id, callbacks.c.state == PENDING)
                .values(
                    state=DELIVERED if 200 <= status < 300 else REFUSED,
                    status=status,
                    answer=json.dumps(answer),
                    error=None,
                    finished=now,
                    lease_owner=None,
                    lease_until=None,
                    attempts=callbacks.c.attempts + 1,
                )
            )

    def retry_later(self, row_ids: list[str], owner: str, error: str, when: float) -> None:
        """Give the leases back with the next attempt at ``when``."""
        if not row_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(callbacks)
                .where(
                    callbacks.c.id.in_(row_ids),
                    callbacks.c.state == PENDING,
                    callbacks.c.lease_owner == owner,
                )
                .values(
                    attempts=callbacks.c.attempts + 1,
                    next_attempt=when,
                    error=error[:1000],
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def list_for(self, user: str, server: str | None, limit: int) -> list[dict[str, Any]]:
        """A user's callbacks, newest first, without bodies or headers (they are in the
        user's own store once delivered)."""
        query = sa.select(
            callbacks.c.id,
            callbacks.c.server,
            callbacks.c.callback_id,
            callbacks.c.received,
            callbacks.c.state,
            callbacks.c.attempts,
            callbacks.c.status,
            callbacks.c.error,
            callbacks.c.finished,
        ).where(callbacks.c.user == user)
        if server is not None:
            query = query.where(callbacks.c.server == server)
        query = query.order_by(callbacks.c.received.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def servers_of(self, user: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(servers.c.server, servers.c.registered).where(servers.c.user == user)
            ).all()
            return [
                {
                    "server": server,
                    "registered": registered,
                    "pending": self._pending_count(conn, user, server),
                }
                for server, registered in rows
            ]

    def purge(self, before: float) -> int:
        """Forget finished callbacks older than ``before`` (pending ones are kept)."""
        with self.engine.begin() as conn:
            return conn.execute(
                sa.delete(callbacks).where(
                    callbacks.c.state != PENDING, callbacks.c.finished < before
                )
            ).rowcount

    @staticmethod
    def _pending_count(conn: sa.Connection, user: str, server: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(callbacks)
                .where(
                    callbacks.c.user == user,
                    callbacks.c.server == server,
                    callbacks.c.state == PENDING,
                )
            ).scalar()
            or 0
        )


def _stored(row: Any) -> StoredCallback:
    m = row._mapping
    return StoredCallback(
        id=m["id"],
        user=m["user"],
        server=m["server"],
        callback_id=m["callback_id"],
        request=InboundRequest(
            method=m["method"],
            headers=[tuple(pair) for pair in json.loads(m["headers"])],
            queries=json.loads(m["queries"]),
            content_type=m["content_type"],
            body=bytes(m["body"]),
            received=m["received"],
        ),
        attempts=m["attempts"],
    )
