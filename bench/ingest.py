"""P1: durable callback ingest through hooknb vs a no-op tornado handler and the durable floor.

    python bench/ingest.py [--rounds 5] [--duration 8] [--conns 16] [--no-kernel] [--out F.json]

One ``jupyter server`` (hooknb + ``bench/bench_ext.py``) pinned to core 0; ``wrk -t1 -c16``
pinned to core 1 POSTs the same JSON body to, in each round (the order rotates every round):

* the **baseline**: ``bench/noop/<id>?sig=<...>``, a plain tornado handler answering 202
  (same process, same routing table, URL of the same length);
* the **no-op at tornado's HTTP layer**: ``bench/raw-noop/<id>?sig=<...>``, the same answer
  from an ``HTTPMessageDelegate`` (where hooknb's callback route answers since issue 15's sixth
  round): the cheapest answer this server can give;
* the **durable floor** (the limit): ``bench/durable/<id>?sig=<...>``, a plain tornado handler
  that answers 202 only after its request is a row committed by one writer thread of its own
  (its own SQLite file, WAL, ``synchronous=FULL``, group commit): the cheapest honest durable
  answer in this server, no hooknb code;
* the **handler floor**: ``bench/floor/<id>?sig=<...>``, hooknb's own callback handler and store
  writer with an op that stores no hooknb rows (one changed page per commit);
* **hooknb**: the callback URL of an enabled HttpWebhook trigger. Every 202 means a run was
  started: what it needs is committed (WAL, ``synchronous=FULL``, fsync) before the answer. No
  kernel is attached, so the queued runs wait in the store.

* the **issue's frame** (when ``../shared/reference/p1-floor/floorext.py`` is there, or
  ``--reference-floor DIR``): that extension loaded into the same server, its ``noop/<x>`` (a
  ``JupyterHandler``: the no-op the issue's figures are ratios to) and its ``durable/<x>``. Our
  baseline is a plain tornado handler, which does less per request than a ``JupyterHandler``,
  so the same work is a smaller ratio of it: both frames are reported. The goals are judged in
  the issue's frame when it is there (``pass``; ``pass_vs_our_noop`` is the stricter one).

Each URL's server CPU per request is read from ``/proc`` per thread (the event loop's thread and
the others: the store's writer), which is steadier than req/s on a shared VM.

Each round's ratios are against that round's baseline (and hooknb ÷ durable floor); the
results are the medians over the rounds, with their ranges. Then rounds of the no-ops and
hooknb with a kernel attached on its own core (core 1, with wrk; the server alone on core 0)
whose workflow starts a run per callback. ``--not-durable`` adds a second server with
``--HookNB.durable=False`` (no fsync): hooknb and the handler floor again.

Afterwards the store is checked: it must hold at least as many trigger callbacks as wrk counted
202 answers (wrk does not count requests still in flight when it stops).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    REPO,
    Kernel,
    Server,
    Subscriber,
    emit,
    enable_trigger,
    log,
    machine,
    median,
    noop_url,
    thread_cpu_seconds,
    wait_quiet,
    workdir,
    wrk,
)

GOAL = 0.9
GOAL_KERNEL = 0.8

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

#: What each measured URL is, by its key in a round.
LABELS = {
    "base": "no-op handler (baseline)",
    "raw_noop": "no-op at tornado's HTTP layer (a delegate, as hooknb's callback route)",
    "durable": "durable floor: plain handler, own writer thread, one row per request, fsync",
    "floor": "handler floor: hooknb's CallbackHandler and store writer, no hooknb rows",
    "hook": "hooknb trigger callback",
    "ref_noop": "the issue's no-op (floorext: a JupyterHandler answering 202)",
    "ref_durable": "the issue's durable floor (floorext: own writer thread, fsync)",
}

#: Where the issue's measuring extension is, next to the project (never copied into it).
REFERENCE_FLOOR = REPO.parent / "shared" / "reference" / "p1-floor"


def rounds(
    server: Server, urls: dict[str, str], args: argparse.Namespace, label: str, n: int
) -> list[dict[str, Any]]:
    """``n`` rounds over ``urls`` (key -> URL), the order rotated each round."""
    keys = list(urls)
    out = []
    for index in range(n):
        shift = index % len(keys)
        order = keys[shift:] + keys[:shift]
        row: dict[str, Any] = {"round": index + 1, "order": "/".join(order)}
        row["quiet_before"] = wait_quiet(args.pids)
        for which in order:
            server.stats(reset=True)
            cpu0, wall0 = server.cpu_seconds(), time.monotonic()
            threads0 = thread_cpu_seconds(server.pid)
            result = wrk(urls[which], duration=args.duration, conns=args.conns, pids=args.pids)
            threads1 = thread_cpu_seconds(server.pid)
            cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
            result["server_cpu_share"] = round(cpu, 3)
            result["server_cpu_us_per_request"] = cpu_per_request(
                server.pid, threads0, threads1, result["requests"]
            )
            if which in ("hook", "floor"):
                result["group_commit"] = server.stats()["store"]
            row[which] = result
            if args.settle:
                args.settle(which)
            time.sleep(args.pause)
        base = row["base"]["rps"]
        row["ratio"] = {k: round(row[k]["rps"] / base, 3) for k in keys if k != "base"}
        if "durable" in row and "hook" in row:
            row["ratio"]["hook_over_durable"] = round(row["hook"]["rps"] / row["durable"]["rps"], 3)
        if "raw_noop" in row and "hook" in row:
            # The same layer: what hooknb's own work costs against the cheapest answer.
            raw = row["raw_noop"]["rps"]
            row["ratio"]["hook_over_raw_noop"] = round(row["hook"]["rps"] / raw, 3)
        if "ref_noop" in row:
            # The frame: its own no-op is the baseline.
            ref = row["ref_noop"]["rps"]
            for key in ("ref_durable", "hook"):
                if key in row:
                    row["ratio"][f"{key}_over_ref_noop"] = round(row[key]["rps"] / ref, 3)
        if "ref_durable" in row and "hook" in row:
            row["ratio"]["hook_over_ref_durable"] = round(
                row["hook"]["rps"] / row["ref_durable"]["rps"], 3
            )
        foreign = max(row[k]["foreign_cores"] for k in keys)
        log(
            f"{label} round {index + 1}: "
            + ", ".join(f"{k} {row[k]['rps']:.0f}" for k in keys)
            + " req/s; ratios "
            + ", ".join(f"{k} {v}" for k, v in row["ratio"].items())
            + f"; others used ≤ {foreign:.2f} cores"
        )
        out.append(row)
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in LABELS if k in runs[0]]
    value: dict[str, Any] = {"rounds": len(runs)}
    for key in keys:
        value[key] = {
            "what": LABELS[key],
            "rps_median": round(median([r[key]["rps"] for r in runs]), 1),
            "p50_ms_median": round(median([r[key]["p50_ms"] for r in runs]), 3),
            "p99_ms_median": round(median([r[key]["p99_ms"] for r in runs]), 3),
            "server_cpu_share_median": round(median([r[key]["server_cpu_share"] for r in runs]), 3),
            "server_cpu_us_per_request_median": {
                part: round(median([r[key]["server_cpu_us_per_request"][part] for r in runs]), 1)
                for part in ("event_loop", "other_threads", "total")
            },
        }
        if "group_commit" in runs[0][key]:
            value[key]["mean_batch_median"] = round(
                median([r[key]["group_commit"]["mean_batch"] or 0 for r in runs]), 2
            )
    for name in runs[0]["ratio"]:
        ratios = [r["ratio"][name] for r in runs]
        value[f"ratio_{name}"] = {
            "median": round(median(ratios), 3),
            "min": min(ratios),
            "max": max(ratios),
        }
    value["foreign_cores_max"] = max(r[k]["foreign_cores"] for r in runs for k in keys)
    value["non2xx"] = sum(r[k]["non2xx"] for r in runs for k in keys)
    value["socket_errors"] = sum(
        r[k][e]
        for r in runs
        for k in keys
        for e in ("connect_err", "read_err", "write_err", "timeout")
    )
    return value


def verdict(summary: dict[str, Any]) -> float:
    """The ratio a goal is judged on: hooknb ÷ the issue's no-op (floorext's, a JupyterHandler)
    when it was measured, else hooknb ÷ our no-op (a plain RequestHandler, which does less)."""
    ratio = summary.get("ratio_hook_over_ref_noop") or summary["ratio_hook"]
    return float(ratio["median"])


def cpu_per_request(
    pid: int, before: dict[int, float], after: dict[int, float], requests: int
) -> dict[str, float]:
    """Server CPU microseconds per request: the event loop's thread (the process's main
    thread), the other threads (the store's writer, the floors' writers) and both."""
    spent = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
    loop = spent.get(pid, 0.0)
    others = sum(seconds for tid, seconds in spent.items() if tid != pid)
    scale = 1e6 / max(requests, 1)
    return {
        "event_loop": round(loop * scale, 1),
        "other_threads": round(others * scale, 1),
        "total": round((loop + others) * scale, 1),
    }


def reference_floor(args: argparse.Namespace) -> Path | None:
    """The issue's measuring extension's folder, when it is there (and not turned off)."""
    folder = args.reference_floor
    if folder is None or str(folder) == "none":
        return None
    return folder if (folder / "floorext.py").is_file() else None


def server_with_reference(root: Path, args: argparse.Namespace) -> Server:
    """The measured server: hooknb, bench_ext and, when present, the issue's floorext."""
    reference = reference_floor(args)
    if reference is None:
        return Server(root, cpus="0")
    pythonpath = os.pathsep.join(
        p for p in (str(BENCH_DIR), str(reference), os.environ.get("PYTHONPATH", "")) if p
    )
    return Server(
        root,
        cpus="0",
        extensions=["floorext"],
        env={"PYTHONPATH": pythonpath, "FLOOR_DB": str(root / "floorext.sqlite")},
    )


def warmed_up_urls(server: Server, sub: Subscriber, args: argparse.Namespace) -> dict[str, str]:
    """Enable the bench trigger; the URLs of one round (baseline first), each warmed up."""
    hook = enable_trigger(server, "bench", sub, "bench-client")
    urls = {
        "base": noop_url(server, hook),
        "raw_noop": noop_url(server, hook, "raw-noop"),
        "durable": noop_url(server, hook, "durable"),
        "floor": noop_url(server, hook, "floor"),
        "hook": hook,
    }
    if "floorext" in server.extensions:
        urls["ref_noop"] = f"{server.url}noop/bench"
        urls["ref_durable"] = f"{server.url}durable/bench"
    for url in urls.values():
        wrk(url, duration=args.warmup, conns=args.conns)
    return urls


def not_durable(root: Path, sub: Subscriber, args: argparse.Namespace) -> dict[str, Any]:
    """hooknb and the handler floor again, on a server whose store does not fsync."""
    server = Server(root / "not-durable", cpus="0", extra_args=["--HookNB.durable=False"]).start()
    args.pids = [server.pid]
    args.settle = None
    try:
        urls = warmed_up_urls(server, sub, args)
        del urls["durable"]
        runs = rounds(server, urls, args, "not durable", args.rounds)
    finally:
        server.stop()
    return {
        "setup": "same, with --HookNB.durable=False (synchronous=NORMAL: no fsync)",
        **summarise(runs),
        "runs": runs,
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kernel-rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--pause", type=float, default=1)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--no-kernel", action="store_true")
    parser.add_argument("--not-durable", action="store_true", help="also a server without fsync")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--reference-floor",
        type=Path,
        default=REFERENCE_FLOOR,
        help="folder of the issue's floorext.py ('none': leave it out)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, store)")
    args = parser.parse_args()
    args.settle = None
    args.pids = []

    with workdir("ingest", keep=args.keep) as root, Subscriber() as sub:
        info = machine(root)
        server = server_with_reference(root, args).start()
        args.pids = [server.pid]
        try:
            log("warm-up")
            urls = warmed_up_urls(server, sub, args)
            runs = rounds(server, urls, args, "no kernel", args.rounds)
            sent = sum(r["hook"]["requests"] for r in runs)
            stored = stored_callbacks(server.store, "bench")
            nk = summarise(runs)
            result: dict[str, Any] = {
                "benchmark": "P1 durable callback ingest vs no-op handler and durable floor",
                "goal": f"hooknb/baseline >= {GOAL} without a kernel, >= {GOAL_KERNEL} with one",
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
                    **nk,
                    # The frame when its no-op is there; ours (stricter) otherwise.
                    "pass": verdict(nk) >= GOAL,
                    "pass_vs_our_noop": nk["ratio_hook"]["median"] >= GOAL,
                    "stored_trigger_callbacks": stored,
                    "wrk_counted_202_in_measured_runs": sent,
                    "durable_floor_stats": server_durable_stats(server),
                    "runs": runs,
                },
            }
            if not args.no_kernel:
                kernel = Kernel(server, cpus="1")
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
                    wrk(url, duration=args.warmup, conns=args.conns)
                    settle("hook")
                    runs_k = rounds(
                        server,
                        {
                            "base": urls["base"],
                            **{k: urls[k] for k in ("raw_noop", "ref_noop") if k in urls},
                            "hook": url,
                        },
                        args,
                        "kernel",
                        args.kernel_rounds,
                    )
                    started = kernel.json("len(_started)")
                    ka = summarise(runs_k)
                    result["kernel_attached"] = {
                        **ka,
                        "pass": verdict(ka) >= GOAL_KERNEL,
                        "pass_vs_our_noop": ka["ratio_hook"]["median"] >= GOAL_KERNEL,
                        "kernel": "ipykernel pinned to core 1 (with wrk), the server on core 0",
                        "runs_started_in_kernel": started,
                        "stored_trigger_callbacks": stored_callbacks(server.store, "bench_k"),
                        "runs": runs_k,
                    }
                finally:
                    kernel.shutdown()
        finally:
            server.stop()
        if args.not_durable:
            result["not_durable"] = not_durable(root, sub, args)

    def line(label: str, value: dict[str, Any], key: str, goal: str) -> str:
        ratio = value[f"ratio_{key}"]
        return (
            f"| {label} | {value['base']['rps_median']:.0f} | {value[key]['rps_median']:.0f} |"
            f" {ratio['median']} ({ratio['min']}-{ratio['max']}) | {goal} |"
        )

    nk = result["no_kernel"]
    lines = [
        "| measure | baseline req/s | measured req/s | ratio to baseline (median, range) | goal |",
        "|---|---|---|---|---|",
        line(
            "P1 ingest, no kernel, ÷ our no-op (a plain RequestHandler)",
            nk,
            "hook",
            f"≥ {GOAL}: {'pass' if nk['pass_vs_our_noop'] else 'MISS'}",
        ),
        line("durable floor (the limit)", nk, "durable", "(report)"),
        line("handler floor: hooknb's handler + writer, no rows", nk, "floor", "(report)"),
        f"| hooknb ÷ durable floor | | | {nk['ratio_hook_over_durable']['median']}"
        f" ({nk['ratio_hook_over_durable']['min']}-{nk['ratio_hook_over_durable']['max']}) |"
        " ≥ 0.95 |",
    ]
    if "ratio_hook_over_ref_noop" in nk:
        for key, label, goal in (
            ("hook_over_ref_noop", "P1 in the issue's frame: hooknb ÷ floorext's no-op", GOAL),
            ("ref_durable_over_ref_noop", "floorext's durable floor ÷ its no-op", None),
            ("hook_over_ref_durable", "hooknb ÷ floorext's durable floor", 0.95),
            ("hook_over_raw_noop", "hooknb ÷ the no-op at tornado's HTTP layer", None),
        ):
            ratio = nk[f"ratio_{key}"]
            judged = "" if goal is None else ("pass" if ratio["median"] >= goal else "MISS")
            goal_text = "(report)" if goal is None else f"≥ {goal}: {judged}"
            lines.append(
                f"| {label} | | | {ratio['median']} ({ratio['min']}-{ratio['max']}) | {goal_text} |"
            )
    cpu = " · ".join(
        f"{key} {nk[key]['server_cpu_us_per_request_median']['total']:.0f}"
        f" ({nk[key]['server_cpu_us_per_request_median']['other_threads']:.0f} off the loop)"
        for key in LABELS
        if key in nk
    )
    lines.append(f"| server CPU µs per request, medians | | | {cpu} | |")
    if "kernel_attached" in result:
        ka = result["kernel_attached"]
        lines.append(
            line(
                "P1 ingest, kernel attached (core 1), ÷ our no-op",
                ka,
                "hook",
                f"≥ {GOAL_KERNEL}: {'pass' if ka['pass_vs_our_noop'] else 'MISS'}",
            )
        )
        if "ratio_hook_over_ref_noop" in ka:
            ratio = ka["ratio_hook_over_ref_noop"]
            lines.append(
                "| P1 ingest, kernel attached, in the issue's frame (÷ floorext's no-op) | | |"
                f" {ratio['median']} ({ratio['min']}-{ratio['max']}) |"
                f" ≥ {GOAL_KERNEL}: {'pass' if ka['pass'] else 'MISS'} |"
            )
    if "not_durable" in result:
        nd = result["not_durable"]
        lines.append(line("P1 ingest, no fsync", nd, "hook", "(report)"))
        lines.append(line("handler floor, no fsync", nd, "floor", "(report)"))
    result["markdown"] = "\n".join(lines)
    emit("ingest", result, args.out)
    print(result["markdown"])


def server_durable_stats(server: Server) -> dict[str, Any] | None:
    """The durable floor's own counters (batches, requests per commit) since the start."""
    import httpx

    response = httpx.get(
        f"{server.url}bench/durable-stats", headers=server.auth, trust_env=False, timeout=30
    )
    return response.json() if response.status_code == 200 else None


if __name__ == "__main__":
    main()
