"""py-spy of the server in P3's live frame: a kernel runs the trigger's runs, wrk -c16, nothing
pinned; 8 s of samples at 250 Hz, idle included, per thread.

    PYTHONPATH=<checkout> python p3_spy.py OUT.txt
    python bench/spy_summary.py OUT.txt --thread MainThread --top 45
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
from _common import Kernel, Server, Subscriber, wait_quiet, workdir, wrk  # noqa: E402
from trigger_runs import KERNEL_SETUP  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")


def main() -> None:
    out = sys.argv[1]
    with workdir("p3spy") as root, Subscriber() as sub:
        server = Server(root, cpus=None).start()
        kernel = Kernel(server)
        try:
            kernel.run(KERNEL_SETUP.format(sub=sub.url))
            printed = kernel.run('live = make("p3_live").enable(); print(live.callback_url)')
            url = printed.strip().splitlines()[-1]
            pids = [server.pid, kernel.pid]
            wrk(url, duration=3, cpus=None, pids=pids)
            wait_quiet(pids)
            command = [str(PY_SPY), "record", "-r", "250", "-d", "8", "-f", "raw", "--threads"]
            spy = subprocess.Popen(
                [*command, "--idle", "-o", out, "-p", str(server.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            result = wrk(url, duration=9, cpus=None, pids=pids)
            spy.wait()
            print("live req/s under py-spy", result["rps"])
        finally:
            kernel.shutdown()
            server.stop()


if __name__ == "__main__":
    main()
