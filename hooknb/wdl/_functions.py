"""The function table: importing the ``_functions_*`` modules registers every function.

Not implemented (documented in the package docstring): ``multipartBody`` and
``triggerMultipartBody``.
"""

from __future__ import annotations

from . import (  # noqa: F401 - imported for their registrations
    _functions_collections,
    _functions_convert,
    _functions_datetime,
    _functions_math,
    _functions_text,
    _functions_workflow,
    _functions_xml,
)
from ._functions_core import REGISTRY, FunctionSpec

FUNCTIONS: dict[str, FunctionSpec] = REGISTRY

__all__ = ["FUNCTIONS", "FunctionSpec"]
