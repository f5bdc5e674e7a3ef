"""Non-JSON content as Logic Apps keeps it: ``{"$content-type", "$content"}`` objects.

"Handle content types in Azure Logic Apps"
(https://learn.microsoft.com/azure/logic-apps/logic-apps-content-type): JSON content is parsed;
``text/plain`` stays a string; other content (XML, binary, form data) is kept byte-exact as an
object with its content type and its bytes in base64, which ``xml()``, ``xpath()``,
``base64()``, ``json()`` and the form-data functions read. A form-urlencoded body also carries
its pairs in ``$formdata`` and a multipart/form-data body its parts in ``$multipart``, as Logic
Apps shows them in a run's outputs.

Everything here is bounded by the body it is given (which the server bounds when it takes it).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

CONTENT = "$content"
CONTENT_TYPE = "$content-type"
FORM_DATA = "$formdata"
MULTIPART = "$multipart"
#: Parts of a multipart body, fields of a form body: beyond this the body is kept as content
#: only (the form functions then refuse it).
MAX_FORM_FIELDS = 10_000


def media_type(content_type: str | None) -> str:
    """``application/xml; charset=utf-8`` -> ``application/xml``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media(content_type: str | None) -> bool:
    mime = media_type(content_type)
    return mime in ("application/json", "text/json") or mime.endswith("+json")


def is_xml_media(content_type: str | None) -> bool:
    mime = media_type(content_type)
    return mime in ("application/xml", "text/xml") or mime.endswith("+xml")


def kept_as_content(content_type: str | None) -> bool:
    """Whether a body of this type is kept as a ``$content`` object (not parsed, not text)."""
    mime = media_type(content_type)
    if not mime or is_json_media(mime):
        return False
    return is_xml_media(mime) or not mime.startswith("text/")


def envelope(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The ``$content`` object of a body, with ``$formdata`` / ``$multipart`` for forms."""
    value: dict[str, Any] = {
        CONTENT_TYPE: content_type or "application/octet-stream",
        CONTENT: base64.b64encode(raw).decode("ascii"),
    }
    mime = media_type(content_type)
    if mime == "application/x-www-form-urlencoded":
        pairs = form_pairs(raw)
        if pairs is not None:
            value[FORM_DATA] = [{"key": k, "value": v} for k, v in pairs]
    elif mime == "multipart/form-data":
        parts = multipart_parts(raw, content_type or "")
        if parts is not None:
            value[MULTIPART] = parts
    return value


def is_envelope(value: Any) -> bool:
    return isinstance(value, Mapping) and CONTENT in value and CONTENT_TYPE in value


def envelope_bytes(value: Mapping[str, Any]) -> bytes | None:
    """The bytes of a ``$content`` object (None when ``$content`` is not base64)."""
    content = value.get(CONTENT)
    if not isinstance(content, str):
        return None
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def form_pairs(raw: bytes) -> list[tuple[str, str]] | None:
    """The key/value pairs of a form-urlencoded body, in order (None if it has too many)."""
    if raw.count(b"&") >= MAX_FORM_FIELDS:
        return None
    text = raw.decode("utf-8", errors="replace")
    return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)


def multipart_parts(raw: bytes, content_type: str) -> list[dict[str, Any]] | None:
    """The parts of a multipart body as Logic Apps shows them: ``{"headers", "body"}`` each,
    a part's body being its text, or a ``$content`` object for non-text parts."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        return None
    parts: list[dict[str, Any]] = []
    for part in message.iter_parts():
        if len(parts) >= MAX_FORM_FIELDS:
            return None
        # decode=True gives bytes, or None for a nested multipart part.
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        part_type = part.get_content_type() if part.get("content-type") else "text/plain"
        headers = {str(k): str(v) for k, v in part.items()}
        if kept_as_content(part_type):
            body: Any = envelope(payload, part.get("content-type"))
        else:
            body = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        parts.append({"headers": headers, "body": body})
    return parts


def form_values(body: Any) -> list[tuple[str, Any]] | None:
    """The fields of a form body (urlencoded or multipart) as (name, value) pairs; None when
    ``body`` is not form data."""
    if isinstance(body, Mapping) and isinstance(body.get(FORM_DATA), list):
        return [
            (str(item.get("key")), item.get("value"))
            for item in body[FORM_DATA]
            if isinstance(item, Mapping)
        ]
    if isinstance(body, Mapping) and isinstance(body.get(MULTIPART), list):
        fields = []
        for part in body[MULTIPART]:
            if not isinstance(part, Mapping):
                continue
            headers = part.get("headers") or {}
            disposition = next(
                (str(v) for k, v in headers.items() if str(k).lower() == "content-disposition"),
                "",
            )
            name = _disposition_name(disposition)
            if name is not None:
                fields.append((name, part.get("body")))
        return fields
    if is_envelope(body) and media_type(str(body[CONTENT_TYPE])) in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        raw = envelope_bytes(body)
        if raw is None:
            return None
        again = envelope(raw, str(body[CONTENT_TYPE]))
        if FORM_DATA in again or MULTIPART in again:
            return form_values(again)
    if isinstance(body, str) and "=" in body:
        # A form body a sender labelled text/plain: Logic Apps still reads its fields.
        pairs = form_pairs(body.encode("utf-8"))
        return None if pairs is None else list(pairs)
    return None


def _disposition_name(disposition: str) -> str | None:
    for param in disposition.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "name":
            return value.strip().strip('"')
    return None
