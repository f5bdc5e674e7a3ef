"""The JSON that carries HTTP messages between kernels and the hub, and one rule for which
content types are JSON.

A body travels as :class:`WireBody`, ``{"encoding": "utf-8" | "base64", "data": ...}``: UTF-8
text as it is, anything else in base64, so the bytes a sender posted arrive unchanged. A stored
callback request travels as :class:`CallbackWire` (channel events and the API), an outbound
call's final response as :class:`ResponseWire`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

__all__ = [
    "CallbackWire",
    "ResponseWire",
    "WireBody",
    "decode_wire_body",
    "encode_wire_body",
    "is_json_type",
]


class WireBody(TypedDict):
    """A body in JSON: ``data`` is the text itself (``utf-8``) or base64 of the bytes."""

    encoding: Literal["utf-8", "base64"]
    data: str


class CallbackWire(TypedDict):
    """A request received on a callback URL, as stored by the hub."""

    id: int
    received: float
    method: str
    #: ``[name, value]`` pairs in the order and spelling received.
    headers: list[list[str]]
    queries: dict[str, Any]
    contentType: str | None
    body: WireBody


class ResponseWire(TypedDict):
    """The final response of an outbound call, in Logic Apps' action-outputs shape.

    ``body`` is parsed JSON for JSON content, text for other text, and Logic Apps' binary form
    ``{"$content-type", "$content"}`` otherwise (the server parsed it; the bytes do not travel).
    """

    statusCode: int
    headers: dict[str, str]
    body: Any


def encode_wire_body(data: bytes | str) -> WireBody:
    """A body for JSON transport: text as it is; bytes as UTF-8 text when they are, else base64."""
    if isinstance(data, str):
        return {"encoding": "utf-8", "data": data}
    try:
        return {"encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii")}


def decode_wire_body(payload: Mapping[str, Any] | None) -> bytes:
    """The bytes of a :class:`WireBody` (``b""`` for none).

    Raises ValueError (``body.data ...``) when ``data`` is not a string or not valid base64.
    """
    if not payload:
        return b""
    data = payload.get("data")
    if not isinstance(data, str):
        raise ValueError("body.data must be a string")
    if payload.get("encoding") == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError("body.data is not valid base64") from None
    return data.encode("utf-8")


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` (parameters allowed) is JSON: ``application/json``,
    ``text/json`` or a ``+json`` type, as Logic Apps reads bodies."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")
