"""Plain-text and HTML views of workflows and runs (consoles, nbconvert, papermill, logs).

The live widgets in :mod:`hooknb.kernel.widgets` use the same formatting helpers, so a run looks
the same in a saved notebook as it did live. Everything that came from outside (bodies,
headers, URLs, error texts) is HTML-escaped: callback bodies are written by other services.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..http_model import redact
from .action import SECURED
from .outputs import Outputs, headers_dict, jsonable
from .placeholders import shown_template

if TYPE_CHECKING:
    from .action import Action
    from .triggers import Trigger


# What the views read of runs and workflows. Runs and workflows import this module to show
# themselves, so it names what it needs instead of importing them.


class RunOwnerShown(Protocol):
    """A run's workflow, as a view of the run reads it."""

    @property
    def name(self) -> str: ...
    @property
    def trigger(self) -> Trigger | None: ...


class RunShown(Protocol):
    """What a view reads of a run (a :class:`hooknb.Run`)."""

    @property
    def id(self) -> str: ...
    @property
    def workflow(self) -> RunOwnerShown: ...
    @property
    def status(self) -> str: ...
    @property
    def done(self) -> bool: ...
    @property
    def started(self) -> float: ...
    @property
    def ended(self) -> float | None: ...
    @property
    def trigger(self) -> Outputs: ...
    @property
    def actions(self) -> Mapping[str, Action]: ...
    @property
    def result(self) -> Any: ...
    @property
    def error(self) -> str | None: ...
    @property
    def traceback(self) -> str | None: ...


class WorkflowShown(Protocol):
    """What a view reads of a workflow (a :class:`hooknb.Workflow`)."""

    @property
    def name(self) -> str: ...
    @property
    def trigger(self) -> Trigger | None: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def callback_url(self) -> str | None: ...
    @property
    def runs(self) -> Sequence[RunShown]: ...
    # Read to avoid connecting (workflow.runs does) only to show a workflow.
    @property
    def _hub(self) -> object: ...


_PREVIEW = 300
#: How much of a body a view shows before cutting it (the size is always shown).
BODY_LIMIT = 4096
# Pretty-printing a multi-megabyte JSON body only to show its first 4 KiB is wasted work.
_PRETTY_LIMIT = 64 * 1024

STATUS_COLORS = {
    "Running": "#1565c0",
    "Waiting": "#b26a00",
    "Succeeded": "#2e7d32",
    "Failed": "#c62828",
    "TimedOut": "#c62828",
    "Cancelled": "#616161",
    "Skipped": "#9e9e9e",
    "Aborted": "#c62828",
    "Enabled": "#2e7d32",
    "Disabled": "#616161",
    "Manual": "#1565c0",
}


def clock(timestamp: float | None) -> str:
    """Local wall-clock time with milliseconds, or ``--:--:--``."""
    if timestamp is None:
        return "--:--:--"
    return datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")[:-3]


def duration(start: float | None, end: float | None) -> str:
    """``start`` to ``end`` (or to now, while still going) in readable units."""
    if start is None:
        return ""
    seconds = (end if end is not None else time.time()) - start
    return seconds_text(seconds)


def seconds_text(seconds: float) -> str:
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def countdown(deadline: float | None, now: float | None = None) -> str:
    """``deadline 12:04:05 · 9m 58s left`` for a waiting step (whole seconds, so it ticks)."""
    if deadline is None:
        return ""
    now = time.time() if now is None else now
    left = int(deadline - now)
    when = datetime.fromtimestamp(deadline).strftime("%H:%M:%S")
    if deadline - now > 86400:
        when = datetime.fromtimestamp(deadline).strftime("%Y-%m-%d %H:%M")
    if left < 0:
        return f"deadline {when} · passed {_span(-left)} ago"
    return f"deadline {when} · {_span(left)} left"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def size_text(size: int) -> str:
    return f"{size:,} bytes" if size != 1 else "1 byte"


def preview(value: Any, limit: int = _PREVIEW) -> str:
    """A one-line preview of a body: JSON text, truncated, with the full size when cut."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{size_text(len(value))}>"
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    if len(text) > limit:
        return text[:limit] + f"... ({len(text):,} chars)"
    return text


def body_text(outputs: Outputs | None, limit: int = BODY_LIMIT) -> tuple[str, str]:
    """A body for a view: ``(text, note)``. JSON is pretty-printed; a body over ``limit`` is
    cut (the note gives its full size); a binary body is shown as its size and content type."""
    if outputs is None or (outputs.body is None and not outputs.raw):
        return "", "no body"
    size = len(outputs.raw) if outputs.raw else len(preview(outputs.body, 1 << 62).encode())
    kind = outputs.content_type or "no content type"
    body = outputs.body
    if isinstance(body, bytes):
        return "", f"binary body: {size_text(size)}, {kind}"
    if isinstance(body, str):
        text = body
    elif size <= _PRETTY_LIMIT:
        text = json.dumps(body, indent=2, ensure_ascii=False, default=repr)
    else:
        text = outputs.raw[: limit * 2].decode("utf-8", "replace")
    note = f"{size_text(size)}, {kind}"
    if len(text) > limit:
        text = text[:limit]
        note = f"showing the first {limit:,} characters of {size_text(size)}, {kind}"
    return text, note


def headers_of(outputs: Outputs | None) -> dict[str, str]:
    """Headers in the sender's spelling, credentials masked (views end up in shared notebooks)."""
    if outputs is None:
        return {}
    shown: dict[str, str] = redact({"headers": headers_dict(outputs.headers)})["headers"]
    return shown


def json_text(value: Any, limit: int = BODY_LIMIT) -> str:
    """Indented JSON of an inputs object, cut to ``limit`` characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
    if len(text) > limit:
        return text[:limit] + f"\n... ({len(text):,} characters)"
    return text


# -- HTML fragments (also used inside the widgets' HTML panes) -----------------------------------

_PRE = "margin:2px 0 6px 0;max-height:24em;overflow:auto;white-space:pre-wrap;font-size:12px"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def status_html(status: str) -> str:
    color = STATUS_COLORS.get(status, "inherit")
    return f"<span style='color:{color};font-weight:600'>{_e(status)}</span>"


def outputs_html(outputs: Outputs | None, title: str = "Outputs") -> str:
    """An expandable ``<details>`` block with the headers, queries and body of ``outputs``."""
    if outputs is None:
        return ""
    parts = []
    if outputs.status_code is not None:
        parts.append(f"<div>status code <code>{outputs.status_code}</code></div>")
    headers = headers_of(outputs)
    if headers:
        rows = "".join(
            f"<tr><td style='padding-right:1em'><code>{_e(k)}</code></td><td><code>{_e(v)}</code>"
            "</td></tr>"
            for k, v in headers.items()
        )
        parts.append(f"<div>headers</div><table style='font-size:12px'>{rows}</table>")
    if outputs.queries:
        parts.append(
            f"<div>queries</div><pre style='{_PRE}'>{_e(json_text(outputs.queries))}</pre>"
        )
    text, note = body_text(outputs)
    parts.append(f"<div>body <span style='opacity:.7'>({_e(note)})</span></div>")
    if text:
        parts.append(f"<pre style='{_PRE}'>{_e(text)}</pre>")
    return f"<details><summary>{_e(title)}</summary>{''.join(parts)}</details>"


def inputs_html(inputs: Any, title: str = "Inputs") -> str:
    if inputs is None:
        return ""
    text = _e(json_text(inputs))
    return f"<details><summary>{_e(title)}</summary><pre style='{_PRE}'>{text}</pre></details>"


def value_html(value: Any, title: str = "Outputs") -> str:
    """An expandable block with a step's non-HTTP output (a Compose's or Python step's value)."""
    text = _e(json_text(jsonable(value)))
    return f"<details><summary>{_e(title)}</summary><pre style='{_PRE}'>{text}</pre></details>"


def _trigger_preview(run: RunShown) -> str:
    if "outputs" in getattr(run.workflow.trigger, "secure", ()):
        return SECURED
    return preview(run.trigger.body, 120)


def trigger_outputs_html(run: RunShown) -> str:
    """A run's trigger outputs, expandable; :data:`~hooknb.kernel.action.SECURED` when its
    trigger keeps its outputs secure."""
    if "outputs" in getattr(run.workflow.trigger, "secure", ()):
        return value_html(SECURED, "Trigger outputs")
    return outputs_html(run.trigger, "Trigger outputs")


def action_details_html(action: Action) -> str:
    """Inputs, subscribe response, outputs and error of a step, each expandable; the parts
    the step keeps secure as :data:`~hooknb.kernel.action.SECURED`."""
    secure: Collection[str] = getattr(action, "secure", frozenset())
    parts = [inputs_html(SECURED if "inputs" in secure else action.inputs)]
    if "outputs" in secure:
        parts.append(value_html(SECURED))
        if action.error:
            parts.append(f"<div style='color:{STATUS_COLORS['Failed']}'>{_e(action.error)}</div>")
        return "".join(parts)
    subscription = getattr(action, "subscription", None)
    if subscription is not None:
        parts.append(outputs_html(subscription, "Subscribe response"))
    if _is_http(action.outputs):
        parts.append(outputs_html(action.outputs))
    elif action.outputs is not None:
        parts.append(value_html(action.outputs))
    elif (value := getattr(action, "value", None)) is not None:
        parts.append(value_html(value))
    if action.error:
        parts.append(f"<div style='color:{STATUS_COLORS['Failed']}'>{_e(action.error)}</div>")
    return "".join(parts)


def result_html(run: RunShown) -> str:
    """The run's result, or its error with the traceback expandable."""
    if run.error:
        color = STATUS_COLORS.get(run.status, STATUS_COLORS["Failed"])
        out = f"<div style='color:{color}'>{_e(run.error)}</div>"
        if run.traceback:
            out += (
                f"<details><summary>Traceback</summary><pre style='{_PRE}'>"
                f"{_e(run.traceback)}</pre></details>"
            )
        return out
    if run.status == "Succeeded":
        text = json_text(jsonable(run.result))
        return f"<details><summary>Result</summary><pre style='{_PRE}'>{_e(text)}</pre></details>"
    return ""


def replay_note(run: Any) -> str:
    """What an adopted run says about itself (``run.replays`` > 0), else ``""``."""
    replays = int(getattr(run, "replays", 0) or 0)
    if not replays:
        return ""
    times = "" if replays == 1 else f" ({replays} times)"
    return (
        f"adopted after its kernel was gone{times}: replayed from its history (recorded steps "
        "returned their outputs without running again), it continues here"
    )


def orphans_note(name: str, count: int) -> str:
    """What a workflow's view says of its unfinished runs that no kernel runs."""
    runs = "1 run" if count == 1 else f"{count} runs"
    return (
        f"{runs} of this workflow {'waits' if count == 1 else 'wait'} with no kernel: run the "
        f"cell that defines `{name}` to continue, or %hooknb cancel --orphaned {name}"
    )


def workflow_note(workflow: Any) -> str:
    """What a workflow's adoption of runs whose kernel was gone came to, for its views."""
    answer = getattr(workflow, "adoption", None)
    if not isinstance(answer, Mapping):
        return ""
    if answer.get("lease") == "held":
        return (
            f"run by another kernel that is connected ({answer.get('holder')}): its trigger's "
            "runs and runs whose kernel is gone go there, not here; runs started here run here"
        )
    adopted = len(answer.get("runs") or ())
    if adopted == 1:
        return (
            "adopted 1 unfinished run whose kernel was gone: replayed from its history, "
            "it continues here"
        )
    if adopted:
        return (
            f"adopted {adopted} unfinished runs whose kernel was gone: replayed from their "
            "history, they continue here"
        )
    return ""


def _is_http(value: Any) -> bool:
    return isinstance(value, Outputs)


def trigger_name(run: RunShown) -> str:
    return run.workflow.trigger.name if run.workflow.trigger else "manual"


# -- plain text -----------------------------------------------------------------------------------


def action_line(action: Action) -> str:
    detail = ""
    if action.status == "Waiting" and action.deadline:
        detail = f"  {countdown(action.deadline)}"
    elif "outputs" in getattr(action, "secure", ()):
        detail = f"  -> {SECURED}"
    elif _is_http(action.outputs):
        detail = f"  -> {preview(getattr(action.outputs, 'body', None), 120)}"
    elif (value := getattr(action, "value", None)) is not None:
        detail = f"  -> {preview(jsonable(value), 120)}"
    elif action.error:
        detail = f"  ! {action.error}"
    timing = duration(action.started, action.ended)
    return f"  {clock(action.started)}  {action.name:<20} {action.status:<10} {timing:>9}{detail}"


def run_text(run: RunShown) -> str:
    lines = [
        f"Run {run.id} of {run.workflow.name}: {run.status} ({duration(run.started, run.ended)})",
        f"  {clock(run.started)}  {trigger_name(run):<20} {'Succeeded':<10} {'':>9}"
        f"  <- {_trigger_preview(run)}",
    ]
    if note := replay_note(run):
        lines.insert(1, f"  ({note})")
    for action in run.actions.values():
        lines.append(action_line(action))
        if action.status == "Waiting" and action.callback_url:
            lines.append(f"{'':>16}callback URL {action.callback_url}")
    if run.error:
        lines.append(f"  error: {run.error}")
    elif run.status == "Succeeded":
        lines.append(f"  result: {preview(jsonable(run.result), 200)}")
    return "\n".join(lines)


def workflow_text(workflow: WorkflowShown) -> str:
    trigger = workflow.trigger
    state = "enabled" if workflow.enabled else "not enabled"
    lines = [
        f"Workflow {workflow.name!r}: {trigger!r} ({state})"
        if trigger
        else f"Workflow {workflow.name!r}: manual trigger"
    ]
    if workflow.callback_url:
        lines.append(f"  callback URL: {workflow.callback_url}")
    runs = workflow.runs if workflow._hub is not None else []
    for run in runs[-10:]:
        lines.append(f"  run {run.id}: {run.status} ({duration(run.started, run.ended)})")
    return "\n".join(lines)


# -- static HTML (nbconvert, papermill; the widgets are the live version) -------------------------


def _step_row(
    name: str, status: str, started: float | None, ended: float | None, detail: str
) -> str:
    return (
        f"<tr><td>{_e(name)}</td><td>{status_html(status)}</td><td>{clock(started)}</td>"
        f"<td>{_e(duration(started, ended))}</td><td>{detail}</td></tr>"
    )


def run_html(run: RunShown) -> str:
    rows = [
        _step_row(
            trigger_name(run),
            "Succeeded",
            run.started,
            run.started,
            trigger_outputs_html(run),
        )
    ]
    for action in run.actions.values():
        detail = action_details_html(action)
        if action.status == "Waiting" and action.callback_url:
            detail = (
                f"<div>{_e(countdown(action.deadline))}</div>"
                f"<div>callback URL <code style='user-select:all'>{_e(action.callback_url)}</code>"
                f"</div>{detail}"
            )
        rows.append(_step_row(action.name, action.status, action.started, action.ended, detail))
    return (
        f"<div class='hooknb-static-run'><div><b>Run</b> <code>{_e(run.id)}</code> of "
        f"<b>{_e(run.workflow.name)}</b>: {status_html(run.status)} "
        f"({_e(duration(run.started, run.ended))}, started {clock(run.started)})</div>"
        "<table><thead><tr><th>step</th><th>status</th><th>started</th><th>duration</th>"
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>{result_html(run)}</div>"
    )


def trigger_html(workflow: WorkflowShown) -> str:
    """What the trigger subscribes with (credentials masked), expandable."""
    trigger = workflow.trigger
    if trigger is None:
        return "<div>Manual trigger: start runs with <code>.start(body=...)</code></div>"

    subscribe = getattr(trigger, "subscribe", None)
    if not isinstance(subscribe, Mapping):  # another kind of trigger (Request, Recurrence)
        kind = _e(getattr(trigger, "type", type(trigger).__name__))
        summary = f"{kind} trigger <code>{_e(trigger.name)}</code>"
        to_definition = getattr(trigger, "to_definition", None)
        if to_definition is None:
            return f"<div>{summary}</div>"
        text = _e(json_text(to_definition()))
        return f"<details><summary>{summary}</summary><pre style='{_PRE}'>{text}</pre></details>"
    line = f"{subscribe.get('method', 'POST')} {subscribe.get('uri') or subscribe.get('url')}"
    definition = {
        "type": trigger.type,
        "inputs": {
            "subscribe": redact(shown_template(subscribe)),
            "unsubscribe": redact(shown_template(getattr(trigger, "unsubscribe", None) or {})),
        },
    }
    return (
        f"<details><summary>HttpWebhook trigger <code>{_e(trigger.name)}</code>: subscribe "
        f"<code>{_e(line)}</code></summary><pre style='{_PRE}'>{_e(json_text(definition))}</pre>"
        "</details>"
    )


def trigger_state(workflow: WorkflowShown) -> str:
    """``Enabled``, ``Disabled`` or ``Manual`` (a workflow without a trigger)."""
    if workflow.trigger is None:
        return "Manual"
    return "Enabled" if workflow.enabled else "Disabled"


def workflow_html(workflow: WorkflowShown) -> str:
    state = trigger_state(workflow)
    parts = [
        f"<div><b>Workflow</b> <b>{_e(workflow.name)}</b>: {status_html(state)}</div>",
        trigger_html(workflow),
    ]
    if workflow.callback_url:
        parts.append(
            f"<div>callback URL <code style='user-select:all'>{_e(workflow.callback_url)}</code>"
            "</div>"
        )
    runs = workflow.runs if workflow._hub is not None else []
    if runs:
        rows = "".join(
            f"<tr><td><code>{_e(r.id)}</code></td><td>{status_html(r.status)}</td>"
            f"<td>{clock(r.started)}</td><td>{_e(duration(r.started, r.ended))}</td></tr>"
            for r in reversed(runs[-10:])
        )
        parts.append(
            "<table><thead><tr><th>run</th><th>status</th><th>started</th><th>duration</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    return f"<div class='hooknb-static-workflow'>{''.join(parts)}</div>"


def mapping_lines(value: Mapping[str, Any]) -> list[str]:
    """``key: value`` lines, keys aligned (for the line magics' plain-text tables)."""
    width = max((len(str(k)) for k in value), default=0)
    return [f"{k!s:<{width}}  {v}" for k, v in value.items()]
