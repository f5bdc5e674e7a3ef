"""P4 + P5: 100,000 concurrent waits in one server (memory, restart) and timeout precision.

    python bench/many_waits.py [--waits 100000] [--per-run 4] [--restarts 3] [--out F.json]

One ``jupyter server`` with hooknb (not pinned). The waits are created through the server's
HTTP API (``POST hooknb/api/workflows/<wf>/runs``, then ``POST hooknb/api/runs/<id>/waits``
``--per-run`` times per run), from 32 keep-alive connections, each with a 30-day deadline.
A wait does not need a subscribe call to exist and accept callbacks.

* **P4 memory**: server RSS before creating the waits and 5 s after the last one (and after a
  restart with them in the store).
* **P4 restart**: the server is stopped (SIGTERM) and started again ``--restarts`` times; for
  each start: process start -> the first callback answered 202 (a probe POSTs to a wait's
  callback URL every 2 ms from the moment the process starts; hooknb answers callbacks only
  once its hub is ready, i.e. every deadline is armed), and process start -> the hub's own
  log line "hooknb hub ready". Baseline, same run: the same restarts with (nearly) no waits.
* **P5 timeouts**: ``--timeouts`` waits with 1-3 s timeouts; lateness = ``ended - deadline``
  from ``GET hooknb/api/waits/<id>`` (server side), and, in a kernel whose runs
  ``await run.webhook(..., timeout=...)`` and catch ``ActionTimedOut``: ``time.time()`` when
  the exception arrives - the step's deadline. Measured with no other waits (baseline) and
  with the 100,000 open.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import time
from pathlib import Path
from typing import Any

from _common import (
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
    workdir,
)

GOALS = {"rss_growth_mib": 100.0, "ready_s": 2.0, "timeout_late_ms": 100.0}
LONG = 30 * 86400.0

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
    server: Server, workflow: str, runs: int, per_run: int, timeout: float, conns: int = 32
) -> list[dict[str, Any]]:
    """Create ``runs`` manual runs with ``per_run`` waits each; return the waits' JSON."""
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
                    body = {"step": f"s{step}", "client": "bench-client", "timeout": timeout}
                    status, data = await client.request(
                        "POST", f"/hooknb/api/runs/{run_id}/waits", json.dumps(body).encode(), auth
                    )
                    if status != 201:
                        raise RuntimeError(f"wait: {status} {data[:200]!r}")
                    waits.append(json.loads(data))

        await asyncio.gather(*(worker() for _ in range(conns)))
    return waits


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


def probe_restart(server: Server, probe_url: str) -> dict[str, Any]:
    """Restart the server; time process start -> first 202 and -> 'hooknb hub ready'."""
    server.stop()
    host, port, target = split_url(probe_url)
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
    }
    if row["hub_ready_line_s"] is not None and row["listening_line_s"] is not None:
        # The hub starts on the loop right after the server listens: its own start time.
        row["hub_start_s"] = round(row["hub_ready_line_s"] - row["listening_line_s"], 3)
    return row


def _since(server: Server, needle: str, started: float) -> float | None:
    when = server.line_time(needle)
    return None if when is None else round(when - started, 3)


def restarts(server: Server, probes: list[str], label: str) -> dict[str, Any]:
    rows = []
    for url in probes:
        row = probe_restart(server, url)
        log(f"{label} restart: {row}")
        rows.append(row)
    return {
        "runs": rows,
        "first_callback_202_s_median": median([r["first_callback_202_s"] for r in rows]),
        "hub_ready_line_s_median": median([r["hub_ready_line_s"] for r in rows]),
        "hub_start_s_median": median([r.get("hub_start_s", float("nan")) for r in rows]),
        "rss_mib_median": median([r["rss_mib_2s_after"] for r in rows]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=100_000)
    parser.add_argument("--per-run", type=int, default=4)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--timeouts", type=int, default=100, help="server-side P5 waits")
    parser.add_argument("--kernel-timeouts", type=int, default=50, help="kernel-side P5 runs")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    with workdir("p4", keep=args.keep) as root, Subscriber() as sub:
        info = machine(root)
        server = Server(root, cpus=None).start()
        result: dict[str, Any] = {
            "benchmark": "P4 100,000 concurrent waits (RSS, restart) + P5 timeout precision",
            "goals": GOALS,
            "machine": info,
            "setup": {
                "server_command": server.display_command(),
                "waits": args.waits,
                "waits_per_run": args.per_run,
                "wait_timeout_s": LONG,
                "restart": "SIGTERM, then the same command again",
            },
        }
        kernel = None
        try:
            probes = asyncio.run(create_waits(server, "probes", 1, 3 * args.restarts, LONG))
            probe_urls = [w["callbackUrl"] for w in probes]
            result["baseline_restart"] = restarts(server, probe_urls[: args.restarts], "empty")

            # -- P5 baseline: no other waits ----------------------------------------------
            kernel = Kernel(server)
            kernel.run(KERNEL_SETUP.format(sub=sub.url))
            result["p5_baseline"] = {
                "server": server_timeouts(server, args.timeouts),
                "kernel": kernel_timeouts(kernel, args.kernel_timeouts),
            }
            log(f"P5 without other waits: {result['p5_baseline']}")

            # -- P4: create the waits --------------------------------------------------------
            time.sleep(2)
            rss_before = server.rss_mib()
            runs = args.waits // args.per_run
            log(f"creating {runs * args.per_run} waits ({runs} runs x {args.per_run})")
            t = time.monotonic()
            asyncio.run(create_waits(server, "p4", runs, args.per_run, LONG))
            created_s = time.monotonic() - t
            time.sleep(5)
            rss_after = server.rss_mib()
            stats = server.stats()
            status = server.api("GET", "status")
            result["p4_memory"] = {
                "waits_created": runs * args.per_run,
                "created_in_s": round(created_s, 1),
                "create_rate_per_s": round(runs * (args.per_run + 1) / created_s, 1),
                "open_waits": status["openWaits"],
                "deadlines_in_scheduler": stats["deadlines"],
                "rss_mib_before": round(rss_before, 1),
                "rss_mib_after": round(rss_after, 1),
                "rss_growth_mib": round(rss_after - rss_before, 1),
                "store_mib": round(server.store.stat().st_size / 2**20, 1),
            }
            log(f"P4 memory: {result['p4_memory']}")

            # -- P5 with 100,000 waits open -----------------------------------------------
            result["p5_with_waits"] = {
                "server": server_timeouts(server, args.timeouts),
                "kernel": kernel_timeouts(kernel, args.kernel_timeouts),
            }
            log(f"P5 with {args.waits} waits: {result['p5_with_waits']}")
            kernel.shutdown()
            kernel = None

            # -- P4: restarts with the waits in the store ---------------------------------
            result["restart_with_waits"] = restarts(
                server, probe_urls[args.restarts : 2 * args.restarts], f"{args.waits} waits"
            )
            # The same, with only hooknb (and bench_ext) enabled: what Jupyter's other
            # extensions (JupyterLab, Notebook, LSP, terminals) add to every start.
            server.set_extensions(only_hooknb=True)
            result["restart_with_waits_only_hooknb"] = restarts(
                server, probe_urls[2 * args.restarts :], f"{args.waits} waits, only hooknb"
            )
        finally:
            if kernel is not None:
                kernel.shutdown()
            server.stop()

    mem, base, full = result["p4_memory"], result["baseline_restart"], result["restart_with_waits"]
    mini = result["restart_with_waits_only_hooknb"]
    p5b, p5w = result["p5_baseline"], result["p5_with_waits"]
    ready = full["first_callback_202_s_median"]
    late_server = p5w["server"]["late_ms"]["max"]
    late_kernel = p5w["kernel"]["late_ms"]["max"]
    result["pass"] = {
        "p4_rss": mem["rss_growth_mib"] <= GOALS["rss_growth_mib"],
        "p4_ready": ready <= GOALS["ready_s"],
        "p5_server": late_server <= GOALS["timeout_late_ms"],
        "p5_kernel": late_kernel <= GOALS["timeout_late_ms"],
    }
    ok = result["pass"]

    def verdict(key: str) -> str:
        return "pass" if ok[key] else "MISS"

    result["markdown"] = "\n".join(
        [
            "| measure | baseline (same run) | with the waits | goal | result |",
            "|---|---|---|---|---|",
            f"| P4 RSS growth, {mem['waits_created']} waits | {mem['rss_mib_before']} MiB before |"
            f" +{mem['rss_growth_mib']} MiB | ≤ {GOALS['rss_growth_mib']:.0f} MB |"
            f" {verdict('p4_rss')} |",
            f"| P4 start -> first callback 202 (median of {args.restarts}) |"
            f" {base['first_callback_202_s_median']} s (empty store) | {ready} s |"
            f" ≤ {GOALS['ready_s']} s | {verdict('p4_ready')} |",
            f"| P4 start -> 'hooknb hub ready' log line | {base['hub_ready_line_s_median']} s |"
            f" {full['hub_ready_line_s_median']} s | (report) | — |",
            f"| P4 hub start ('is running at' -> 'hub ready') | {base['hub_start_s_median']} s |"
            f" {full['hub_start_s_median']} s | (report) | — |",
            f"| P4 start -> first callback 202, only hooknb enabled | — |"
            f" {mini['first_callback_202_s_median']} s | ≤ {GOALS['ready_s']} s |"
            f" {'pass' if mini['first_callback_202_s_median'] <= GOALS['ready_s'] else 'MISS'} |",
            f"| P5 deadline -> timed out (server), p50 / max | {p5b['server']['late_ms']['p50']} /"
            f" {p5b['server']['late_ms']['max']} ms | {p5w['server']['late_ms']['p50']} /"
            f" {late_server} ms | ≤ {GOALS['timeout_late_ms']:.0f} ms | {verdict('p5_server')} |",
            f"| P5 deadline -> ActionTimedOut in the kernel, p50 / max |"
            f" {p5b['kernel']['late_ms']['p50']} / {p5b['kernel']['late_ms']['max']} ms |"
            f" {p5w['kernel']['late_ms']['p50']} / {late_kernel} ms |"
            f" ≤ {GOALS['timeout_late_ms']:.0f} ms | {verdict('p5_kernel')} |",
        ]
    )
    emit("many_waits", result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
