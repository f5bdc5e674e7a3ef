"""Which event loop runs workflows, and how synchronous calls wait on it.

In a Jupyter kernel, runs are tasks on the kernel's own loop: the cell that starts them
returns at once and they progress while the kernel is idle, as Logic Apps runs progress in
the background. Outside a running loop (a script, a terminal) hooknb starts one background
thread with its own loop, so runs progress there in the same way.

Blocking calls (``wf.enable()``, ``run.wait()``) then either hand their coroutine to that
thread, or, inside the kernel's loop, re-enter it with ``nest_asyncio2`` — the maintained fork
whose 1.7.3+ releases no longer drop queued cells on ipykernel 7 (the archived
``nest_asyncio`` does).

A nested run drains the loop's ready queue, which the stdlib's ``BaseEventLoop._run_once``
running the current callback has already counted: the first nesting in a kernel happens
inside that unpatched frame (nest_asyncio2 patches the loop's class only for later
iterations), and when other callbacks were ready in the same batch it then pops from an
empty deque and the IndexError ends the kernel's loop, and with it the kernel (the
tutorials' "Kernel died"; erdewit/nest_asyncio#11, ipython/ipykernel#1250). ``run_sync``
therefore puts back as many (cancelled, so skipped) entries as the nested run took.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import warnings
from collections import deque
from collections.abc import Coroutine, Iterator
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
        with _ready_count_kept(loop):
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


@contextlib.contextmanager
def _ready_count_kept(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Leave ``loop``'s ready queue at least as long as it was, for the enclosing frame.

    The frame that is running the current callback (the stdlib's ``_run_once``, which the
    first nesting in a kernel always runs under) pops as many entries as were ready when its
    batch began; those still to come are all in the queue now. A nested run may take them,
    so the shortfall is made up with cancelled handles, which every ``_run_once`` skips
    (nest_asyncio2's own guards its pops; the stdlib's does not).
    """
    ready = getattr(loop, "_ready", None)
    if not isinstance(ready, deque):
        yield
        return
    before = len(ready)
    try:
        yield
    finally:
        for _ in range(before - len(ready)):
            placeholder = asyncio.Handle(_nothing, (), loop)
            placeholder.cancel()
            ready.append(placeholder)


def _nothing() -> None:
    """The callback of a placeholder handle (never called: the handle is cancelled)."""


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
