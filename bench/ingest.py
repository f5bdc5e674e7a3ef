"""P1: durable callback ingest through hooknb vs a no-op tornado handler in the same server.

    python bench/ingest.py [--runs 5] [--duration 8] [--conns 16] [--no-kernel] [--out F.json]

One ``jupyter server`` (hooknb + ``bench/bench_ext.py``) pinned to core 0; ``wrk -t1 -c16``
pinned to core 1 POSTs the same JSON body to

* the **baseline**: ``bench/noop/<id>?sig=<...>``, a plain tornado handler answering 202
  (same process, same routing table, URL of the same length), and
* **hooknb**: the callback URL of an enabled HttpWebhook trigger. Every 202 means a run was
  started: the callback, the run and its delivery are committed (WAL, ``synchronous=FULL``,
  fsync) before the answer. No kernel is attached, so the deliveries queue in the store.

Runs alternate baseline/hooknb (order flipped every run); each run's ratio is hooknb ÷ the
baseline run next to it, and the result is the median of those ratios. Then the same with a
kernel attached (pinned to core 0 with the server: hooknb on one core, wrk on the other), whose
workflow starts a run per callback.

Then ``--floor-runs`` pairs of the baseline against bench_ext's *floor* route: hooknb's own
callback handler and group commit writing one page per commit but no hooknb rows. It splits
the gap: floor ÷ baseline is the price of any durable answer through this handler, hooknb ÷
floor the price of hooknb's rows (callback, run, delivery). Last, a second server with
``--HookNB.durable=False`` (no fsync) measures hooknb and the floor again: what the fsync costs.

Afterwards the store is checked: it must hold at least as many trigger callbacks as wrk counted
202 answers (wrk does not count requests still in flight when it stops).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import (
    Kernel,
    Server,
    Subscriber,
    emit,
    enable_trigger,
    log,
    machine,
    median,
    noop_url,
    wait_quiet,
    workdir,
    wrk,
)

GOAL = 0.8

KERNEL_WORKFLOW = """
import time, hooknb
_started = []

@hooknb.workflow(name="bench_k", trigger=hooknb.HttpWebhookTrigger(
    subscribe={{"method": "POST", "uri": "{sub}trigger",
               "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}}))
async def bench_k(run):
    _started.append(time.time())
    return run.trigger.body["id"]

bench_k.enable()
print(bench_k.callback_url)
"""


def pair_runs(
    server: Server, hook_url: str, base_url: str, args: argparse.Namespace, label: str
) -> list[dict[str, Any]]:
    runs = []
    for index in range(args.runs):
        order = ("base", "hook") if index % 2 == 0 else ("hook", "base")
        row: dict[str, Any] = {"run": index + 1, "order": "/".join(order)}
        row["quiet_before"] = wait_quiet(args.pids)
        for which in order:
            url = hook_url if which == "hook" else base_url
            server.stats(reset=True)
            cpu0, wall0 = server.cpu_seconds(), time.monotonic()
            result = wrk(url, duration=args.duration, conns=args.conns, pids=args.pids)
            cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
            result["server_cpu_share"] = round(cpu, 3)
            if which == "hook":
                result["group_commit"] = server.stats()["store"]
            row[which] = result
            if args.settle:
                args.settle(which)
            time.sleep(args.pause)
        row["ratio"] = round(row["hook"]["rps"] / row["base"]["rps"], 3)
        log(
            f"{label} run {index + 1}: baseline {row['base']['rps']:.0f} req/s, "
            f"hooknb {row['hook']['rps']:.0f} req/s, ratio {row['ratio']}, "
            f"mean batch {row['hook']['group_commit']['mean_batch']}, others used "
            f"{row['base']['foreign_cores']:.2f}/{row['hook']['foreign_cores']:.2f} cores"
        )
        runs.append(row)
    return runs


def with_runs(args: argparse.Namespace, runs: int) -> argparse.Namespace:
    """``args`` with another number of pairs to measure."""
    return argparse.Namespace(**{**vars(args), "runs": runs})


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(which: str, key: str) -> float:
        return round(median([r[which][key] for r in runs]), 3)

    return {
        "ratio_median": round(median([r["ratio"] for r in runs]), 3),
        "ratio_min": min(r["ratio"] for r in runs),
        "ratio_max": max(r["ratio"] for r in runs),
        "hooknb_rps_median": med("hook", "rps"),
        "baseline_rps_median": med("base", "rps"),
        "hooknb_p50_ms": med("hook", "p50_ms"),
        "hooknb_p99_ms": med("hook", "p99_ms"),
        "baseline_p50_ms": med("base", "p50_ms"),
        "baseline_p99_ms": med("base", "p99_ms"),
        "mean_batch_median": round(
            median([r["hook"]["group_commit"]["mean_batch"] for r in runs]), 2
        ),
        "foreign_cores_max": max(r[w]["foreign_cores"] for r in runs for w in ("hook", "base")),
        "non2xx": sum(r[w]["non2xx"] for r in runs for w in ("hook", "base")),
        "socket_errors": sum(
            r[w][k]
            for r in runs
            for w in ("hook", "base")
            for k in ("connect_err", "read_err", "write_err", "timeout")
        ),
    }


def floor_result(runs: list[dict[str, Any]], floor_runs: list[dict[str, Any]]) -> dict[str, Any]:
    hooknb, floor = summarise(runs), summarise(floor_runs)
    return {
        "what": "hooknb's CallbackHandler + group commit of one changed page, no hooknb rows",
        "floor_over_baseline_median": floor["ratio_median"],
        "floor_over_baseline_min": floor["ratio_min"],
        "floor_over_baseline_max": floor["ratio_max"],
        "floor_rps_median": floor["hooknb_rps_median"],
        "baseline_rps_median": floor["baseline_rps_median"],
        "hooknb_over_floor": round(hooknb["hooknb_rps_median"] / floor["hooknb_rps_median"], 3),
        "runs": floor_runs,
    }


def warmed_up_urls(
    server: Server, sub: Subscriber, args: argparse.Namespace
) -> tuple[str, str, str]:
    """Enable the bench trigger; its callback, no-op and floor URLs, each warmed up."""
    hook = enable_trigger(server, "bench", sub, "bench-client")
    base = noop_url(server, hook)
    floor = noop_url(server, hook, "floor")
    for url in (base, hook, floor):
        wrk(url, duration=args.warmup, conns=args.conns)
    return hook, base, floor


def not_durable(root: Path, sub: Subscriber, args: argparse.Namespace) -> dict[str, Any]:
    """hooknb and the floor again, on a server whose store does not fsync."""
    server = Server(root / "not-durable", cpus="0", extra_args=["--HookNB.durable=False"]).start()
    args.pids = [server.pid]
    args.settle = None
    try:
        hook, base, floor = warmed_up_urls(server, sub, args)
        few = with_runs(args, args.floor_runs)
        runs = pair_runs(server, hook, base, few, "not durable")
        floor_runs = pair_runs(server, floor, base, few, "not durable, floor")
    finally:
        server.stop()
    return {
        "setup": "same, with --HookNB.durable=False (synchronous=NORMAL: no fsync)",
        "hooknb": {**summarise(runs), "runs": runs},
        "floor": floor_result(runs, floor_runs),
    }


def stored_callbacks(store: Path, workflow: str) -> int:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM callbacks WHERE kind = 'trigger' AND target = ?", (workflow,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kernel-runs", type=int, default=3)
    parser.add_argument("--floor-runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--pause", type=float, default=1)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--no-kernel", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, store)")
    args = parser.parse_args()
    args.settle = None
    args.pids = []

    with workdir("ingest", keep=args.keep) as root, Subscriber() as sub:
        info = machine(root)
        server = Server(root, cpus="0").start()
        args.pids = [server.pid]
        try:
            log("warm-up")
            hook, base, floor = warmed_up_urls(server, sub, args)
            runs = pair_runs(server, hook, base, args, "no kernel")
            floor_runs = pair_runs(
                server,
                floor,
                base,
                with_runs(args, args.floor_runs),
                "floor (rows skipped)",
            )
            sent = sum(r["hook"]["requests"] for r in runs)
            stored = stored_callbacks(server.store, "bench")
            result: dict[str, Any] = {
                "benchmark": "P1 durable callback ingest vs no-op handler, same server",
                "goal": f"hooknb/baseline >= {GOAL}",
                "machine": info,
                "setup": {
                    "server": "jupyter server pinned to core 0 (taskset -c 0)",
                    "load": "wrk pinned to core 1",
                    "durable": "WAL, synchronous=FULL, 202 after COMMIT",
                    "server_command": server.display_command(),
                },
                "wrk_command_hooknb": runs[0]["hook"]["command"],
                "wrk_command_baseline": runs[0]["base"]["command"],
                "no_kernel": {
                    **summarise(runs),
                    "stored_trigger_callbacks": stored,
                    "wrk_counted_202_in_measured_runs": sent,
                    "runs": runs,
                },
            }
            result["no_kernel"]["pass"] = result["no_kernel"]["ratio_median"] >= GOAL
            if floor_runs:
                result["floor"] = floor_result(runs, floor_runs)
            if not args.no_kernel:
                kernel = Kernel(server, cpus="0")
                args.pids = [server.pid, kernel.pid]
                try:
                    url = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]

                    def settle(which: str) -> None:
                        # Let the kernel drain what the last run queued before measuring again.
                        if which != "hook":
                            return
                        give_up = time.monotonic() + 120
                        last = -1
                        while time.monotonic() < give_up:
                            pending = server.api("GET", "status")["pendingDeliveries"]
                            if pending == last:
                                break
                            last = pending
                            time.sleep(0.5)

                    args.settle = settle
                    runs_k = pair_runs(
                        server,
                        url,
                        base,
                        with_runs(args, args.kernel_runs),
                        "kernel",
                    )
                    started = kernel.json("len(_started)")
                    result["kernel_attached"] = {
                        **summarise(runs_k),
                        "kernel": "ipykernel pinned to core 0 with the server",
                        "runs_started_in_kernel": started,
                        "stored_trigger_callbacks": stored_callbacks(server.store, "bench_k"),
                        "runs": runs_k,
                    }
                finally:
                    kernel.shutdown()
        finally:
            server.stop()
        if args.floor_runs:
            result["not_durable"] = not_durable(root, sub, args)

    def row(
        label: str, base: float, measured: float, ratios: tuple[Any, Any, Any], tail: str
    ) -> str:
        median_, low, high = ratios
        return f"| {label} | {base:.0f} | {measured:.0f} | {median_} ({low}-{high}) | {tail} |"

    def floor_row(label: str, floor: dict[str, Any]) -> str:
        return row(
            label,
            floor["baseline_rps_median"],
            floor["floor_rps_median"],
            tuple(floor[f"floor_over_baseline_{k}"] for k in ("median", "min", "max")),
            f"(report) | hooknb ÷ floor {floor['hooknb_over_floor']}",
        )

    def hooknb_row(label: str, value: dict[str, Any], tail: str) -> str:
        return row(
            label,
            value["baseline_rps_median"],
            value["hooknb_rps_median"],
            tuple(value[f"ratio_{k}"] for k in ("median", "min", "max")),
            tail,
        )

    nk = result["no_kernel"]
    lines = [
        "| measure | baseline req/s | measured req/s | ratio (median of runs) | goal | result |",
        "|---|---|---|---|---|---|",
        hooknb_row("P1 ingest, no kernel", nk, f"≥ {GOAL} | {'pass' if nk['pass'] else 'MISS'}"),
    ]
    if "floor" in result:
        lines.append(floor_row("floor: handler + group commit, no rows", result["floor"]))
    if "kernel_attached" in result:
        lines.append(
            hooknb_row("P1 ingest, kernel attached", result["kernel_attached"], "(report) | —")
        )
    if "not_durable" in result:
        nd = result["not_durable"]
        lines.append(hooknb_row("P1 ingest, no fsync", nd["hooknb"], "(report) | —"))
        lines.append(floor_row("floor, no fsync", nd["floor"]))
    result["markdown"] = "\n".join(lines)
    emit("ingest", result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
