"""The URL table: every hooknb route under the server's ``base_url``."""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web

from .callback_route import CallbackRouter
from .handlers import (
    CALLBACK_ID_PATTERN,
    CallbackHandler,
    CallbacksHandler,
    ChannelHandler,
    DefinitionsHandler,
    ForwardedCallbackHandler,
    KeyRegenerateHandler,
    KeysHandler,
    RunCancelHandler,
    RunHandler,
    RunResubmitHandler,
    RunsCancelHandler,
    RunsHandler,
    RunWaitsHandler,
    StatusHandler,
    SyncHandler,
    TriggerHandler,
    VersionHandler,
    WaitCancelHandler,
    WaitHandler,
    WaitsHandler,
    WaitSubscribeHandler,
    WaitUnsubscribeHandler,
    WorkflowAdoptHandler,
    WorkflowDefinitionHandler,
    WorkflowHandler,
    WorkflowReleaseHandler,
    WorkflowRunsHandler,
    WorkflowSettingsHandler,
    WorkflowsHandler,
    WorkflowTriggerHistoryHandler,
    WorkflowWatchHandler,
)
from .http_action import RunHttpHandler
from .hub import Hub
from .page import PageHandler


def callback_rule(base_url: str, hub: Hub) -> tuple[str, CallbackRouter]:
    """The public callback route, under the server's ``base_url``: a tornado routing target of
    its own (not a ``RequestHandler``, see :mod:`hooknb.server.callback_route`)."""
    # Everything under callback/ is this route's: a malformed id is a JSON 404 too.
    pattern = r"hooknb/callback(?:/(?P<callback_id>.*))?"
    return url_path_join(base_url, pattern), CallbackRouter(CallbackHandler, hub=hub)


def handlers(base_url: str, hub: Hub) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    """The Jupyter-authenticated routes and the page, under the server's ``base_url``."""
    name = r"(?P<name>[^/]+)"
    run = r"(?P<run_id>[0-9a-f]{8,40})"
    wait = rf"(?P<wait_id>{CALLBACK_ID_PATTERN})"
    routes: list[tuple[str, type[web.RequestHandler]]] = [
        ("hooknb/?", PageHandler),
        ("hooknb/api/version", VersionHandler),
        ("hooknb/api/status", StatusHandler),
        ("hooknb/api/channel", ChannelHandler),
        ("hooknb/api/sync", SyncHandler),
        ("hooknb/api/workflows", WorkflowsHandler),
        (rf"hooknb/api/workflows/{name}", WorkflowHandler),
        (rf"hooknb/api/workflows/{name}/trigger", TriggerHandler),
        (rf"hooknb/api/workflows/{name}/runs", WorkflowRunsHandler),
        (rf"hooknb/api/workflows/{name}/adopt", WorkflowAdoptHandler),
        (rf"hooknb/api/workflows/{name}/release", WorkflowReleaseHandler),
        (rf"hooknb/api/workflows/{name}/definition", WorkflowDefinitionHandler),
        (rf"hooknb/api/workflows/{name}/watch", WorkflowWatchHandler),
        (rf"hooknb/api/workflows/{name}/settings", WorkflowSettingsHandler),
        (rf"hooknb/api/workflows/{name}/triggers", WorkflowTriggerHistoryHandler),
        ("hooknb/api/definitions", DefinitionsHandler),
        ("hooknb/api/runs", RunsHandler),
        ("hooknb/api/runs/cancel", RunsCancelHandler),
        (rf"hooknb/api/runs/{run}", RunHandler),
        (rf"hooknb/api/runs/{run}/cancel", RunCancelHandler),
        (rf"hooknb/api/runs/{run}/resubmit", RunResubmitHandler),
        (rf"hooknb/api/runs/{run}/waits", RunWaitsHandler),
        ("hooknb/api/waits", WaitsHandler),
        (rf"hooknb/api/waits/{wait}", WaitHandler),
        (rf"hooknb/api/waits/{wait}/subscribe", WaitSubscribeHandler),
        (rf"hooknb/api/waits/{wait}/unsubscribe", WaitUnsubscribeHandler),
        (rf"hooknb/api/waits/{wait}/cancel", WaitCancelHandler),
        ("hooknb/api/callbacks", CallbacksHandler),
        ("hooknb/api/forwarded", ForwardedCallbackHandler),
        (rf"hooknb/api/runs/{run}/http", RunHttpHandler),
        ("hooknb/api/keys", KeysHandler),
        (r"hooknb/api/keys/(?P<key_type>[A-Za-z]+)/regenerate", KeyRegenerateHandler),
    ]
    return [(url_path_join(base_url, pattern), cls, {"hub": hub}) for pattern, cls in routes]
