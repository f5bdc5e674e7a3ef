"""ISO 8601 durations, as Logic Apps uses them for ``limit.timeout`` and retry intervals.

``PT10M``, ``P1D``, ``PT0.5S``, ``P1W``, ``P1DT2H``, ``PT1H30M`` ... Years and
months are rejected: they have no fixed length, and an action timeout or a
retry interval needs one (write ``P30D`` instead of ``P1M``). Negative
durations are rejected too. Letters may be lower case; any component may
carry a fraction (``.`` or ``,``), which is rounded to whole microseconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

__all__ = ["format_duration", "parse_duration"]

_NUMBER = r"(\d++(?:[.,]\d++)?+)"  # possessive: linear time on any input
_DURATION = re.compile(
    rf"P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?",
    re.IGNORECASE,
)
_MICROSECONDS = {
    "W": 7 * 86_400_000_000,
    "D": 86_400_000_000,
    "H": 3_600_000_000,
    "TM": 60_000_000,
    "S": 1_000_000,
}
# datetime.timedelta's own ceiling, in microseconds.
_MAX_MICROSECONDS = int(timedelta.max / timedelta(microseconds=1))


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``PT10M`` into a :class:`datetime.timedelta`.

    Raises:
        ValueError: if ``text`` is not a duration, uses years or months, or is
            too large for a timedelta.
    """
    if not isinstance(text, str):
        raise ValueError(f"an ISO 8601 duration is a string, not {type(text).__name__}")
    source = text.strip()
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    if source.startswith("-"):
        raise ValueError(f"{shown}: negative durations are not allowed")
    match = _DURATION.fullmatch(source)
    if not match or not any(match.groups()) or source.upper().endswith("T"):
        raise ValueError(
            f"{shown} is not an ISO 8601 duration (examples: 'PT10M', 'P1D', 'PT0.5S', 'P1DT2H')"
        )
    years, months, weeks, days, hours, minutes, seconds = match.groups()
    if years or months:
        unit, example = (
            ("years", "'P365D' rather than 'P1Y'")
            if years
            else ("months", "'P30D' rather than 'P1M'")
        )
        raise ValueError(
            f"{shown}: {unit} have no fixed length; write the duration in days "
            f"(for example {example})"
        )
    total = Decimal(0)
    for value, unit in ((weeks, "W"), (days, "D"), (hours, "H"), (minutes, "TM"), (seconds, "S")):
        if value:
            try:
                total += Decimal(value.replace(",", ".")) * _MICROSECONDS[unit]
            except InvalidOperation:  # pragma: no cover - the regex admits only digits
                raise ValueError(f"{shown}: invalid number {value!r}") from None
    if total > _MAX_MICROSECONDS:
        raise ValueError(f"{shown} is too long a duration")
    return timedelta(microseconds=int(total.to_integral_value()))


def format_duration(value: timedelta) -> str:
    """Format a :class:`datetime.timedelta` as an ISO 8601 duration (``PT10M``, ``P1DT2H``).

    Days are not folded into weeks. The inverse of :func:`parse_duration`.

    Raises:
        ValueError: if ``value`` is negative.
    """
    if not isinstance(value, timedelta):
        raise ValueError(f"expected a timedelta, got {type(value).__name__}")
    if value < timedelta(0):
        raise ValueError(f"{value!r}: negative durations cannot be formatted")
    days = value.days
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or value.microseconds:
        text = f"{seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
        clock += f"{text}S"
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"
