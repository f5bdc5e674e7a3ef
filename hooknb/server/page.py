"""The run-history page, ``GET <base_url>hooknb/`` (placeholder until the full page lands)."""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .hub import Hub


class PageHandler(JupyterHandler):
    """Workflows, runs and callbacks of this server, for people."""

    def initialize(self, hub: Hub, **kwargs: Any) -> None:
        self.hub = hub
        super().initialize(**kwargs)

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish("<!doctype html><title>hooknb</title><h1>hooknb</h1>")
