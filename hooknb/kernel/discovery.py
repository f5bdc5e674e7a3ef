"""Finding the hub a kernel should talk to.

Order: explicit arguments; ``HOOKNB_URL``/``HOOKNB_TOKEN``; the Jupyter server that started this
kernel (``jpserver-<JPY_PARENT_PID>.json`` in the runtime dir); otherwise none, and the caller
starts an embedded hub. Never "the first running server": another project's may be running.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "*"}  # noqa: S104 - names, not a bind


@dataclass(frozen=True)
class HubAddress:
    """Where the hub is and how to authenticate to it."""

    url: str
    token: str
    source: str

    def __post_init__(self) -> None:
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")


def find_hub(url: str | None = None, token: str | None = None) -> HubAddress | None:
    """The hub to use, or None when no Jupyter server is known (use an embedded hub)."""
    if url:
        return HubAddress(url, token or os.environ.get("HOOKNB_TOKEN", ""), "argument")
    env_url = os.environ.get("HOOKNB_URL")
    if env_url:
        return HubAddress(env_url, token or os.environ.get("HOOKNB_TOKEN", ""), "HOOKNB_URL")
    found = server_of_this_kernel()
    if found is not None and token:
        return HubAddress(found.url, token, found.source)
    return found


def server_of_this_kernel() -> HubAddress | None:
    """The Jupyter server whose pid is this process's ``JPY_PARENT_PID``, if its file exists."""
    pid = os.environ.get("JPY_PARENT_PID")
    if not pid or not pid.isdigit():
        return None
    # jupyter_core.paths is cheap to import; jupyter_server.serverapp is not (≈1.4 s).
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return HubAddress(server_url(info), info.get("token") or "", str(path))


def server_url(info: dict[str, object]) -> str:
    """The loopback URL of a server described by a ``jpserver-*.json`` file."""
    if info.get("sock"):
        # httpx cannot reach a UNIX socket through a URL; the caller needs the socket path.
        return str(info["url"])
    host = str(info.get("hostname") or "")
    if host in _WILDCARD_HOSTS or host == os.uname().nodename:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if info.get("secure") else "http"
    base_url = str(info.get("base_url") or "/")
    return f"{scheme}://{host}:{info['port']}{base_url}"
