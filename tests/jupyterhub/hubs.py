"""A real JupyterHub for the tests: configurable-http-proxy from npm, SimpleLocalProcessSpawner
(every user's server runs as this OS user, in its own home under the test's directory), the
dummy authenticator, and a test service whose token drives the Hub's REST API.

Everything listens on 127.0.0.1. The Hub, the proxy, the managed receiver service and the
single-user servers all write to one log file, which the tests search for signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hooknb.server.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
#: Set by .ci/run: a missing part (proxy, PostgreSQL) fails the tests instead of skipping them.
REQUIRED = os.environ.get("HOOKNB_REQUIRE_JUPYTERHUB_PARTS") == "1"


def chp_command() -> str | None:
    """configurable-http-proxy: $HOOKNB_CHP, the project-local npm install, or the PATH."""
    candidates = [
        os.environ.get("HOOKNB_CHP"),
        str(ROOT / ".ci" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"),
        shutil.which("configurable-http-proxy"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def hub_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    for name in ("JUPYTERHUB_API_TOKEN", "HOOKNB_URL", "HOOKNB_TOKEN", "HOOKNB_PUBLIC_URL"):
        env.pop(name, None)
    return env


class JupyterHub:
    """One JupyterHub process tree (Hub, proxy, services, users' servers) for a test module.

    ``config`` is appended to the generated ``jupyterhub_config.py`` (e.g. a
    ``hooknb.jupyterhub.configure(c, ...)`` call); a function of the hub gets its ports.
    """

    def __init__(
        self,
        root: Path,
        config: str | Callable[[JupyterHub], str] = "",
        *,
        users: tuple[str, ...] = ("alice", "bob"),
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.receiver_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.admin_token = secrets.token_hex(24)
        self.users = users
        self.log_path = root / "jupyterhub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        chp = chp_command()
        assert chp, "configurable-http-proxy is missing"
        jupyter_config = root / "jupyter-config"
        jupyter_config.mkdir(exist_ok=True)
        # Users' servers load hooknb only: the other installed extensions slow spawns down.
        disabled = (
            "jupyterlab",
            "notebook",
            "notebook_shim",
            "jupyter_lsp",
            "jupyter_server_terminals",
        )
        (jupyter_config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {**dict.fromkeys(disabled, False)}}})
        )
        args = ["--ServerApp.allow_unauthenticated_access=False", "--ServerApp.log_level=DEBUG"]
        homes = str(root / "home" / "{username}")
        if os.geteuid() == 0:
            args.append("--ServerApp.allow_root=True")
        (root / "jupyterhub_config.py").write_text(
            textwrap.dedent(
                f"""\
                import sys
                c = get_config()  # noqa: F821
                c.JupyterHub.bind_url = "{self.url}"
                c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.hub_port}"
                c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
                c.ConfigurableHTTPProxy.command = [{chp!r}]
                c.ConfigurableHTTPProxy.pid_file = {str(root / "proxy.pid")!r}
                c.JupyterHub.pid_file = {str(root / "jupyterhub.pid")!r}
                c.JupyterHub.db_url = "sqlite:///{root / "jupyterhub.sqlite"}"
                c.JupyterHub.cookie_secret_file = {str(root / "cookie_secret")!r}
                c.JupyterHub.log_level = "DEBUG"
                c.JupyterHub.authenticator_class = "dummy"
                c.Authenticator.allowed_users = {set(users)!r}
                c.JupyterHub.spawner_class = "simple"
                c.SimpleLocalProcessSpawner.home_dir_template = {homes!r}
                c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
                c.Spawner.args = {args!r}
                c.Spawner.start_timeout = 60
                c.Spawner.http_timeout = 60
                c.Spawner.environment = {{"JUPYTER_CONFIG_DIR": {str(jupyter_config)!r}}}
                c.JupyterHub.services = [
                    {{"name": "tests", "api_token": "{self.admin_token}"}},
                ]
                c.JupyterHub.load_roles = [
                    {{
                        "name": "tests",
                        "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
                        "services": ["tests"],
                    }},
                ]
                """
            )
            + textwrap.dedent(config(self) if callable(config) else config)
        )

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> JupyterHub:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.root / "jupyterhub_config.py")],
            cwd=self.root,
            env=hub_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the Hub, proxy, services and servers: one group to end
        )
        try:
            self._wait_until_up(timeout)
            for user in self.users:
                self.api("POST", f"users/{user}", expect=(201, 409))
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self, timeout: float) -> None:
        assert self.proc is not None
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited:\n{self.log()[-4000:]}")
            try:
                if httpx.get(f"{self.url}hub/api/", trust_env=False, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"JupyterHub did not start:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # the Hub stops users' servers and the proxy on its way out
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(60)
        # Whatever is left of the Hub's process group (a process that ignored SIGTERM).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- Hub API ---------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201, 202, 204),
        **kwargs: Any,
    ) -> Any:
        response = httpx.request(
            method,
            f"{self.url}hub/api/{path}",
            headers={"Authorization": f"token {token or self.admin_token}"},
            trust_env=False,
            timeout=60,
            **kwargs,
        )
        assert response.status_code in expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def token(self, user: str) -> str:
        """A new API token of ``user`` (all of the user's own permissions)."""
        return self.api("POST", f"users/{user}/tokens", json={"note": "tests"})["token"]

    def server_model(self, user: str) -> dict[str, Any] | None:
        return self.api("GET", f"users/{user}")["servers"].get("")

    def start_server(self, user: str, timeout: float = 90) -> None:
        self.api("POST", f"users/{user}/server", expect=(201, 202, 400))
        self._until(lambda: (self.server_model(user) or {}).get("ready"), timeout, "ready")

    def stop_server(self, user: str, timeout: float = 60) -> None:
        self.api("DELETE", f"users/{user}/server", expect=(202, 204, 400))
        self._until(lambda: self.server_model(user) is None, timeout, "stopped")

    def _until(self, predicate: Any, timeout: float, what: str) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"server not {what} after {timeout} s:\n{self.log()[-3000:]}")

    def server(self, user: str, token: str) -> UserServer:
        return UserServer(self, user, token)


class UserServer:
    """A user's single-user server through the proxy, as that user (or another token)."""

    def __init__(self, hub: JupyterHub, user: str, token: str) -> None:
        self.hub = hub
        self.user = user
        self.token = token
        self.url = f"{hub.url}user/{user}/"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"token {self.token}"},
            trust_env=False,
            timeout=60,
            follow_redirects=False,
            **kwargs,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, f"hooknb/api/{path}", **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()

    def waiting_run(self, workflow: str = "approvals") -> dict[str, Any]:
        """A run paused at an HTTP Webhook step, made through the API (as a kernel would)."""
        run = self.api("POST", f"workflows/{workflow}/runs", json={"client": "test-kernel"})
        return self.api(
            "POST",
            f"runs/{run['run']}/waits",
            json={"step": "Approval", "client": "test-kernel", "timeout": 3600},
        )

    def execute(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` in a new kernel of this server (started as JupyterLab would); its
        stdout. The kernel stays running for :meth:`execute_in`."""
        session = self.api_jupyter(
            "POST",
            "api/sessions",
            json={"path": "hub-test.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        )
        self.kernel_id = session["kernel"]["id"]
        return self.execute_in(self.kernel_id, code, timeout)

    def api_jupyter(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def execute_in(self, kernel_id: str, code: str, timeout: float = 120) -> str:
        return asyncio.run(_execute(self, kernel_id, code, timeout))


async def _execute(server: UserServer, kernel_id: str, code: str, timeout: float) -> str:
    """Execute ``code`` over the kernel's websocket (through the proxy); stdout, or raise."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = server.url.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
    connection = await websocket_connect(
        HTTPRequest(ws_url, headers={"Authorization": f"token {server.token}"})
    )
    msg_id = uuid.uuid4().hex
    connection.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": server.user,
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False},
                "buffers": [],
                "channel": "shell",
            }
        )
    )
    out: list[str] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    try:
        while True:
            remaining = give_up - loop.time()
            if remaining <= 0:
                raise AssertionError(f"kernel did not finish in {timeout} s; output: {out}")
            raw = await asyncio.wait_for(connection.read_message(), remaining)
            if raw is None:
                raise AssertionError("kernel websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                errors.append("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        connection.close()
    if errors:
        raise AssertionError("kernel error:\n" + "\n".join(errors))
    return "".join(out)


def receiver_config(hub: JupyterHub, db_url: str, **options: object) -> str:
    """The one call in jupyterhub_config.py, with the test's port and store."""
    options = {"url": f"http://127.0.0.1:{hub.receiver_port}", "db_url": db_url, **options}
    arguments = "".join(f", {name}={value!r}" for name, value in options.items())
    return f"import hooknb.jupyterhub\nhooknb.jupyterhub.configure(c{arguments})\n"


SIGNATURE = re.compile(r"sig(?:=|%3D)(?!\[secret\])[A-Za-z0-9_-]{16,}")


def signatures_in(text: str) -> list[str]:
    """Every unscrubbed callback signature in ``text``."""
    return SIGNATURE.findall(text)


def remember(issued: list[str], url: str) -> str:
    issued.append(url.split("sig=", 1)[1])
    return url


def no_signature_in(log: str, issued: list[str]) -> None:
    leaked = [sig for sig in issued if sig in log] + signatures_in(log)
    assert not leaked, f"signatures in the logs: {leaked[:3]}"
