"""The run-time data that workflow functions (``trigger()``, ``body()``, ...) read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Context:
    """Everything an expression may look up while it is evaluated.

    All fields are optional; a function whose data is missing fails with an
    :class:`~hooknb.wdl.ExpressionError` that says what is missing. Mappings
    are read, never modified, and values taken from them are returned as is
    (not copied).

    Attributes:
        callback_url: what ``listCallbackUrl()`` returns. ``None`` outside the
            subscribe/unsubscribe inputs of an HttpWebhook trigger or action.
        trigger: the trigger object: ``{"name", "outputs": {"headers", "body",
            "queries", ...}, "startTime", "clientTrackingId", ...}``; read by
            ``trigger()``, ``triggerBody()`` and ``triggerOutputs()``.
        actions: action objects by name (``name, inputs, outputs: {headers,
            body, statusCode}, status, code, startTime, endTime, ...``); read by
            ``actions()``, ``body()`` and ``outputs()``.
        action: the current action, for ``action()``; in a webhook action's
            unsubscribe inputs this is the result of the subscribe request.
        parameters: workflow parameter values, for ``parameters()``.
        workflow: ``{"name", "id", "type", "location", "run": {"name", "id",
            "type"}, "tags"}``, for ``workflow()``.
        variables: variable values, for ``variables()``.
        items: the current item of each enclosing For_each loop by loop name,
            outermost first; ``items(name)`` reads one, ``item()`` the last.
        iteration_indexes: current index of each enclosing Until loop, for
            ``iterationIndexes()``.
        results: per scope name, the array ``result()`` returns.
        app_settings: Standard logic app settings, for ``appsetting()``.
        now: clock for ``utcNow()``, ``getFutureTime()`` and ``getPastTime()``;
            returns an aware datetime (a naive one is taken as UTC).
    """

    callback_url: str | None = None
    trigger: Mapping[str, Any] | None = None
    actions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    action: Mapping[str, Any] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    workflow: Mapping[str, Any] | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    items: Mapping[str, Any] = field(default_factory=dict)
    iteration_indexes: Mapping[str, int] = field(default_factory=dict)
    results: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    app_settings: Mapping[str, str] = field(default_factory=dict)
    now: Callable[[], datetime] = _utc_now
