"""The Jupyter server extension: configuration (``c.HookNB``), routes and the hub's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado import routing
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Int, Unicode, default, validate

from ..wdl.durations import parse_duration
from . import log_scrub, public_urls
from .definitions_worker import DefinitionsWorker
from .hub import DEFAULT_RECONNECT_GRACE, Hub
from .outbound import OutboundCaller
from .receiver_link import ReceiverLink
from .routes import callback_rule, handlers
from .store import Store

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
DEFAULT_UPLOADS_PER_URL = 4
DEFAULT_BODY_TIMEOUT = 60.0


class HookNB(ExtensionApp):
    """hooknb: HTTP Webhook triggers and actions, hosted by the Jupyter server.

    Every setting can also come from an environment variable (named in its help), which is
    how the embedded hub and containers usually configure it.
    """

    name = "hooknb"
    description = "Logic Apps-style HTTP Webhook triggers and actions for Jupyter"
    load_other_extensions = True

    public_url = Unicode(
        help=(
            "Base URL under which outside services reach this server, used to build callback "
            "URLs (e.g. a tunnel or proxy: https://hooks.example.org/user/alice/). A template: "
            "{prefix} is the server's URL prefix (JupyterHub's /user/<name>/), {user} and "
            "{server} the JupyterHub user and server names, {base_url} the server's base_url, "
            "so one setting serves every user: https://hooks.example.org{prefix}. Default: "
            "under JupyterHub, JUPYTERHUB_PUBLIC_URL (set by JupyterHub.public_url), else the "
            "Hub's public host with the prefix; otherwise the server's own URL. "
            "Env: HOOKNB_PUBLIC_URL."
        )
    ).tag(config=True)

    receiver_url = Unicode(
        help=(
            "Public base URL of a hooknb receiver (the JupyterHub service of "
            "hooknb.jupyterhub.configure, e.g. https://hub.example.org/services/hooknb/): "
            "callback URLs then point at it and stay valid while this server is stopped. "
            "Env: HOOKNB_RECEIVER_URL (hooknb.jupyterhub.configure sets it for every user)."
        )
    ).tag(config=True)

    receiver_api_url = Unicode(
        help=(
            "Where this server calls the receiver's API to register its keys, when it differs "
            "from receiver_url (e.g. an internal address). Env: HOOKNB_RECEIVER_API_URL."
        )
    ).tag(config=True)

    keep_alive_while_waiting = Bool(
        help=(
            "Report activity to JupyterHub while a run waits for a callback, so that an idle "
            "culler does not stop this server under it. Off by default: a waiting run does "
            "not keep a server alive (with a hooknb receiver its callbacks are kept and "
            "delivered when the server runs again). Env: HOOKNB_KEEP_ALIVE (1/true/yes)."
        )
    ).tag(config=True)

    keep_alive_interval = Float(
        help=(
            "Seconds between two activity marks while runs wait (keep_alive_while_waiting). "
            "Env: HOOKNB_KEEP_ALIVE_INTERVAL."
        )
    ).tag(config=True)

    store_path = Unicode(
        help=(
            "SQLite file holding callbacks, runs, waits and subscriptions (created 0600). "
            "Default: <jupyter data dir>/hooknb/hooknb.sqlite. Env: HOOKNB_STORE."
        )
    ).tag(config=True)

    max_body_size = Int(
        help="Largest callback body accepted, in bytes (larger: 413). Env: HOOKNB_MAX_BODY_SIZE."
    ).tag(config=True)

    max_buffered_bytes = Int(
        help=(
            "Callback bytes held in memory at once, all requests together (at least "
            "max_body_size). A body that does not fit is answered 503 with Retry-After, before "
            "it is read when Content-Length tells its size. Default: 3 x max_body_size. "
            "Env: HOOKNB_MAX_BUFFERED_BYTES."
        )
    ).tag(config=True)

    max_uploads_per_url = Int(
        help=(
            "Bodies over 64 KiB received at once on one callback URL; more are answered 503 "
            "with Retry-After. Env: HOOKNB_MAX_UPLOADS_PER_URL."
        )
    ).tag(config=True)

    body_timeout = Float(
        help=(
            "Seconds a sender has to send a callback's body once its headers arrived (then "
            "408). Env: HOOKNB_BODY_TIMEOUT."
        )
    ).tag(config=True)

    action_timeout = Unicode(
        help=(
            "Default timeout of an HTTP Webhook action, ISO 8601 (Logic Apps allows up to 90 "
            "days). Env: HOOKNB_ACTION_TIMEOUT."
        )
    ).tag(config=True)

    outbound_timeout = Float(
        help=(
            "Timeout in seconds of each subscribe/unsubscribe request (Logic Apps: 120). "
            "Env: HOOKNB_OUTBOUND_TIMEOUT."
        )
    ).tag(config=True)

    outbound_ca_bundle = Unicode(
        help=(
            "CA bundle (a PEM file) that verifies HTTPS endpoints of outbound calls instead of the "
            "system's CAs: when set, only it is trusted. Env: HOOKNB_OUTBOUND_CA_BUNDLE."
        )
    ).tag(config=True)

    durable = Bool(
        help=(
            "fsync every commit before answering a callback (what SQLite's synchronous=FULL "
            "does). Off survives a crash of the server but not of the machine. "
            "Env: HOOKNB_DURABLE (0/false/no turn it off)."
        ),
    ).tag(config=True)

    reconnect_grace = Float(
        help=(
            "Seconds after the server starts during which kernels that ran workflows before may "
            "reconnect before another kernel adopts their unfinished runs. "
            "Env: HOOKNB_RECONNECT_GRACE."
        )
    ).tag(config=True)

    run_definitions = Bool(
        help=(
            "Run the Logic Apps definitions handed to this server (in its definitions worker "
            "process), so their runs need no kernel. Env: HOOKNB_RUN_DEFINITIONS (0/false/no "
            "turn it off)."
        )
    ).tag(config=True)

    trigger_writer_process = Bool(
        None,
        allow_none=True,
        help=(
            "Store plain trigger callbacks (no conditions, splitOn, concurrency limit or "
            "sender verification; bodies up to 64 KiB) in a process of their own instead of "
            "the server's writer thread: under a steady stream of them the server's event "
            "loop and the store's writes then run side by side instead of taking turns on one "
            "GIL. None (the default): started the first time 500 of them arrive within a "
            "second, and kept until the server stops; True: started at the first one; False: "
            "never. Durability is the same: each answer waits for the commit's fsync. "
            "Env: HOOKNB_TRIGGER_WRITER_PROCESS (1/true/yes, 0/false/no, or auto)."
        ),
    ).tag(config=True)

    freeze_startup_objects = Bool(
        help=(
            "Once the server has started, leave the objects it started with (Jupyter's and "
            "its extensions' modules, classes and handlers: ~200,000 in a plain server) out of "
            "the garbage collector's full collections (gc.freeze()). Under a steady stream of "
            "callbacks with kernels attached, a full collection otherwise walks all of them "
            "every few seconds: ~0.1 s in which the server answers nothing. Objects made later "
            "are collected as before. Never done by the embedded hub (the process is not the "
            "server's). Env: HOOKNB_FREEZE_STARTUP_OBJECTS (0/false/no turn it off)."
        )
    ).tag(config=True)

    @default("run_definitions")
    def _default_run_definitions(self) -> bool:
        return _env_flag("HOOKNB_RUN_DEFINITIONS", True)

    @default("trigger_writer_process")
    def _default_trigger_writer_process(self) -> bool | None:
        value = os.environ.get("HOOKNB_TRIGGER_WRITER_PROCESS", "auto").strip().lower()
        return None if value == "auto" else _env_flag("HOOKNB_TRIGGER_WRITER_PROCESS", False)

    @default("freeze_startup_objects")
    def _default_freeze_startup_objects(self) -> bool:
        return _env_flag("HOOKNB_FREEZE_STARTUP_OBJECTS", True)

    @default("reconnect_grace")
    def _default_reconnect_grace(self) -> float:
        return float(os.environ.get("HOOKNB_RECONNECT_GRACE", DEFAULT_RECONNECT_GRACE))

    @default("public_url")
    def _default_public_url(self) -> str:
        return os.environ.get("HOOKNB_PUBLIC_URL", "")

    @validate("public_url")
    def _validate_public_url(self, proposal: dict[str, Any]) -> str:
        return public_urls.check_template(str(proposal["value"]))

    @default("receiver_url")
    def _default_receiver_url(self) -> str:
        return os.environ.get("HOOKNB_RECEIVER_URL", "")

    @default("receiver_api_url")
    def _default_receiver_api_url(self) -> str:
        return os.environ.get("HOOKNB_RECEIVER_API_URL", "")

    @default("keep_alive_while_waiting")
    def _default_keep_alive(self) -> bool:
        return os.environ.get("HOOKNB_KEEP_ALIVE", "").strip().lower() in ("1", "true", "yes", "on")

    @default("keep_alive_interval")
    def _default_keep_alive_interval(self) -> float:
        return float(os.environ.get("HOOKNB_KEEP_ALIVE_INTERVAL", "60"))

    @validate("keep_alive_interval")
    def _validate_keep_alive_interval(self, proposal: dict[str, Any]) -> float:
        if not proposal["value"] >= 0.1:
            raise ValueError("keep_alive_interval must be at least 0.1 seconds")
        return float(proposal["value"])

    @default("durable")
    def _default_durable(self) -> bool:
        return _env_flag("HOOKNB_DURABLE", True)

    @default("store_path")
    def _default_store_path(self) -> str:
        return os.environ.get("HOOKNB_STORE") or str(
            Path(jupyter_data_dir()) / "hooknb" / "hooknb.sqlite"
        )

    @default("max_body_size")
    def _default_max_body_size(self) -> int:
        return int(os.environ.get("HOOKNB_MAX_BODY_SIZE", DEFAULT_MAX_BODY_SIZE))

    @default("max_buffered_bytes")
    def _default_max_buffered_bytes(self) -> int:
        return int(os.environ.get("HOOKNB_MAX_BUFFERED_BYTES", 3 * self.max_body_size))

    @default("max_uploads_per_url")
    def _default_max_uploads_per_url(self) -> int:
        return int(os.environ.get("HOOKNB_MAX_UPLOADS_PER_URL", DEFAULT_UPLOADS_PER_URL))

    @default("body_timeout")
    def _default_body_timeout(self) -> float:
        return float(os.environ.get("HOOKNB_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT))

    @default("action_timeout")
    def _default_action_timeout(self) -> str:
        return os.environ.get("HOOKNB_ACTION_TIMEOUT", "P90D")

    @default("outbound_timeout")
    def _default_outbound_timeout(self) -> float:
        return float(os.environ.get("HOOKNB_OUTBOUND_TIMEOUT", "120"))

    @default("outbound_ca_bundle")
    def _default_outbound_ca_bundle(self) -> str:
        return os.environ.get("HOOKNB_OUTBOUND_CA_BUNDLE", "")

    @validate("body_timeout")
    def _validate_body_timeout(self, proposal: dict[str, Any]) -> float:
        if not proposal["value"] > 0:
            raise ValueError("HookNB.body_timeout must be a positive number of seconds")
        return float(proposal["value"])

    @validate("max_uploads_per_url")
    def _validate_max_uploads_per_url(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise ValueError("HookNB.max_uploads_per_url must be at least 1")
        return int(proposal["value"])

    @validate("action_timeout")
    def _validate_action_timeout(self, proposal: dict[str, Any]) -> str:
        parse_duration(proposal["value"])
        return str(proposal["value"])

    hub: Hub | None = None
    worker: DefinitionsWorker | None = None
    receiver: ReceiverLink | None = None
    _keep_alive: asyncio.Task[None] | None = None
    _warnings: dict[tuple[str, str], str | None]

    @property
    def _server(self) -> ServerApp:
        """The Jupyter server that loaded this extension (set before any of the methods below
        run; ExtensionApp types it as optional)."""
        assert self.serverapp is not None
        return self.serverapp

    def initialize_settings(self) -> None:
        # Whatever log function writes the access log (JupyterHub's replaces the server's),
        # every record passes the server's log handlers: scrub signatures there.
        log_scrub.install(self._server.log)
        self._warnings = {}
        identity = self._identity()
        if self.receiver_url and not identity.under_jupyterhub:
            raise ValueError("c.HookNB.receiver_url needs JupyterHub (JUPYTERHUB_USER unset)")
        store = Store(self.store_path, durable=self.durable).open()
        outbound = OutboundCaller(
            timeout=self.outbound_timeout,
            verify=self.outbound_ca_bundle or True,
            log=self.log,
        )
        if self.receiver_url:
            self.receiver = ReceiverLink(
                public_url=self.receiver_url,
                api_url=self.receiver_api_url,
                token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                identity=identity,
                keys=lambda: self.hub.signer.export() if self.hub else {},
                log=self.log,
            )
        self.hub = Hub(
            store,
            public_base=self._public_base,
            default_action_timeout=parse_duration(self.action_timeout).total_seconds(),
            outbound=outbound,
            max_body_size=self.max_body_size,
            max_buffered_bytes=self.max_buffered_bytes,
            max_uploads_per_url=self.max_uploads_per_url,
            body_timeout=self.body_timeout,
            logger=self.log,
            reconnect_grace=self.reconnect_grace,
            callback_base=(lambda: receiver.callback_base) if (receiver := self.receiver) else None,
            status_notes=self._status_notes,
            trigger_writer_process=self.trigger_writer_process,
        )
        if self.receiver is not None:
            self.hub.on_keys_changed = self.receiver.keys_changed
        # ExtensionApp copies self.settings over the web app's settings after this method.
        self.settings["hooknb_hub"] = self.hub
        self.hub.on_hosted = self._ensure_worker
        # Start on the server's loop once it runs (tests drive the loop without calling the
        # extension start hook, so do not rely on it).
        IOLoop.current().add_callback(self._start)

    async def _start(self) -> None:
        assert self.hub is not None
        if self.receiver is not None:
            # Bounded: a receiver that is down delays start-up a little, then the link retries
            # in the background (and the status says so).
            await self.receiver.start()
        await self.hub.start()
        if self.freeze_startup_objects:
            _freeze_startup_objects(self.log)
        if self.keep_alive_while_waiting:
            self._keep_alive = asyncio.get_running_loop().create_task(self._mark_activity())
        if self.hub.has_hosted_definitions:
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        """Run the definitions handed to this server: start its worker if it is not running."""
        if not self.run_definitions or self.hub is None:
            return
        if self.worker is None:
            token = self._server.identity_provider.token
            self.worker = DefinitionsWorker(url=self._own_url(), token=token, log=self.log)
            self.hub.worker_client = self.worker.client
        self.worker.ensure_running()

    def initialize_handlers(self) -> None:
        assert self.hub is not None
        # ExtensionApp prefixes base_url itself; give it the relative patterns.
        for pattern, handler, kwargs in handlers("/", self.hub):
            self.handlers.append((pattern, handler, kwargs))
        # The callback route is a tornado routing target, not a RequestHandler class, so it is
        # added to tornado's table directly: Jupyter's add_handlers (which ExtensionApp uses)
        # inspects RequestHandler classes for auth decorators. The route is public by design;
        # its signed URL is its credential. It goes first: every callback would otherwise be
        # matched against each extension's routes before it (a tenth of the event loop's work
        # on a trigger callback, measured), while its pattern matches hooknb/callback only.
        web_app = self._server.web_app
        pattern, router = callback_rule(web_app.settings["base_url"], self.hub)
        table = web_app.default_router
        rule = table.process_rule(routing.Rule(routing.PathMatches(pattern), router))
        table.rules.insert(0, rule)

    def _identity(self) -> public_urls.Identity:
        return public_urls.Identity.from_env(self._server.base_url)

    def _own_url(self) -> str:
        server = self._server
        host = server.ip if server.ip not in ("", "0.0.0.0", "::", "*") else "127.0.0.1"  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if server.certfile else "http"
        return f"{scheme}://{host}:{server.port}{server.base_url}"

    def _public_base_and_source(self) -> tuple[str, str]:
        return public_urls.public_base(self.public_url, self._identity(), self._own_url())

    def _public_base(self) -> str:
        return self._public_base_and_source()[0]

    def _status_notes(self) -> dict[str, Any]:
        """Whether outside services can reach the callback URLs; the receiver link's state."""
        identity = self._identity()
        if self.receiver is not None:
            base, source = self.receiver.callback_base, "receiver_url"
        else:
            base, source = self._public_base_and_source()
        if (base, source) not in self._warnings:
            self._warnings[(base, source)] = public_urls.reachability(base, source, identity)
        warnings = [w for w in [self._warnings[(base, source)]] if w]
        receiver = None
        if self.receiver is not None:
            receiver = self.receiver.describe()
            if not self.receiver.registered:
                warnings.append(
                    "The hooknb receiver has not confirmed this server's access keys yet"
                    f" ({self.receiver.error or 'registering'}): it answers 404 to callback"
                    " URLs signed with keys it does not know."
                )
        return {
            "reachable": self._warnings[(base, source)] is None,
            "warning": " ".join(warnings) or None,
            "receiver": receiver,
        }

    async def _mark_activity(self) -> None:
        """While runs wait, mark the server active: jupyterhub-singleuser reports the newest of
        the web app's ``*_last_activity`` settings to the Hub, which idle cullers read."""
        assert self.hub is not None
        settings = self._server.web_app.settings
        while True:
            if self.hub.is_ready and self.hub.has_open_waits():
                settings["hooknb_last_activity"] = datetime.now(UTC)
            await asyncio.sleep(self.keep_alive_interval)

    async def stop_extension(self) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            await worker.stop()
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive
        if self.receiver is not None:
            await self.receiver.stop()
        if self.hub is not None:
            hub, self.hub = self.hub, None
            await hub.stop()
            hub.store.close()


def _freeze_startup_objects(log: Any) -> None:
    """gc.freeze(), once per process: what exists when the server has started lives as long
    as the server, and a full collection walking it is a pause in every answer (BENCHMARKS.md,
    "the server's full collections"). Without a gc.collect() first: it would take that pause
    once more, and a started server holds ~100 collectable objects, which stay."""
    global _startup_frozen
    if _startup_frozen:
        return
    _startup_frozen = True
    gc.freeze()
    log.info(
        "hooknb: %s objects the server started with are left out of full garbage collections"
        " (c.HookNB.freeze_startup_objects)",
        f"{gc.get_freeze_count():,}",
    )


_startup_frozen = False


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")
