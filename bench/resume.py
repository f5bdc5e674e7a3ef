"""P2: callback POST -> the waiting step resumed in a real kernel, at low load and at 500/s.

    python bench/resume.py [--n 200] [--rate 500] [--seconds 10] [--out F.json]

A ``jupyter server`` with hooknb, a subscriber (this process) and an IPython kernel started with
``jupyter_client.start_new_kernel`` and ``HOOKNB_URL``/``HOOKNB_TOKEN`` pointing at the server.
The kernel runs a trigger workflow whose step is ``await run.webhook(...)``; the step's
subscribe call reaches the subscriber here, which learns the step's callback URL. The workflow
records ``time.time()`` the moment ``await run.webhook(...)`` returns; this process records
``time.time()`` just before it sends the callback POST (same machine, same clock). Latency =
resumed - sent.

* **low load**: one callback at a time (each to a step that has been waiting for >= 50 ms),
  ``--n`` of them after 10 discarded warm-up ones.
* **500/s**: first ``rate x seconds`` runs are started and left waiting (many concurrent
  waits), then callbacks go out open-loop at ``--rate`` per second from an asyncio httpx
  client (each send scheduled; a late send is measured from when it actually left).

Baseline, in the same run: the same clients POSTing to the no-op handler in the same server
(``bench/bench_ext.py``): its round trip is the floor of any callback's latency.
Nothing is pinned here (server, kernel and this process share the 2 cores as they would).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ForeignLoad,
    Kernel,
    RawHTTP,
    Server,
    Subscriber,
    cpu_seconds,
    emit,
    log,
    machine,
    noop_url,
    split_url,
    summary_ms,
    wait_quiet,
    workdir,
)

GOALS = {"low_p50_ms": 3.0, "low_p99_ms": 15.0, "load_p99_ms": 50.0}

KERNEL_WORKFLOW = """
import time, hooknb
RESUMED = {{}}

@hooknb.workflow(name="bench_r", trigger=hooknb.HttpWebhookTrigger(
    subscribe={{"method": "POST", "uri": "{sub}trigger",
               "body": {{"callbackUrl": hooknb.CALLBACK_URL}}}}))
async def bench_r(run):
    k = run.trigger.body["k"]
    await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": "{sub}wait",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL, "k": k}}}},
        timeout=900)
    RESUMED[k] = time.time()
    return k

bench_r.enable()
print(bench_r.callback_url)
"""

# Optional (--trace): when each step's outcome event reaches the kernel's channel reader, and
# which wait belongs to which key, to split the latency into "to the kernel" and "in it".
KERNEL_TRACE = """
import hooknb.kernel.client as _client
ARRIVED, WAIT_OF = {}, {}
_orig = _client.HubClient._on_wait_event
def _traced(self, event, _orig=_orig):
    ARRIVED[event.get("wait", "")] = time.time()
    return _orig(self, event)
_client.HubClient._on_wait_event = _traced
_orig_changed = hooknb.kernel.run.Run._changed
def _changed(self, _orig=_orig_changed):
    action = self.actions.get("Approval")
    if action is not None and action.wait_id:
        WAIT_OF[self.trigger.body["k"]] = action.wait_id
    return _orig(self)
hooknb.kernel.run.Run._changed = _changed
"""


class Waits:
    """Callback URLs of waiting steps, by the key the run was started with."""

    def __init__(self) -> None:
        self.urls: dict[int, tuple[float, str]] = {}
        self.cond = threading.Condition()

    def on_call(self, path: str, body: Any) -> None:
        if path.startswith("/wait") and isinstance(body, dict):
            with self.cond:
                self.urls[int(body["k"])] = (time.time(), body["callbackUrl"])
                self.cond.notify_all()

    def wait_for(self, keys: range, timeout: float) -> bool:
        give_up = time.monotonic() + timeout
        with self.cond:
            while not all(k in self.urls for k in keys):
                left = give_up - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return True


def low_load(
    trigger: str, noop: str, waits: Waits, n: int, warmup: int
) -> tuple[dict[int, float], dict[int, float], list[float]]:
    """One callback at a time on a keep-alive connection (stdlib http.client: a light client)."""
    host, port, _ = split_url(trigger)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        conn.request("POST", split_url(url)[2], json.dumps(body).encode(), headers)
        response = conn.getresponse()
        return response.status, response.read()

    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    noop_rtt: list[float] = []
    for i in range(warmup + n):
        status, text = post(trigger, {"k": i})
        if status != 202:
            raise RuntimeError(f"trigger answered {status}: {text[:200]!r}")
        if not waits.wait_for(range(i, i + 1), 30):
            raise RuntimeError(f"step {i} never subscribed")
        # Let the step settle into its await (subscribe answered, state recorded); then the
        # baseline, after the same idle gap as the callback: the same client, the no-op handler.
        time.sleep(0.05)
        start = time.perf_counter()
        status, _ = post(noop, {"k": i, "decision": "Approved"})
        if i >= warmup:
            noop_rtt.append(time.perf_counter() - start)
        time.sleep(0.05)
        url = waits.urls[i][1]
        start = time.time()
        status, text = post(url, {"k": i, "decision": "Approved"})
        end = time.time()
        if status != 202:
            raise RuntimeError(f"callback answered {status}: {text[:200]!r}")
        if i >= warmup:
            sent[i], answered[i] = start, end - start
        time.sleep(0.01)
    conn.close()
    return sent, answered, noop_rtt


async def open_loop(
    urls: list[tuple[int, str]], rate: float, conns: int
) -> tuple[dict[int, float], dict[int, float], list[float], dict[int, int]]:
    """POST each URL at its scheduled time (rate/s); return send times, RTTs, lateness."""
    sent: dict[int, float] = {}
    rtt: dict[int, float] = {}
    late: list[float] = []
    status: dict[int, int] = {}
    host, port, _ = split_url(urls[0][1])
    async with RawHTTP(host, port, conns) as client:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2
        wall0 = time.time() - loop.time()

        async def one(index: int, key: int, url: str) -> None:
            body = json.dumps({"k": key, "decision": "Approved"}).encode()
            target = split_url(url)[2]
            await asyncio.sleep(max(0.0, t0 + index / rate - loop.time()))
            start = time.time()
            late.append(start - (wall0 + t0 + index / rate))
            code = await client.post(target, body)
            rtt[key] = time.time() - start
            sent[key] = start
            status[code] = status.get(code, 0) + 1

        await asyncio.gather(*(one(i, k, u) for i, (k, u) in enumerate(urls)))
    return sent, rtt, late, status


def start_runs(trigger: str, keys: range, conns: int = 16) -> None:
    async def go() -> None:
        limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
        async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=60) as client:
            sem = asyncio.Semaphore(conns)

            async def one(k: int) -> None:
                async with sem:
                    (await client.post(trigger, json={"k": k})).raise_for_status()

            await asyncio.gather(*(one(k) for k in keys))

    asyncio.run(go())


def trace_split(
    kernel: Kernel, sent: dict[int, float], resumed: dict[str, float]
) -> dict[str, Any]:
    """send -> outcome event read by the kernel, and that -> ``await run.webhook`` returned."""
    arrived = kernel.json("ARRIVED")
    wait_of = kernel.json("{str(k): v for k, v in WAIT_OF.items()}")
    to_kernel, in_kernel = [], []
    for key, start in sent.items():
        wait = wait_of.get(str(key))
        if wait in arrived and str(key) in resumed:
            to_kernel.append(arrived[wait] - start)
            in_kernel.append(resumed[str(key)] - arrived[wait])
    return {
        "send_to_event_in_kernel": summary_ms(to_kernel),
        "event_to_resumed": summary_ms(in_kernel),
    }


def latencies(sent: dict[int, float], resumed: dict[str, float]) -> tuple[list[float], int]:
    values, missing = [], 0
    for key, start in sent.items():
        done = resumed.get(str(key))
        if done is None:
            missing += 1
        else:
            values.append(done - start)
    return values, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="low-load callbacks measured")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--conns", type=int, default=64, help="client connections under load")
    parser.add_argument(
        "--wave",
        type=int,
        default=100,
        help="runs started at once while creating the waits (see BENCHMARKS.md: thousands at"
        " once stall the kernel's HTTP pool)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="also time when each outcome reaches the kernel"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    waits = Waits()
    with workdir("resume", keep=args.keep) as root, Subscriber() as sub:
        sub.on_call = waits.on_call
        info = machine(root)
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        pids = [server.pid, kernel.pid]
        result: dict[str, Any] = {
            "benchmark": "P2 callback POST -> waiting step resumed in the kernel",
            "goals": GOALS,
            "machine": info,
            "setup": {
                "server_command": server.display_command(),
                "kernel": "jupyter_client.start_new_kernel('python3'), HOOKNB_URL/HOOKNB_TOKEN",
                "pinning": "none (server, kernel, load generator share the 2 cores)",
                "command": "python bench/resume.py "
                + " ".join(
                    f"--{k} {v}" for k, v in vars(args).items() if k in ("n", "rate", "seconds")
                ),
            },
        }
        try:
            trigger = kernel.run(KERNEL_WORKFLOW.format(sub=sub.url)).strip().splitlines()[-1]
            if args.trace:
                kernel.run(KERNEL_TRACE)
            noop = noop_url(server, trigger)

            # -- low load ------------------------------------------------------------------
            result["quiet_before_low"] = wait_quiet(pids)
            foreign = ForeignLoad(pids)
            log(f"low load: {args.warmup} + {args.n} callbacks, one at a time")
            server.stats(reset=True)
            sent, answered, noop_rtt = low_load(trigger, noop, waits, args.n, args.warmup)
            low_commits = server.stats()["store"]
            time.sleep(0.5)
            resumed = kernel.json("{str(k): v for k, v in RESUMED.items()}")
            values, missing = latencies(sent, resumed)
            low = {
                "resume_ms": summary_ms(values),
                "missing": missing,
                "callback_202_rtt_ms": summary_ms(list(answered.values())),
                "baseline_noop_rtt_ms": summary_ms(noop_rtt),
                "foreign_cores": round(foreign.share(), 3),
                "group_commit": low_commits,
            }
            if low_commits["batches"]:
                low["mean_batch_ms"] = round(
                    low_commits["batch_seconds"] / low_commits["batches"] * 1000, 3
                )
                low["mean_commit_ms"] = round(
                    low_commits["commit_seconds"] / low_commits["batches"] * 1000, 3
                )
            if args.trace:
                low["kernel_split_ms"] = trace_split(kernel, sent, resumed)
            low["ratio_p50_vs_noop_rtt"] = round(
                low["resume_ms"]["p50"] / low["baseline_noop_rtt_ms"]["p50"], 2
            )
            low["pass"] = (
                low["resume_ms"]["p50"] <= GOALS["low_p50_ms"]
                and low["resume_ms"]["p99"] <= GOALS["low_p99_ms"]
                and missing == 0
            )
            result["low_load"] = low
            log(f"low load: resume {low['resume_ms']}, noop rtt {low['baseline_noop_rtt_ms']}")

            # -- 500/s -----------------------------------------------------------------------
            count = int(args.rate * args.seconds)
            base = 100_000
            keys = range(base, base + count)
            log(f"starting {count} runs that will wait, {args.wave} at a time")
            t = time.monotonic()
            for first in range(keys.start, keys.stop, args.wave):
                wave = range(first, min(first + args.wave, keys.stop))
                start_runs(trigger, wave)
                if not waits.wait_for(wave, 120):
                    raise RuntimeError(
                        f"only {sum(k in waits.urls for k in keys)} of {count} steps subscribed"
                    )
            created_s = time.monotonic() - t
            log(f"{count} steps waiting after {created_s:.1f} s")
            time.sleep(2)
            status = server.api("GET", "status")
            urls = [(k, waits.urls[k][1]) for k in keys]
            result["quiet_before_load"] = wait_quiet(pids)
            foreign = ForeignLoad(pids)
            cpu0 = {"server": server.cpu_seconds(), "kernel": cpu_seconds(kernel.pid)}
            server.stats(reset=True)
            wall0 = time.monotonic()
            sent, rtt, late, codes = asyncio.run(open_loop(urls, args.rate, args.conns))
            wall = time.monotonic() - wall0
            time.sleep(2)
            cpu = {
                "server": round((server.cpu_seconds() - cpu0["server"]) / wall, 3),
                "kernel": round((cpu_seconds(kernel.pid) - cpu0["kernel"]) / wall, 3),
            }
            foreign_cores = round(foreign.share(), 3)
            group_commit = server.stats()["store"]
            resumed = kernel.json("{str(k): v for k, v in RESUMED.items()}")
            values, missing = latencies(sent, resumed)
            span = max(sent.values()) - min(sent.values())
            # Baseline: the same open loop against the no-op handler.
            noop_urls = [(k, noop) for k in range(count)]
            _, noop_rtt_load, noop_late, _ = asyncio.run(
                open_loop(noop_urls, args.rate, args.conns)
            )
            load = {
                "open_waits_before": status["openWaits"],
                "steps_created_in_s": round(created_s, 1),
                "callbacks": count,
                "achieved_rate": round(count / span, 1) if span else None,
                "send_lateness_ms": summary_ms(late),
                "status_codes": codes,
                "resume_ms": summary_ms(values),
                "missing": missing,
                "callback_202_rtt_ms": summary_ms(list(rtt.values())),
                "baseline_noop_rtt_ms": summary_ms(list(noop_rtt_load.values())),
                "baseline_send_lateness_ms": summary_ms(noop_late),
                "cpu_cores_used": cpu,
                "group_commit": group_commit,
                "foreign_cores": foreign_cores,
            }
            load["ratio_p99_vs_noop_rtt"] = round(
                load["resume_ms"]["p99"] / load["baseline_noop_rtt_ms"]["p99"], 2
            )
            load["pass"] = load["resume_ms"]["p99"] <= GOALS["load_p99_ms"] and missing == 0
            result["load"] = load
            log(f"{args.rate:g}/s: resume {load['resume_ms']}, noop {load['baseline_noop_rtt_ms']}")
        finally:
            kernel.shutdown()
            server.stop()

    low, load = result["low_load"], result["load"]
    result["markdown"] = "\n".join(
        [
            "| measure | baseline (no-op RTT) | hooknb resume | goal | result |",
            "|---|---|---|---|---|",
            f"| P2 low load p50 | {low['baseline_noop_rtt_ms']['p50']} ms |"
            f" {low['resume_ms']['p50']} ms | ≤ {GOALS['low_p50_ms']} ms |"
            f" {'pass' if low['resume_ms']['p50'] <= GOALS['low_p50_ms'] else 'MISS'} |",
            f"| P2 low load p99 | {low['baseline_noop_rtt_ms']['p99']} ms |"
            f" {low['resume_ms']['p99']} ms | ≤ {GOALS['low_p99_ms']} ms |"
            f" {'pass' if low['resume_ms']['p99'] <= GOALS['low_p99_ms'] else 'MISS'} |",
            f"| P2 {args.rate:g}/s p99 | {load['baseline_noop_rtt_ms']['p99']} ms |"
            f" {load['resume_ms']['p99']} ms | ≤ {GOALS['load_p99_ms']} ms |"
            f" {'pass' if load['pass'] else 'MISS'} |",
        ]
    )
    emit("resume", result, args.out)
    print(result["markdown"])


if __name__ == "__main__":
    main()
