"""Math functions and number conversions (int, float, decimal, isInt, isFloat, formatNumber).

Integer arithmetic stays integer (``div(11, 5)`` is 2, truncated toward zero as
.NET does; ``mod`` takes the sign of the dividend); one float operand makes the
result a float (``div(11, 5.0)`` is 2.2). ``decimal()`` yields a
:class:`decimal.Decimal`, and arithmetic between Decimals and integers stays
exact, which is what the reference's ``string(add(decimal(...), decimal(...)))``
example needs.
"""

from __future__ import annotations

import math
import random
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, cast

from ._functions_core import (
    INT64_MAX,
    INT64_MIN,
    MAX_RANGE_COUNT,
    Invocation,
    arg_int,
    arg_number,
    arg_str,
    check_int,
    check_number,
    coerce_pair,
    describe,
    function,
    is_number,
    to_text,
)
from ._functions_locale import Locale, find_locale, locale_arg

# .NET System.Decimal holds at most this magnitude.
_DECIMAL_MAX = Decimal("79228162514264337593543950335")
_INT32_MAX = 2**31 - 1


def _arithmetic(impl: Any) -> Any:
    """Turn Decimal/float arithmetic exceptions into a clear error for the call."""

    def wrapped(call: Invocation, args: list[Any]) -> Any:
        try:
            return impl(call, args)
        except ArithmeticError as exc:
            call.fail(f"the result cannot be computed ({type(exc).__name__})")

    return wrapped


def _binary(call: Invocation, args: list[Any]) -> tuple[Any, Any]:
    return coerce_pair(arg_number(call, args, 0), arg_number(call, args, 1))


def _result(call: Invocation, value: Any) -> Any:
    if isinstance(value, Decimal) and value.copy_abs() > _DECIMAL_MAX:  # abs() would round
        call.fail("decimal overflow: the result is outside the .NET decimal range")
    return check_number(call, value)


@function("add", 2)
@_arithmetic
def _add(call: Invocation, args: list[Any]) -> Any:
    a, b = _binary(call, args)
    return _result(call, a + b)


@function("sub", 2)
@_arithmetic
def _sub(call: Invocation, args: list[Any]) -> Any:
    a, b = _binary(call, args)
    return _result(call, a - b)


@function("mul", 2)
@_arithmetic
def _mul(call: Invocation, args: list[Any]) -> Any:
    a, b = _binary(call, args)
    return _result(call, a * b)


def _divisor(call: Invocation, b: Any) -> None:
    if b == 0:
        call.fail("argument 2 (the divisor) can't be zero", 1)


@function("div", 2)
@_arithmetic
def _div(call: Invocation, args: list[Any]) -> Any:
    a, b = _binary(call, args)
    _divisor(call, b)
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)
        return _result(call, quotient if (a < 0) == (b < 0) else -quotient)
    return _result(call, a / b)


@function("mod", 2)
@_arithmetic
def _mod(call: Invocation, args: list[Any]) -> Any:
    a, b = _binary(call, args)
    _divisor(call, b)
    # The reference: "the result matches the sign of the dividend" (mod(-5, 2) is -1).
    if isinstance(a, int) and isinstance(b, int):
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return _result(call, Decimal(a) % Decimal(b))  # Decimal % truncates, like .NET
    return _result(call, math.fmod(a, b))


def _numbers(call: Invocation, args: list[Any]) -> list[Any]:
    items = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else args
    if not items:
        call.fail("needs at least one number (the array is empty)")
    for index, item in enumerate(items):
        if not is_number(item):
            where = f"item {index}" if items is not args else f"argument {index + 1}"
            call.fail(f"{where} must be a number, got {describe(item)}")
    return items


def _key(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@function("max", 1, None)
def _max(call: Invocation, args: list[Any]) -> Any:
    return max(_numbers(call, args), key=_key)


@function("min", 1, None)
def _min(call: Invocation, args: list[Any]) -> Any:
    return min(_numbers(call, args), key=_key)


@function("rand", 2)
def _rand(call: Invocation, args: list[Any]) -> int:
    low = arg_int(call, args, 0)
    high = arg_int(call, args, 1)
    if low > high:
        call.fail(f"the minimum ({low}) is greater than the maximum ({high})")
    # "inclusive only at the starting end" (functions reference).
    return low if low == high else random.randrange(low, high)


@function("range", 2)
def _range(call: Invocation, args: list[Any]) -> list[int]:
    start = arg_int(call, args, 0)
    count = arg_int(call, args, 1)
    if not 0 <= count <= MAX_RANGE_COUNT:
        call.fail(f"the count must be between 0 and {MAX_RANGE_COUNT:,}, got {count}", 1)
    if start < -(2**31) or start + count > _INT32_MAX:
        call.fail(
            f"startIndex + count must not exceed {_INT32_MAX:,} (and startIndex must be a "
            "32-bit integer)",
            0,
        )
    return list(range(start, start + count))


# ---------------------------------------------------------------------------
# Conversions

_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


def _parse_int(text: str) -> int | None:
    if not _INT_TEXT.fullmatch(text) or len(text.strip().lstrip("+-")) > 19:
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


@function("int", 1)
def _int(call: Invocation, args: list[Any]) -> int:
    value = args[0]
    if isinstance(value, str):
        parsed = _parse_int(value)
        if parsed is None:
            call.fail(f"{describe(value)} is not a valid 64-bit integer", 0)
        return parsed
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float | Decimal) and value == value.__floor__():
        return check_int(call, int(value))
    call.fail(f"argument 1 must be a string holding an integer, got {describe(value)}", 0)


@function("isInt", 1)
def _is_int(call: Invocation, args: list[Any]) -> bool:
    return _parse_int(arg_str(call, args, 0)) is not None


_EXPONENT = re.compile(r"[eE][+-]?[0-9]{1,6}")


def parse_float(text: str, locale: Locale) -> float | None:
    """.NET ``double.Parse`` with NumberStyles.Float | AllowThousands, roughly.

    Accepts what the reference lists as "unexpectedly valid": group separators
    anywhere after the first digit ("12,3,4,5678"), a trailing sign
    ("1234567,8+", "12345678.-") and a leading decimal separator (".12345678").
    """
    s = text.strip()
    if not s:
        return None
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    elif s[-1] in "+-":
        sign = -1 if s[-1] == "-" else 1
        s = s[:-1].rstrip()
    digits: list[str] = []
    i, n = 0, len(s)
    seen_digit = False
    while i < n:
        ch = s[i]
        if "0" <= ch <= "9":
            digits.append(ch)
            seen_digit = True
        elif seen_digit and s.startswith(locale.group_sep, i):
            i += len(locale.group_sep) - 1
        else:
            break
        i += 1
    if s.startswith(locale.decimal_sep, i):
        i += len(locale.decimal_sep)
        digits.append(".")
        while i < n and "0" <= s[i] <= "9":
            digits.append(s[i])
            seen_digit = True
            i += 1
    if not seen_digit:
        return None
    exponent = ""
    if i < n and s[i] in "eE":
        match = _EXPONENT.match(s, i)
        if not match:
            return None
        exponent = match.group()
        i = match.end()
    if i != n:
        return None
    value = sign * float("".join(digits) + exponent)
    return value if math.isfinite(value) else None


@function("float", 1, 2)
def _float(call: Invocation, args: list[Any]) -> float:
    value = args[0]
    if is_number(value):
        return float(value)
    text = arg_str(call, args, 0)
    parsed = parse_float(text, locale_arg(call, args, 1))
    if parsed is None:
        call.fail(f"{describe(text)} is not a valid floating-point number", 0)
    return parsed


@function("isFloat", 1, 2)
def _is_float(call: Invocation, args: list[Any]) -> bool:
    text = arg_str(call, args, 0)
    # isFloat() "uses the invariant culture" unless a locale is given (reference).
    locale = locale_arg(call, args, 1) if len(args) > 1 else find_locale("")
    assert locale is not None
    return parse_float(text, locale) is not None


# Possessive quantifiers: no backtracking, so hostile input costs linear time.
_DECIMAL_TEXT = re.compile(
    r"\s*+[+-]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]{1,4}+)?+\s*+"
)


@function("decimal", 1)
def _decimal(call: Invocation, args: list[Any]) -> Decimal:
    value = args[0]
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = arg_str(call, args, 0)
    if not _DECIMAL_TEXT.fullmatch(text):
        call.fail(f"{describe(text)} is not a valid decimal number", 0)
    try:
        result = Decimal(text.strip())
    except InvalidOperation:
        call.fail(f"{describe(text)} is not a valid decimal number", 0)
    return cast(Decimal, _result(call, result))


# ---------------------------------------------------------------------------
# formatNumber: .NET standard numeric formats (C, D, E, F, G, N, P, R, X) and
# custom patterns built from 0 # . , % and literals.

_STANDARD = re.compile(r"([CcDdEeFfGgNnPpRrXx])([0-9]{0,2})")


def _exact(value: Any) -> Decimal:
    # Decimal(repr(x)) rounds like .NET Core, which formats the shortest round-trip
    # digits: 2.675 -> "2.68" under F2 (Python's binary rounding would give 2.67).
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def _fixed(value: Decimal, places: int, locale: Locale, grouped: bool) -> str:
    quantum = Decimal(1).scaleb(-places)
    rounded = abs(value).quantize(quantum, rounding=ROUND_HALF_UP)
    text = format(rounded, "f")
    whole, _, frac = text.partition(".")
    if grouped:
        whole = _group(whole, locale.group_sep)
    return whole + (locale.decimal_sep + frac if places else "")


def _standard(call: Invocation, number: Any, spec: str, digits: str, locale: Locale) -> str:
    upper = spec.upper()
    precision = int(digits) if digits else None
    exact = _exact(number)
    negative = exact < 0
    sign = "-" if negative else ""
    if upper in "DX":
        if not isinstance(number, int):
            call.fail(f"format '{spec}' needs an integer, got {describe(number)}", 0)
        if upper == "D":
            return sign + str(abs(number)).zfill(precision or 0)
        text = format(number & 0xFFFFFFFFFFFFFFFF if negative else number, "X").zfill(
            precision or 0
        )
        return text if spec == "X" else text.lower()
    if upper == "C":
        body = _fixed(exact, 2 if precision is None else precision, locale, True)
        return (locale.negative_currency if negative else locale.currency).replace("{n}", body)
    if upper == "F":
        return sign + _fixed(exact, 2 if precision is None else precision, locale, False)
    if upper == "N":
        return sign + _fixed(exact, 2 if precision is None else precision, locale, True)
    if upper == "P":
        body = _fixed(exact * 100, 2 if precision is None else precision, locale, True)
        return sign + locale.percent.replace("{n}", body)
    if upper == "E":
        places = 6 if precision is None else precision
        text = format(abs(exact), f".{places}E")
        mantissa, _, exp = text.partition("E")
        exp_sign = "-" if exp.startswith("-") else "+"
        mantissa = mantissa.replace(".", locale.decimal_sep)
        return f"{sign}{mantissa}{spec}{exp_sign}{exp.lstrip('+-').zfill(3)}"
    # G and R: the shortest form, or `precision` significant digits.
    text = _general(exact, precision, spec) if precision else to_text(number)
    return text.replace(".", locale.decimal_sep)


def _general(value: Decimal, precision: int, spec: str) -> str:
    """.NET "G<n>": fixed-point when -5 < exponent < n, else d.dddE+xx; no trailing zeros."""
    if value == 0:
        return "0"
    rounded = value.quantize(Decimal(1).scaleb(value.adjusted() - precision + 1), ROUND_HALF_UP)
    exponent = rounded.adjusted()
    if -5 < exponent < precision:
        text = format(rounded, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    digits = str(abs(rounded.scaleb(-exponent).normalize()))
    if "E" in digits:  # normalize() of an integral value may come back in E notation
        digits = format(Decimal(digits), "f")
    sign = "-" if rounded < 0 else ""
    marker = "E" if spec == "G" else "e"
    exp_sign = "-" if exponent < 0 else "+"
    return f"{sign}{digits}{marker}{exp_sign}{abs(exponent):02d}"


def _custom(call: Invocation, number: Any, pattern: str, locale: Locale) -> str:
    sections = _split_sections(pattern)
    exact = _exact(number)
    section = sections[0]
    if exact < 0 and len(sections) > 1 and sections[1]:
        section, exact = sections[1], -exact  # the negative section supplies its own sign
    elif exact == 0 and len(sections) > 2 and sections[2]:
        section = sections[2]
    tokens = _tokenize_custom(call, section)
    placeholders = [t for t in tokens if t in ("0", "#", ".", ",")]
    if "%" in tokens:
        exact *= 100
    if "‰" in tokens:
        exact *= 1000
    # Commas right before the decimal point (or the end) divide by 1000 each.
    body = "".join(placeholders)
    int_part, _, frac_part = body.partition(".")
    while int_part.endswith(","):
        int_part = int_part[:-1]
        exact /= 1000
    grouped = "," in int_part
    # Digits from the first '0' on are always shown ("#,##0" -> at least 1 digit).
    min_int = len(int_part.replace(",", "").lstrip("#"))
    max_frac = len(frac_part.replace(",", ""))
    min_frac = len(frac_part.replace(",", "").rstrip("#"))
    rounded = abs(exact).quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_UP)
    whole, _, frac = format(rounded, "f").partition(".")
    whole = whole.lstrip("0").zfill(min_int) if min_int else whole.lstrip("0")
    if grouped and whole:
        whole = _group(whole, locale.group_sep)
    frac = frac.rstrip("0").ljust(min_frac, "0") if frac else "0" * min_frac
    number_text = whole + (locale.decimal_sep + frac if frac else "")
    negative = exact < 0 and rounded != 0 and section is sections[0]
    out: list[str] = []
    emitted = False
    for piece in tokens:
        if piece in ("0", "#", ".", ","):
            if not emitted:
                out.append(number_text)
                emitted = True
        else:
            out.append(piece[1:] if piece.startswith("\x00") else piece)
    text = "".join(out)
    return ("-" + text) if negative else text


def _split_sections(pattern: str) -> list[str]:
    sections: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == "\\" and i + 1 < len(pattern):
            current.append(pattern[i : i + 2])
            i += 1
        elif ch == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    sections.append("".join(current))
    return sections[:3]


def _tokenize_custom(call: Invocation, section: str) -> list[str]:
    """Placeholders as themselves; literal text prefixed with NUL so it never collides."""
    tokens: list[str] = []
    i = 0
    while i < len(section):
        ch = section[i]
        if ch in "0#.,%‰":
            tokens.append(ch)
        elif ch in "'\"":
            end = section.find(ch, i + 1)
            if end < 0:
                call.fail(f"unterminated quote in number format {section!r}", 1)
            tokens.append("\x00" + section[i + 1 : end])
            i = end
        elif ch == "\\":
            if i + 1 < len(section):
                tokens.append("\x00" + section[i + 1])
                i += 1
        elif ch in "eE" and i + 1 < len(section) and section[i + 1] in "0+-":
            call.fail("scientific notation in custom number formats is not supported", 1)
        else:
            tokens.append("\x00" + ch)
        i += 1
    return tokens


@function("formatNumber", 2, 3)
def _format_number(call: Invocation, args: list[Any]) -> str:
    number = arg_number(call, args, 0)
    pattern = arg_str(call, args, 1)
    locale = locale_arg(call, args, 2)
    # Enough digits for a float's 309 integer digits plus any precision asked for.
    with localcontext(prec=max(1_000, 2 * len(pattern) + 500)):
        match = _STANDARD.fullmatch(pattern)
        if match:
            return _standard(call, number, match.group(1), match.group(2), locale)
        if not pattern or not any(ch in pattern for ch in "0#"):
            call.fail(f"{pattern!r} is not a supported number format", 1)
        return _custom(call, number, pattern, locale)
