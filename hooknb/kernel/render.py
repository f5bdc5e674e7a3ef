"""Plain-text and HTML views of workflows and runs (consoles, nbconvert, papermill, logs)."""

from __future__ import annotations

import html
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Action, Run, Workflow

_PREVIEW = 300


def _clock(timestamp: float | None) -> str:
    if timestamp is None:
        return "--:--:--"
    return datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")[:-3]


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    seconds = (end if end is not None else time.time()) - start
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def preview(value: Any, limit: int = _PREVIEW) -> str:
    """A one-line preview of a body: JSON text, truncated, with the full size when cut."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    if len(text) > limit:
        return text[:limit] + f"... ({len(text)} chars)"
    return text


def action_line(action: Action) -> str:
    detail = ""
    if action.status == "Waiting" and action.deadline:
        detail = f"  deadline {_clock(action.deadline)}"
    elif action.outputs is not None:
        detail = f"  -> {preview(action.outputs.body, 120)}"
    elif action.error:
        detail = f"  ! {action.error}"
    timing = _duration(action.started, action.ended)
    return f"  {_clock(action.started)}  {action.name:<20} {action.status:<10} {timing:>9}{detail}"


def run_text(run: Run) -> str:
    lines = [
        f"Run {run.id} of {run.workflow.name}: {run.status} ({_duration(run.started, run.ended)})",
        f"  {_clock(run.started)}  {'trigger':<20} {'Succeeded':<10} {'':>9}"
        f"  <- {preview(run.trigger.body, 120)}",
    ]
    lines.extend(action_line(action) for action in run.actions.values())
    if run.error:
        lines.append(f"  error: {run.error}")
    elif run.status == "Succeeded":
        lines.append(f"  result: {preview(run.result, 200)}")
    return "\n".join(lines)


def run_html(run: Run) -> str:
    rows = [
        "<tr><td>trigger</td><td>Succeeded</td><td></td>"
        f"<td><code>{html.escape(preview(run.trigger.body))}</code></td></tr>"
    ]
    for action in run.actions.values():
        shown = (
            preview(action.outputs.body)
            if action.outputs is not None
            else (
                action.error or (f"waiting at {action.callback_url}" if action.callback_url else "")
            )
        )
        rows.append(
            f"<tr><td>{html.escape(action.name)}</td><td>{html.escape(action.status)}</td>"
            f"<td>{_duration(action.started, action.ended)}</td>"
            f"<td><code>{html.escape(shown)}</code></td></tr>"
        )
    footer = html.escape(run.error or preview(run.result, 500))
    return (
        f"<div class='hooknb-run'><b>Run {html.escape(run.id)}</b> of "
        f"<b>{html.escape(run.workflow.name)}</b>: {html.escape(run.status)} "
        f"({_duration(run.started, run.ended)})<table>{''.join(rows)}</table>"
        f"<div>{footer}</div></div>"
    )


def workflow_text(workflow: Workflow) -> str:
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
        lines.append(f"  run {run.id}: {run.status} ({_duration(run.started, run.ended)})")
    return "\n".join(lines)
