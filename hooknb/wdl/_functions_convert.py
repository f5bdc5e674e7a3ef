"""Conversion functions: string, json, bool, base64, data URIs, URI components, binary.

Binary content is ``bytes``. A whole-value expression such as
``"@base64ToBinary('aGVsbG8=')"`` evaluates to ``bytes``; in a string context
(``@{...}``, ``string()``, ``concat()``) binary content reads as its UTF-8 text,
and inside JSON text it is the ``{"$content-type", "$content"}`` object Logic
Apps uses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

from ._functions_core import (
    Invocation,
    arg_str,
    check_length,
    describe,
    function,
    parse_json_text,
    to_text,
)
from .content import CONTENT_TYPE, envelope_bytes, is_envelope, is_xml_media


@function("string", 1)
def _string(call: Invocation, args: list[Any]) -> str:
    return to_text(args[0])


@function("json", 1)
def _json(call: Invocation, args: list[Any]) -> Any:
    value = args[0]
    if value is None:
        return {}  # "If the string is null, the function returns an empty object."
    if is_envelope(value):
        # "The string or XML to convert" (functions reference): XML content becomes JSON as
        # Json.NET converts it; other content is read as JSON text.
        data = envelope_bytes(value)
        if data is not None and (
            is_xml_media(str(value[CONTENT_TYPE])) or data.lstrip()[:1] == b"<"
        ):
            from ._functions_xml import xml_json

            return xml_json(call, value)
        if data is not None:
            value = data
    if isinstance(value, list | dict):
        return value
    if isinstance(value, Mapping):
        return dict(value.items())
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        call.fail(f"argument 1 must be a string holding JSON, got {describe(value)}", 0)
    return parse_json_text(call, value)


@function("bool", 1)
def _bool(call: Invocation, args: list[Any]) -> bool:
    value = args[0]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value != 0  # bool(1), bool(-1) -> true; bool(0) -> false (reference table)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return word == "true"
    call.fail(
        f"argument 1 must be a boolean, a number, or the string 'true' or 'false', "
        f"got {describe(value)}",
        0,
    )


# ---------------------------------------------------------------------------
# Base64


def _b64decode(call: Invocation, text: str) -> bytes:
    # .NET Convert.FromBase64String ignores white space but nothing else.
    check_length(len(text) * 3 // 4)
    cleaned = "".join(text.split())
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        call.fail(f"{describe(text)} is not valid base64", 0)


@function("base64", 1)
def _base64(call: Invocation, args: list[Any]) -> str:
    value = args[0]
    if is_envelope(value):
        # Binary content ({"$content-type", "$content"}): its bytes are encoded, not the object
        # (https://learn.microsoft.com/azure/logic-apps/logic-apps-content-type).
        content = envelope_bytes(value)
        if content is None:
            call.fail("argument 1 has a $content that is not base64", 0)
        value = content
    data = value if isinstance(value, bytes) else to_text(value).encode("utf-8")
    check_length(_base64_length(len(data)))
    return base64.b64encode(data).decode("ascii")


def _base64_length(size: int) -> int:
    return 4 * -(-size // 3)


@function("base64ToString", 1, aliases=("decodeBase64",))
def _base64_to_string(call: Invocation, args: list[Any]) -> str:
    # decodeBase64() is the deprecated name of base64ToString() (reference).
    return _b64decode(call, arg_str(call, args, 0)).decode("utf-8", errors="replace")


@function("base64ToBinary", 1)
def _base64_to_binary(call: Invocation, args: list[Any]) -> bytes:
    return _b64decode(call, arg_str(call, args, 0))


@function("binary", 1)
def _binary(call: Invocation, args: list[Any]) -> bytes:
    value = args[0]
    if isinstance(value, bytes):
        return value
    text = to_text(value)
    check_length(len(text))
    return text.encode("utf-8")


# ---------------------------------------------------------------------------
# Data URIs (RFC 2397)


@function("dataUri", 1)
def _data_uri(call: Invocation, args: list[Any]) -> str:
    value = args[0]
    if isinstance(value, bytes):
        check_length(_base64_length(len(value)) + 37)
        return "data:application/octet-stream;base64," + base64.b64encode(value).decode("ascii")
    data = to_text(value).encode("utf-8")
    check_length(_base64_length(len(data)) + 37)
    encoded = base64.b64encode(data).decode("ascii")
    return "data:text/plain;charset=utf-8;base64," + encoded


def _parse_data_uri(call: Invocation, args: list[Any]) -> tuple[bytes, str]:
    """(content, charset) of a ``data:`` URI."""
    text = arg_str(call, args, 0).strip()
    if text[:5].lower() != "data:" or "," not in text:
        call.fail(f"{describe(text)} is not a data URI (data:[<type>][;base64],<data>)", 0)
    header, _, payload = text[5:].partition(",")
    params = [p.strip() for p in header.split(";")]
    charset = "utf-8"
    for param in params[1:]:
        name, _, value = param.partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    if params and params[-1].lower() == "base64":
        return _b64decode(call, unquote(payload)), charset
    check_length(len(payload))
    return unquote_to_bytes(payload), charset


@function("dataUriToBinary", 1, aliases=("decodeDataUri",))
def _data_uri_to_binary(call: Invocation, args: list[Any]) -> bytes:
    # decodeDataUri() "works the same way" (reference).
    return _parse_data_uri(call, args)[0]


@function("dataUriToString", 1)
def _data_uri_to_string(call: Invocation, args: list[Any]) -> str:
    data, charset = _parse_data_uri(call, args)
    try:
        # LookupError also covers codecs that are not text encodings ("rot13", "hex").
        return data.decode(charset, errors="replace")
    except LookupError:
        call.fail(f"unknown charset {charset!r} in the data URI", 0)


# ---------------------------------------------------------------------------
# URI components. Like .NET Uri.EscapeDataString, everything except the RFC 3986
# unreserved characters (letters, digits, - _ . ~) is percent-encoded as UTF-8.


@function("uriComponent", 1, aliases=("encodeUriComponent",))
def _uri_component(call: Invocation, args: list[Any]) -> str:
    value = args[0]
    data = value if isinstance(value, bytes) else to_text(value).encode("utf-8")
    # Every byte but the unreserved ones becomes three characters: counted before quoting.
    check_length(len(data) + 2 * len(data.translate(None, _UNRESERVED)))
    return quote(data, safe="")


_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


@function("uriComponentToString", 1, aliases=("decodeUriComponent",))
def _uri_component_to_string(call: Invocation, args: list[Any]) -> str:
    text = arg_str(call, args, 0)
    check_length(len(text))
    return unquote(text, errors="replace")


@function("uriComponentToBinary", 1)
def _uri_component_to_binary(call: Invocation, args: list[Any]) -> bytes:
    text = arg_str(call, args, 0)
    check_length(len(text))
    return unquote_to_bytes(text)
