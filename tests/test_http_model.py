"""The HTTP request model shared by the server and kernels (hooknb.http_model)."""

from __future__ import annotations

from hooknb import http_model
from hooknb.wdl import definitions


def test_definitions_read_the_request_fields_the_hub_validates() -> None:
    # wdl.definitions writes these field names in their documented spelling before the hub
    # validates the request with http_model: one list, not two that could drift apart.
    assert definitions.HTTP_REQUEST_KEYS is http_model.HTTP_REQUEST_KEYS
