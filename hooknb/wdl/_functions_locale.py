"""The few .NET cultures the number and date functions support.

Logic Apps formats with .NET ``CultureInfo``; shipping all of CLDR is out of
scope, so this is a small table that covers the cultures the functions
reference uses in its examples (en-US, is-IS, fr-FR, es-ES, de-DE) plus en-GB
and the invariant culture. Names are matched case-insensitively ("fr-fr",
"fr_FR") and a bare language ("fr") picks its table. Anything else is an
error that lists what is supported, rather than a silently wrong format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._functions_core import Invocation, optional


@dataclass(frozen=True, slots=True)
class Locale:
    name: str
    months: tuple[str, ...]
    months_abbr: tuple[str, ...]
    days: tuple[str, ...]  # Sunday first, as .NET DayOfWeek
    days_abbr: tuple[str, ...]
    am: str
    pm: str
    date_sep: str
    time_sep: str
    # .NET standard date/time patterns, keyed by the single-character specifier.
    patterns: dict[str, str]
    decimal_sep: str
    group_sep: str
    currency: str  # pattern with "{n}" for the number, e.g. "${n}" or "{n} kr"
    negative_currency: str
    percent: str  # e.g. "{n}%" or "{n} %"
    day_first: bool  # numeric dates are d/M/y rather than M/d/y (parseDateTime)


_EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_EN_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _patterns(
    d: str, big_d: str, t: str, big_t: str, m: str, y: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    table = {
        "d": d,
        "D": big_d,
        "t": t,
        "T": big_t,
        "f": f"{big_d} {t}",
        "F": f"{big_d} {big_t}",
        "g": f"{d} {t}",
        "G": f"{d} {big_t}",
        "M": m,
        "m": m,
        "Y": y,
        "y": y,
        "U": f"{big_d} {big_t}",
    }
    table.update(extra or {})
    return table


_EN_US = Locale(
    name="en-US",
    months=tuple(_EN_MONTHS),
    months_abbr=tuple(m[:3] for m in _EN_MONTHS),
    days=tuple(_EN_DAYS),
    days_abbr=tuple(d[:3] for d in _EN_DAYS),
    am="AM",
    pm="PM",
    date_sep="/",
    time_sep=":",
    patterns=_patterns(
        "M/d/yyyy", "dddd, MMMM d, yyyy", "h:mm tt", "h:mm:ss tt", "MMMM d", "MMMM yyyy"
    ),
    decimal_sep=".",
    group_sep=",",
    currency="${n}",
    negative_currency="-${n}",
    percent="{n}%",
    day_first=False,
)

_INVARIANT = Locale(
    name="",
    months=_EN_US.months,
    months_abbr=_EN_US.months_abbr,
    days=_EN_US.days,
    days_abbr=_EN_US.days_abbr,
    am="AM",
    pm="PM",
    date_sep="/",
    time_sep=":",
    patterns=_patterns(
        "MM/dd/yyyy", "dddd, dd MMMM yyyy", "HH:mm", "HH:mm:ss", "MMMM dd", "yyyy MMMM"
    ),
    decimal_sep=".",
    group_sep=",",
    currency="¤{n}",
    negative_currency="-¤{n}",
    percent="{n} %",
    day_first=False,
)

_EN_GB = Locale(
    name="en-GB",
    months=_EN_US.months,
    months_abbr=_EN_US.months_abbr,
    days=_EN_US.days,
    days_abbr=_EN_US.days_abbr,
    am="am",
    pm="pm",
    date_sep="/",
    time_sep=":",
    patterns=_patterns("dd/MM/yyyy", "dd MMMM yyyy", "HH:mm", "HH:mm:ss", "d MMMM", "MMMM yyyy"),
    decimal_sep=".",
    group_sep=",",
    currency="£{n}",
    negative_currency="-£{n}",
    percent="{n}%",
    day_first=True,
)

_FR_MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
_FR_FR = Locale(
    name="fr-FR",
    months=tuple(_FR_MONTHS),
    months_abbr=tuple(
        [
            "janv.",
            "févr.",
            "mars",
            "avr.",
            "mai",
            "juin",
            "juil.",
            "août",
            "sept.",
            "oct.",
            "nov.",
            "déc.",
        ]
    ),
    days=tuple(["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]),
    days_abbr=tuple(["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."]),
    am="AM",
    pm="PM",
    date_sep="/",
    time_sep=":",
    patterns=_patterns(
        "dd/MM/yyyy", "dddd d MMMM yyyy", "HH:mm", "HH:mm:ss", "d MMMM", "MMMM yyyy"
    ),
    decimal_sep=",",
    group_sep="\u202f",
    currency="{n}\u00a0€",
    negative_currency="-{n}\u00a0€",
    percent="{n}\u00a0%",
    day_first=True,
)

_ES_MONTHS = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]
_ES_ES = Locale(
    name="es-ES",
    months=tuple(_ES_MONTHS),
    months_abbr=tuple(
        ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"]
    ),
    days=tuple(["domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"]),
    days_abbr=tuple(["dom", "lun", "mar", "mié", "jue", "vie", "sáb"]),
    am="a.\u00a0m.",
    pm="p.\u00a0m.",
    date_sep="/",
    time_sep=":",
    patterns=_patterns(
        "dd/MM/yyyy",
        "dddd, d 'de' MMMM 'de' yyyy",
        "H:mm",
        "H:mm:ss",
        "d 'de' MMMM",
        "MMMM 'de' yyyy",
    ),
    decimal_sep=",",
    group_sep=".",
    currency="{n}\u00a0€",
    negative_currency="-{n}\u00a0€",
    percent="{n}\u00a0%",
    day_first=True,
)

_DE_MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]
_DE_DE = Locale(
    name="de-DE",
    months=tuple(_DE_MONTHS),
    months_abbr=tuple(
        [
            "Jan.",
            "Feb.",
            "März",
            "Apr.",
            "Mai",
            "Juni",
            "Juli",
            "Aug.",
            "Sept.",
            "Okt.",
            "Nov.",
            "Dez.",
        ]
    ),
    days=tuple(["Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"]),
    days_abbr=tuple(["So.", "Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa."]),
    am="AM",
    pm="PM",
    date_sep=".",
    time_sep=":",
    patterns=_patterns(
        "dd.MM.yyyy", "dddd, d. MMMM yyyy", "HH:mm", "HH:mm:ss", "d. MMMM", "MMMM yyyy"
    ),
    decimal_sep=",",
    group_sep=".",
    currency="{n}\u00a0€",
    negative_currency="-{n}\u00a0€",
    percent="{n}\u00a0%",
    day_first=True,
)

_IS_MONTHS = [
    "janúar",
    "febrúar",
    "mars",
    "apríl",
    "maí",
    "júní",
    "júlí",
    "ágúst",
    "september",
    "október",
    "nóvember",
    "desember",
]
_IS_IS = Locale(
    name="is-IS",
    months=tuple(_IS_MONTHS),
    months_abbr=tuple(
        [
            "jan.",
            "feb.",
            "mar.",
            "apr.",
            "maí",
            "jún.",
            "júl.",
            "ágú.",
            "sep.",
            "okt.",
            "nóv.",
            "des.",
        ]
    ),
    days=tuple(
        [
            "sunnudagur",
            "mánudagur",
            "þriðjudagur",
            "miðvikudagur",
            "fimmtudagur",
            "föstudagur",
            "laugardagur",
        ]
    ),
    days_abbr=tuple(["sun.", "mán.", "þri.", "mið.", "fim.", "fös.", "lau."]),
    am="f.h.",
    pm="e.h.",
    date_sep=".",
    time_sep=":",
    patterns=_patterns(
        "d.M.yyyy", "dddd, d. MMMM yyyy", "HH:mm", "HH:mm:ss", "d. MMMM", "MMMM yyyy"
    ),
    decimal_sep=",",
    group_sep=".",
    # The functions reference: formatNumber(17.35, 'C2', 'is-IS') -> "17,35 kr".
    currency="{n} kr",
    negative_currency="-{n} kr",
    percent="{n}%",
    day_first=True,
)

_LOCALES = {loc.name.lower(): loc for loc in (_EN_US, _EN_GB, _FR_FR, _ES_ES, _DE_DE, _IS_IS)}
_BY_LANGUAGE = {"en": _EN_US, "fr": _FR_FR, "es": _ES_ES, "de": _DE_DE, "is": _IS_IS}

DEFAULT_LOCALE = _EN_US
SUPPORTED = ", ".join(sorted(loc.name for loc in _LOCALES.values()))


def find_locale(name: str | None) -> Locale | None:
    """The table for ``name`` (``None`` -> en-US, the documented default); None if unknown."""
    if name is None:
        return DEFAULT_LOCALE
    key = name.strip().replace("_", "-").lower()
    if key in ("", "invariant", "iv"):
        return _INVARIANT
    if key in _LOCALES:
        return _LOCALES[key]
    return _BY_LANGUAGE.get(key)


def locale_arg(call: Invocation, args: list[Any], index: int) -> Locale:
    """The locale named by argument ``index`` (absent: en-US), or fail naming it."""
    name = optional(args, index)
    if name is not None and not isinstance(name, str):
        call.fail(f"argument {index + 1} must be a locale name such as 'en-US'", index)
    locale = find_locale(name)
    if locale is None:
        call.fail(f"unsupported locale {name!r} (supported: {SUPPORTED})", index)
    return locale
