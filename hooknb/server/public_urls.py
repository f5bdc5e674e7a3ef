"""Where outside services reach this server's callback URLs, and whether they can.

Under JupyterHub the server's own address (``JUPYTERHUB_SERVICE_URL``) is an internal, per-spawn
port behind the proxy: callback URLs must go through the proxy to the user's prefix instead.
``JUPYTERHUB_PUBLIC_URL`` (set when ``JupyterHub.public_url`` is configured) is already that
full URL, prefix included; anything built from it must not add the prefix again.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

TEMPLATE_FIELDS = ("user", "server", "prefix", "base_url")
_FIELD = re.compile(r"\{([^{}]*)\}")
# Names that only resolve inside a machine, a LAN or a cluster.
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".svc")


def check_template(template: str) -> str:
    """Raise ValueError if ``template`` has a ``{field}`` other than :data:`TEMPLATE_FIELDS`."""
    for name in _FIELD.findall(template):
        if name not in TEMPLATE_FIELDS:
            fields = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
            raise ValueError(f"unknown field {{{name}}} in {template!r} (known: {fields})")
    return template


def expand(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its ``{user}``/``{server}``/``{prefix}``/``{base_url}`` filled in."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), check_template(template))


def with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class Identity:
    """Who this server is under JupyterHub (empty outside it) and its URL prefix."""

    user: str
    server: str
    prefix: str

    @classmethod
    def from_env(cls, base_url: str, env: Mapping[str, str] | None = None) -> Identity:
        env = os.environ if env is None else env
        return cls(
            user=env.get("JUPYTERHUB_USER", ""),
            server=env.get("JUPYTERHUB_SERVER_NAME", ""),
            prefix=env.get("JUPYTERHUB_SERVICE_PREFIX") or base_url,
        )

    @property
    def under_jupyterhub(self) -> bool:
        return bool(self.user)

    def template_values(self, base_url: str) -> dict[str, str]:
        return {
            "user": quote(self.user, safe=""),
            "server": quote(self.server, safe=""),
            "prefix": self.prefix,
            "base_url": base_url,
        }


def public_base(
    configured: str, identity: Identity, own_url: str, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The base URL of this server for outside services, and where it came from.

    In order: the configured ``public_url`` (a template); ``JUPYTERHUB_PUBLIC_URL`` as given;
    the Hub's public host (``JUPYTERHUB_PUBLIC_HUB_URL``, or ``JUPYTERHUB_HOST`` with
    subdomains) with this server's prefix; the server's own URL.
    """
    env = os.environ if env is None else env
    if configured:
        return with_slash(expand(configured, identity.template_values(own_prefix(own_url)))), (
            "public_url"
        )
    if identity.under_jupyterhub:
        if env.get("JUPYTERHUB_PUBLIC_URL"):
            return with_slash(env["JUPYTERHUB_PUBLIC_URL"]), "JUPYTERHUB_PUBLIC_URL"
        hub_origin = origin(env.get("JUPYTERHUB_PUBLIC_HUB_URL") or env.get("JUPYTERHUB_HOST"))
        if hub_origin:
            return hub_origin + with_slash(identity.prefix), "the Hub's public host"
    return with_slash(own_url), "the server's own address"


def own_prefix(url: str) -> str:
    return with_slash(urlsplit(url).path or "/")


def origin(url: str | None) -> str:
    """``scheme://host[:port]`` of ``url`` ('' when it has none)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def internal_host(url: str) -> str | None:
    """The host of ``url`` if it is loopback, private, link-local or a local-only name."""
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        if not name or name == "localhost" or "." not in name or name.endswith(_INTERNAL_SUFFIXES):
            return host or "(no host)"
        return None
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    ):
        return host
    return None


def reachability(callback_base: str, source: str, identity: Identity) -> str | None:
    """A warning when outside services probably cannot reach ``callback_base``; else None."""
    problems = []
    host = internal_host(callback_base)
    if host is not None:
        problems.append(
            f"{host} is a loopback, private or local-only address that outside services "
            "cannot reach"
        )
    if identity.under_jupyterhub and source == "the server's own address":
        problems.append(
            "it is this single-user server's internal port, which bypasses the JupyterHub "
            "proxy and changes at every spawn"
        )
    if not problems:
        return None
    return (
        f"Callback URLs start with {callback_base}: {'; '.join(problems)}. Set "
        "c.HookNB.public_url (HOOKNB_PUBLIC_URL) or JupyterHub.public_url to the address "
        "outside services should use."
    )
