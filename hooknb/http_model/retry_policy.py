"""The ``retryPolicy`` object of an HTTP request, validated (Logic Apps' retry policies,
https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling#retry-policies).

Only the shape is checked here; the server retries (``hooknb.server._retry``). One deliberate
difference from Logic Apps: its 5-second floor on intervals is not enforced, so a notebook (or
a test) can retry after ``PT0.1S``; intervals are still capped at one day.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..wdl.durations import parse_duration

__all__ = ["MAX_COUNT", "ONE_DAY", "normalize_retry_policy", "parse_interval"]

#: The most retries a policy may ask for.
MAX_COUNT = 90
#: The longest retry interval, in seconds.
ONE_DAY = 86400.0

_TYPES = ("default", "none", "fixed", "exponential")
_FIELDS = {
    "default": {"type"},
    "none": {"type"},
    "fixed": {"type", "count", "interval"},
    "exponential": {"type", "count", "interval", "minimumInterval", "maximumInterval"},
}


def parse_interval(text: str) -> float:
    """An ISO 8601 duration (``PT7.5S``, ``P1D``) in seconds; years and months are refused."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration string like 'PT5S', got {text!r}")
    return parse_duration(text).total_seconds()


def _interval(obj: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    raw = obj.get(key, default)
    if raw is None:
        raise ValueError(f"{where}.{key}: missing; give an ISO 8601 duration like 'PT5S'")
    try:
        seconds = parse_interval(raw)
    except ValueError as exc:
        raise ValueError(f"{where}.{key}: {exc}") from None
    if seconds > ONE_DAY:
        raise ValueError(f"{where}.{key}: {raw!r} is longer than one day (P1D), the maximum")
    return str(raw).strip().upper()


def _count(obj: Mapping[str, Any], where: str) -> int:
    raw = obj.get("count")
    if raw is None:
        raise ValueError(f"{where}.count: missing; give the number of retries (1 to {MAX_COUNT})")
    # Expressions often produce strings; "3" is as good as 3, but True is not a count.
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValueError(f"{where}.count: {raw!r} is not a whole number")
    if not 1 <= raw <= MAX_COUNT:
        raise ValueError(f"{where}.count: {raw} is out of range; it must be 1 to {MAX_COUNT}")
    return raw


def normalize_retry_policy(
    obj: Mapping[str, Any] | None, where: str = "retryPolicy"
) -> dict[str, Any]:
    """Validate a ``retryPolicy`` object and return it with its type lower-cased.

    Absent means ``{"type": "default"}``. Exponential policies get their optional bounds filled
    in (``minimumInterval`` PT5S, ``maximumInterval`` P1D, the documented defaults).
    """
    if obj is None:
        return {"type": "default"}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected an object like {{'type': 'fixed', ...}}, got {obj!r}")
    raw_type = obj.get("type", "default")
    kind = raw_type.strip().lower() if isinstance(raw_type, str) else None
    if kind not in _TYPES:
        raise ValueError(f"{where}.type: {raw_type!r} is not one of {', '.join(_TYPES)}")
    unknown = sorted(set(obj) - _FIELDS[kind])
    if unknown:
        allowed = ", ".join(sorted(_FIELDS[kind]))
        raise ValueError(
            f"{where}: unexpected field(s) {', '.join(unknown)} for type {kind!r} "
            f"(allowed: {allowed})"
        )
    if kind in ("default", "none"):
        return {"type": kind}
    out: dict[str, Any] = {
        "type": kind,
        "count": _count(obj, where),
        "interval": _interval(obj, "interval", where),
    }
    if kind == "exponential":
        out["minimumInterval"] = _interval(obj, "minimumInterval", where, "PT5S")
        out["maximumInterval"] = _interval(obj, "maximumInterval", where, "P1D")
        if parse_interval(out["minimumInterval"]) > parse_interval(out["maximumInterval"]):
            raise ValueError(
                f"{where}.minimumInterval: {out['minimumInterval']!r} is longer than "
                f"maximumInterval {out['maximumInterval']!r}"
            )
    return out
