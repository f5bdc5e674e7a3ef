"""``hooknb lab``: the demo service and JupyterLab (or Notebook 7) on the tutorials, in one command.

1. The demo webhook service starts in this process (port 8765, or a free one if that is busy).
2. JupyterLab starts as a child process on the tutorials (the repository's ``notebooks/``, or
   ``--notebooks DIR``) with the hooknb server extension, and ``HOOKNB_DEMO_URL`` in its
   environment, so every kernel it starts finds the demo service
   (:func:`hooknb.demo.ensure_demo_service`) and the Jupyter server (:func:`hooknb.connect`).
3. Both URLs are printed once JupyterLab is ready.
4. When JupyterLab exits (Ctrl-C, as usual for Jupyter: twice, or once and ``y``), the demo
   service stops and the command returns JupyterLab's exit status.

Ctrl-C reaches JupyterLab directly (same terminal, same process group); this process ignores
it and waits for JupyterLab, so Jupyter's own "Shutdown this Jupyter server?" prompt keeps
working. SIGTERM is passed on to JupyterLab.

Only the standard library is imported at module level: ``hooknb --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DEMO_PORT", "add_arguments", "main"]

#: The demo service's port unless ``--demo-port`` says otherwise (a free one if it is busy).
DEFAULT_DEMO_PORT = 8765
#: How long to wait for JupyterLab to write its server info file before giving up on
#: printing its URL (it keeps running; Jupyter prints its own URLs too).
READY_TIMEOUT = 120.0
#: How long JupyterLab gets to stop after a final Ctrl-C, and then after SIGTERM, before it is
#: terminated, then killed.
STOP_TIMEOUT = 10.0

_REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``hooknb lab`` options (``hooknb.cli`` adds them to its ``lab`` subcommand)."""
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="PORT",
        help="JupyterLab's port (default: Jupyter's own choice, 8888 or the next free one)",
    )
    parser.add_argument(
        "--demo-port",
        type=int,
        default=None,
        metavar="PORT",
        help=f"the demo service's port (default {DEFAULT_DEMO_PORT}, or a free one if busy)",
    )
    parser.add_argument(
        "--notebooks",
        default=None,
        metavar="DIR",
        help="the directory JupyterLab opens (default: the tutorials in hooknb's notebooks/)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--notebook",
        action="store_true",
        help="use Notebook 7 instead of JupyterLab",
    )
    parser.add_argument(
        "jupyter_args",
        nargs=argparse.REMAINDER,
        metavar="-- JUPYTER_ARGS",
        help="arguments for Jupyter: everything after --, e.g. -- --ServerApp.ip=0.0.0.0",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``hooknb lab``; returns the process exit status."""
    app = "notebook" if getattr(args, "notebook", False) else "jupyterlab"
    app_name = "Notebook 7" if app == "notebook" else "JupyterLab"
    if importlib.util.find_spec(app) is None:
        print(
            f"hooknb lab: {app_name} is not installed here. Install it with:\n"
            f'    {sys.executable} -m pip install "hooknb[lab]"',
            file=sys.stderr,
        )
        return 1
    notebooks = _notebooks_dir(getattr(args, "notebooks", None))
    if notebooks is None:
        return 2

    from .demo import DemoService

    try:
        demo = _start_demo(DemoService, getattr(args, "demo_port", None))
    except OSError as exc:
        print(f"hooknb lab: the demo service could not start: {exc}", file=sys.stderr)
        return 1
    _log_demo_service()
    try:
        return _run_jupyter(app, app_name, notebooks, demo.url, args)
    finally:
        demo.stop()
        print("hooknb lab: demo service stopped", flush=True)


# -- pieces ---------------------------------------------------------------------------------------


def _notebooks_dir(given: str | None) -> Path | None:
    if given:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            print(f"hooknb lab: --notebooks {given}: no such directory", file=sys.stderr)
            return None
        return path
    if _REPO_NOTEBOOKS.is_dir():
        return _REPO_NOTEBOOKS
    # Installed from a wheel: the tutorials live in the repository, not in the package.
    here = Path.cwd()
    print(
        "hooknb lab: the tutorials are in the hooknb repository's notebooks/ directory, which "
        f"this installation does not have; opening {here} (use --notebooks DIR to choose)",
        file=sys.stderr,
    )
    return here


def _start_demo(service_class: Any, port: int | None) -> Any:
    """Start the demo service on ``port``; with no port given, on 8765 or else a free one."""
    if port is not None:
        return service_class(port=port).start()
    try:
        return service_class(port=DEFAULT_DEMO_PORT).start()
    except OSError:
        demo = service_class(port=0).start()
        print(
            f"hooknb lab: port {DEFAULT_DEMO_PORT} is busy, the demo service uses "
            f"{demo.port} instead",
            flush=True,
        )
        return demo


def _log_demo_service() -> None:
    """Show the demo service's story lines (subscribed, approved, unsubscribed) in the terminal;
    its per-request access log stays quiet."""
    log = logging.getLogger("hooknb.demo")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("[demo service %(asctime)s] %(message)s", "%H:%M:%S")
        )
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        # One line per HTTP request would drown the story; errors (5xx) still show.
        logging.getLogger("hooknb.demo.access").setLevel(logging.WARNING)


def _jupyter_command(app: str, notebooks: Path, args: argparse.Namespace) -> list[str]:
    """The JupyterLab (or Notebook) command line, ending with the arguments given after
    ``--``."""
    # A bare "--" only separates hooknb's options from Jupyter's.
    extra = [a for a in getattr(args, "jupyter_args", None) or [] if a != "--"]
    command = [sys.executable, "-m", app, f"--ServerApp.root_dir={notebooks}"]
    port = getattr(args, "port", None)
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if getattr(args, "no_browser", False):
        command.append("--no-browser")
    if _is_root() and not any(
        a.startswith(("--allow-root", "--ServerApp.allow_root")) for a in extra
    ):
        # Jupyter refuses to run as root without it (containers, CI, a root shell).
        command.append("--allow-root")
    return command + extra


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def _jupyter_env(demo_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["HOOKNB_DEMO_URL"] = demo_url
    # Kernels started by this JupyterLab should use it as their hub; an outside HOOKNB_URL
    # would send them elsewhere.
    for name in ("HOOKNB_URL", "HOOKNB_TOKEN"):
        if env.pop(name, None) is not None:
            print(f"hooknb lab: ignoring {name} (kernels use this JupyterLab's hub)", flush=True)
    return env


def _run_jupyter(
    app: str, app_name: str, notebooks: Path, demo_url: str, args: argparse.Namespace
) -> int:
    command = _jupyter_command(app, notebooks, args)
    env = _jupyter_env(demo_url)
    print(f"hooknb lab: starting {app_name} on {notebooks}", flush=True)
    # Ctrl-C in the terminal reaches JupyterLab too (same process group); it decides when to
    # stop (its own confirmation prompt), and this process waits for it. A Python handler, not
    # SIG_IGN: an ignored signal would stay ignored in the child, a handled one does not.
    interrupts: list[float] = []
    previous_int = signal.signal(signal.SIGINT, lambda *_: interrupts.append(time.monotonic()))
    proc = subprocess.Popen(command, env=env)  # noqa: S603 - our own interpreter and args

    def forward_term(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous_term = signal.signal(signal.SIGTERM, forward_term)
    try:
        info = _wait_ready(proc, env)
        if info is not None:
            _print_ready(info, app, app_name, demo_url, notebooks)
        code = _wait_for_exit(proc, interrupts)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # Stopped by Ctrl-C or SIGTERM is the normal way to end it.
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code


def _wait_for_exit(proc: subprocess.Popen[bytes], interrupts: list[float]) -> int:
    """JupyterLab's exit code. After a Ctrl-C that should have stopped it (two of them, or one
    with no terminal to confirm on) it gets STOP_TIMEOUT seconds, then it is terminated: its
    shutdown can hang on a worker thread, and Ctrl-C must always stop both."""
    while True:
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        confirmable = sys.stdin is not None and sys.stdin.isatty()
        final = len(interrupts) >= 2 or (len(interrupts) == 1 and not confirmable)
        if final and time.monotonic() - interrupts[-1] > STOP_TIMEOUT:
            print("hooknb lab: JupyterLab did not stop; stopping it", flush=True)
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 0  # stopped as the user asked


def _wait_ready(proc: subprocess.Popen[bytes], env: dict[str, str]) -> dict[str, Any] | None:
    """JupyterLab's server info (``jpserver-<pid>.json``) once it is listening, or None if it
    exited or took too long."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = env.get("JUPYTER_RUNTIME_DIR") or jupyter_runtime_dir()
    info_file = Path(runtime) / f"jpserver-{proc.pid}.json"
    give_up = time.monotonic() + READY_TIMEOUT
    while proc.poll() is None and time.monotonic() < give_up:
        if info_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                info: dict[str, Any] = json.loads(info_file.read_text())
                return info
        time.sleep(0.2)
    return None


def _print_ready(
    info: dict[str, Any], app: str, app_name: str, demo_url: str, notebooks: Path
) -> None:
    url = str(info.get("url") or "")
    if not url.endswith("/"):
        url += "/"
    token = info.get("token") or ""
    page = "lab" if app == "jupyterlab" else "tree"
    open_url = f"{url}{page}" + (f"?token={token}" if token else "")
    extension = _extension_state(url, token)
    width = max(len(app_name), len("demo service"))
    lines = [
        "",
        "hooknb lab is ready:",
        f"    {app_name.ljust(width)}  {open_url}",
        f"    {'demo service'.ljust(width)}  {demo_url}   (approvals page, topics, request log)",
        f"    {'notebooks'.ljust(width)}  {notebooks}",
        f"    kernels get HOOKNB_DEMO_URL={demo_url}",
    ]
    if extension:
        lines.append(f"    {extension}")
    lines += ["Press Ctrl-C twice to stop both.", ""]
    print("\n".join(lines), flush=True)


def _extension_state(url: str, token: str) -> str:
    """A warning when the hooknb server extension does not answer, else ''."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the http(s) URL Jupyter wrote for itself
        f"{url}hooknb/api/version",
        headers={"Authorization": f"token {token}"} if token else {},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(request, timeout=10) as response:
            if response.status == 200:
                return ""
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            return ""  # it answered (e.g. auth configured differently): the extension is there
    except (OSError, ValueError):
        return ""
    return (
        "WARNING: the hooknb server extension is not enabled in this Jupyter: "
        "run `jupyter server extension enable hooknb` and restart"
    )


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hooknb.lab",
        description="The demo service and JupyterLab on hooknb's tutorials.",
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_main())
