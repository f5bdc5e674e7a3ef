"""Real processes for tests: a Jupyter server with hooknb, and IPython kernels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.manager import start_new_kernel

from hooknb.server.embedded import free_port

#: Server extensions a dev install also enables; they only slow starts down here.
OTHER_EXTENSIONS = (
    "jupyterlab",
    "notebook",
    "notebook_shim",
    "jupyter_lsp",
    "jupyter_server_terminals",
)


def isolated_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment with Jupyter's dirs under ``root`` and no proxy."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        NO_PROXY="127.0.0.1,localhost",
    )
    env.pop("HOOKNB_URL", None)
    env.pop("HOOKNB_TOKEN", None)
    env.pop("HOOKNB_STORE", None)  # the default one, under JUPYTER_DATA_DIR above
    env.update(extra)
    return env


class ServerProcess:
    """A Jupyter app with hooknb, strict-auth, on a fixed port so that it can restart.

    ``app`` is the module run with ``python -m``: ``jupyter_server`` (default), ``jupyterlab``
    or ``notebook``; ``root_dir`` is what it serves (default ``root``).
    """

    def __init__(
        self,
        root: Path,
        *,
        base_url: str = "/user/alice/",
        extra_args: tuple[str, ...] = (),
        only_hooknb: bool = True,
        app: str = "jupyter_server",
        root_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.app = app
        self.root_dir = root_dir or root
        self.port = free_port()
        self.token = "t" + os.urandom(12).hex()
        self.base_url = base_url
        self.url = f"http://127.0.0.1:{self.port}{base_url}"
        self.store = root / "hooknb.sqlite"
        self.extra_args = extra_args
        self.env = isolated_env(root, **(env or {}))
        if only_hooknb:
            # Other installed extensions (JupyterLab, LSP...) only slow restarts down here.
            disabled = dict.fromkeys(OTHER_EXTENSIONS, False)
            config = root / "config"
            config.mkdir(parents=True, exist_ok=True)
            (config / "jupyter_server_config.json").write_text(
                json.dumps({"ServerApp": {"jpserver_extensions": disabled}})
            )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> ServerProcess:
        self.starts += 1
        log = open(self.root / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.app,
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.base_url={self.base_url}",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.allow_root=True",
                "--ServerApp.allow_unauthenticated_access=False",
                f"--ServerApp.root_dir={self.root_dir}",
                f"--HookNB.store_path={self.store}",
                *self.extra_args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited: {self.log()[-2000:]}")
            try:
                response = httpx.get(
                    f"{self.url}hooknb/api/version", headers=self.auth, trust_env=False, timeout=2
                )
                if response.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.app} did not start: {self.log()[-2000:]}")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.url}hooknb/api/{path}",
            headers=self.auth,
            trust_env=False,
            timeout=30,
            **kwargs,
        )
        response.raise_for_status()
        return response.json()

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.root.glob("server-*.log"))
        )

    def kill(self) -> None:
        """``kill -9``: no cleanup, no chance to flush anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


class Kernel:
    """An IPython kernel started outside any server (as nbclient or papermill would)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env)

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code``; return its stdout; raise with the traceback on error."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok" or errors:
            raise AssertionError("kernel error:\n" + "\n".join(errors))
        return "".join(out)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
