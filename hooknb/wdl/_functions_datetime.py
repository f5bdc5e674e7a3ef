"""Date and time functions, with .NET date format strings and Windows time-zone names.

Timestamps are kept as .NET does: a count of 100-nanosecond ticks since
0001-01-01 plus a kind. Parsing ``...Z`` gives a UTC timestamp (formatted
back with ``Z``); a timestamp without a zone stays "unspecified" (formatted
without one: ``formatDateTime('03/15/2018')`` is ``2018-03-15T00:00:00.0000000``
in the reference). A timestamp with an offset (``+02:00``) is converted to UTC.
The default output format is ``o`` (``yyyy-MM-ddTHH:mm:ss.fffffffK``).

Time zones accept the Windows names the reference asks for ("Pacific Standard
Time"; punctuation is ignored, as the reference suggests) through the CLDR
Windows-to-IANA table below, and IANA names ("Europe/Paris") directly. The
zone rules come from :mod:`zoneinfo`, i.e. the system tz database or the
``tzdata`` package where there is none (Windows).
"""

from __future__ import annotations

import email.utils
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._functions_core import (
    Invocation,
    arg_int,
    arg_number,
    arg_str,
    check_text,
    describe,
    function,
    optional,
)
from ._functions_locale import DEFAULT_LOCALE, Locale, locale_arg

_EPOCH = datetime(1, 1, 1)
_TICKS_PER_SECOND = 10_000_000
_TICKS_PER_DAY = 86_400 * _TICKS_PER_SECOND
_MAX_TICKS = (datetime(9999, 12, 31) - _EPOCH).days * _TICKS_PER_DAY + _TICKS_PER_DAY - 1


@dataclass(frozen=True, slots=True)
class Stamp:
    """A .NET DateTime: ticks since 0001-01-01 and whether it is UTC (else unspecified)."""

    ticks: int
    utc: bool

    @property
    def dt(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.ticks // 10)

    @property
    def fraction(self) -> int:
        """The sub-second part in ticks (0..9,999,999)."""
        return self.ticks % _TICKS_PER_SECOND


def _stamp(dt: datetime, utc: bool, sub_microsecond: int = 0) -> Stamp:
    delta = dt.replace(tzinfo=None) - _EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * _TICKS_PER_SECOND
    return Stamp(ticks + delta.microseconds * 10 + sub_microsecond, utc)


class _Invalid(ValueError):
    pass


def _shift(stamp: Stamp, ticks: int) -> Stamp:
    total = stamp.ticks + ticks
    if not 0 <= total <= _MAX_TICKS:
        raise _Invalid("the result is outside the supported range (years 1 to 9999)")
    return Stamp(total, stamp.utc)


def _add_months(stamp: Stamp, months: int) -> Stamp:
    dt = stamp.dt
    index = dt.year * 12 + dt.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise _Invalid("the result is outside the supported range (years 1 to 9999)")
    # Like .NET AddMonths: clamp the day to the target month's length.
    day = min(dt.day, monthrange(year, month + 1)[1])
    return _stamp(dt.replace(year=year, month=month + 1, day=day), stamp.utc, stamp.ticks % 10)


# ---------------------------------------------------------------------------
# Parsing timestamps

_ZONE = r"(?P<zone>[Zz]|(?:GMT|UTC)|[+-]\d{2}(?::?\d{2})?)"
_ISO = re.compile(
    r"\s*+(?P<y>\d{4})-(?P<mo>\d{1,2}+)-(?P<d>\d{1,2}+)"
    r"(?:[Tt ](?P<h>\d{1,2}+):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}+))?+)?+)?+"
    rf"\s*+{_ZONE}?+\s*+"
)
# Longer strings are not timestamps; the cap keeps parsing cheap whatever the input.
_MAX_TIMESTAMP_LENGTH = 200
_TIME = re.compile(
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?:\s*(?P<ampm>[ap]\.?\s?m\.?)(?![^\W\d_]))?(?!\d)",
    re.IGNORECASE,
)
_ZONE_AFTER_TIME = re.compile(r"\s*" + _ZONE + r"(?![^\W\d_])", re.IGNORECASE)
_ZONE_WORD_AT_END = re.compile(r"\s(?P<zone>Z|GMT|UTC)\s*$", re.IGNORECASE)
_WORD_OR_NUMBER = re.compile(r"\d+|[^\W\d_]+\.?")
_FILLER = {"de", "of", "the", "at", "à", "um", "kl", "kl."}


def _fraction_ticks(text: str | None) -> int:
    return int(text[:7].ljust(7, "0")) if text else 0


def _zone_offset(zone: str | None) -> tuple[bool, timedelta]:
    """(has zone, offset east of UTC)."""
    if not zone:
        return False, timedelta(0)
    if zone.upper() in ("Z", "GMT", "UTC"):
        return True, timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise _Invalid(f"invalid UTC offset {zone!r}")
    return True, sign * timedelta(hours=hours, minutes=minutes)


def _build(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    fraction: int = 0,
    zone: str | None = None,
) -> Stamp:
    try:
        dt = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    has_zone, offset = _zone_offset(zone)
    stamp = _stamp(dt, has_zone)
    stamp = Stamp(stamp.ticks + fraction, has_zone)
    if offset:
        stamp = _shift(stamp, -int(offset.total_seconds()) * _TICKS_PER_SECOND)
    return stamp


def _hour(hour: int, ampm: str | None, locale: Locale) -> int:
    if not ampm:
        return hour
    marker = ampm.replace(".", "").replace(" ", "").replace("\u00a0", "").lower()
    pm_words = {"pm", "p", locale.pm.replace(".", "").replace("\u00a0", "").lower()}
    is_pm = marker in pm_words
    if hour > 12 or hour == 0:
        raise _Invalid("an hour with AM/PM must be between 1 and 12")
    return hour % 12 + (12 if is_pm else 0)


def _two_digit_year(year: int) -> int:
    # .NET's default TwoDigitYearMax is 2049.
    return year + (2000 if year < 50 else 1900)


def parse_timestamp(text: str, locale: Locale = DEFAULT_LOCALE) -> Stamp:
    """Parse the timestamp formats Logic Apps accepts: ISO 8601, ``M/d/yyyy [h:mm:ss]``
    (day first for day-first locales), month names, RFC 1123."""
    if len(text) > _MAX_TIMESTAMP_LENGTH:
        raise _Invalid(f"longer than {_MAX_TIMESTAMP_LENGTH} characters")
    match = _ISO.fullmatch(text)
    if match:
        g = match.groupdict()
        return _build(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            _fraction_ticks(g["f"]),
            g["zone"],
        )
    if "," in text and any(ch.isalpha() for ch in text):
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return _stamp(parsed.astimezone(UTC), True)
    return _parse_loose(text, locale)


def _parse_loose(text: str, locale: Locale) -> Stamp:
    rest = text.strip()
    zone = None
    hour = minute = second = fraction = 0
    time_match = _TIME.search(rest)
    if time_match:
        g = time_match.groupdict()
        hour = _hour(int(g["h"]), g["ampm"], locale)
        minute, second = int(g["mi"]), int(g["s"] or 0)
        fraction = _fraction_ticks(g["f"])
        end = time_match.end()
        # A zone is only taken right after the time, so "15-03-2018" is not "-20:18".
        zone_match = _ZONE_AFTER_TIME.match(rest, end)
        if zone_match:
            zone = zone_match.group("zone")
            end = zone_match.end()
        rest = rest[: time_match.start()] + " " + rest[end:]
    else:
        zone_match = _ZONE_WORD_AT_END.search(rest)
        if zone_match:
            zone = zone_match.group("zone")
            rest = rest[: zone_match.start()]
    numbers: list[str] = []
    month_from_name: int | None = None
    months = [m.casefold() for m in locale.months]
    months_abbr = [m.casefold().rstrip(".") for m in locale.months_abbr]
    days = {d.casefold() for d in locale.days} | {
        d.casefold().rstrip(".") for d in locale.days_abbr
    }
    for token in _WORD_OR_NUMBER.findall(rest):
        if token.isdigit():
            numbers.append(token)
            continue
        word = token.casefold().rstrip(".")
        if word in months:
            month_from_name = months.index(word) + 1
        elif word in months_abbr:
            month_from_name = months_abbr.index(word) + 1
        elif word in days or word in _FILLER or token.casefold() in _FILLER:
            continue
        elif word in (locale.am.casefold(), locale.pm.casefold(), "am", "pm"):
            hour = _hour(hour, word, locale) if hour else hour
        else:
            raise _Invalid(f"unrecognized word {token!r}")
    if month_from_name is not None:
        if len(numbers) != 2:
            raise _Invalid("expected a day and a year beside the month name")
        first, second_number = numbers
        if len(first) == 4 or int(first) > 31:
            year_text, day_text = first, second_number
        else:
            day_text, year_text = first, second_number
        year = int(year_text) if len(year_text) > 2 else _two_digit_year(int(year_text))
        return _build(year, month_from_name, int(day_text), hour, minute, second, fraction, zone)
    if len(numbers) == 1 and len(numbers[0]) == 8:
        # "20190521": compact ISO date.
        digits = numbers[0]
        numbers = [digits[:4], digits[4:6], digits[6:]]
    if len(numbers) != 3:
        raise _Invalid("expected a date such as 2018-03-15 or 03/15/2018")
    if len(numbers[0]) == 4:
        year_text, month_text, day_text = numbers
    elif locale.day_first:
        day_text, month_text, year_text = numbers
    else:
        month_text, day_text, year_text = numbers
    year = int(year_text) if len(year_text) > 2 else _two_digit_year(int(year_text))
    return _build(year, int(month_text), int(day_text), hour, minute, second, fraction, zone)


# ---------------------------------------------------------------------------
# .NET date format strings

_SPECIFIERS = set("dfFghHKmMstyz")
_INVARIANT_PATTERNS = {
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
}


class _FormatError(ValueError):
    pass


def _expand(fmt: str, locale: Locale) -> tuple[str, Locale]:
    """Standard (single-character) format -> custom pattern; others pass through."""
    if len(fmt) != 1:
        return fmt, locale
    if fmt in _INVARIANT_PATTERNS:
        return _INVARIANT_PATTERNS[fmt], DEFAULT_LOCALE
    if fmt in locale.patterns:
        return locale.patterns[fmt], locale
    raise _FormatError(f"{fmt!r} is not a valid date and time format")


def _tokens(pattern: str) -> list[tuple[str, int | str]]:
    """Split a custom pattern into (specifier, repeat count) and ("lit", text) tokens."""
    out: list[tuple[str, int | str]] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch in _SPECIFIERS:
            j = i
            while j < n and pattern[j] == ch:
                j += 1
            out.append((ch, j - i))
            i = j
        elif ch in "'\"":
            end = pattern.find(ch, i + 1)
            if end < 0:
                raise _FormatError(f"unterminated quote in format {pattern!r}")
            out.append(("lit", pattern[i + 1 : end]))
            i = end + 1
        elif ch == "%":
            if i + 1 >= n or pattern[i + 1] == "%":
                raise _FormatError(f"invalid '%' in format {pattern!r}")
            i += 1
        elif ch == "\\":
            if i + 1 >= n:
                raise _FormatError(f"format {pattern!r} ends with a lone '\\'")
            out.append(("lit", pattern[i + 1]))
            i += 2
        elif ch in ":/":
            out.append((ch, 1))
            i += 1
        else:
            out.append(("lit", ch))
            i += 1
    return out


def format_stamp(stamp: Stamp, fmt: str | None, locale: Locale = DEFAULT_LOCALE) -> str:
    if not fmt:
        fmt = "o"
    pattern, locale = _expand(fmt, locale)
    dt = stamp.dt
    out: list[str] = []
    for kind, value in _tokens(pattern):
        if kind == "lit":
            out.append(str(value))
            continue
        count = int(value)
        if kind == "d":
            if count <= 2:
                out.append(str(dt.day).zfill(count))
            else:
                day = (dt.weekday() + 1) % 7
                out.append(locale.days_abbr[day] if count == 3 else locale.days[day])
        elif kind == "M":
            if count <= 2:
                out.append(str(dt.month).zfill(count))
            else:
                names = locale.months_abbr if count == 3 else locale.months
                out.append(names[dt.month - 1])
        elif kind == "y":
            if count <= 2:
                out.append(str(dt.year % 100).zfill(count))
            else:
                out.append(str(dt.year).zfill(count))
        elif kind in "hH":
            hour = dt.hour if kind == "H" else (dt.hour % 12 or 12)
            out.append(str(hour).zfill(min(count, 2)))
        elif kind == "m":
            out.append(str(dt.minute).zfill(min(count, 2)))
        elif kind == "s":
            out.append(str(dt.second).zfill(min(count, 2)))
        elif kind in "fF":
            if count > 7:
                raise _FormatError(f"too many '{kind}' in format {fmt!r} (at most 7)")
            digits = str(stamp.fraction).zfill(7)[:count]
            if kind == "F":
                digits = digits.rstrip("0")
                if not digits and out and out[-1].endswith("."):
                    # .NET drops the separator before an all-zero 'F' fraction.
                    out[-1] = out[-1][:-1]
            out.append(digits)
        elif kind == "t":
            designator = locale.am if dt.hour < 12 else locale.pm
            out.append(designator[:1] if count == 1 else designator)
        elif kind == "g":
            out.append("A.D.")
        elif kind == "K":
            out.append("Z" if stamp.utc else "")
        elif kind == "z":
            # UTC and unspecified timestamps both render offset zero (servers run in UTC).
            out.append({1: "+0", 2: "+00"}.get(count, "+00:00"))
        elif kind == ":":
            out.append(locale.time_sep)
        elif kind == "/":
            out.append(locale.date_sep)
    return "".join(out)


def _names_regex(names: tuple[str, ...]) -> str:
    ordered = sorted({n.rstrip(".") for n in names}, key=len, reverse=True)
    return "((?>" + "|".join(re.escape(n) for n in ordered) + r"))\.?+"


def parse_with_format(text: str, fmt: str, locale: Locale) -> Stamp:
    """Parse ``text`` against a .NET format (as DateTime.ParseExact does)."""
    pattern, locale = _expand(fmt, locale)
    regex: list[str] = []
    fields: list[str] = []
    for kind, value in _tokens(pattern):
        if kind == "lit":
            regex.append(re.escape(str(value)))
            continue
        count = int(value)
        if kind == "d" and count >= 3:
            regex.append(_names_regex(locale.days_abbr if count == 3 else locale.days))
            fields.append("dayname")
        elif kind == "M" and count >= 3:
            regex.append(_names_regex(locale.months_abbr if count == 3 else locale.months))
            fields.append("monthname3" if count == 3 else "monthname")
        elif kind in "dMhHms":
            # Possessive like .NET's greedy digit reading; also rules out backtracking.
            regex.append(r"(\d{2})" if count >= 2 else r"(\d{1,2}+)")
            fields.append(kind)
        elif kind == "y":
            regex.append(rf"(\d{{{max(count, 1)},4}}+)" if count != 2 else r"(\d{2})")
            fields.append("y")
        elif kind == "f":
            regex.append(rf"(\d{{{min(count, 7)}}})")
            fields.append("f")
        elif kind == "F":
            regex.append(rf"(\d{{0,{min(count, 7)}}}+)")
            fields.append("f")
        elif kind == "t":
            regex.append(r"((?>[ap]\.?\s?m?\.?))" if count > 1 else "([ap])")
            fields.append("t")
        elif kind in "Kz":
            regex.append(r"((?>[Zz]|[+-]\d{1,2}+(?::?\d{2})?+))?+")
            fields.append("zone")
        elif kind == ":":
            regex.append(re.escape(locale.time_sep))
        elif kind == "/":
            regex.append(re.escape(locale.date_sep))
        else:
            regex.append(re.escape(kind * count))
    if len(text) > _MAX_TIMESTAMP_LENGTH:
        raise _Invalid(f"longer than {_MAX_TIMESTAMP_LENGTH} characters")
    match = re.fullmatch("".join(regex), text.strip(), re.IGNORECASE)
    if not match:
        raise _Invalid(f"{text!r} does not match the format {fmt!r}")
    parts: dict[str, Any] = {"y": 1, "M": 1, "d": 1, "h": 0, "m": 0, "s": 0, "f": 0}
    ampm = None
    zone = None
    for name, group in zip(fields, match.groups(), strict=True):
        if name == "monthname":
            parts["M"] = [m.casefold() for m in locale.months].index(group.casefold()) + 1
        elif name == "monthname3":
            abbr = [m.casefold().rstrip(".") for m in locale.months_abbr]
            parts["M"] = abbr.index(group.casefold()) + 1
        elif name == "dayname":
            continue
        elif name == "t":
            ampm = group
        elif name == "zone":
            zone = group
        elif name == "f":
            parts["f"] = _fraction_ticks(group)
        elif name == "y":
            year = int(group)
            parts["y"] = _two_digit_year(year) if len(group) <= 2 else year
        elif name == "H":
            parts["h"] = int(group)
        else:
            parts[name] = int(group)
    hour = _hour(parts["h"], ampm, locale) if ampm else parts["h"]
    return _build(
        parts["y"], parts["M"], parts["d"], hour, parts["m"], parts["s"], parts["f"], zone
    )


# ---------------------------------------------------------------------------
# Time zones. Windows zone id -> IANA zone, from the CLDR windowsZones.xml
# "001" (default territory) mapping.

WINDOWS_ZONES: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas",
    "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Greenland Standard Time": "America/Nuuk",
    "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum",
    "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Volgograd Standard Time": "Europe/Volgograd",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Central Asia Standard Time": "Asia/Almaty",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Yangon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul",
    "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita",
    "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum() or ch in "+-")


_BY_SQUASHED = {_squash(k): v for k, v in WINDOWS_ZONES.items()}
_BY_SQUASHED[_squash("Coordinated Universal Time")] = "Etc/UTC"


def is_utc_zone(name: str) -> bool:
    return _BY_SQUASHED.get(_squash(name)) == "Etc/UTC" or name.strip().upper() in ("Z", "GMT")


def find_zone(call: Invocation, name: str, arg: int) -> ZoneInfo:
    iana = _BY_SQUASHED.get(_squash(name))
    candidates = [iana] if iana else []
    if "/" in name or name.strip().upper() in ("UTC", "GMT"):
        candidates.append(name.strip())
    for candidate in candidates:
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    if iana:
        call.fail(f"no time zone data for {name!r} ({iana}); install the 'tzdata' package", arg)
    call.fail(
        f"unknown time zone {name!r}; use a Windows time zone name such as "
        "'Pacific Standard Time' or an IANA name such as 'America/Los_Angeles'",
        arg,
    )


# ---------------------------------------------------------------------------
# Function helpers


def _timestamp(call: Invocation, args: list[Any], index: int) -> Stamp:
    text = arg_str(call, args, index)
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError) as exc:  # _Invalid, or a number too big to convert
        call.fail(f"{describe(text)} is not a valid timestamp ({exc})", index)


def _format_arg(call: Invocation, args: list[Any], index: int) -> str | None:
    value = optional(args, index)
    if value is not None and not isinstance(value, str):
        call.fail(
            f"argument {index + 1} (the format) must be a string, got {describe(value)}", index
        )
    return value


def _render(
    call: Invocation, stamp: Stamp, fmt: str | None, locale: Locale = DEFAULT_LOCALE, arg: int = 0
) -> str:
    try:
        return check_text(call, format_stamp(stamp, fmt, locale))
    except _FormatError as exc:
        call.fail(str(exc), arg)


def _guard(call: Invocation, action: Callable[[], Stamp]) -> Stamp:
    try:
        return action()
    except (_Invalid, OverflowError) as exc:
        call.fail(str(exc) if isinstance(exc, _Invalid) else "the result is out of range")


_UNIT_TICKS = {
    "second": _TICKS_PER_SECOND,
    "minute": 60 * _TICKS_PER_SECOND,
    "hour": 3600 * _TICKS_PER_SECOND,
    "day": _TICKS_PER_DAY,
    "week": 7 * _TICKS_PER_DAY,
}
_UNIT_MONTHS = {"month": 1, "year": 12}


def _apply(call: Invocation, stamp: Stamp, interval: Any, unit: str, unit_arg: int) -> Stamp:
    key = unit.strip().lower()
    if key.endswith("s") and key[:-1] in (_UNIT_TICKS.keys() | _UNIT_MONTHS.keys()):
        key = key[:-1]
    if key in _UNIT_TICKS:
        ticks = round(interval * _UNIT_TICKS[key])
        return _guard(call, lambda: _shift(stamp, ticks))
    if key in _UNIT_MONTHS:
        if not isinstance(interval, int):
            call.fail(f"{unit!r} intervals must be whole numbers, got {describe(interval)}", 1)
        return _guard(call, lambda: _add_months(stamp, interval * _UNIT_MONTHS[key]))
    call.fail(
        f"unknown time unit {unit!r}; use Second, Minute, Hour, Day, Week, Month or Year",
        unit_arg,
    )


def _now(call: Invocation) -> Stamp:
    now = call.context.now()
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return _stamp(now, True)


# ---------------------------------------------------------------------------
# Functions


@function("utcNow", 0, 1)
def _utc_now(call: Invocation, args: list[Any]) -> str:
    return _render(call, _now(call), _format_arg(call, args, 0))


def _adder(unit: str) -> Any:
    def add(call: Invocation, args: list[Any]) -> str:
        stamp = _timestamp(call, args, 0)
        amount = arg_number(call, args, 1)
        return _render(
            call, _apply(call, stamp, amount, unit, 1), _format_arg(call, args, 2), arg=2
        )

    return add


function("addSeconds", 2, 3)(_adder("second"))
function("addMinutes", 2, 3)(_adder("minute"))
function("addHours", 2, 3)(_adder("hour"))
function("addDays", 2, 3)(_adder("day"))


@function("addToTime", 3, 4)
def _add_to_time(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    interval = arg_int(call, args, 1)
    unit = arg_str(call, args, 2)
    return _render(call, _apply(call, stamp, interval, unit, 2), _format_arg(call, args, 3), arg=3)


@function("subtractFromTime", 3, 4)
def _subtract_from_time(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    interval = arg_int(call, args, 1)
    unit = arg_str(call, args, 2)
    return _render(call, _apply(call, stamp, -interval, unit, 2), _format_arg(call, args, 3), arg=3)


@function("getFutureTime", 2, 3)
def _get_future_time(call: Invocation, args: list[Any]) -> str:
    interval = arg_int(call, args, 0)
    unit = arg_str(call, args, 1)
    stamp = _apply(call, _now(call), interval, unit, 1)
    return _render(call, stamp, _format_arg(call, args, 2), arg=2)


@function("getPastTime", 2, 3)
def _get_past_time(call: Invocation, args: list[Any]) -> str:
    interval = arg_int(call, args, 0)
    unit = arg_str(call, args, 1)
    stamp = _apply(call, _now(call), -interval, unit, 1)
    return _render(call, stamp, _format_arg(call, args, 2), arg=2)


def _truncate(stamp: Stamp, unit: str) -> Stamp:
    dt = stamp.dt
    if unit == "month":
        dt = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "day":
        dt = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        dt = dt.replace(minute=0, second=0, microsecond=0)
    return _stamp(dt, stamp.utc)


def _starter(unit: str) -> Any:
    def start_of(call: Invocation, args: list[Any]) -> str:
        stamp = _truncate(_timestamp(call, args, 0), unit)
        return _render(call, stamp, _format_arg(call, args, 1), arg=1)

    return start_of


function("startOfDay", 1, 2)(_starter("day"))
function("startOfHour", 1, 2)(_starter("hour"))
function("startOfMonth", 1, 2)(_starter("month"))


@function("dayOfMonth", 1)
def _day_of_month(call: Invocation, args: list[Any]) -> int:
    return _timestamp(call, args, 0).dt.day


@function("dayOfWeek", 1)
def _day_of_week(call: Invocation, args: list[Any]) -> int:
    # "Sunday is 0, Monday is 1, and so on" (functions reference).
    return (_timestamp(call, args, 0).dt.weekday() + 1) % 7


@function("dayOfYear", 1)
def _day_of_year(call: Invocation, args: list[Any]) -> int:
    return _timestamp(call, args, 0).dt.timetuple().tm_yday


@function("ticks", 1)
def _ticks(call: Invocation, args: list[Any]) -> int:
    return _timestamp(call, args, 0).ticks


@function("formatDateTime", 1, 3)
def _format_date_time(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    return _render(call, stamp, _format_arg(call, args, 1), locale_arg(call, args, 2), arg=1)


@function("parseDateTime", 1, 3)
def _parse_date_time(call: Invocation, args: list[Any]) -> str:
    text = arg_str(call, args, 0)
    locale = locale_arg(call, args, 1)
    fmt = _format_arg(call, args, 2)
    try:
        stamp = parse_with_format(text, fmt, locale) if fmt else parse_timestamp(text, locale)
    except _FormatError as exc:
        call.fail(str(exc), 2)
    except (ValueError, OverflowError) as exc:
        call.fail(f"{describe(text)} is not a valid timestamp ({exc})", 0)
    return _render(call, stamp, "o")


@function("dateDifference", 2)
def _date_difference(call: Invocation, args: list[Any]) -> str:
    start = _timestamp(call, args, 0)
    end = _timestamp(call, args, 1)
    return format_timespan(end.ticks - start.ticks)


def format_timespan(ticks: int) -> str:
    """.NET TimeSpan "c" format: ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if ticks < 0 else ""
    seconds, fraction = divmod(abs(ticks), _TICKS_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    text = f"{sign}{f'{days}.' if days else ''}{hour:02d}:{minute:02d}:{second:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


@function("convertFromUtc", 2, 3)
def _convert_from_utc(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    zone = find_zone(call, arg_str(call, args, 1), 1)
    local = _guard(call, lambda: _to_zone(stamp, zone))
    return _render(call, local, _format_arg(call, args, 2), arg=2)


@function("convertToUtc", 2, 3)
def _convert_to_utc(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    source = arg_str(call, args, 1)
    zone = find_zone(call, source, 1)
    if stamp.utc and not is_utc_zone(source):
        _utc_conflict(call)
    utc = _guard(call, lambda: _from_zone(stamp, zone))
    return _render(call, utc, _format_arg(call, args, 2), arg=2)


@function("convertTimeZone", 3, 4)
def _convert_time_zone(call: Invocation, args: list[Any]) -> str:
    stamp = _timestamp(call, args, 0)
    source = arg_str(call, args, 1)
    source_zone = find_zone(call, source, 1)
    target = arg_str(call, args, 2)
    target_zone = find_zone(call, target, 2)
    if stamp.utc and not is_utc_zone(source):
        _utc_conflict(call)
    utc = _guard(call, lambda: _from_zone(stamp, source_zone))
    result = utc if is_utc_zone(target) else _guard(call, lambda: _to_zone(utc, target_zone))
    return _render(call, result, _format_arg(call, args, 3), arg=3)


def _utc_conflict(call: Invocation) -> None:
    # .NET TimeZoneInfo.ConvertTime rejects a UTC-marked time with a non-UTC source zone;
    # silently reinterpreting it would shift the time by the zone offset.
    call.fail(
        "the timestamp is marked as UTC ('Z') but the source time zone is not UTC; "
        "use convertFromUtc(), or pass a timestamp without 'Z'",
        0,
    )


def _to_zone(stamp: Stamp, zone: ZoneInfo) -> Stamp:
    aware = stamp.dt.replace(tzinfo=UTC).astimezone(zone)
    return _stamp(aware.replace(tzinfo=None), False, stamp.ticks % 10)


def _from_zone(stamp: Stamp, zone: ZoneInfo) -> Stamp:
    aware = stamp.dt.replace(tzinfo=zone).astimezone(UTC)
    return _stamp(aware.replace(tzinfo=None), True, stamp.ticks % 10)
