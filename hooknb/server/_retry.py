"""Logic Apps retry policies for the outbound subscribe/unsubscribe calls.

Semantics follow Logic Apps' retry policies
(https://learn.microsoft.com/azure/logic-apps/logic-apps-exception-handling#retry-policies);
:mod:`hooknb.http_model.retry_policy` validates the objects:

* ``{"type": "none"}`` - one attempt, no retries.
* ``{"type": "fixed", "count": n, "interval": "PT5S"}`` - ``n`` retries, each after ``interval``.
* ``{"type": "exponential", "count", "interval", "minimumInterval", "maximumInterval"}`` -
  retry ``k`` waits a random time in
  ``[max(2**(k-2) * interval, minimumInterval), min(2**(k-1) * interval, maximumInterval)]``
  (the first retry's lower bound is ``max(0, minimumInterval)``).
* absent or ``{"type": "default"}`` - the Logic Apps default policy, see :data:`DEFAULT_POLICY`.

Deliberate differences from Logic Apps: the 5-second floor on intervals is *not* enforced, so
a notebook (or a test) can retry after ``PT0.1S``; intervals are still capped at one day.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ..http_model.retry_policy import ONE_DAY, normalize_retry_policy, parse_interval

__all__ = [
    "DEFAULT_POLICY",
    "RetryPolicy",
    "exponential_range",
    "is_retryable_status",
    "parse_retry_after",
]


@dataclass(frozen=True)
class RetryPolicy:
    """A validated retry policy; all intervals in seconds."""

    type: str  # "none" | "fixed" | "exponential" ("default" is resolved to exponential)
    count: int = 0
    interval: float = 0.0
    minimum_interval: float = 0.0
    maximum_interval: float = ONE_DAY

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None, where: str = "retryPolicy") -> RetryPolicy:
        """Build a policy from the (raw or normalized) JSON object; ValueError names the field."""
        norm = normalize_retry_policy(obj, where)
        kind = norm["type"]
        if kind == "default":
            return DEFAULT_POLICY
        if kind == "none":
            return cls("none")
        interval = parse_interval(norm["interval"])
        if kind == "fixed":
            return cls("fixed", norm["count"], interval)
        return cls(
            "exponential",
            norm["count"],
            interval,
            parse_interval(norm["minimumInterval"]),
            parse_interval(norm["maximumInterval"]),
        )

    @property
    def retry_after_cap(self) -> float:
        """The longest wait a server's ``Retry-After`` may impose."""
        if self.type == "exponential":
            return self.maximum_interval
        return ONE_DAY

    def longest(self, attempt_timeout: float) -> float:
        """The longest a call under this policy can take, when each attempt is bounded by
        ``attempt_timeout`` seconds and every wait is the longest allowed (a server's
        ``Retry-After`` included): what a caller waiting for the outcome bounds its wait by."""
        total = (self.count + 1) * attempt_timeout
        for retry in range(1, self.count + 1):
            high = self.interval
            if self.type == "exponential":
                high = exponential_range(
                    retry, self.interval, self.minimum_interval, self.maximum_interval
                )[1]
            total += max(high, self.retry_after_cap)
        return total

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if self.type == "none" or retry < 1:
            return 0.0
        if self.type == "fixed":
            return self.interval
        low, high = exponential_range(
            retry, self.interval, self.minimum_interval, self.maximum_interval
        )
        if low >= high:
            return low
        return (rng or random).uniform(low, high)


def exponential_range(
    retry: int, interval: float, minimum: float, maximum: float
) -> tuple[float, float]:
    """The ``[low, high]`` range Logic Apps draws retry ``retry``'s delay from.

    When the table's bounds cross (``minimumInterval`` above ``2**(k-1) * interval``, or
    ``2**(k-2) * interval`` above ``maximumInterval``) the range collapses to the bound that is
    still inside ``[minimum, maximum]``.
    """
    lower_base = 0.0 if retry <= 1 else math.ldexp(interval, retry - 2)
    upper_base = math.ldexp(interval, retry - 1)
    low = max(lower_base, minimum)
    high = min(upper_base, maximum)
    if low > high:
        low = high = min(low, maximum)
    return low, high


# Logic Apps' default policy. Its documentation (linked above) disagrees with itself: the prose
# says "up to 4 retries at exponentially increasing intervals, which scale by 7.5 seconds but are
# capped between 5 and 45 seconds", while the JSON illustration shows interval PT7S and
# maximumInterval PT1H. We follow the prose (it is the normative statement; the JSON is labelled
# an illustration): retries wait 5-7.5 s, 7.5-15 s, 15-30 s, 30-45 s.
DEFAULT_POLICY = RetryPolicy("exponential", 4, 7.5, 5.0, 45.0)
DEFAULT_POLICY_JSON: dict[str, Any] = {
    "type": "exponential",
    "count": 4,
    "interval": "PT7.5S",
    "minimumInterval": "PT5S",
    "maximumInterval": "PT45S",
}


def is_retryable_status(status: int) -> bool:
    """Logic Apps retries 408, 429 and every 5xx (see the module docstring's link)."""
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait per ``Retry-After`` (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT even when they forget to say so
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
