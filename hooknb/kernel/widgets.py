"""Live views of workflows and runs, built from stock ipywidgets 8 (no custom JavaScript).

Modelled on tqdm's notebook bar: a view is a container of stock widgets, and everything that
happens later only changes widget state (label and HTML values, button flags, children).
Nothing here prints or writes to an ``Output`` from background work: a kernel loses such output
once its cell has finished, while widget state updates always reach the page.

Where updates come from:

* ``Run.observe`` / ``Workflow.observe`` callbacks, on the engine loop (the kernel's loop);
* one ticker task per event loop, shared by every view on it, that refreshes countdowns and
  running durations once a second while some run is going, and ends when none is;
* button callbacks, which never block the kernel: they start the ``*_async`` API, or an
  ``httpx.AsyncClient`` request, as a task on the engine loop and report the outcome in a label.

Saved notebooks: nbclient (and so papermill and ``nbconvert --execute``) keeps widget state only
from messages whose parent is the cell it is executing, while a view that changes in the
background sends its updates under the cell that started the run. So after every execution,
the widget models that changed (or are new) since the last one are sent again under it, and a
notebook executed headless saves the state its views reached; a live frontend just receives
those values twice.

DOM hooks (classes added with ``add_class``) for browser tests: ``hooknb-run`` (a run view),
``hooknb-status`` (its status; the text starts with the status word), ``hooknb-step`` (a step
row; the first is the trigger's, also ``hooknb-trigger-step``) with ``hooknb-step-name`` and
``hooknb-step-status``, ``hooknb-workflow`` (a workflow view, which nests the views of its runs)
with ``hooknb-trigger-state`` (Enabled, Disabled or Manual), and the buttons ``hooknb-enable``,
``hooknb-disable``, ``hooknb-cancel`` and ``hooknb-send-test`` (also ``hooknb-trigger-send-test``
or ``hooknb-step-send-test``). Widgets that do not apply are hidden (``display: none``), not
removed: a step's callback URL and test box once it stops waiting, Cancel once the run ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import weakref
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar
from urllib.parse import urlsplit

import httpx
import ipywidgets as widgets

from ..errors import HookNBError
from .aio import in_loop_thread
from .render import (
    STATUS_COLORS,
    RunShown,
    WorkflowShown,
    action_details_html,
    clock,
    countdown,
    duration,
    orphans_note,
    replay_note,
    result_html,
    run_html,
    trigger_html,
    trigger_name,
    trigger_outputs_html,
    trigger_state,
    workflow_html,
    workflow_note,
)

if TYPE_CHECKING:
    from .action import Action
    from .client import HubClient

__all__ = [
    "RunView",
    "StepRow",
    "WorkflowView",
    "run_bundle",
    "run_view",
    "send_test_callback",
    "view",
    "workflow_bundle",
    "workflow_view",
]

log = logging.getLogger("hooknb.kernel")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Runs a workflow view lists (newest first); older ones stay available as ``workflow.runs``.
MAX_RUNS_SHOWN = 10


class LiveRun(RunShown, Protocol):
    """What a live view uses of a run (a :class:`hooknb.Run`): :class:`RunShown`, its loop,
    Cancel, and its changes."""

    @property
    def hub(self) -> HubClient: ...
    @property
    def replays(self) -> int: ...
    def _request_cancel(self) -> bool: ...
    def observe(self, callback: Callable[[LiveRun], None]) -> None: ...
    def unobserve(self, callback: Callable[[LiveRun], None]) -> None: ...


class LiveWorkflow(WorkflowShown, Protocol):
    """What a live view uses of a workflow (a :class:`hooknb.Workflow`)."""

    @property
    def hub(self) -> HubClient: ...
    @property
    def runs(self) -> Sequence[LiveRun]: ...
    def observe(self, callback: Callable[[LiveWorkflow, LiveRun | None], None]) -> None: ...
    def unobserve(self, callback: Callable[[LiveWorkflow, LiveRun | None], None]) -> None: ...
    async def enable_async(self) -> object: ...
    async def disable_async(self) -> object: ...


# -- the display bundle ---------------------------------------------------------------------------


def run_bundle(run: LiveRun, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The display bundle of a run (``Run._repr_mimebundle_``), see :func:`_bundle`."""
    return _bundle(run, run_html(run), run_view, include, exclude)


def workflow_bundle(
    workflow: LiveWorkflow, include: Any = None, exclude: Any = None
) -> dict[str, Any]:
    """The display bundle of a workflow (``Workflow._repr_mimebundle_``), see :func:`_bundle`."""
    return _bundle(workflow, workflow_html(workflow), workflow_view, include, exclude)


def _bundle(
    obj: Any, html: str, make_view: Callable[[Any], widgets.Widget], include: Any, exclude: Any
) -> dict[str, Any]:
    """``text/plain`` and ``text/html`` always (consoles, nbconvert, papermill, untrusted
    notebooks); in a Jupyter kernel also the live widget view, which frontends prefer."""
    bundle: dict[str, Any] = {"text/plain": repr(obj), "text/html": html}
    if _in_kernel():
        try:
            live = make_view(obj)
        except Exception:  # a view that cannot be built must not hide the text
            log.exception("hooknb could not build the live view")
        else:
            if live.model_id:
                bundle[WIDGET_VIEW] = {
                    "version_major": 2,
                    "version_minor": 0,
                    "model_id": live.model_id,
                }
    if include:
        bundle = {k: v for k, v in bundle.items() if k in include}
    if exclude:
        bundle = {k: v for k, v in bundle.items() if k not in exclude}
    return bundle


def _in_kernel() -> bool:
    # Without IPython imported there is no shell at all (plain Python); a terminal IPython has
    # a shell but no kernel, hence no comms for widgets.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


_views: dict[Any, RunView | WorkflowView] = {}
_V = TypeVar("_V", "RunView", "WorkflowView")


def run_view(run: LiveRun) -> RunView:
    """The live view of a run: one per run, shared by every display of it."""
    existing = _views.get(run)
    if isinstance(existing, RunView) and existing.comm is not None:
        return existing
    return _register(run, RunView(run))


def workflow_view(workflow: LiveWorkflow) -> WorkflowView:
    """The live view of a workflow: one per workflow, shared by every display of it."""
    existing = _views.get(workflow)
    if isinstance(existing, WorkflowView) and existing.comm is not None:
        return existing
    return _register(workflow, WorkflowView(workflow))


def view(obj: LiveWorkflow | LiveRun) -> WorkflowView | RunView:
    """The live view of a workflow or run (:func:`workflow_view`, :func:`run_view`)."""
    if _is_run(obj):
        return run_view(obj)
    if _is_workflow(obj):
        return workflow_view(obj)
    raise TypeError(f"no hooknb view for {type(obj).__name__}")


def _is_run(obj: object) -> TypeGuard[LiveRun]:
    # Told apart by what they have: this module does not import the modules that make runs
    # and workflows (they import it to show themselves). Looked up on the class, so that no
    # property runs (a workflow's hub property would connect).
    return callable(getattr(type(obj), "_request_cancel", None)) and hasattr(type(obj), "done")


def _is_workflow(obj: object) -> TypeGuard[LiveWorkflow]:
    return callable(getattr(type(obj), "enable_async", None))


def _register(obj: Any, made: _V) -> _V:
    _views[obj] = made
    _track(made)
    _install_resend_hook()
    return made


# -- small widget helpers -------------------------------------------------------------------------


def _label(css: str, value: str = "", *, width: str | None = None, bold: bool = False) -> Any:
    label = widgets.Label(value)
    if width:
        label.layout.width = width
    label.add_class(css)
    if bold:
        label.style.font_weight = "bold"
    return label


def _button(description: str, css: str, *, style: str = "", icon: str = "", tip: str = "") -> Any:
    button = widgets.Button(
        description=description,
        button_style=style,
        icon=icon,
        tooltip=tip or description,
        layout=widgets.Layout(width="auto"),
    )
    button.add_class(css)
    return button


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def _color(label: Any, status: str) -> None:
    label.style.text_color = STATUS_COLORS.get(status)


class _UrlField:
    """A callback URL the user can click into and select (Ctrl+A, Ctrl+C).

    Stock widgets cannot reach the clipboard, and a *disabled* input cannot be selected in some
    browsers, so this is an enabled Text whose edits are reverted to what the kernel last set.
    """

    def __init__(self, css: str) -> None:
        self.value = ""
        self.widget = widgets.Text(
            description="Callback URL",
            tooltip="select and copy: click, Ctrl+A, Ctrl+C",
            # "auto" stretches to the box less the widget's own margin; "100%" overflowed
            # by that margin and clipped the field's right edge.
            layout=widgets.Layout(width="auto"),
            style={"description_width": "initial"},
        )
        self.widget.add_class(css)
        self.widget.add_class("hooknb-callback-url")
        self.widget.observe(self._edited, "value")

    def set(self, value: str) -> None:
        self.value = value
        self.widget.value = value

    def _edited(self, change: dict[str, Any]) -> None:
        if change["new"] != self.value:
            self.widget.value = self.value


def _send_test_button(scope_class: str, tip: str, on_click: Callable[[Any], None]) -> Any:
    button = _button("Send test callback", "hooknb-send-test", icon="paper-plane", tip=tip)
    button.add_class(scope_class)
    button.on_click(on_click)
    return button


#: How long the test body must have been still before a click sends it (see _settled_body).
BODY_SETTLE_SECONDS = 0.4
#: The longest a click waits for the body to settle (a user typing on while it is sent).
BODY_SETTLE_MAX_SECONDS = 5.0


def _post_test(
    loop: asyncio.AbstractEventLoop, url: str, view: Any, after: Callable[[], None] | None = None
) -> None:
    """POST the view's test body to ``url`` without blocking; show the answer in the view."""
    view.send_button.disabled = True
    view.send_result.value = "sending…"  # plain text: HTML without markup

    def done(result: str | None, exc: BaseException | None) -> None:
        view.send_button.disabled = False
        text = str(result) if exc is None else f"not sent: {_error_text(exc)}"
        ok = exc is None and text.startswith("HTTP 2")
        view.send_result.style.text_color = "#2e7d32" if ok else "#c62828"
        view.send_result.value = _html(text)  # an HTML widget wraps; a Label would cut it
        if after is not None:
            after()

    async def send() -> str:
        return await send_test_callback(url, await _settled_body(view.test_body))

    _spawn(loop, send(), done)


async def _settled_body(area: Any) -> str:
    """The test body as the box shows it, once the box's last edit has reached the kernel.

    The frontend sends a widget's edits one message at a time: while one is unanswered (the
    kernel busy with queued cells), later edits wait in the browser and go out only after it,
    whereas a button's click is sent at once. So a click can reach the kernel right behind the
    box's first keystroke, with the rest of the text one message later. The box syncs on
    blur (clicking the button), and the click waits here until the box has been still for
    ``BODY_SETTLE_SECONDS``: the held-back edit arrives first, whatever the kernel was doing.
    """
    give_up = time.monotonic() + BODY_SETTLE_MAX_SECONDS
    while True:
        still = time.monotonic() - getattr(area, "_hooknb_edited", 0.0)
        if still >= BODY_SETTLE_SECONDS or time.monotonic() >= give_up:
            return str(area.value)
        await asyncio.sleep(BODY_SETTLE_SECONDS - still)


class _TestBody(widgets.Textarea):
    """The test body box: a stock Textarea (the same model and view in the browser) whose
    edits are acknowledged to the browser even while a cell runs.

    The browser sends a widget's edits one at a time: after one, it holds the next back until
    the kernel's ``idle`` status for the first arrives. ipykernel 7 handles comm messages
    *during* a running (async) cell without publishing any status for them, so that ``idle``
    never comes: after Run All, with a later cell still awaiting the run, the box's first edit
    reached the kernel and every later one stayed in the browser, and Send test callback sent
    the first keystroke, ``{``. Here the kernel publishes the ``idle`` (then ``busy`` again,
    which is the truth: the cell still runs) for each such edit itself.
    """

    def _handle_msg(self, msg: dict[str, Any]) -> None:
        super()._handle_msg(msg)
        _acknowledge_concurrent_comm_message()


def _acknowledge_concurrent_comm_message() -> None:
    """Publish the status ipykernel leaves out for a comm message handled while a cell runs
    (see :class:`_TestBody`); nothing when it publishes one itself (no cell running)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    lock = getattr(kernel, "_main_asyncio_lock", None)  # held while a cell runs (ipykernel 7)
    if kernel is None or lock is None or not lock.locked():
        return
    parent = kernel.get_parent("shell")
    if (parent or {}).get("header", {}).get("msg_type") != "comm_msg":
        return
    try:
        kernel._publish_status("idle", "shell", parent=parent)
        kernel._publish_status("busy", "shell", parent=parent)
    except Exception:  # a kernel without these internals: edits still arrive when it idles
        log.debug("hooknb could not acknowledge a widget edit", exc_info=True)


def _test_body_field() -> Any:
    area = _TestBody(
        value="{}",
        placeholder='{"decision": "Approved"}',
        # One message with the whole text when the box loses focus (clicking Send), instead
        # of one per keystroke that a busy kernel receives one by one (see _settled_body).
        continuous_update=False,
        layout=widgets.Layout(width="24em", height="4.5em"),
    )
    area.add_class("hooknb-test-body")
    area._hooknb_user_input = True  # not re-sent with the view: the user may be typing
    area._hooknb_edited = time.monotonic()

    def edited(_change: Any) -> None:
        area._hooknb_edited = time.monotonic()

    area.observe(edited, "value")
    return area


def _send_result_label() -> Any:
    """The answer to "Send test callback", on a line of its own: an error message as long as
    a line must neither squeeze the step's status and times nor be cut at the right edge."""
    label = widgets.HTML(layout=widgets.Layout(width="auto"))
    label.add_class("hooknb-send-result")
    return label


def _note(css: str) -> Any:
    """A sentence about a run or workflow: an HTML widget, which wraps (a Label cuts)."""
    note = widgets.HTML(layout=widgets.Layout(width="auto"))
    note.add_class(css)
    return note


def _warning_label(css: str) -> Any:
    """A note under a callback URL that outside services cannot reach (hidden otherwise)."""
    label = widgets.HTML(layout=widgets.Layout(display="none"))
    label.add_class("hooknb-url-warning")
    label.add_class(css)
    return label


# -- whether outside services can reach the callback URLs (the hub's status) -----------------

_reachability: weakref.WeakKeyDictionary[Any, asyncio.Future[str | None]] = (
    weakref.WeakKeyDictionary()
)


def _show_reachability(hub: HubClient, label: Any) -> None:
    """Show the hub's ``warning`` in ``label`` when its callback base is not ``reachable``.

    Asked once per hub connection, in the background (the status API does not change its
    mind while the server runs); views that ask before the answer get it when it comes.
    """
    loop = hub.loop
    future = _reachability.get(hub)
    if future is None:
        future = _reachability[hub] = loop.create_future()

        async def ask() -> str | None:
            status = await hub.request("GET", "hooknb/api/status")
            if status.get("reachable", True):
                return None
            return str(status.get("warning") or "outside services cannot reach this URL")

        def answered(value: Any, exc: BaseException | None) -> None:
            if not future.done():
                future.set_result(None if exc is not None else value)

        _spawn(loop, ask(), answered)

    def show(done: asyncio.Future[str | None]) -> None:
        warning = done.result()
        if warning:
            label.value = f"<span style='color:#b26a00'>⚠ {_html(warning)}</span>"
            _show(label, True)

    future.add_done_callback(show)


def show_reachability(hub: HubClient, label: Any) -> None:
    """:func:`_show_reachability` on the hub's loop, from any thread."""
    _on_loop(hub.loop, _show_reachability, hub, label)


# -- doing things without blocking the kernel -----------------------------------------------------

_background: set[Any] = set()


def _spawn(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    done: Callable[[Any, BaseException | None], None],
) -> None:
    """Run ``coro`` as a task on ``loop`` and hand its outcome to ``done`` (on the loop).

    Widget callbacks run inside the kernel's loop: blocking there (a sync API call) would
    re-enter the loop from a comm handler, so they start tasks instead.
    """

    async def runner() -> None:
        try:
            value = await coro
        except Exception as exc:
            outcome: tuple[Any, BaseException | None] = (None, exc)
        else:
            outcome = (value, None)
        try:
            done(*outcome)
        except Exception:
            log.exception("hooknb view update failed")

    if in_loop_thread(loop):
        future: Any = loop.create_task(runner(), name="hooknb-widget-action")
    else:
        future = asyncio.run_coroutine_threadsafe(runner(), loop)
    _background.add(future)  # keep a reference: the loop only holds tasks weakly
    future.add_done_callback(_background.discard)


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    if in_loop_thread(loop) or not loop.is_running():
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, HookNBError | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


async def send_test_callback(url: str, text: str, *, timeout: float = 30.0) -> str:
    """POST ``text`` (a JSON document, or nothing) to a callback URL, as an outside service
    would; returns ``"HTTP <status> <reason>"`` (with the hub's error message on 4xx/5xx).

    The request goes to the real URL over HTTP, through the server's public route, so it
    exercises exactly what a subscriber's callback does.
    """
    content = text.strip()
    headers = {"User-Agent": "hooknb-test-callback"}
    if content:
        try:
            json.loads(content)
        except ValueError as exc:
            raise ValueError(f"the body is not JSON: {exc}") from None
        headers["Content-Type"] = "application/json"
    host = (urlsplit(url).hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    # Loopback must never go through a proxy; a public URL (a tunnel) may need the env's proxy.
    async with httpx.AsyncClient(trust_env=not loopback, timeout=timeout) as client:
        response = await client.post(url, content=content.encode("utf-8"), headers=headers)
    result = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if response.status_code >= 400:
        try:
            detail = response.json().get("error") or response.text
        except (ValueError, AttributeError):
            detail = response.text
        result += f": {str(detail)[:200]}"
    return result


# -- the ticker -----------------------------------------------------------------------------------


class _Ticker:
    """Refreshes the views of unfinished runs once a second (countdowns, durations).

    One task per loop, shared by all views; it ends as soon as no registered view needs it,
    and starts again when one does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.views: weakref.WeakSet[RunView] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    def add(self, run_view: RunView) -> None:
        self.views.add(run_view)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), name="hooknb-widget-ticker")

    def discard(self, run_view: RunView) -> None:
        self.views.discard(run_view)
        if not self.views and self.task is not None:
            # Nothing runs or waits any more. Forget the task at once: a cancelled task is not
            # done until it next runs, and add() must not mistake it for a live one.
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.views:
            # On whole wall-clock seconds, so every countdown on the page changes together.
            await asyncio.sleep(1.0 - time.time() % 1.0 + 0.005)
            for run_view in list(self.views):
                try:
                    going = run_view._tick()
                except Exception:
                    log.exception("hooknb view tick failed")
                    going = False
                if not going:
                    self.views.discard(run_view)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = (
    weakref.WeakKeyDictionary()
)


def _ticker(loop: asyncio.AbstractEventLoop) -> _Ticker:
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = _Ticker(loop)
    return ticker


# -- re-sending changed widgets after each execution ---------------------------------------------

_tracked: weakref.WeakSet[Any] = weakref.WeakSet()
_changed: weakref.WeakSet[Any] = weakref.WeakSet()
_hook_installed = False


def _track(root: Any) -> None:
    """Watch every widget model under ``root`` not seen before; a new one counts as changed.

    Call after building a view or adding widgets to it (see the module docstring for why
    changed models are sent again after each execution).
    """
    for widget in _tree(root, set()):
        if widget not in _tracked:
            _tracked.add(widget)
            _changed.add(widget)
            widget.observe(_note_change)


def _note_change(change: Any) -> None:
    _changed.add(change["owner"])


def _install_resend_hook() -> None:
    global _hook_installed
    if _hook_installed:
        return
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    shell.events.register("post_execute", _resend_changed)
    _hook_installed = True


def _resend_changed() -> None:
    changed = list(_changed)
    _changed.clear()
    for widget in changed:
        if widget.comm is None:
            continue
        if getattr(widget, "_hooknb_user_input", False):
            widget.send_state([k for k in widget.keys if k != "value"])
        else:
            widget.send_state()


def _tree(widget: Any, seen: set[int]) -> Iterator[Any]:
    """The widget and every widget model it refers to (children, layouts, styles)."""
    if id(widget) in seen:
        return
    seen.add(id(widget))
    yield widget
    for key in widget.keys:
        value = getattr(widget, key, None)
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, widgets.Widget):
                yield from _tree(item, seen)


# -- runs -----------------------------------------------------------------------------------------


class StepRow(widgets.VBox):
    """One step of a run (the trigger, or an action): name, status, times, countdown while it
    waits, the callback URL with "Send test callback", and expandable inputs/outputs."""

    children: tuple[Any, ...]  # VBox's trait (ipywidgets is untyped)

    def __init__(self, run_view: RunView, action: Action | None) -> None:
        self.run_view = run_view
        self.action = action
        name = action.name if action is not None else trigger_name(run_view.run)
        self.name = _label("hooknb-step-name", name, width="14em", bold=True)
        # A minimum, not a width: "Succeeded" in bold is wider than 6.5em in some fonts.
        self.status = _label("hooknb-step-status", bold=True)
        self.status.layout.min_width = "7.5em"
        self.times = _label("hooknb-step-times")
        self.countdown = _label("hooknb-countdown")
        self.details = widgets.HTML()
        self.details.add_class("hooknb-step-details")
        # Made when the step first waits: most steps never need them.
        self.waiting: Any = None
        self.callback_url: Any = None
        self.url_warning: Any = None
        self.test_body: Any = None
        self.send_button: Any = None
        self.send_result: Any = None
        self._url: _UrlField | None = None
        self._details_for: tuple[Any, ...] | None = None
        # Wraps rather than squeezes or cuts when the output area is narrow.
        line = widgets.HBox(
            [self.name, self.status, self.times, self.countdown],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap", grid_gap="0 1em"),
        )
        super().__init__(
            [line, self.details],
            layout=widgets.Layout(border_left="3px solid #ddd", padding="0 0 0 6px"),
        )
        self.add_class("hooknb-step")
        if action is None:
            self.add_class("hooknb-trigger-step")
        self.refresh()

    def refresh(self) -> None:
        run = self.run_view.run
        action = self.action
        if action is None:
            self._set_status("Succeeded")
            self.times.value = clock(run.started)
            self.details.value = trigger_outputs_html(run)
            return
        self._set_status(action.status)
        # Rendering a body is the costly part, and a run's every change refreshes every row.
        shown = (
            action.status,
            action.error,
            id(action.outputs),
            id(getattr(action, "subscription", None)),
            id(getattr(action, "value", None)),
        )
        if shown != self._details_for:
            self._details_for = shown
            self.details.value = action_details_html(action)
        waiting = action.status == "Waiting" and bool(action.callback_url)
        if waiting:
            self._ensure_waiting_widgets()
            assert self._url is not None
            self._url.set(action.callback_url or "")
        if self.waiting is not None:
            _show(self.waiting, waiting)
            if not waiting:  # the step ended: what a test send answered is over with it
                self.send_result.value = ""
        self._tick()

    def _set_status(self, status: str) -> None:
        self.status.value = status
        _color(self.status, status)

    def _tick(self) -> None:
        action = self.action
        if action is None:
            return
        ended = f" → {clock(action.ended)}" if action.ended else ""
        self.times.value = (
            f"{clock(action.started)}{ended} · {duration(action.started, action.ended)}"
        )
        # Counted from the current whole second, the value changes exactly when the ticker
        # fires (on whole seconds), whenever the view was last refreshed in between.
        now = float(int(time.time()))
        waiting = action.status == "Waiting"
        self.countdown.value = countdown(action.deadline, now) if waiting else ""

    def _ensure_waiting_widgets(self) -> None:
        if self.waiting is not None:
            return
        self._url = _UrlField("hooknb-step-callback-url")
        self.callback_url = self._url.widget
        self.url_warning = _warning_label("hooknb-step-url-warning")
        self.test_body = _test_body_field()
        self.send_button = _send_test_button(
            "hooknb-step-send-test",
            "POST the JSON body on the left to this step's callback URL, as the service would",
            self._send_test,
        )
        self.send_result = _send_result_label()
        self.waiting = widgets.VBox(
            [
                self.callback_url,
                self.url_warning,
                widgets.HBox(
                    [self.test_body, self.send_button],
                    layout=widgets.Layout(align_items="center", grid_gap="0 1em"),
                ),
                self.send_result,
            ]
        )
        self.children = (*self.children[:1], self.waiting, *self.children[1:])
        _track(self)
        show_reachability(self.run_view.run.hub, self.url_warning)

    def _send_test(self, _button: Any = None) -> None:
        action = self.action
        if action is None or not action.callback_url:
            return
        # The answer may come after the step has ended: refresh clears it then.
        _post_test(self.run_view.run.hub.loop, action.callback_url, self, after=self.refresh)


class RunView(widgets.VBox):
    """The live timeline of one run: its status, one row per step (the trigger first), the
    result or error, and a Cancel button while it is going."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run
        self.title = widgets.HTML(
            f"<b>{_html(run.workflow.name)}</b> · run <code>{_html(run.id)}</code>"
        )
        self.status = _label("hooknb-status", bold=True)
        self.times = _label("hooknb-run-times")
        self.cancel_button = _button(
            "Cancel",
            "hooknb-cancel",
            style="warning",
            icon="stop",
            tip="cancel the run: a waiting step unsubscribes and the run ends Cancelled",
        )
        self.cancel_button.on_click(self._cancel)
        self.message = _label("hooknb-message")
        # An adopted run says so: its code ran again from the start against its history.
        self.replayed = _note("hooknb-replayed")
        self.replayed.value = _html(replay_note(run))
        _show(self.replayed, bool(self.replayed.value))
        self.trigger_row: StepRow | None = None
        self.steps: dict[str, StepRow] = {}
        self.step_box = widgets.VBox()
        self.result = widgets.HTML()
        self.result.add_class("hooknb-result")
        header = widgets.HBox(
            [self.title, self.status, self.times, self.cancel_button, self.message],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap", grid_gap="0 1em"),
        )
        super().__init__(
            [header, self.replayed, self.step_box, self.result],
            layout=widgets.Layout(border="1px solid #e0e0e0", padding="4px", margin="2px 0"),
        )
        self.add_class("hooknb-run")
        self.trigger_row = StepRow(self, None)
        self.step_box.children = (self.trigger_row,)
        self.refresh()
        run.observe(self._observed)

    def _observed(self, _run: LiveRun) -> None:
        self.refresh()

    def close(self) -> None:
        """Close the view's widget model and stop following the run."""
        run = getattr(self, "run", None)
        if run is not None:
            run.unobserve(self._observed)
            _on_loop(run.hub.loop, _ticker(run.hub.loop).discard, self)
            if _views.get(run) is self:
                del _views[run]
        super().close()

    def refresh(self) -> None:
        """Bring every widget of the view up to the run's state."""
        run = self.run
        added = [name for name in run.actions if name not in self.steps]
        for name in added:
            self.steps[name] = StepRow(self, run.actions[name])
        if added:
            self.step_box.children = (*self.step_box.children, *(self.steps[n] for n in added))
            _track(self.step_box)
        for name, row in self.steps.items():
            if name not in added:
                row.refresh()
        self.result.value = result_html(run)
        _show(self.cancel_button, not run.done)
        self._tick()
        ticker = _ticker(run.hub.loop)
        if run.done:
            _on_loop(run.hub.loop, ticker.discard, self)
        else:
            _on_loop(run.hub.loop, ticker.add, self)

    def _tick(self) -> bool:
        run = self.run
        self.status.value = f"{run.status} · {self._summary()}"
        _color(self.status, run.status)
        ended = f" · ended {clock(run.ended)}" if run.ended else ""
        self.times.value = f"started {clock(run.started)}{ended}"
        for row in self.steps.values():
            if row.action is not None and row.action.ended is None:
                row._tick()
        return not run.done

    def _summary(self) -> str:
        run = self.run
        took = duration(run.started, run.ended)
        if run.done:
            return f"in {took}"
        waiting = [a.name for a in run.actions.values() if a.status == "Waiting"]
        if waiting:
            return f"for {', '.join(waiting)} · {took}"
        return took

    def _cancel(self, _button: Any = None) -> None:
        # Not run.cancel(), which waits for the run to end: a click must never block.
        if self.run._request_cancel():
            self.message.value = "cancelling…"
        else:
            self.message.value = "the run has already ended"


def _html(value: Any) -> str:
    import html

    return html.escape(str(value), quote=True)


# -- workflows ------------------------------------------------------------------------------------


class WorkflowView(widgets.VBox):
    """A workflow: trigger state with Enable/Disable, the trigger's callback URL with "Send
    test callback", and its runs in this kernel (newest first), each a live :class:`RunView`."""

    def __init__(self, workflow: LiveWorkflow) -> None:
        self.workflow = workflow
        self.title = widgets.HTML(f"<b>Workflow</b> <b>{_html(workflow.name)}</b>")
        self.trigger_state = _label("hooknb-trigger-state", width="6em", bold=True)
        self.enable_button = _button(
            "Enable", "hooknb-enable", style="success", icon="play", tip="subscribe the trigger"
        )
        self.disable_button = _button(
            "Disable", "hooknb-disable", icon="pause", tip="unsubscribe the trigger"
        )
        self.enable_button.on_click(self._enable)
        self.disable_button.on_click(self._disable)
        self.message = _label("hooknb-message")
        self.trigger = widgets.HTML(trigger_html(workflow))
        self._url = _UrlField("hooknb-trigger-callback-url")
        self.callback_url = self._url.widget
        self.test_body = _test_body_field()
        self.send_button = _send_test_button(
            "hooknb-trigger-send-test",
            "POST the JSON body on the left to the trigger's callback URL: it starts a run",
            self._send_test,
        )
        self.send_result = _send_result_label()
        self.url_warning = _warning_label("hooknb-trigger-url-warning")
        self.test_box = widgets.VBox(
            [
                widgets.HBox(
                    [self.test_body, self.send_button],
                    layout=widgets.Layout(align_items="center", grid_gap="0 1em"),
                ),
                self.send_result,
            ]
        )
        # Runs whose kernel is gone: adopted here, or held by another kernel (see refresh).
        self.note = _note("hooknb-workflow-note")
        # Runs of this workflow that wait with no kernel (another kernel started them and is
        # gone): they continue when a kernel defines the workflow again.
        self.orphans = _note("hooknb-orphans")
        _show(self.orphans, False)
        self._orphans_asked = 0.0
        self._orphans_later = False
        self._warned = False
        self.runs_title = widgets.HTML()
        self.runs_box = widgets.VBox()
        self.run_views: list[RunView] = []
        self._busy = False
        header = widgets.HBox(
            [
                self.title,
                self.trigger_state,
                self.enable_button,
                self.disable_button,
                self.message,
            ],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap", grid_gap="0 1em"),
        )
        super().__init__(
            [
                header,
                self.note,
                self.orphans,
                self.trigger,
                self.callback_url,
                self.url_warning,
                self.test_box,
                self.runs_title,
                self.runs_box,
            ],
            layout=widgets.Layout(border="1px solid #cfd8dc", padding="6px"),
        )
        self.add_class("hooknb-workflow")
        if workflow._hub is not None:  # don't connect just to show a workflow
            for run in workflow.runs[-MAX_RUNS_SHOWN:]:
                self._add_run(run)
        self.refresh()
        workflow.observe(self._observed)

    def _observed(self, _workflow: LiveWorkflow, run: LiveRun | None) -> None:
        if run is not None:
            self._add_run(run)
        self.refresh()

    def close(self) -> None:
        """Close the view's widget model and stop following the workflow (the views of its
        runs stay: they may be shown elsewhere too)."""
        workflow = getattr(self, "workflow", None)
        if workflow is not None:
            workflow.unobserve(self._observed)
            if _views.get(workflow) is self:
                del _views[workflow]
        super().close()

    def _add_run(self, run: LiveRun) -> None:
        if any(v.run is run for v in self.run_views):
            return
        shown = run_view(run)
        self.run_views = [shown, *self.run_views][:MAX_RUNS_SHOWN]
        self.runs_box.children = tuple(self.run_views)
        _track(self.runs_box)

    def refresh(self) -> None:
        """Bring the view up to the workflow's state."""
        workflow = self.workflow
        state = trigger_state(workflow)
        self.trigger_state.value = state
        _color(self.trigger_state, state)
        manual = workflow.trigger is None
        for widget in (self.enable_button, self.disable_button):
            _show(widget, not manual)
        self.enable_button.disabled = self._busy or state == "Enabled"
        self.disable_button.disabled = self._busy or state != "Enabled"
        self.send_button.disabled = state != "Enabled"
        url = workflow.callback_url
        if url and not self._warned and workflow._hub is not None:
            self._warned = True
            show_reachability(self.workflow.hub, self.url_warning)
        note = workflow_note(workflow)
        self.note.value = _html(note)
        self._ask_orphans()
        _show(self.note, bool(note))
        _show(self.callback_url, bool(url))
        _show(self.test_box, bool(url))  # stays once enabled: the URL outlives a disable
        self._url.set(url or "")
        total = len(workflow.runs) if workflow._hub is not None else len(self.run_views)
        if total:
            shown = f", the last {MAX_RUNS_SHOWN}" if total > MAX_RUNS_SHOWN else ""
            self.runs_title.value = f"{total} run{'s' if total != 1 else ''} in this kernel{shown}:"
        else:
            self.runs_title.value = ""

    def _ask_orphans(self) -> None:
        """Count, in the background, this workflow's unfinished runs whose kernel is gone
        (at most every 2 s: a view refreshes with every change of every run)."""
        workflow = self.workflow
        # Until this kernel's adoption is done, the runs it is adopting still look orphaned.
        if workflow._hub is None or getattr(workflow, "adoption", None) is None:
            return
        hub, name = workflow.hub, workflow.name
        wait = 2.0 - (time.monotonic() - self._orphans_asked)
        if wait > 0:  # asked a moment ago: ask again then, so the note is never left stale
            if not self._orphans_later:
                self._orphans_later = True
                hub.loop.call_later(wait, self._ask_orphans_later)
            return
        self._orphans_asked = time.monotonic()

        async def ask() -> int:
            gone = 0
            for status in ("Queued", "Running", "Waiting"):
                answer = await hub.request(
                    "GET", "hooknb/api/runs", params={"workflow": name, "status": status}
                )
                gone += sum(1 for run in answer["runs"] if run.get("kernel") == "gone")
            return gone

        def show(count: Any, exc: BaseException | None) -> None:
            if exc is not None:
                return  # the note is a courtesy; the page and %hooknb runs say it too
            self.orphans.value = _html(orphans_note(name, int(count))) if count else ""
            _show(self.orphans, bool(count))
            if count and not self._orphans_later:  # until they are adopted or ended elsewhere
                self._orphans_later = True
                hub.loop.call_later(10.0, self._ask_orphans_later)

        _spawn(hub.loop, ask(), show)

    def _ask_orphans_later(self) -> None:
        self._orphans_later = False
        if self.comm is not None:  # not for a closed view
            self._ask_orphans()

    def _enable(self, _button: Any = None) -> None:
        self._act("enabling…", "enable_async", "subscribed")

    def _disable(self, _button: Any = None) -> None:
        self._act("disabling…", "disable_async", "unsubscribed")

    def _act(self, doing: str, method: str, done_text: str) -> None:
        if self._busy:
            return
        try:
            hub = self.workflow.hub
        except Exception as exc:
            self.message.value = _error_text(exc)
            return
        self._busy = True
        self.message.value = doing
        self.refresh()

        def done(_value: Any, exc: BaseException | None) -> None:
            self._busy = False
            self.message.value = done_text if exc is None else _error_text(exc)
            self.refresh()

        _spawn(hub.loop, getattr(self.workflow, method)(), done)

    def _send_test(self, _button: Any = None) -> None:
        url = self.workflow.callback_url
        if not url:
            self.send_result.value = "enable the workflow first"
            return
        _post_test(self.workflow.hub.loop, url, self, after=self.refresh)
