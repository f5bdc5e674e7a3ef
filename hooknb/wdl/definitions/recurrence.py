"""A Recurrence trigger's schedule and the calendar arithmetic it needs.

How Logic Apps schedules recurring runs:
https://learn.microsoft.com/azure/logic-apps/concepts-schedule-automated-recurring-tasks-workflows
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass
class Recurrence:
    """A Recurrence trigger's schedule: ``interval`` times ``frequency`` from ``start``.

    ``problem`` is set (and the trigger cannot be enabled) when a value is not a literal
    (an ARM or WDL expression) or asks for something hooknb does not schedule
    (``schedule``). Times are UTC; ``timeZone`` is not applied (a note says so).
    """

    frequency: str = "Minute"
    interval: int = 1
    start: datetime | None = None
    end: datetime | None = None
    count: int | None = None
    problem: str | None = None

    def period(self, n: int) -> tuple[int, timedelta]:
        """``n`` periods as (months, fixed duration)."""
        step = n * self.interval
        if self.frequency == "Month":
            return step, timedelta(0)
        if self.frequency == "Year":
            return 12 * step, timedelta(0)
        unit = {
            "Second": timedelta(seconds=1),
            "Minute": timedelta(minutes=1),
            "Hour": timedelta(hours=1),
            "Day": timedelta(days=1),
            "Week": timedelta(weeks=1),
        }[self.frequency]
        return 0, step * unit

    def occurrence(self, origin: datetime, n: int) -> datetime:
        """The ``n``-th time after ``origin`` (``n`` = 0 is ``origin``); months don't drift."""
        months, fixed = self.period(n)
        return add_months(origin, months) + fixed

    def next_index(self, origin: datetime, when: datetime) -> int:
        """The smallest ``n`` whose occurrence after ``origin`` is at or after ``when``."""
        if when <= origin:
            return 0
        months, fixed = self.period(1)
        if months == 0:
            n = int((when - origin) / fixed)
        else:  # an estimate a little low, then walk: month lengths vary
            elapsed = (when.year - origin.year) * 12 + when.month - origin.month
            n = max(0, elapsed // months - 1)
        while self.occurrence(origin, n) < when:
            n += 1
        return n

    def first(self, now: datetime) -> datetime:
        """When the first run happens, enabled at ``now`` (Logic Apps' rules).

        No start time: at once. A start time in the future: then. A start time in the past:
        the next time on its grid at or after ``now`` (earlier times are discarded).
        """
        if self.start is None:
            return now
        return self.occurrence(self.start, self.next_index(self.start, now))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frequency": self.frequency, "interval": self.interval}
        if self.start is not None:
            out["startTime"] = _iso(self.start)
        if self.end is not None:
            out["endTime"] = _iso(self.end)
        if self.count is not None:
            out["count"] = self.count
        return out


def add_months(value: datetime, months: int) -> datetime:
    """``value`` plus whole calendar months (the day is clamped to the month's length)."""
    if not months:
        return value
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    day = min(value.day, _days_in_month(year, month))
    return value.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
