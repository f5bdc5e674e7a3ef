"""The embedded hub: the same Jupyter server and extension, started inside this process.

Scripts, papermill and plain Python have no Jupyter server to host callback routes, so
hooknb starts one on 127.0.0.1 in a background thread with only the hooknb extension loaded.
The kernel side still talks to it over HTTP with a token: one code path, embedded or not.

The hub listens on the same address every time for a given store: the first start picks a
free port and keeps it in the store, so callback URLs handed out by one run of a script work
again as soon as the script runs again. ``HOOKNB_EMBEDDED_PORT`` (or ``port=``) overrides it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from ..paths import default_embedded_store


class _EmbeddedServerApp(ServerApp):
    """A ServerApp that lives in a thread of someone else's process."""

    def init_signal(self) -> None:
        # Signal handlers belong to the host process (and only the main thread may set them).
        pass

    def write_server_info_file(self) -> None:
        # Not a server for `jupyter server list` or for kernels to discover.
        pass

    def write_browser_open_files(self) -> None:
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_ADDRESS_KEY = "embedded_address"


def remembered_port(store: str, host: str) -> int | None:
    """The port the embedded hub of ``store`` listened on before (on ``host``), if any."""
    path = Path(store)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (_ADDRESS_KEY,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # a new or foreign file: the store itself says what is wrong when opened
    if row is None:
        return None
    remembered_host, _, port = str(row[0]).rpartition(":")
    return int(port) if remembered_host == host and port.isdigit() else None


def _remember(conn: sqlite3.Connection, address: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_ADDRESS_KEY, address))


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As tornado binds: connections of the last process in TIME_WAIT do not count, only a
        # socket listening there now.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedServer:
    """A Jupyter server with the hooknb extension, running on its own thread and loop."""

    def __init__(
        self,
        *,
        store: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        public_url: str | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.store = store or default_embedded_store()
        self.host = host
        env_port = os.environ.get("HOOKNB_EMBEDDED_PORT", "")
        if port is None and env_port.isdigit():
            port = int(env_port)
        self.remembered = port is None and remembered_port(self.store, host) is not None
        self.port = port or remembered_port(self.store, host) or free_port(host)
        self.token = secrets.token_hex(24)
        self.url = f"http://{host}:{self.port}/"
        self.public_url = public_url
        self.extra_config = extra_config or {}
        self.app: _EmbeddedServerApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self, timeout: float = 60.0) -> EmbeddedServer:
        """Start the server and return once it accepts requests.

        Raises:
            RuntimeError: the server could not start, e.g. its remembered address is taken.
        """
        if self.remembered and not _port_is_free(self.host, self.port):
            raise RuntimeError(
                f"the embedded hooknb hub listens on {self.host}:{self.port}, the address kept "
                f"in its store {self.store} so that callback URLs handed out before keep "
                "working, but another program uses that port now. Stop it, or set "
                "HOOKNB_EMBEDDED_PORT to move the hub (URLs handed out before then stop "
                "working), or give this script its own store with HOOKNB_STORE."
            )
        try:
            Path(self.store).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RuntimeError(
                f"the embedded hooknb hub cannot keep its store at {self.store}: {exc} "
                "(HOOKNB_STORE or store= names it)"
            ) from exc
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="hooknb-embedded-hub", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the embedded hooknb hub did not start within {timeout} s")
        if failure:
            raise RuntimeError(
                f"the embedded hooknb hub failed to start: {failure[0]}"
            ) from failure[0]
        atexit.register(self.stop)
        return self

    def _config(self) -> Config:
        config = Config()
        config.ServerApp.ip = self.host
        config.ServerApp.port = self.port
        config.ServerApp.port_retries = 0
        config.ServerApp.open_browser = False
        config.ServerApp.allow_root = True
        config.ServerApp.root_dir = os.getcwd()
        # The host process's output is the user's (a script's terminal, a cell's output):
        # access-log lines for refused callbacks do not belong there; hooknb's own warnings do.
        config.ServerApp.log_level = "ERROR"
        config.HookNB.log_level = "WARN"
        config.ServerApp.jpserver_extensions = {"hooknb": True}
        config.IdentityProvider.token = self.token
        config.HookNB.store_path = self.store
        # This process holds the store's lock, so no kernel of an earlier one can still be
        # connected: their runs are adoptable at once.
        config.HookNB.reconnect_grace = 0
        config.HookNB.freeze_startup_objects = False  # the host process's objects are not ours
        if self.public_url:
            config.HookNB.public_url = self.public_url
        for section, values in self.extra_config.items():
            for key, value in values.items():
                config[section][key] = value
        return config

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        logging.getLogger("tornado.access").setLevel(logging.ERROR)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            app = _EmbeddedServerApp(config=self._config())
            app.initialize(argv=[], find_extensions=False)
            app.start_app()
            self.app = app
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        hub = app.web_app.settings.get("hooknb_hub")
        if hub is None:
            # Jupyter Server logs an extension that fails to load and serves on without it:
            # every hub request would get its 404 page. Say so here instead.
            failure.append(
                RuntimeError(f"hooknb's server extension did not load (store {self.store})")
            )
            with contextlib.suppress(Exception):
                app.http_server.stop()  # free the port; the loop never ran
            self.app = None
            self._stopped.set()
            ready.set()
            loop.close()
            return
        hub.store.write_sync(lambda conn: _remember(conn, f"{self.host}:{self.port}"))
        loop.call_soon(ready.set)
        try:
            app.start_ioloop()
        finally:
            self._stopped.set()
            with contextlib.suppress(Exception):
                loop.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (pending work stays in the store for the next start)."""
        app = self.app
        if app is None or self._stopped.is_set():
            return
        app.stop()
        self._stopped.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
