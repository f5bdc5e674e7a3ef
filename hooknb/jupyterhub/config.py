"""``hooknb.jupyterhub.configure(c)``: the receiver service, its role, and what every user's
server needs to know about it, added to a ``jupyterhub_config.py``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..server.public_urls import with_slash

DEFAULT_URL = "http://127.0.0.1:8766"
_WILDCARDS = ("", "0.0.0.0", "::", "*")  # noqa: S104 - names of binds, not a bind


def configure(
    c: Any,
    *,
    name: str = "hooknb",
    url: str = DEFAULT_URL,
    db_url: str | None = None,
    public_url: str | None = None,
    api_url: str | None = None,
    proxy_url: str | None = None,
    start_servers: bool = False,
    keep_alive_while_waiting: bool = False,
    managed: bool = True,
    api_token: str | None = None,
    max_body_size: int | None = None,
    retention_days: float = 7,
    sweep_interval: float = 10,
    filter_hub_log: bool = True,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Run the hooknb receiver as a JupyterHub service and point every user's callbacks at it.

    Call it in ``jupyterhub_config.py``, after ``JupyterHub.bind_url``/``public_url`` are set
    (its defaults read them)::

        import hooknb.jupyterhub
        hooknb.jupyterhub.configure(c)                               # SQLite, one machine
        hooknb.jupyterhub.configure(c, db_url="postgresql://hooknb@db/hooknb")

    Callback URLs handed out by users' servers then look like
    ``<hub>/services/hooknb/callback/<user>/<id>?sig=...`` and keep working while a server is
    stopped: the receiver stores the callback (202) and forwards it when the server runs.

    Options:

    - ``name``: the service's name, hence its URL prefix ``/services/<name>/``.
    - ``url``: where the service listens (the proxy routes ``/services/<name>/`` there).
    - ``db_url``: SQLAlchemy URL of its store; default ``sqlite:///<cwd>/hooknb-receiver.sqlite``
      (one replica). ``postgresql://...`` (psycopg 3) for several replicas.
    - ``public_url``: the receiver's URL for outside services; default: JupyterHub's
      ``public_url`` host (else the proxy's ``bind_url``) + ``/services/<name>/``, computed
      at each spawn.
    - ``api_url``: where users' servers call the receiver's API, if not ``public_url``.
    - ``proxy_url``: where the receiver reaches users' servers (through the proxy); default
      the ``bind_url`` configured when this is called, else ``http://127.0.0.1:8000``.
    - ``start_servers``: start a stopped server through the Hub API to deliver its callbacks
      (the service gets the ``servers`` scope). Off by default: callbacks wait for the user.
    - ``keep_alive_while_waiting``: users' servers report activity while runs wait, so idle
      cullers leave them running (``HOOKNB_KEEP_ALIVE``). Off by default.
    - ``managed``: JupyterHub starts the receiver. ``False`` for replicas run elsewhere
      (``python -m hooknb.jupyterhub`` with the same environment), with ``api_token`` and a
      ``url`` that reaches them (a load balancer).
    - ``max_body_size``, ``retention_days`` (finished callbacks kept), ``sweep_interval``
      (seconds between retries of pending ones), ``environment`` (more service variables).
    - ``filter_hub_log``: add hooknb's signature filter to the Hub's log handler (callbacks
      addressed to a stopped server without a receiver reach the Hub, which logs their URL).
    """
    service_env: dict[str, Any] = {
        "HOOKNB_RECEIVER_DB": db_url or "sqlite:///" + os.path.abspath("hooknb-receiver.sqlite"),
        "HOOKNB_PROXY_URL": proxy_url or _proxy_url(c),
        "HOOKNB_RECEIVER_RETENTION": str(int(retention_days * 86400)),
        "HOOKNB_RECEIVER_SWEEP": str(sweep_interval),
    }
    if start_servers:
        service_env["HOOKNB_START_SERVERS"] = "1"
    if max_body_size is not None:
        service_env["HOOKNB_MAX_BODY_SIZE"] = str(max_body_size)
    service_env.update(environment or {})
    service: dict[str, Any] = {"name": name, "url": url, "environment": service_env}
    if managed:
        service["command"] = [sys.executable, "-m", "hooknb.jupyterhub"]
    elif not api_token:
        raise ValueError("an unmanaged hooknb receiver needs api_token= (shared by its replicas)")
    if api_token:
        service["api_token"] = api_token
    c.JupyterHub.services = [*_list(c.JupyterHub, "services"), service]

    # What the receiver may do: forward to any user's server, see whether it runs, and (only
    # if allowed) start it. It never needs admin.
    scopes = ["access:servers", "read:users:name", "read:servers"]
    if start_servers:
        scopes.append("servers")
    role = {
        "name": f"{name}-receiver",
        "description": "hooknb receiver: forwards stored callbacks to users' servers",
        "scopes": scopes,
        "services": [name],
    }
    c.JupyterHub.load_roles = [*_list(c.JupyterHub, "load_roles"), role]

    user_env: dict[str, Any] = {"HOOKNB_RECEIVER_URL": _receiver_public_url(name, public_url)}
    if api_url:
        user_env["HOOKNB_RECEIVER_API_URL"] = with_slash(api_url)
    if keep_alive_while_waiting:
        user_env["HOOKNB_KEEP_ALIVE"] = "1"
    existing = c.Spawner.environment if "environment" in c.Spawner else {}
    c.Spawner.environment = {**dict(existing), **user_env}

    if filter_hub_log:
        scrub_hub_log(c)


def _list(section: Any, key: str) -> list[Any]:
    return list(section[key]) if key in section else []


def _proxy_url(c: Any) -> str:
    """The proxy's address as configured so far (JupyterHub.bind_url, else ip/port)."""
    hub = c.JupyterHub
    if "bind_url" in hub:
        parts = urlsplit(hub.bind_url)
        host, port, scheme = parts.hostname or "", parts.port, parts.scheme or "http"
    else:
        host = hub.ip if "ip" in hub else ""
        port = hub.port if "port" in hub else 8000
        scheme = "http"
    if host in _WILDCARDS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or (443 if scheme == 'https' else 80)}/"


def _receiver_public_url(name: str, configured: str | None) -> str | Callable[[Any], str]:
    """The receiver's public base for a user's server: fixed, or computed at spawn time from
    the Hub's public URL (or the proxy's bind URL) when the Hub is fully configured."""
    if configured:
        return with_slash(configured)

    def at_spawn(spawner: Any) -> str:
        settings = spawner.user.settings
        public = settings.get("public_url")  # JupyterHub.public_url, parsed
        base_url = settings.get("base_url") or "/"
        if public:
            origin = f"{public.scheme}://{public.netloc}"
        else:
            parts = urlsplit(settings["proxy"].public_url)
            host = parts.hostname or ""
            host = "127.0.0.1" if host in _WILDCARDS else host
            host = f"[{host}]" if ":" in host else host
            origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        return f"{origin}{with_slash(base_url)}services/{name}/"

    return at_spawn


def scrub_hub_log(c: Any) -> None:
    """Add hooknb's signature filter to the Hub's log handler (traitlets' ``logging_config``).

    :func:`configure` does it; call it alone when users' servers take callbacks directly (no
    receiver): a callback to a stopped server reaches the Hub, which logs its URL.
    """
    current = dict(c.JupyterHub.logging_config) if "logging_config" in c.JupyterHub else {}
    filters = {
        **current.get("filters", {}),
        "hooknb_scrub": {"()": "hooknb.server.log_scrub.ScrubSignatures"},
    }
    handlers = dict(current.get("handlers", {}))
    console = dict(handlers.get("console", {}))
    console["filters"] = [*console.get("filters", []), "hooknb_scrub"]
    handlers["console"] = console
    c.JupyterHub.logging_config = {**current, "filters": filters, "handlers": handlers}
