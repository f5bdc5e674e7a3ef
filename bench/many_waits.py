"""P4 + P5: 1,000,000 open waits in one server (memory, restart) and timeout precision.

    python bench/many_waits.py [--waits 1000000] [--live 20000] [--restarts 5] [--out F.json]

One ``jupyter server`` with hooknb (not pinned), two stores:

* **A**, the baseline: the schema, a few probe waits (and later ``--live`` waits), nothing else.
* **B**: a copy of A (same keys, same probe waits) into which ``--waits`` open waits are filled
  straight into SQLite with hooknb's own row code (``rows.insert_callback``, ``insert_step``,
  ``Hub``'s history row, the same ``INSERT`` into ``waits`` as ``Hub.open_wait``): one manual
  run per ``--per-run`` waits, each run Waiting, deadlines spread over 1-30 days. Creating a
  million through the HTTP API would take ~15 minutes (1,500 requests/s); what a restart then
  reads is the same. The server loads B as after any restart.

Measured:

* **P4 restart** (``--restarts`` pairs, A and B alternately, each start a fresh process;
  once with every extension a dev install enables, once with only hooknb): process start ->
  the first callback answered 202 (a probe POSTs to a wait's callback URL every 2 ms from the
  moment the process is spawned; hooknb answers callbacks only once its hub is ready), and
  process start -> the hub's log line "hooknb hub ready". Goal: B <= 1.1 x A (same run).
* **P4 memory**: each store in turn, a fresh server, the same activity (``--live`` waits
  created through the API from 32 connections, then the P5 waits, a kernel): RSS
  (``VmRSS``) at each point; growth = B - A. Also RSS 2 s after each restart.
* **P5 timeouts**, in each server (so without and with the million): ``--timeouts`` waits with
  1-3 s timeouts, lateness = ``ended - deadline`` from ``GET hooknb/api/waits/<id>``; in a
  kernel, ``--kernel-timeouts`` runs whose ``await run.webhook(..., timeout=1..3)`` raises
  ``ActionTimedOut``: ``time.time()`` in the ``except`` - the step's deadline; and a
  **burst**: ``--burst`` waits created live whose deadlines fall within 5 s (more than the
  deadline scheduler holds in memory at once), lateness read from the store afterwards.
* **F9, the status counts**: latencies of a do-nothing API request every 5 ms, alone and while
  ``GET hooknb/api/status`` (the page's poll, which counts runs and open waits) is asked back
  to back: a count made on the event loop holds every request up for as long as it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import (
    ForeignLoad,
    Kernel,
    RawHTTP,
    Server,
    Subscriber,
    emit,
    log,
    machine,
    median,
    split_url,
    summary_ms,
    wait_quiet,
    workdir,
)

GOALS = {"rss_growth_mib": 250.0, "ready_ratio": 1.1, "timeout_late_ms": 10.0}
LONG = 30 * 86400.0
DAY = 86400.0

KERNEL_SETUP = """
import asyncio, time, hooknb
LATE = []

@hooknb.workflow(name="p5_kernel")
async def p5_kernel(run):
    try:
        await run.webhook(
            "Wait",
            subscribe={{"method": "POST", "uri": "{sub}wait",
                       "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}},
            timeout=run.trigger.body["t"])
    except hooknb.ActionTimedOut:
        LATE.append(time.time() - run.actions["Wait"].deadline)
"""


async def create_waits(
    server: Server,
    workflow: str,
    runs: int,
    per_run: int,
    timeout: float | Any,
    conns: int = 32,
) -> list[dict[str, Any]]:
    """Create ``runs`` manual runs with ``per_run`` waits each; return the waits' JSON.

    ``timeout`` is seconds, or a callable giving each wait's (called when it is created)."""
    host, port, _ = split_url(server.url)
    auth = f"Authorization: token {server.token}\r\n"
    waits: list[dict[str, Any]] = []
    async with RawHTTP(host, port, conns) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(runs):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                status, data = await client.request(
                    "POST",
                    f"/hooknb/api/workflows/{workflow}/runs",
                    json.dumps({"client": "bench-client"}).encode(),
                    auth,
                )
                if status != 201:
                    raise RuntimeError(f"run: {status} {data[:200]!r}")
                run_id = json.loads(data)["run"]
                for step in range(per_run):
                    seconds = timeout() if callable(timeout) else timeout
                    body = {"step": f"s{step}", "client": "bench-client", "timeout": seconds}
                    status, data = await client.request(
                        "POST", f"/hooknb/api/runs/{run_id}/waits", json.dumps(body).encode(), auth
                    )
                    if status != 201:
                        raise RuntimeError(f"wait: {status} {data[:200]!r}")
                    waits.append(json.loads(data))

        await asyncio.gather(*(worker() for _ in range(conns)))
    return waits


def fill(store: Path, waits: int, per_run: int, workflow: str = "p4fill") -> dict[str, Any]:
    """Write ``waits`` open waits (``per_run`` per Waiting run) into a stopped server's store,
    with hooknb's own row code; deadlines 1-30 days ahead."""
    from hooknb.server import hub as hub_module
    from hooknb.server.callback_signing import new_callback_id
    from hooknb.server.rows import InboundRequest, StepOrder, insert_callback, insert_step

    began = time.monotonic()
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # filling, not measuring
    now = time.time()
    conn.execute("BEGIN")
    conn.execute(
        "INSERT OR IGNORE INTO workflows (name, client, created, updated) VALUES (?, ?, ?, ?)",
        (workflow, "bench-client", now, now),
    )
    runs = waits // per_run
    rng = random.Random(15)
    for n in range(runs):
        created = now - 3600 + n * (3600 / runs)
        run_id = f"{int(created * 1e6):014x}{n & 0xFFFFFF:06x}"
        request = InboundRequest(
            method="POST",
            headers=[],
            queries={},
            content_type=None,
            body=b"",
            received=created,
        )
        callback = insert_callback(conn, "manual", workflow, run_id, request)
        hub_module._insert_history(conn, workflow, "Fired", request, callback, [run_id], 202)
        conn.execute(
            "INSERT INTO runs (id, workflow, client, status, trigger_callback, created,"
            " started, tracking_id) VALUES (?, ?, ?, 'Waiting', ?, ?, ?, ?)",
            (run_id, workflow, "bench-client", callback, created, created, run_id),
        )
        after = None
        for step in range(per_run):
            name = f"s{step}"
            wait_id = new_callback_id()
            order = StepOrder(after=after, first=False, position=step)
            insert_step(conn, run_id, name, "HttpWebhook", order, created, wait_id=wait_id)
            conn.execute(
                "INSERT INTO waits (id, run_id, workflow, step, client, state, deadline, verify,"
                " created) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                (
                    wait_id,
                    run_id,
                    workflow,
                    name,
                    "bench-client",
                    now + rng.uniform(1, 30) * DAY,
                    None,
                    created,
                ),
            )
            after = name
        if n % 5000 == 4999:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {
        "runs": runs,
        "waits": runs * per_run,
        "seconds": round(time.monotonic() - began, 1),
        "store_mib": round(store.stat().st_size / 2**20, 1),
    }


def server_timeouts(server: Server, n: int) -> dict[str, Any]:
    """``n`` waits with 1-3 s timeouts; lateness of their expiry (ended - deadline)."""
    start = time.time()
    waits: list[dict[str, Any]] = []
    for index in range(n):
        timeout = 1.0 + 2.0 * index / max(1, n - 1)
        waits.extend(asyncio.run(create_waits(server, "p5", 1, 1, timeout, conns=1)))
    time.sleep(max(0.0, max(w["deadline"] for w in waits) - time.time()) + 1.5)
    late, states = [], {}
    for wait in waits:
        view = server.api("GET", f"waits/{wait['id']}")
        states[view["state"]] = states.get(view["state"], 0) + 1
        if view["ended"] is not None:
            late.append(view["ended"] - view["deadline"])
    return {
        "waits": n,
        "created_in_s": round(time.time() - start, 1),
        "states": states,
        "late_ms": summary_ms(late),
    }


def status_stall(server: Server, seconds: float = 4.0) -> dict[str, Any]:
    """How long the event loop is held while the status is counted (F9): latencies of
    ``GET hooknb/api/version`` (a handler that does nothing) every 5 ms, first alone, then
    while another client asks ``GET hooknb/api/status`` (the page's poll) back to back."""
    import threading

    import httpx

    def probe(until: float) -> list[float]:
        latencies = []
        with httpx.Client(headers=server.auth, trust_env=False, timeout=30) as client:
            while time.monotonic() < until:
                began = time.perf_counter()
                client.get(f"{server.url}hooknb/api/version").raise_for_status()
                latencies.append(time.perf_counter() - began)
                time.sleep(0.005)
        return latencies

    alone = probe(time.monotonic() + seconds)
    stop = threading.Event()
    polls: list[float] = []

    def poll() -> None:
        with httpx.Client(headers=server.auth, trust_env=False, timeout=60) as client:
            while not stop.is_set():
                began = time.perf_counter()
                client.get(f"{server.url}hooknb/api/status").raise_for_status()
                polls.append(time.perf_counter() - began)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        polled = probe(time.monotonic() + seconds)
    finally:
        stop.set()
        poller.join(timeout=60)
    return {
        "version_alone_ms": summary_ms(alone),
        "version_while_status_polled_ms": summary_ms(polled),
        "status_answer_ms": summary_ms(polls),
    }


def kernel_timeouts(kernel: Kernel, n: int) -> dict[str, Any]:
    kernel.run("LATE.clear()")
    kernel.run(
        f"_runs = [p5_kernel.start(body={{'t': 1.0 + 2.0 * i / {max(1, n - 1)}}})"
        f" for i in range({n})]"
    )
    give_up = time.monotonic() + 30
    late: list[float] = []
    while time.monotonic() < give_up:
        late = kernel.json("LATE")
        if len(late) >= n:
            break
        time.sleep(0.5)
    return {"runs": n, "timed_out": len(late), "late_ms": summary_ms(late)}


def burst_timeouts(server: Server, n: int, workflow: str) -> dict[str, Any]:
    """``n`` waits created live, their deadlines spread over 5 s starting once all exist;
    lateness (ended - deadline) read from the store afterwards."""
    rate = 400.0  # waits/s the API takes here even on a busy machine (1,500/s when quiet)
    base = time.time() + n / rate + 5.0
    made = clamped = 0

    def timeout() -> float:
        # Spread over [base, base + 5 s) in a scattered order; a wait created too late for
        # its slot (a slow machine) gets 0.5 s instead (counted).
        nonlocal made, clamped
        made += 1
        seconds = base + 5.0 * ((made * 7919) % n) / n - time.time()
        clamped += seconds < 0.5
        return max(0.5, seconds)

    began = time.time()
    asyncio.run(create_waits(server, workflow, n // 4, 4, timeout))
    created_s = time.time() - began
    if clamped:
        log(f"burst: creating took {created_s:.1f} s; {clamped} waits got 0.5 s")
    time.sleep(max(0.0, base + 5.0 - time.time()) + 2.0)
    conn = sqlite3.connect(f"file:{server.store}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT state, ended - deadline FROM waits WHERE workflow = ?", (workflow,)
    ).fetchall()
    conn.close()
    states: dict[str, int] = {}
    for state, _ in rows:
        states[state] = states.get(state, 0) + 1
    return {
        "waits": len(rows),
        "created_in_s": round(created_s, 1),
        "deadlines_within_s": 5.0,
        "clamped_to_half_a_second": clamped,
        "states": states,
        "late_ms": summary_ms([late for _, late in rows if late is not None]),
    }


def probe_start(server: Server, store: Path, probe_url: str) -> dict[str, Any]:
    """Start the server on ``store``; time process start -> first 202 and -> 'hub ready'."""
    server.stop()
    server.store = store
    host, port, target = split_url(probe_url)
    load = ForeignLoad()
    server.start(wait=False)
    started = server.started_at
    first = None
    attempts = 0
    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        attempts += 1
        try:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("POST", target, b'{"probe":true}', {"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
        except OSError:
            time.sleep(0.002)
            continue
        if status != 202:
            raise RuntimeError(f"probe answered {status}")
        first = time.time()
        break
    foreign = load.share()
    server.wait_ready()
    ready = server.line_time("hooknb hub ready")
    line = next((text for _, text in server.lines if "hooknb hub ready" in text), "")
    time.sleep(2)
    row: dict[str, Any] = {
        "first_callback_202_s": None if first is None else round(first - started, 3),
        "hub_ready_line_s": None if ready is None else round(ready - started, 3),
        "listening_line_s": _since(server, "is running at", started),
        "hub_ready_line": line.split("] ", 1)[-1],
        "probe_attempts": attempts,
        "rss_mib_2s_after": round(server.rss_mib(), 1),
        "foreign_cores": round(foreign, 3),
    }
    if row["hub_ready_line_s"] is not None and row["listening_line_s"] is not None:
        # The hub starts on the loop right after the server listens: its own start time.
        row["hub_start_s"] = round(row["hub_ready_line_s"] - row["listening_line_s"], 3)
    server.stop()
    return row


def _since(server: Server, needle: str, started: float) -> float | None:
    when = server.line_time(needle)
    return None if when is None else round(when - started, 3)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def values(key: str) -> list[float]:
        return [r[key] for r in rows if r.get(key) is not None]

    out: dict[str, Any] = {"runs": rows}
    for key in ("first_callback_202_s", "hub_ready_line_s", "hub_start_s", "rss_mib_2s_after"):
        got = values(key)
        out[f"{key}_median"] = median(got) if got else None
        out[f"{key}_range"] = [min(got), max(got)] if got else None
    return out


def restarts(
    server: Server, stores: dict[str, Path], probes: list[str], count: int, label: str
) -> dict[str, Any]:
    """``count`` starts of each store, alternately (A, B, A, B...), one fresh probe each."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in stores}
    for index in range(count):
        for name, store in stores.items():
            wait_quiet(threshold=0.15, max_wait=20)
            row = probe_start(server, store, probes[index])
            log(f"{label} restart {index + 1}, store {name}: {row}")
            rows[name].append(row)
    out = {name: _summary(got) for name, got in rows.items()}
    a, b = (out[name]["first_callback_202_s_median"] for name in stores)
    out["ratio_first_callback_202"] = round(b / a, 3) if a and b else None
    pairs = [
        r2["first_callback_202_s"] / r1["first_callback_202_s"]
        for r1, r2 in zip(*rows.values(), strict=True)
        if r1["first_callback_202_s"] and r2["first_callback_202_s"]
    ]
    out["pair_ratios"] = [round(x, 3) for x in pairs]
    out["pair_ratio_median"] = round(median(pairs), 3) if pairs else None
    return out


def phase(server: Server, sub: Subscriber, store: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh server on ``store``: live waits, P5, RSS at each point."""
    server.stop()
    server.store = store
    server.start()
    time.sleep(3)
    wait_quiet([server.pid], threshold=0.15, max_wait=30)
    out: dict[str, Any] = {"rss_mib_started": round(server.rss_mib(), 1)}
    status = server.api("GET", "status")
    out["open_waits_at_start"] = status["openWaits"]
    out["status_stall"] = status_stall(server)
    load = ForeignLoad([server.pid])
    began = time.monotonic()
    if args.live:
        asyncio.run(create_waits(server, "p4live", args.live // 4, 4, LONG))
    created = time.monotonic() - began
    out["live_waits"] = {
        "created": args.live,
        "seconds": round(created, 1),
        "waits_per_s": round(args.live / created, 1) if args.live else None,
        "foreign_cores": round(load.share(), 3),
    }
    time.sleep(5)
    out["rss_mib_after_live"] = round(server.rss_mib(), 1)
    kernel = Kernel(server)
    try:
        kernel.run(KERNEL_SETUP.format(sub=sub.url))
        wait_quiet([server.pid, kernel.pid], threshold=0.15, max_wait=30)
        load = ForeignLoad([server.pid, kernel.pid])
        out["p5_server"] = server_timeouts(server, args.timeouts)
        out["p5_kernel"] = kernel_timeouts(kernel, args.kernel_timeouts)
        out["p5_foreign_cores"] = round(load.share(), 3)
    finally:
        kernel.shutdown()
    if args.burst:
        wait_quiet([server.pid], threshold=0.15, max_wait=30)
        load = ForeignLoad([server.pid])
        out["p5_burst"] = burst_timeouts(server, args.burst, "p5burst")
        out["p5_burst"]["foreign_cores"] = round(load.share(), 3)
    time.sleep(2)
    out["rss_mib_end"] = round(server.rss_mib(), 1)
    out["stats"] = server.stats()
    status = server.api("GET", "status")
    out["open_waits_at_end"] = status["openWaits"]
    server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=1_000_000, help="filled into store B")
    parser.add_argument("--per-run", type=int, default=4)
    parser.add_argument("--live", type=int, default=20_000, help="created through the API")
    parser.add_argument("--restarts", type=int, default=5, help="pairs, per extension set")
    parser.add_argument("--timeouts", type=int, default=100, help="server-side P5 waits")
    parser.add_argument("--kernel-timeouts", type=int, default=50, help="kernel-side P5 runs")
    parser.add_argument("--burst", type=int, default=10_000, help="P5 burst waits (0: none)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-restarts", action="store_true", help="only the memory and P5 phases (A, then B)"
    )
    args = parser.parse_args()

    with workdir("p4", keep=args.keep) as root, Subscriber() as sub:
        info = machine(root)
        store_a, store_b = root / "a" / "hooknb.sqlite", root / "b" / "hooknb.sqlite"
        server = Server(root, cpus=None, store=store_a)
        result: dict[str, Any] = {
            "benchmark": "P4 1,000,000 open waits (RSS, restart) + P5 timeout precision",
            "goals": GOALS,
            "machine": info,
            "setup": {
                "server_command": server.display_command(),
                "filled_waits": args.waits,
                "waits_per_run": args.per_run,
                "live_waits": args.live,
                "restart": "SIGTERM, then the same command again on store A or B, alternately",
            },
        }
        try:
            server.start()
            probes = asyncio.run(create_waits(server, "probes", 1, 2 * args.restarts, LONG))
            probe_urls = [w["callbackUrl"] for w in probes]
            server.stop()  # a clean stop: the WAL is checkpointed into the main file
            store_b.parent.mkdir()
            shutil.copyfile(store_a, store_b)
            log(f"filling {args.waits} waits into store B")
            result["fill"] = fill(store_b, args.waits, args.per_run)
            log(f"filled: {result['fill']}")
            stores = {"A (empty)": store_a, f"B ({args.waits} waits)": store_b}

            if not args.no_restarts:
                result["restart_all_extensions"] = restarts(
                    server, stores, probe_urls[: args.restarts], args.restarts, "all extensions"
                )
                server.set_extensions(only_hooknb=True)
                result["restart_only_hooknb"] = restarts(
                    server, stores, probe_urls[args.restarts :], args.restarts, "only hooknb"
                )
                server.set_extensions()

            result["phase_a"] = phase(server, sub, store_a, args)
            log(f"phase A: { {k: v for k, v in result['phase_a'].items() if k != 'stats'} }")
            result["phase_b"] = phase(server, sub, store_b, args)
            log(f"phase B: { {k: v for k, v in result['phase_b'].items() if k != 'stats'} }")
        finally:
            server.stop()

    a, b = result["phase_a"], result["phase_b"]
    growth = round(b["rss_mib_end"] - a["rss_mib_end"], 1)
    result["rss_growth_mib"] = growth
    worst_server = b["p5_server"]["late_ms"]["max"]
    worst_kernel = b["p5_kernel"]["late_ms"]["max"]
    result["pass"] = {
        "p4_rss": growth <= GOALS["rss_growth_mib"],
        "p5_server": worst_server <= GOALS["timeout_late_ms"],
        "p5_kernel": worst_kernel <= GOALS["timeout_late_ms"],
    }
    if not args.no_restarts:
        full, mini = result["restart_all_extensions"], result["restart_only_hooknb"]
        names = list(full)[:2]
        result["rss_growth_mib_at_start"] = round(
            full[names[1]]["rss_mib_2s_after_median"] - full[names[0]]["rss_mib_2s_after_median"],
            1,
        )
        ratio_full = full["ratio_first_callback_202"] or 99
        result["pass"]["p4_ready"] = ratio_full <= GOALS["ready_ratio"]
        ratio_mini = mini["ratio_first_callback_202"] or 99
        result["pass"]["p4_ready_only_hooknb"] = ratio_mini <= GOALS["ready_ratio"]
    ok = result["pass"]

    def verdict(key: str) -> str:
        return "pass" if ok[key] else "MISS"

    def start_row(what: str, data: dict[str, Any], key: str, unit: str = "s") -> str:
        x, y = (data[n] for n in names)
        ratio = "ratio_first_callback_202" if key == "first_callback_202_s" else None
        return (
            f"| {what} | {x[key + '_median']} {unit}"
            f" ({x[key + '_range'][0]}-{x[key + '_range'][1]})"
            f" | {y[key + '_median']} {unit} ({y[key + '_range'][0]}-{y[key + '_range'][1]}) |"
            f" {data[ratio] if ratio else '—'} |"
        )

    def late(part: dict[str, Any]) -> str:
        return f"{part['late_ms']['p50']} / {part['late_ms']['p99']} / {part['late_ms']['max']}"

    lines = ["| P4 | store A: empty | store B: filled | B / A |", "|---|---|---|---|"]
    if not args.no_restarts:
        lines += [
            start_row("start → first callback 202, all extensions", full, "first_callback_202_s"),
            start_row("start → 'hooknb hub ready', all extensions", full, "hub_ready_line_s"),
            start_row("hub start ('running at' → 'hub ready')", full, "hub_start_s"),
            start_row("start → first callback 202, only hooknb", mini, "first_callback_202_s"),
            start_row("RSS 2 s after start, all extensions", full, "rss_mib_2s_after", "MiB"),
        ]
    lines += [
        f"| RSS after {args.live} live waits + P5 (MiB) | {a['rss_mib_end']} | {b['rss_mib_end']}"
        f" | +{growth} MiB (goal ≤ {GOALS['rss_growth_mib']:.0f}: {verdict('p4_rss')}) |",
        "",
        "| P5 lateness p50 / p99 / max (ms) | store A | store B | goal |",
        "|---|---|---|---|",
        f"| server: deadline → timed out | {late(a['p5_server'])} | {late(b['p5_server'])} |"
        f" ≤ {GOALS['timeout_late_ms']:.0f}: {verdict('p5_server')} |",
        f"| kernel: deadline → ActionTimedOut | {late(a['p5_kernel'])} | {late(b['p5_kernel'])} |"
        f" ≤ {GOALS['timeout_late_ms']:.0f}: {verdict('p5_kernel')} |",
    ]
    if args.burst:
        lines.append(
            f"| burst: {args.burst} deadlines within 5 s | {late(a['p5_burst'])} |"
            f" {late(b['p5_burst'])} | (report) |"
        )
    stall_a, stall_b = a["status_stall"], b["status_stall"]

    def stall(part: dict[str, Any]) -> str:
        return f"{part['p50']} / {part['p99']} / {part['max']}"

    lines += [
        "",
        "| F9: a do-nothing API request, p50 / p99 / max (ms) | store A | store B |",
        "|---|---|---|",
        f"| alone | {stall(stall_a['version_alone_ms'])} | {stall(stall_b['version_alone_ms'])} |",
        f"| while the status is polled | {stall(stall_a['version_while_status_polled_ms'])} |"
        f" {stall(stall_b['version_while_status_polled_ms'])} |",
        f"| the status answer itself | {stall(stall_a['status_answer_ms'])} |"
        f" {stall(stall_b['status_answer_ms'])} |",
    ]
    result["markdown"] = "\n".join(lines)
    emit("many_waits", result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
