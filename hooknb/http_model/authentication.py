"""The ``authentication`` object of an HTTP request, validated (the Logic Apps types of
https://learn.microsoft.com/azure/logic-apps/logic-apps-securing-a-logic-app#add-authentication-outbound).

Only the shape is checked here; getting the credentials (tokens, certificates) is the server's
job (``hooknb.server.outbound_auth``). Nothing here puts a secret into an error message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["AUTH_TYPES", "DEFAULT_AUTHORITY", "SECRET_FIELDS", "normalize_authentication"]

AUTH_TYPES = (
    "Basic",
    "Raw",
    "ClientCertificate",
    "ActiveDirectoryOAuth",
    "ManagedServiceIdentity",
    "None",
)
# Microsoft Entra ID's current sign-in host; older Logic Apps pages still show
# login.windows.net, an alias of the same service.
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/"
#: Fields of an ``authentication`` object that hold secrets (masked by ``redact``).
SECRET_FIELDS = frozenset({"password", "pfx", "secret", "value", "parameter"})

# (required, optional) fields per type; "type" itself is always allowed.
_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "None": (frozenset(), frozenset()),
    "Basic": (frozenset({"username", "password"}), frozenset()),
    # Raw may also be written {scheme, parameter}; they are joined into the header value.
    "Raw": (frozenset(), frozenset({"value", "scheme", "parameter"})),
    "ClientCertificate": (frozenset({"pfx"}), frozenset({"password"})),
    "ActiveDirectoryOAuth": (
        frozenset({"tenant", "audience", "clientId"}),
        frozenset({"authority", "credentialType", "secret", "pfx", "password"}),
    ),
    "ManagedServiceIdentity": (frozenset({"audience"}), frozenset({"identity"})),
}
_TYPES_BY_LOWER = {name.lower(): name for name in AUTH_TYPES}


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _str_field(obj: Mapping[str, Any], key: str, where: str, *, empty_ok: bool = False) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    if not value and not empty_ok:
        raise ValueError(f"{where}.{key}: must not be empty")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{where}.{key}: must not contain line breaks or NUL characters")
    return value


def normalize_authentication(obj: Any, where: str = "authentication") -> dict[str, Any]:
    """Validate an ``authentication`` object; return it with the canonical type name and defaults.

    Type names are matched case-insensitively (``basic`` → ``Basic``). ActiveDirectoryOAuth gets
    ``authority`` and ``credentialType`` filled in; Raw ``{scheme, parameter}`` becomes ``value``.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object like {{'type': 'Basic', ...}}, got {obj!r}")
    raw_type = obj.get("type")
    if raw_type is None:
        raise ValueError(f"{where}.type: missing; it must be one of {', '.join(AUTH_TYPES)}")
    kind = _TYPES_BY_LOWER.get(raw_type.lower()) if isinstance(raw_type, str) else None
    if kind is None:
        raise ValueError(f"{where}.type: {raw_type!r} is not one of {', '.join(AUTH_TYPES)}")
    required, optional = _FIELDS[kind]
    unknown = sorted(set(obj) - required - optional - {"type"})
    if unknown:
        allowed = ", ".join(sorted(required | optional)) or "none"
        raise ValueError(
            f"{where}: unexpected field(s) {', '.join(unknown)} for type {kind} "
            f"(allowed: {allowed})"
        )
    for key in sorted(required):
        if key not in obj or obj[key] is None:
            raise ValueError(f"{where}.{key}: missing; {kind} authentication needs it")
    out: dict[str, Any] = {"type": kind}
    for key in sorted(required | optional):
        if key in obj and obj[key] is not None:
            out[key] = _str_field(obj, key, where, empty_ok=key == "password")

    if kind == "Basic" and ":" in out["username"]:
        raise ValueError(f"{where}.username: must not contain ':' (Basic authentication)")
    elif kind == "Raw":
        if "value" not in out:
            if "scheme" not in out or "parameter" not in out:
                raise ValueError(f"{where}.value: missing; give the whole Authorization value")
            out["value"] = f"{out['scheme']} {out['parameter']}"
        out.pop("scheme", None)
        out.pop("parameter", None)
    elif kind == "ActiveDirectoryOAuth":
        _normalize_aad(out, where)
    return out


def _normalize_aad(out: dict[str, Any], where: str) -> None:
    authority = out.setdefault("authority", DEFAULT_AUTHORITY)
    parts = urlsplit(authority)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}.authority: {authority!r} is not an http(s) URL")
    if parts.scheme.lower() == "http" and not _is_loopback_host(parts.hostname):
        raise ValueError(
            f"{where}.authority: plain http is allowed only for loopback addresses "
            "(the client secret would travel unencrypted)"
        )
    # The designer sets credentialType; hand-written JSON often omits it, so infer it.
    cred = out.get("credentialType")
    if cred is None:
        cred = "Certificate" if "pfx" in out and "secret" not in out else "Secret"
    canonical = {"secret": "Secret", "certificate": "Certificate"}.get(cred.lower())
    if canonical is None:
        raise ValueError(f"{where}.credentialType: {cred!r} is not one of Secret, Certificate")
    out["credentialType"] = canonical
    if canonical == "Secret" and "secret" not in out:
        raise ValueError(f"{where}.secret: missing; credentialType Secret needs the client secret")
    if canonical == "Certificate" and "pfx" not in out:
        raise ValueError(f"{where}.pfx: missing; credentialType Certificate needs a base64 PFX")
