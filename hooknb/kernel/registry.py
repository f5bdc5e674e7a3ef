"""Python handlers for workflows defined by ``%%hooknb trigger`` cells.

A cell magic defines the trigger in Logic Apps' JSON/YAML; what a run *does* is Python::

    @hooknb.handler("orders")
    async def orders_run(run):
        reply = await run.webhook("Approval", subscribe={...})
        return reply.body

Handlers are looked up when a run starts, not when the workflow is defined, so the handler
cell may come before or after the trigger cell, and re-running it replaces the handler for
the next runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from .run import Run

Handler = Callable[["Run"], Any]
H = TypeVar("H", bound=Handler)

_handlers: dict[str, Handler] = {}
#: Called with a workflow's name when a handler is registered for it (the magics move a
#: workflow the server runs back into this kernel, where its handler can run).
on_register: list[Callable[[str], None]] = []


@overload
def handler(name: str, /) -> Callable[[H], H]: ...
@overload
def handler(fn: H, /) -> H: ...


def handler(name_or_fn: str | H, /) -> Callable[[H], H] | H:
    """Register the Python code that runs for each run of the workflow ``name``.

    Use as ``@hooknb.handler("orders")`` (or bare ``@hooknb.handler``: the function's name is
    the workflow's). The function takes the run; it may be ``async def`` (it can then
    ``await run.webhook(...)``) or a plain ``def``, which runs on the kernel's loop and so
    should be quick. Its return value is the run's result. Returns the function unchanged.
    """
    if callable(name_or_fn):
        return _register(name_or_fn.__name__, name_or_fn)
    if not isinstance(name_or_fn, str) or not name_or_fn:
        raise TypeError("@hooknb.handler takes a workflow name: @hooknb.handler('orders')")
    name = name_or_fn

    def register(fn: H) -> H:
        return _register(name, fn)

    return register


def _register(name: str, fn: H) -> H:
    if not callable(fn):
        raise TypeError(f"a handler must be a function taking the run, not {fn!r}")
    _handlers[name] = fn
    for callback in list(on_register):
        callback(name)
    return fn


def get_handler(name: str) -> Handler | None:
    """The handler registered for workflow ``name``, if any."""
    return _handlers.get(name)


async def run_handler(name: str, run: Run) -> Any:
    """Run the workflow's handler for ``run``; without one, the result is the trigger body."""
    fn = get_handler(name)
    if fn is None:
        return run.trigger.body
    value = fn(run)
    if inspect.isawaitable(value):
        value = await value
    return value
