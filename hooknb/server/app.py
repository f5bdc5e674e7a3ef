"""The Jupyter server extension: configuration (``c.HookNB``), routes and the hub's lifecycle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Int, Unicode, default, validate

from ..wdl.durations import parse_duration
from .hub import Hub
from .outbound import OutboundCaller
from .routes import handlers
from .store import Store

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
            "URLs (e.g. a tunnel or proxy: https://hooks.example.org/user/alice/). Default: the "
            "server's own URL, or JupyterHub's public URL when it is configured. "
            "Env: HOOKNB_PUBLIC_URL."
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
            "fsync every commit before answering a callback (SQLite synchronous=FULL). Off "
            "survives a crash of the server but not of the machine. Env: HOOKNB_DURABLE "
            "(0/false/no turn it off)."
        ),
    ).tag(config=True)

    @default("public_url")
    def _default_public_url(self) -> str:
        return os.environ.get("HOOKNB_PUBLIC_URL", "")

    @default("durable")
    def _default_durable(self) -> bool:
        value = os.environ.get("HOOKNB_DURABLE", "1").strip().lower()
        return value not in ("0", "false", "no", "off")

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

    def initialize_settings(self) -> None:
        store = Store(self.store_path, durable=self.durable).open()
        outbound = OutboundCaller(
            timeout=self.outbound_timeout,
            verify=self.outbound_ca_bundle or True,
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
        )
        # ExtensionApp copies self.settings over the web app's settings after this method.
        self.settings["hooknb_hub"] = self.hub
        scrub = list(self.settings.get("extra_log_scrub_param_keys") or [])
        self.settings["extra_log_scrub_param_keys"] = [*scrub, "sig"]
        # Start on the server's loop once it runs (tests drive the loop without calling the
        # extension start hook, so do not rely on it).
        IOLoop.current().add_callback(self.hub.start)

    def initialize_handlers(self) -> None:
        assert self.hub is not None
        # ExtensionApp prefixes base_url itself; give it the relative patterns.
        for pattern, handler, kwargs in handlers("/", self.hub):
            self.handlers.append((pattern, handler, kwargs))

    def _public_base(self) -> str:
        if self.public_url:
            return self.public_url if self.public_url.endswith("/") else self.public_url + "/"
        hub_public = os.environ.get("JUPYTERHUB_PUBLIC_URL")
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        if hub_public and prefix:
            return hub_public.rstrip("/") + prefix
        server = self.serverapp
        host = server.ip if server.ip not in ("", "0.0.0.0", "::", "*") else "127.0.0.1"  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if server.certfile else "http"
        return f"{scheme}://{host}:{server.port}{server.base_url}"

    async def stop_extension(self) -> None:
        if self.hub is not None:
            hub, self.hub = self.hub, None
            await hub.stop()
            hub.store.close()
