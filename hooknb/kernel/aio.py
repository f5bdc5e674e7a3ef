"""Which event loop runs workflows, and how synchronous calls wait on it.

In a Jupyter kernel, runs are tasks on the kernel's own loop: the cell that starts them
returns at once and they progress while the kernel is idle, as Logic Apps runs progress in
the background. Outside a running loop (a script, a terminal) hooknb starts one background
thread with its own loop, so runs progress there in the same way.

Blocking calls (``wf.enable()``, ``run.wait()``) then either hand their coroutine to that
thread, or, inside the kernel's loop, re-enter it with ``nest_asyncio2`` — the maintained fork
whose 1.7.3+ releases no longer drop queued cells on ipykernel 7 (the archived
``nest_asyncio`` does).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_background_loop: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()
_nested: set[int] = set()


def engine_loop() -> asyncio.AbstractEventLoop:
    """The loop that runs workflows: the running one (a kernel's), else a background thread's."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return _start_background_loop()


def _start_background_loop() -> asyncio.AbstractEventLoop:
    global _background_loop
    with _background_lock:
        if _background_loop is None or _background_loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="hooknb-runs", daemon=True).start()
            ready.wait()
            _background_loop = loop
        return _background_loop


def in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop``'s thread (inside its callbacks or tasks)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def run_sync(
    coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop, timeout: float | None = None
) -> T:
    """Run ``coro`` on ``loop`` and block until it finishes (or ``timeout`` passes)."""
    if in_loop_thread(loop):
        _allow_nesting(loop)
        task = loop.create_task(coro)
        if timeout is None:
            return loop.run_until_complete(task)
        return loop.run_until_complete(asyncio.wait_for(task, timeout))
    if loop.is_running():
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"gave up after {timeout} s") from None
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def _allow_nesting(loop: asyncio.AbstractEventLoop) -> None:
    if id(loop) in _nested:
        return
    if getattr(asyncio.run, "__module__", "") == "nest_asyncio":
        warnings.warn(
            "The archived nest_asyncio package is applied in this kernel; on ipykernel 7 it "
            "drops queued cells and nest_asyncio2 cannot take over. Restart the kernel and "
            "avoid importing code that calls nest_asyncio.apply().",
            RuntimeWarning,
            stacklevel=3,
        )
    import nest_asyncio2

    nest_asyncio2.apply(loop)
    _nested.add(id(loop))
