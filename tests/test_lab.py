"""`hooknb lab` stops JupyterLab after a final Ctrl-C even when its shutdown hangs."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hooknb import lab

# A child that, like a JupyterLab whose exit waits on a stuck worker thread, outlives Ctrl-C
# and SIGTERM; only SIGKILL ends it.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_hanging_jupyter_is_stopped_after_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "STOP_TIMEOUT", 0.5)
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        started = time.monotonic()
        assert lab._wait_for_exit(proc, [time.monotonic()]) == 0
        assert proc.poll() is not None  # really gone (killed after SIGTERM was ignored)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()


def test_without_ctrl_c_jupyters_exit_code_is_kept() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert lab._wait_for_exit(proc, []) == 3
