"""The HTTP request model that the server and kernels share: pure rules, no I/O.

A Logic Apps HTTP request object (the ``subscribe``/``unsubscribe`` of an HTTP Webhook, the
inputs of an HTTP action) is validated the same way wherever it is written, and shown with
its credentials masked wherever it is shown. Bodies travel between kernel and hub in one JSON
form, and one rule says which content types are JSON.

========================  =====================================================================
:mod:`.request`           ``normalize_request``, ``METHODS``, ``HTTP_REQUEST_KEYS``
:mod:`.authentication`    ``normalize_authentication`` (validation only; credentials are used
                          by ``hooknb.server``)
:mod:`.retry_policy`      ``normalize_retry_policy`` (validation only; retries are made by
                          ``hooknb.server``)
:mod:`.redaction`         ``redact``, ``redact_text``, ``MASK``
:mod:`.wire`              the body codec ``{"encoding", "data"}``, ``is_json_type``, and the
                          TypedDicts of the wire JSON
========================  =====================================================================

Nothing here imports ``hooknb.server`` or ``hooknb.kernel`` (or tornado, jwt, cryptography):
both sides, and ``hooknb.wdl``, may import it.
"""

from __future__ import annotations

from .redaction import MASK, redact, redact_text
from .request import HTTP_REQUEST_KEYS, METHODS, normalize_request
from .wire import (
    CallbackWire,
    ResponseWire,
    WireBody,
    decode_wire_body,
    encode_wire_body,
    is_json_type,
)

__all__ = [
    "HTTP_REQUEST_KEYS",
    "MASK",
    "METHODS",
    "CallbackWire",
    "ResponseWire",
    "WireBody",
    "decode_wire_body",
    "encode_wire_body",
    "is_json_type",
    "normalize_request",
    "redact",
    "redact_text",
]
