"""Live views of workflows and runs (placeholder until the ipywidgets views land)."""

from __future__ import annotations

from typing import Any


def mimebundle(obj: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The display bundle of a workflow or run: text and HTML."""
    from .engine import Run
    from .render import run_html

    bundle: dict[str, Any] = {"text/plain": repr(obj)}
    if isinstance(obj, Run):
        bundle["text/html"] = run_html(obj)
    return bundle
