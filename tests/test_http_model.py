"""The HTTP request model shared by the server and kernels (hooknb.http_model)."""

from __future__ import annotations

from hooknb import http_model
from hooknb.wdl import definitions


def test_definitions_read_the_same_request_fields() -> None:
    # wdl.definitions canonicalises the spelling of these fields before the hub validates them
    # with http_model; the two lists must not drift apart.
    assert tuple(definitions.HTTP_REQUEST_KEYS) == http_model.HTTP_REQUEST_KEYS
