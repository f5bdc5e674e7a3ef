"""A Jupyter server extension used only by the benchmarks (never installed with hooknb).

Loaded into the *same* Jupyter server process as hooknb (``bench/`` on ``PYTHONPATH`` and
``jpserver_extensions`` in a throwaway config dir), it adds:

* ``POST <base>bench/noop/<id>`` — the baseline: a plain tornado handler, outside Jupyter's
  auth like hooknb's callback route, that reads the body and answers ``202`` with a small JSON
  body. Same process, same routing table, same loop: the only difference to hooknb's
  ``CallbackHandler`` is the work hooknb does (verify, store durably, answer).
* ``POST <base>bench/raw-noop/<id>`` — the no-op at tornado's HTTP layer, where hooknb's
  callback route answers (an ``HTTPMessageDelegate``, no ``RequestHandler``): the cheapest
  answer this server can give, the frame for what hooknb's own work costs.
* ``POST <base>bench/floor/<id>?sig=<...>`` — the *floor* of durable ingest: hooknb's own
  ``CallbackHandler`` (signature check, bounded body read, ``InboundRequest``) and its store's
  group commit, but the op writes no hooknb rows: it sets one ``meta`` value to a new number,
  so each commit is a real WAL append + fsync of one page. hooknb ÷ floor is what hooknb's rows
  (callback, run, delivery) cost; floor ÷ no-op is what any durable answer costs here.
* ``POST <base>bench/durable/<id>`` — the *durable floor*, the limit P1 is measured against: the
  cheapest honest durable answer in this server. A plain tornado handler (like the no-op) hands
  (id, body, content type) to one writer thread of its own, which drains everything queued into
  one transaction on its own SQLite file (WAL, ``synchronous=FULL``: an fsync per commit, next to
  hooknb's store) and wakes the waiting handlers with one ``call_soon_threadsafe`` per batch; the
  handler answers 202 only then. No hooknb code runs. ``GET <base>bench/durable-stats``: its
  batches and requests.
* ``GET <base>bench/stats`` — the hooknb store's group-commit counters (batches, ops per
  batch) and the process's own CPU time, read from inside the server. Token-authenticated.
* ``POST <base>bench/stats`` — zero the counters before a measured run. It also times the
  hub's adoption of runs from then on (``Hub.adopt``, and ``Views.histories`` inside it: P6);
  ``GET`` returns them under ``adopt``.
* ``POST <base>bench/profile?action=start|stop`` — a deterministic CPU profile of the event-loop
  thread (``cProfile`` with ``time.thread_time`` as its clock, so time spent waiting is not
  counted); ``stop`` answers the ``pstats`` text and writes ``<path>`` if given.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import queue
import resource
import sqlite3
import threading
import time
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import httputil, routing, web

from hooknb.server.callback_route import CallbackRouter
from hooknb.server.handlers import CallbackHandler


class NoopHandler(web.RequestHandler):
    """The baseline callback endpoint: no verification, no storage, 202."""

    def check_xsrf_cookie(self) -> None:
        return None

    @allow_unauthenticated
    def post(self, ident: str) -> None:
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"id": ident, "status": "Accepted", "size": len(self.request.body)}))


class RawNoop(httputil.HTTPMessageDelegate):
    """The no-op at tornado's HTTP layer, where hooknb's callback route answers: reads the body
    and answers 202 with the same JSON as :class:`NoopHandler`, no ``RequestHandler``."""

    def __init__(self, request: httputil.HTTPServerRequest, ident: str) -> None:
        self.request = request
        self.ident = ident
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def finish(self) -> None:
        body = json.dumps({"id": self.ident, "status": "Accepted", "size": self.size}).encode()
        headers = httputil.HTTPHeaders(
            {"Content-Type": "application/json", "Content-Length": str(len(body))}
        )
        connection = self.request.connection
        assert connection is not None
        start = httputil.ResponseStartLine("HTTP/1.1", 202, "Accepted")
        connection.write_headers(start, headers, body)
        connection.finish()


class RawNoopRouter(routing.Router):
    def find_handler(self, request: httputil.HTTPServerRequest, **params: Any) -> RawNoop:
        return RawNoop(request, params["path_kwargs"]["ident"].decode())


class DurableFloor:
    """One writer thread with its own SQLite file: each request is one row, each batch of
    whatever is queued one ``BEGIN``/``COMMIT`` with ``synchronous=FULL`` (an fsync)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.batches = 0
        self.requests = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="bench-durable-floor", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY, route TEXT NOT NULL,"
            " content_type TEXT, body BLOB NOT NULL)"
        )
        while True:
            items = [self.queue.get()]
            while True:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO received (route, content_type, body) VALUES (?, ?, ?)",
                [item[:3] for item in items],
            )
            conn.execute("COMMIT")
            self.batches += 1
            self.requests += len(items)
            loop = items[0][4]
            loop.call_soon_threadsafe(_wake, [item[3] for item in items])

    def stats(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "requests": self.requests,
            "mean_batch": round(self.requests / self.batches, 2) if self.batches else None,
        }


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class DurableFloorHandler(web.RequestHandler):
    """The durable floor: 202 after the request is committed (see the module doc)."""

    floor: DurableFloor

    def initialize(self, floor: DurableFloor) -> None:
        self.floor = floor

    def check_xsrf_cookie(self) -> None:
        return None

    @allow_unauthenticated
    async def post(self, ident: str) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request = self.request
        self.floor.queue.put(
            (ident, request.headers.get("Content-Type"), request.body, future, loop)
        )
        await future
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"id": ident, "status": "Accepted", "size": len(request.body)}))


class DurableStatsHandler(APIHandler):
    floor: DurableFloor

    def initialize(self, floor: DurableFloor) -> None:
        self.floor = floor

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(self.floor.stats()))


def _touch_one_page(conn: Any) -> None:
    # A new value each time: SQLite skips a write that leaves the page as it was, and a
    # commit with nothing written is not synced.
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('bench:floor', ?)", (time.time_ns(),)
    )


class FloorHub:
    """hooknb's hub as the callback handler sees it, minus the rows (see the module doc)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        # signer, max_body_size, is_ready, ready: hooknb's own.
        return getattr(self._settings["hooknb_hub"], name)

    async def ingest(self, callback_id: str, request: Any) -> tuple[int, dict[str, Any]]:
        await self._settings["hooknb_hub"].store.write(_touch_one_page)
        return 202, {"run": None, "workflow": None, "status": "Accepted"}


def _hub(handler: web.RequestHandler) -> Any:
    return handler.settings.get("hooknb_hub")


class StatsHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        hub = _hub(self)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        value: dict[str, Any] = {
            "pid": os.getpid(),
            "time": time.time(),
            "cpu_user_s": usage.ru_utime,
            "cpu_sys_s": usage.ru_stime,
            "maxrss_kib": usage.ru_maxrss,
            "store": None,
            "deadlines": None,
        }
        if hub is not None:
            stats = getattr(hub.store, "stats", None)
            value["store"] = stats.snapshot() if stats is not None else None
            value["deadlines"] = len(hub._deadlines)  # held in memory
            scheduler_stats = getattr(hub._deadlines, "stats", None)
            value["deadline_scheduler"] = scheduler_stats() if scheduler_stats else None
            value["adopt"] = [_adopt_entry(entry) for entry in _adopt_timings]
            writer = hub._trigger_writer
            process = writer._process if writer is not None else None
            value["trigger_writer_pid"] = process.pid if process is not None else None
        value["gc"] = _gc_pauses.snapshot()
        self.finish(json.dumps(value))

    @web.authenticated
    def post(self) -> None:
        hub = _hub(self)
        stats = getattr(getattr(hub, "store", None), "stats", None)
        if stats is not None:
            stats.reset()
        _gc_pauses.longest = [0.0, 0.0, 0.0]
        if hub is not None:
            _time_adoption(hub)
            # ?trigger_writer=1|0: the hub's trigger_writer_process switched at run time, so
            # that one server measures with and without it (bench/results' A/B scripts).
            switch = self.get_query_argument("trigger_writer", None)
            if switch is not None:
                hub.trigger_writer_process = switch == "1"
        self.finish(json.dumps({"reset": stats is not None}))


class GCPauses:
    """The garbage collector's pauses in this process, by generation (``gc.callbacks``): count,
    seconds in all and the longest, and how many objects are frozen out of collections."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest[generation], took)

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": list(self.count),
            "seconds": list(self.seconds),
            "longest_s": list(self.longest),
            "frozen": gc.get_freeze_count(),
        }


_gc_pauses = GCPauses()
gc.callbacks.append(_gc_pauses)


#: One entry per ``Hub.adopt`` call since the wrappers went in: seconds in all (the writer op
#: and its commit, the histories, the catch-up) and in ``Views.histories``, and the run count.
_adopt_timings: list[dict[str, Any]] = []


def _time_adoption(hub: Any) -> None:
    """Wrap ``hub.adopt`` and ``hub.views.histories`` (this hub object only) with timers."""
    _adopt_timings.clear()
    if getattr(hub, "_bench_timed", False):
        return
    hub._bench_timed = True
    adopt, histories = hub.adopt, hub.views.histories
    current: dict[str, Any] = {}

    def timed_histories(run_ids: list[str]) -> Any:
        start = time.perf_counter()
        try:
            return histories(run_ids)
        finally:
            current["histories_s"] = time.perf_counter() - start

    async def timed_adopt(name: str, client: str) -> Any:
        current.clear()
        gc_count, gc_seconds = sum(_gc_pauses.count), sum(_gc_pauses.seconds)
        start = time.perf_counter()
        value = await adopt(name, client)
        entry = {"total_s": time.perf_counter() - start, "runs": len(value.get("runs", ()))}
        entry.update(current)
        # The server's cyclic GC during the call (any thread): collections and their time.
        entry["gc_collections"] = sum(_gc_pauses.count) - gc_count
        entry["gc_s"] = sum(_gc_pauses.seconds) - gc_seconds
        entry["_value"] = value  # sized when read (GET bench/stats), not on the measured path
        _adopt_timings.append(entry)
        return value

    hub.views.histories = timed_histories
    hub.adopt = timed_adopt


def _adopt_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An adopt timing with the answer's size (its JSON, as the handler sends it)."""
    value = entry.pop("_value", None)
    if value is not None:
        entry["answer_bytes"] = len(json.dumps(value))
        entry["history_steps"] = sum(len(run["steps"]) for run in value.get("runs", ()))
    return entry


_profile: cProfile.Profile | None = None


class ProfileHandler(APIHandler):
    @web.authenticated
    def post(self) -> None:
        global _profile
        action = self.get_query_argument("action")
        if action == "start":
            _profile = cProfile.Profile(time.thread_time)
            _profile.enable()
            self.finish(json.dumps({"profiling": True}))
            return
        if _profile is None:
            raise web.HTTPError(409, "not profiling")
        _profile.disable()
        profile, _profile = _profile, None
        path = self.get_query_argument("path", "")
        if path:
            profile.dump_stats(path)
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(self.get_query_argument("sort", "cumulative"))
        stats.print_stats(int(self.get_query_argument("top", "60")))
        self.set_header("Content-Type", "text/plain")
        self.finish(out.getvalue())


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "bench_ext"}]


def _durable_floor_path(serverapp: Any) -> str:
    """In the server's root dir (the benchmarks keep hooknb's store there too: same disk)."""
    return os.path.join(serverapp.root_dir, "bench-floor.sqlite")


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings["base_url"]
    floor = DurableFloor(os.environ.get("HOOKNB_BENCH_FLOOR_DB") or _durable_floor_path(serverapp))
    floor.start()
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, r"bench/noop/(?P<ident>[A-Za-z0-9_-]{1,64})"), NoopHandler),
            (
                url_path_join(base, r"bench/durable/(?P<ident>[A-Za-z0-9_-]{1,64})"),
                DurableFloorHandler,
                {"floor": floor},
            ),
            (url_path_join(base, "bench/durable-stats"), DurableStatsHandler, {"floor": floor}),
            (url_path_join(base, "bench/stats"), StatsHandler),
            (url_path_join(base, "bench/profile"), ProfileHandler),
        ],
    )
    # Routing targets that are not RequestHandler classes go to tornado's table directly, as
    # hooknb's callback route does (Jupyter's add_handlers inspects handler classes).
    web.Application.add_handlers(
        serverapp.web_app,
        ".*$",
        [
            (
                url_path_join(base, r"bench/floor(?:/(?P<callback_id>.*))?"),
                CallbackRouter(CallbackHandler, hub=FloorHub(serverapp.web_app.settings)),
            ),
            (
                url_path_join(base, r"bench/raw-noop/(?P<ident>[A-Za-z0-9_-]{1,64})"),
                RawNoopRouter(),
            ),
        ],
    )
