"""P3: trigger callbacks -> runs started in one kernel, runs per second.

    python bench/trigger_runs.py [--rounds 3] [--duration 8] [--backlog-seconds 4] [--out F.json]

A ``jupyter server`` with hooknb and one IPython kernel (``HOOKNB_URL``/``HOOKNB_TOKEN``) whose
trigger workflow records ``time.time()`` when each run starts (and returns at once). Two ways:

* **live**: ``wrk -t1 -c16`` POSTs to the trigger's callback URL for ``--duration`` s while the
  kernel runs the runs as their deliveries arrive. Rate = runs started in the kernel during the
  middle of the wrk run (first and last second left out) / that time.
* **backlog**: the workflow's trigger is enabled by a client with no kernel behind it, wrk
  POSTs for ``--backlog-seconds`` (the callbacks are stored, the runs queue), then the kernel
  takes the workflow over (``enable()``) and every queued run is delivered to it at once.
  Rate = runs / (last run started - moment the kernel called ``enable()``).

Baseline in the same run: ``wrk`` against the no-op handler in the same server, right before
each live run (``--rounds`` pairs, the order alternating; the result is the median ratio).
Nothing is pinned (server, kernel and wrk share the 2 cores). Goal: live runs/s ≥ 0.75 x the
no-op's req/s (issue 15), and ≥ 1,000 runs/s (the first goal).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import (
    ForeignLoad,
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

GOAL = 1000.0
GOAL_RATIO = 0.75

KERNEL_SETUP = """
import time, hooknb
STARTS = {{}}

def make(name):
    STARTS[name] = []
    starts = STARTS[name]

    @hooknb.workflow(name=name, trigger=hooknb.HttpWebhookTrigger(
        subscribe={{"method": "POST", "uri": "{sub}trigger",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}}))
    async def flow(run):
        starts.append(time.time())
        return run.trigger.body["id"]

    return flow
"""


def enable_live(kernel: Kernel, subscriber_url: str) -> str:
    """Define the bench's trigger workflows in ``kernel`` (``KERNEL_SETUP``) and enable
    ``p3_live``, P3's live workflow; return its callback URL."""
    kernel.run(KERNEL_SETUP.format(sub=subscriber_url))
    out = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
    return out.strip().splitlines()[-1]


def wait_drained(kernel: Kernel, name: str, expected: int, timeout: float = 120) -> int:
    """Wait until the kernel has started ``expected`` runs (or the count stops growing)."""
    give_up = time.monotonic() + timeout
    last, still = -1, 0
    while time.monotonic() < give_up:
        count = kernel.json(f"len(STARTS[{name!r}])")
        if count >= expected:
            return int(count)
        still = still + 1 if count == last else 0
        if still >= 10:
            return int(count)
        last = count
        time.sleep(0.5)
    return int(last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--backlog-seconds", type=float, default=4)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--trigger-writer-process",
        choices=("auto", "on", "off"),
        default="auto",
        help="c.HookNB.trigger_writer_process: auto (the default: started once callbacks come"
        " as a stream), on (at the first callback) or off (the writer thread stores them)",
    )
    args = parser.parse_args()

    with workdir("p3", keep=args.keep) as root, Subscriber() as sub:
        info = machine(root)
        writer = {"auto": "auto", "on": "1", "off": "0"}[args.trigger_writer_process]
        env = {"HOOKNB_TRIGGER_WRITER_PROCESS": writer}
        server = Server(root, cpus=None, env=env).start()
        kernel = Kernel(server)
        pids = [server.pid, kernel.pid]
        result: dict[str, Any] = {
            "benchmark": "P3 trigger callbacks -> runs started in one kernel",
            "goal_runs_per_s": GOAL,
            "machine": info,
            "setup": {
                "server_command": server.display_command(),
                "pinning": "none (server, kernel and wrk share the 2 cores)",
            },
        }
        try:
            url = enable_live(kernel, sub.url)
            noop = noop_url(server, url)
            # (The trigger writer process is the server's child: its CPU counts as ours.)
            result["setup"]["trigger_writer_process"] = args.trigger_writer_process

            # -- baseline and live, in rounds -------------------------------------------------
            rounds = []
            expected = int(kernel.json('len(STARTS["p3_live"])'))
            for index in range(args.rounds):
                quiet = wait_quiet(pids)
                order = ("base", "live") if index % 2 == 0 else ("live", "base")
                row: dict[str, Any] = {"round": index + 1, "order": "/".join(order)}
                for which in order:
                    if which == "base":
                        base = wrk(
                            noop, duration=args.duration, conns=args.conns, cpus=None, pids=pids
                        )
                        row["base"] = base
                        log(f"baseline no-op: {base['rps']:.0f} req/s")
                    else:
                        foreign = ForeignLoad(pids)
                        t0 = time.time()
                        live = wrk(
                            url, duration=args.duration, conns=args.conns, cpus=None, pids=pids
                        )
                        t1 = time.time()
                        foreign_cores = round(foreign.share(), 3)
                        expected += live["requests"]
                        started = wait_drained(kernel, "p3_live", expected)
                        starts = [t for t in kernel.json('STARTS["p3_live"]') if t >= t0]
                        window = [s for s in starts if t0 + 1 <= s <= t1 - 1]
                        live_rate = len(window) / max(1e-6, (t1 - 1) - (t0 + 1))
                        drain = (max(starts) - t0) if starts else float("nan")
                        row["live"] = {
                            "wrk": {
                                k: live[k]
                                for k in ("rps", "p50_ms", "p99_ms", "requests", "non2xx")
                            },
                            "wrk_command": live["command"],
                            "runs_started_total": started,
                            "runs_per_s_during_load": round(live_rate, 1),
                            "all_runs_started_within_s_of_first_post": round(drain, 2),
                            "foreign_cores": foreign_cores,
                        }
                        log(f"live: {live_rate:.0f} runs/s started, wrk sent {live['rps']:.0f}/s")
                    time.sleep(1)
                row["quiet_before"] = quiet
                row["ratio"] = round(row["live"]["runs_per_s_during_load"] / row["base"]["rps"], 3)
                rounds.append(row)
            ratios = [r["ratio"] for r in rounds]
            result["baseline_noop"] = {
                "rps_median": round(median([r["base"]["rps"] for r in rounds]), 1),
                "command": rounds[0]["base"]["command"],
            }
            result["live"] = {
                "runs_per_s_during_load": round(
                    median([r["live"]["runs_per_s_during_load"] for r in rounds]), 1
                ),
                "ratio_vs_noop_rps": round(median(ratios), 3),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "foreign_cores_max": max(r["live"]["foreign_cores"] for r in rounds),
                "rounds": rounds,
            }
            base = {"rps": result["baseline_noop"]["rps_median"]}

            # -- backlog ---------------------------------------------------------------------
            parked = enable_trigger(server, "p3_backlog", sub, "parked-client")
            queued = wrk(parked, duration=args.backlog_seconds, conns=args.conns, cpus=None)
            time.sleep(1)
            pending = server.api("GET", "status")["pendingDeliveries"]
            result["quiet_before_backlog"] = wait_quiet(pids)
            foreign = ForeignLoad(pids)
            kernel.run('_t = time.time(); backlog = make("p3_backlog").enable()')
            t_enable = kernel.json("_t")
            started = wait_drained(kernel, "p3_backlog", queued["requests"])
            foreign_cores = round(foreign.share(), 3)
            starts = kernel.json('STARTS["p3_backlog"]')
            span = (max(starts) - t_enable) if starts else float("nan")
            backlog_rate = len(starts) / span if span else 0.0
            result["backlog"] = {
                "callbacks_queued": queued["requests"],
                "pending_deliveries_before_enable": pending,
                "runs_started": started,
                "seconds_from_enable_to_last_start": round(span, 3),
                "runs_per_s": round(backlog_rate, 1),
                "ratio_vs_noop_rps": round(backlog_rate / base["rps"], 3),
                "foreign_cores": foreign_cores,
            }
            log(f"backlog: {len(starts)} runs started in {span:.2f} s = {backlog_rate:.0f}/s")
        finally:
            kernel.shutdown()
            server.stop()

    live_ok = (
        result["live"]["runs_per_s_during_load"] >= GOAL
        and result["live"]["ratio_vs_noop_rps"] >= GOAL_RATIO
    )
    backlog_ok = result["backlog"]["runs_per_s"] >= GOAL
    result["pass"] = {"live": live_ok, "backlog": backlog_ok}
    result["markdown"] = "\n".join(
        [
            "| measure | baseline no-op req/s | runs/s | ratio to baseline | goal | result |",
            "|---|---|---|---|---|---|",
            f"| P3 live (wrk -c{args.conns} on the trigger) | {base['rps']:.0f} |"
            f" {result['live']['runs_per_s_during_load']} |"
            f" {result['live']['ratio_vs_noop_rps']} ({result['live']['ratio_min']}-"
            f"{result['live']['ratio_max']}) | ≥ {GOAL:.0f}, ratio ≥ {GOAL_RATIO} |"
            f" {'pass' if live_ok else 'MISS'} |",
            f"| P3 backlog ({result['backlog']['runs_started']} queued runs) |"
            f" {base['rps']:.0f} | {result['backlog']['runs_per_s']} |"
            f" {result['backlog']['ratio_vs_noop_rps']} | ≥ {GOAL:.0f} |"
            f" {'pass' if backlog_ok else 'MISS'} |",
        ]
    )
    emit("trigger_runs", result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
