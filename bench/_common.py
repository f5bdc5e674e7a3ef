"""Shared pieces of the hooknb benchmarks: the machine, a Jupyter server, a kernel, wrk.

Everything runs on loopback (127.0.0.1) only, in a throwaway directory, with bounded loops.
The benchmark scripts are plain programs (``python bench/<name>.py``), not tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# The tests' process helpers (tests/processes.py): the same isolated environment and kernel.
sys.path.insert(0, str(REPO / "tests"))
import processes  # noqa: E402
from processes import free_port  # noqa: E402

PY = sys.executable
POST_LUA = BENCH_DIR / "post.lua"
#: The request body every ingest benchmark sends (the one n8n-measured.md used).
BODY = '{"id":42,"msg":"hello","tags":["a","b"]}'


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


# -- the machine ---------------------------------------------------------------------------


def fsync_latency_ms(directory: Path, n: int = 200) -> dict[str, float]:
    """p50/max of write(4 KiB)+fsync in ``directory`` (where the store lives)."""
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for _ in range(n):
            start = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50": round(times[n // 2], 3), "max": round(times[-1], 3)}


def machine(store_dir: Path | None = None) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    versions = {}
    for name in (
        "hooknb",
        "tornado",
        "jupyter_server",
        "jupyter_client",
        "ipykernel",
        "httpx",
        "pyzmq",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        versions["wrk"] = (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0]
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "git": _git_head(),
    }
    if store_dir is not None:
        info["fsync_4k_ms"] = fsync_latency_ms(store_dir)
    return info


def _git_head() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


# -- statistics ----------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50), 3),
        "p90": round(pct(ms, 90), 3),
        "p99": round(pct(ms, 99), 3),
        "max": round(max(ms), 3) if ms else float("nan"),
        "mean": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# -- a Jupyter server with hooknb (and the bench extension) --------------------------------


class Server:
    """``jupyter server`` with hooknb and ``bench_ext`` in a throwaway dir, optionally pinned."""

    def __init__(
        self,
        root: Path,
        *,
        cpus: str | None = "0",
        port: int | None = None,
        store: Path | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        extensions: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.extensions = list(extensions)
        self.cpus = cpus
        self.port = port or free_port()
        self.token = "bench" + os.urandom(12).hex()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.store = store or (root / "hooknb.sqlite")
        self.extra_args = list(extra_args)
        self.env = isolated_env(root, **(env or {}))
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[tuple[float, str]] = []
        self.started_at = 0.0
        self.starts = 0
        self._reader: threading.Thread | None = None
        self.set_extensions()

    #: Server extensions a dev install also enables; ``only_hooknb`` turns them off.
    OTHER_EXTENSIONS = processes.OTHER_EXTENSIONS

    def set_extensions(self, *, only_hooknb: bool = False) -> None:
        """Write the config for the next start: bench_ext on; others off if ``only_hooknb``."""
        extensions = {"bench_ext": True, **dict.fromkeys(self.extensions, True)}
        if only_hooknb:
            extensions.update({name: False for name in self.OTHER_EXTENSIONS})
        config = self.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": extensions}})
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def command(self) -> list[str]:
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        return [
            *pin,
            PY,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={self.root}",
            f"--HookNB.store_path={self.store}",
            *self.extra_args,
        ]

    def display_command(self) -> str:
        """The command line as run, with the throwaway token and temp dir replaced."""
        text = " ".join(self.command()).replace(self.token, "<token>")
        return text.replace(str(self.root), "<tmp>")

    def start(self, *, wait: bool = True, timeout: float = 60) -> Server:
        self.starts += 1
        self.lines = []
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        logfile = self.root / f"server-{self.starts}.log"
        self._reader = threading.Thread(
            target=self._read_lines, args=(self.proc, logfile), daemon=True
        )
        self._reader.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def _read_lines(self, proc: subprocess.Popen[str], logfile: Path) -> None:
        assert proc.stdout is not None
        with open(logfile, "w") as out:
            for line in proc.stdout:
                self.lines.append((time.time(), line.rstrip("\n")))
                out.write(line)
                out.flush()

    def line_time(self, needle: str) -> float | None:
        """When the first log line containing ``needle`` arrived (epoch seconds)."""
        for when, line in list(self.lines):
            if needle in line:
                return when
        return None

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter server exited:\n" + self.log_tail())
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(
                    f"{self.url}hooknb/api/status", headers=self.auth, trust_env=False, timeout=5
                )
                if response.status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("jupyter server did not start:\n" + self.log_tail())

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-n:])

    def api(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        response = httpx.request(
            method,
            f"{self.url}hooknb/api/{path}",
            json=body,
            headers=self.auth,
            trust_env=False,
            timeout=timeout,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self, reset: bool = False) -> dict[str, Any]:
        response = httpx.request(
            "POST" if reset else "GET",
            f"{self.url}bench/stats",
            headers=self.auth,
            trust_env=False,
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def profile(self, action: str, **params: str) -> str:
        """Start/stop bench_ext's cProfile (thread CPU time) of the server's loop thread."""
        response = httpx.post(
            f"{self.url}bench/profile",
            params={"action": action, **params},
            headers=self.auth,
            trust_env=False,
            timeout=60,
        )
        response.raise_for_status()
        return response.text

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def cpu_seconds(self) -> float:
        """The server's CPU seconds, its child processes' (the trigger writer) included."""
        return own_cpu([self.pid])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self._reader is not None:
            self._reader.join(5)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        if self._reader is not None:
            self._reader.join(5)


def isolated_env(root: Path, **extra: str) -> dict[str, str]:
    """The tests' isolated environment, with ``bench_ext`` importable by the server."""
    pythonpath = os.pathsep.join(p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return processes.isolated_env(root, **{"PYTHONPATH": pythonpath, **extra})


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid`` and of its living child
    processes (a server's trigger writer process), by thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for member in (pid, *child_pids(pid)):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member}/task").iterdir():
                with contextlib.suppress(OSError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds (all cores) the whole machine has spent busy since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu(pids: Sequence[int]) -> float:
    """CPU seconds of ``pids`` and of their living child processes (a server's trigger
    writer process is its child)."""
    total = 0.0
    for pid in pids:
        for member in (pid, *child_pids(pid)):
            with contextlib.suppress(OSError):
                total += cpu_seconds(member)
    return total


def child_pids(pid: int) -> list[int]:
    """The living child processes of ``pid`` (of any of its threads)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(child) for child in (task / "children").read_text().split()]
    return children


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class ForeignLoad:
    """How much CPU other processes (not ours: not this one, ``pids`` or our children) use.

    The machine is shared (other work runs tests, browsers...); every measurement records
    this, and :func:`wait_quiet` waits (bounded) for a quiet moment before measuring.
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = list(pids)
        self.start()

    def start(self) -> None:
        import resource

        self._wall = time.monotonic()
        self._busy = busy_seconds()
        self._own = own_cpu(self.pids) + children_cpu()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._self = usage.ru_utime + usage.ru_stime

    def share(self) -> float:
        """Cores' worth of CPU used by others since :meth:`start` (0.0 .. cores)."""
        import resource

        wall = time.monotonic() - self._wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        mine = (
            own_cpu(self.pids) + children_cpu() - self._own + usage.ru_utime + usage.ru_stime
        ) - self._self
        return max(0.0, (busy_seconds() - self._busy - mine) / max(wall, 1e-6))


def wait_quiet(pids: Sequence[int] = (), *, threshold: float = 0.1, max_wait: float = 60) -> float:
    """Wait (at most ``max_wait`` s) until others use < ``threshold`` cores for 1 s."""
    give_up = time.monotonic() + max_wait
    while True:
        probe = ForeignLoad(pids)
        time.sleep(1.0)
        share = probe.share()
        if share < threshold or time.monotonic() > give_up:
            if share >= threshold:
                log(f"machine still busy ({share:.2f} cores used by others); measuring anyway")
            return round(share, 3)


def pin(pid: int, cpus: str) -> None:
    """Pin every thread of ``pid`` to ``cpus``."""
    subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=True)


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"hooknb-bench-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            log("kept", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- a tiny subscriber (the "outside service" of subscribe/unsubscribe) --------------------


class Subscriber:
    """Answers every POST/DELETE with 201 and records the JSON bodies (callback URLs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, Any]] = []
        self.on_call: Callable[[str, Any], None] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                outer.calls.append((time.time(), self.path, body))
                if outer.on_call is not None:
                    outer.on_call(self.path, body)
                data = json.dumps({"id": f"s{len(outer.calls)}"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = _answer
            do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Subscriber:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def enable_trigger(server: Server, name: str, subscriber: Subscriber, client: str) -> str:
    """Attach workflow ``name`` to ``client`` (no kernel behind it) and enable its trigger."""
    server.api("PUT", f"workflows/{name}", {"client": client, "trigger": "HTTP_Webhook"})
    record = server.api(
        "PUT",
        f"workflows/{name}/trigger",
        {
            "client": client,
            "subscribe": {"method": "POST", "uri": subscriber.url + "trigger"},
        },
    )
    if record["trigger"]["state"] != "Enabled":
        raise RuntimeError(f"trigger not enabled: {record}")
    return str(record["trigger"]["callbackUrl"])


def noop_url(server: Server, like: str, kind: str = "noop") -> str:
    """A bench_ext URL (``noop`` or ``floor``) with the same id and signature as ``like``."""
    match = re.search(r"hooknb/callback/([^?]+)\?sig=(.+)$", like)
    assert match is not None, like
    return f"{server.url}bench/{kind}/{match.group(1)}?sig={match.group(2)}"


# -- wrk ------------------------------------------------------------------------------------


def wrk(
    url: str,
    *,
    duration: float = 8,
    conns: int = 16,
    threads: int = 1,
    cpus: str | None = "1",
    body: str = BODY,
    pids: Sequence[int] = (),
) -> dict[str, Any]:
    """One wrk run with ``post.lua``; returns its RESULT line as numbers, plus the command.

    ``pids`` are our own processes (server, kernel): CPU that neither they, wrk nor this
    process used is reported as ``foreign_cores`` (other work on the shared machine).
    """
    pin = ["taskset", "-c", cpus] if cpus else []
    cmd = [
        *pin,
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(POST_LUA),
        url,
    ]
    env = {**os.environ, "WRK_BODY": body}
    foreign = ForeignLoad(pids)
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=duration + 30, check=False
    )
    foreign_cores = foreign.share()
    match = re.search(r"^RESULT (.*)$", out.stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    result: dict[str, Any] = {}
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        result[key] = float(value) if "." in value else int(value)
    result["foreign_cores"] = round(foreign_cores, 3)
    result["command"] = " ".join(
        ["WRK_BODY='" + body + "'", *cmd[:-1], re.sub(r"sig=[^&]+", "sig=<sig>", cmd[-1])]
    )
    return result


# -- a kernel that talks to the server -----------------------------------------------------


class Kernel(processes.Kernel):
    """The tests' kernel (``run`` raises AssertionError with the traceback), with
    HOOKNB_URL/HOOKNB_TOKEN set to ``server``, optionally pinned to ``cpus``."""

    def __init__(self, server: Server, *, cpus: str | None = None) -> None:
        super().__init__({**server.env, "HOOKNB_URL": server.url, "HOOKNB_TOKEN": server.token})
        self.pid = int(self.km.provisioner.process.pid)  # type: ignore[union-attr]
        if cpus:
            pin(self.pid, cpus)

    def run(self, code: str, timeout: float = 120) -> str:
        return super().run(code, timeout)

    def json(self, expression: str, timeout: float = 120) -> Any:
        """Evaluate ``expression`` in the kernel and return it through JSON."""
        text = self.run(f"import json as _j; print(_j.dumps({expression}))", timeout)
        return json.loads(text.strip().splitlines()[-1])

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)


def emit(name: str, result: dict[str, Any], out: Path | None) -> None:
    """Print the JSON summary and keep it (``--out``)."""
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        log(f"{name}: summary written to {out}")


# -- a light HTTP/1.1 load client ------------------------------------------------------------


class RawHTTP:
    """A minimal keep-alive HTTP/1.1 POST client on asyncio streams, for open-loop load.

    httpx costs ~1 ms of CPU per request in the client and its pool slows down with many
    queued requests; this writes the request bytes and reads one response per connection at
    a time, so the load generator keeps its schedule at 500+/s on a shared core.
    """

    def __init__(self, host: str, port: int, conns: int) -> None:
        self.host, self.port, self.conns = host, port, conns
        self._idle: Any = None

    async def __aenter__(self) -> RawHTTP:
        import asyncio

        self._idle = asyncio.Queue()
        for _ in range(self.conns):
            self._idle.put_nowait(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()

    async def post(self, target: str, body: bytes) -> int:
        """POST ``body`` (JSON) to ``target`` (path?query); return the status code."""
        return (await self.request("POST", target, body))[0]

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        """One request on an idle connection; ``headers`` are extra ``Name: value\r\n`` lines."""
        import asyncio

        reader, writer = await self._idle.get()
        try:
            writer.write(
                f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            data = await reader.readexactly(int(match.group(1))) if match else b""
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            raise
        finally:
            self._idle.put_nowait((reader, writer))
        return status, data


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path?query) of an http URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "127.0.0.1", parts.port or 80, target
