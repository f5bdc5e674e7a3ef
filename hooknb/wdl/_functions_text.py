"""String functions and URI parsing functions."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ._functions_core import (
    Invocation,
    arg_int,
    arg_str,
    check_items,
    check_length,
    describe,
    function,
    optional,
    to_text,
)


@function("concat", 1, None)
def _concat(call: Invocation, args: list[Any]) -> str:
    # Non-strings are converted as string() would (numbers -> "42", null -> "").
    pieces = [to_text(value) for value in args]
    check_length(sum(len(piece) for piece in pieces))  # before the copy is made
    return "".join(pieces)


def _whole(call: Invocation, args: list[Any]) -> str:
    """The text argument of a function whose result is as long as it: refused first when
    that result would be too long (a trigger body can hold megabytes)."""
    text = arg_str(call, args, 0)
    check_length(len(text))
    return text


@function("toLower", 1)
def _to_lower(call: Invocation, args: list[Any]) -> str:
    return _whole(call, args).lower()


@function("toUpper", 1)
def _to_upper(call: Invocation, args: list[Any]) -> str:
    return _whole(call, args).upper()


@function("trim", 1)
def _trim(call: Invocation, args: list[Any]) -> str:
    return _whole(call, args).strip()


@function("startsWith", 2)
def _starts_with(call: Invocation, args: list[Any]) -> bool:
    # "This function isn't case-sensitive." (functions reference)
    return arg_str(call, args, 0).casefold().startswith(arg_str(call, args, 1).casefold())


@function("endsWith", 2)
def _ends_with(call: Invocation, args: list[Any]) -> bool:
    return arg_str(call, args, 0).casefold().endswith(arg_str(call, args, 1).casefold())


def _fold(text: str) -> str:
    """``text`` case-folded character by character, so that offsets into it are offsets into
    ``text`` (``str.lower()`` can make a string longer: such characters are kept as they are).
    Searching folded text with ``str.find`` takes linear time; a case-insensitive regex takes
    time proportional to the text times the search (1.3 s for 131,072 characters)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _occurrence(text: str, search: str, occurrence: int) -> int:
    """Where the ``occurrence``-th (negative: from the end) case-insensitive, possibly
    overlapping, occurrence of ``search`` starts; -1 if there are fewer."""
    haystack, needle = _fold(text), _fold(search)
    position = -1 if occurrence > 0 else len(haystack) + 1
    for _ in range(abs(occurrence)):
        if occurrence > 0:
            position = haystack.find(needle, position + 1)
        else:
            position = haystack.rfind(needle, 0, position - 1 + len(needle)) if position else -1
        if position < 0:
            return -1
    return position


@function("indexOf", 2)
def _index_of(call: Invocation, args: list[Any]) -> int:
    text = arg_str(call, args, 0)
    search = arg_str(call, args, 1)
    return _fold(text).find(_fold(search))


@function("lastIndexOf", 2)
def _last_index_of(call: Invocation, args: list[Any]) -> int:
    text = arg_str(call, args, 0)
    search = arg_str(call, args, 1)
    # The reference spells out the empty cases: empty text -> -1 (0 if the search is
    # empty too), empty search -> length - 1.
    if not text:
        return 0 if not search else -1
    if not search:
        return len(text) - 1
    return _fold(text).rfind(_fold(search))


@function("nthIndexOf", 3)
def _nth_index_of(call: Invocation, args: list[Any]) -> int:
    text = arg_str(call, args, 0)
    search = arg_str(call, args, 1)
    occurrence = arg_int(call, args, 2)
    if occurrence == 0:
        call.fail("argument 3 (the occurrence) must not be 0", 2)
    # Case-insensitive like indexOf(); occurrences may overlap; negative counts from the end.
    if abs(occurrence) > len(text) + 1:
        return -1  # more occurrences than positions
    check_items(abs(occurrence))  # each one is looked for in turn
    return _occurrence(text, search, occurrence)


@function("replace", 3)
def _replace(call: Invocation, args: list[Any]) -> str:
    text = arg_str(call, args, 0)
    old = arg_str(call, args, 1)
    new = arg_str(call, args, 2)
    if not old:
        call.fail("argument 2 (the text to replace) must not be empty", 1)
    # The result's length is known before replacing: 10,000 commas each replaced by a
    # 100,000-character string would otherwise be built (gigabytes) and only then refused.
    check_length(len(text) + text.count(old) * (len(new) - len(old)))
    return text.replace(old, new)


@function("split", 2)
def _split(call: Invocation, args: list[Any]) -> list[str]:
    text = arg_str(call, args, 0)
    delimiter = arg_str(call, args, 1)
    if not delimiter:
        return [text]
    check_items(text.count(delimiter) + 1)
    return text.split(delimiter)


@function("substring", 2, 3)
def _substring(call: Invocation, args: list[Any]) -> str:
    text = arg_str(call, args, 0)
    start = arg_int(call, args, 1)
    if not 0 <= start <= len(text):
        call.fail(
            f"the start index {start} is outside the string (length {len(text)}); "
            "slice() clamps instead",
            1,
        )
    if len(args) < 3:
        check_length(len(text) - start)
        return text[start:]
    length = arg_int(call, args, 2)
    if length < 0 or start + length > len(text):
        # Unlike most languages, the reference says this is an error.
        call.fail(
            f"start index {start} plus length {length} runs past the end of the string "
            f"(length {len(text)}); slice() clamps instead",
            2,
        )
    check_length(length)
    return text[start : start + length]


@function("slice", 2, 3)
def _slice(call: Invocation, args: list[Any]) -> str:
    text = arg_str(call, args, 0)
    start = arg_int(call, args, 1)
    end = arg_int(call, args, 2) if len(args) > 2 else None
    # Python slicing matches the reference: negative indexes count from the end,
    # indexes past either end are clamped, start >= end gives "".
    check_length(len(range(len(text))[start:end]))
    return text[start:end]


_GUID_FORMATS = {"d": "{0}", "b": "{{{0}}}", "p": "({0})"}


@function("guid", 0, 1)
def _guid(call: Invocation, args: list[Any]) -> str:
    fmt = optional(args, 0)
    if fmt is None:
        fmt = "D"
    if not isinstance(fmt, str):
        call.fail(f"argument 1 (the format) must be a string, got {describe(fmt)}", 0)
    value = uuid.uuid4()
    key = fmt.lower()
    if key == "n":
        return value.hex
    if key in _GUID_FORMATS:
        return _GUID_FORMATS[key].format(str(value))
    if key == "x":
        h = value.hex
        tail = ",".join(f"0x{h[i : i + 2]}" for i in range(16, 32, 2))
        return f"{{0x{h[:8]},0x{h[8:12]},0x{h[12:16]},{{{tail}}}}}"
    call.fail(f"unknown GUID format {fmt!r}; use 'N', 'D', 'B', 'P' or 'X'", 0)


# ---------------------------------------------------------------------------
# URI parsing

_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443, "sftp": 22}


def _uri(call: Invocation, args: list[Any]) -> SplitResult:
    text = arg_str(call, args, 0)
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        call.fail(f"{describe(text)} is not a valid URI ({exc})", 0)
    if not parts.scheme or not parts.netloc:
        call.fail(f"{describe(text)} is not an absolute URI (scheme://host/...)", 0)
    return parts


@function("uriHost", 1)
def _uri_host(call: Invocation, args: list[Any]) -> str:
    parts = _uri(call, args)
    host = parts.hostname or ""
    return f"[{host}]" if ":" in host else host


@function("uriPath", 1)
def _uri_path(call: Invocation, args: list[Any]) -> str:
    # "If path doesn't have a value, return the "/" character."
    return _uri(call, args).path or "/"


@function("uriQuery", 1)
def _uri_query(call: Invocation, args: list[Any]) -> str:
    query = _uri(call, args).query
    return f"?{query}" if query else ""


@function("uriPathAndQuery", 1)
def _uri_path_and_query(call: Invocation, args: list[Any]) -> str:
    parts = _uri(call, args)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@function("uriPort", 1)
def _uri_port(call: Invocation, args: list[Any]) -> int:
    parts = _uri(call, args)
    if parts.port is not None:
        return parts.port
    # "If port doesn't specify a value, return the default port for the protocol."
    return _DEFAULT_PORTS.get(parts.scheme.lower(), -1)


@function("uriScheme", 1)
def _uri_scheme(call: Invocation, args: list[Any]) -> str:
    return _uri(call, args).scheme.lower()
