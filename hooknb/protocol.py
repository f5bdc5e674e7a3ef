"""The JSON a kernel and the hub exchange about runs and waits, as TypedDicts.

Both sides import this module (it imports neither): the hub (``hooknb.server``) makes these
answers and events, a kernel's client (``hooknb.kernel``) reads them. They describe the
protocol; nothing checks them at run time (the hub validates what kernels send it on its own,
as input from outside). HTTP messages inside them travel in the forms of
:mod:`hooknb.http_model.wire`.

==========================  ===================================================================
:class:`RunReport`          a run as the kernel that runs it reports it (``POST api/sync``), and
                            as kernels showing the run hear it (``run-report`` notices)
:class:`OpenedWait`         the answer to ``POST api/runs/<run>/waits``: a webhook step's wait
:class:`Wait`               what every form of a wait holds; :class:`WaitState` a wait as a
                            run's history holds it, :class:`WaitView` as the answers of
                            ``api/waits/<id>`` (subscribe, cancel, ...) show it
:class:`WaitOutcome`        the event that ends a wait: a callback came, the deadline passed,
                            or the wait was cancelled
:class:`StepHistory`        one step of a run's history, and :class:`RunHistory` a run's
:class:`AdoptAnswer`        the answer to ``POST api/workflows/<name>/adopt``
==========================  ===================================================================
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from .http_model.wire import CallbackWire, ResponseWire

#: The statuses a run ends with: the hub and the kernel both stop following a run in one.
FINISHED_RUN_STATUSES = frozenset({"Succeeded", "Failed", "Cancelled", "TimedOut"})

__all__ = [
    "AdoptAnswer",
    "OpenedWait",
    "RunHistory",
    "RunReport",
    "StepHistory",
    "Wait",
    "WaitOutcome",
    "WaitState",
    "WaitView",
]

#: A wait's state in the hub: ``open`` (created), ``subscribing``, ``waiting`` (subscribed),
#: then one of the ends ``completed`` (a callback came), ``timedout``, ``cancelled``, ``failed``
#: (the subscribe request failed).
WaitStateName = Literal[
    "open", "subscribing", "waiting", "completed", "timedout", "cancelled", "failed"
]


class RunReport(TypedDict):
    """A run as its kernel reports it: status, times, every step, the result.

    ``actions`` maps each step's name to its report (``Action.to_report``); a report too large
    to send whole says why in ``reportProblem``.
    """

    id: str
    status: str
    started: float | None
    ended: float | None
    #: The trigger's name, ``manual`` for a run started from code.
    trigger: str
    actions: dict[str, dict[str, Any]]
    result: Any
    error: str | None
    response: NotRequired[Any]
    reportProblem: NotRequired[str]


class OpenedWait(TypedDict):
    """A webhook step's wait, just opened: its callback URL and deadline (epoch seconds)."""

    id: str
    run: str
    step: str
    callbackUrl: str
    deadline: float


class Wait(TypedDict):
    """What every form of a wait holds."""

    id: str
    state: WaitStateName
    #: The step's end in Logic Apps' words (``Succeeded``, ``TimedOut``, ...), None while open.
    outcome: str | None
    deadline: float
    #: None when the wait's key is gone (a hostile or damaged row).
    callbackUrl: str | None
    #: The unsubscribe call's state (``pending``, ``done``, ...), None without one.
    unsubscribe: str | None
    error: Any


class WaitState(Wait):
    """A wait as a run's history holds it."""

    #: The callback request that completed the wait.
    callback: CallbackWire | None
    #: The subscribe request's response, once subscribed.
    subscription: ResponseWire | None


class WaitView(Wait):
    """A wait as ``api/waits/<id>`` shows it: its state, where it belongs, and its calls."""

    #: The callback request that completed the wait, as views show one (credential headers
    #: masked; in a listing, its body cut).
    callback: dict[str, Any] | None
    #: The subscribe request's response, once subscribed; the text "Content not shown due to
    #: security configuration." when the step keeps its outputs secure (unless revealed to
    #: the kernel that runs the step).
    subscription: ResponseWire | str | None

    run: str
    workflow: str
    step: str
    client: str | None
    calls: list[dict[str, Any]]
    verify: dict[str, Any] | None
    created: float
    ended: float | None
    #: The parts (``inputs``, ``outputs``) the step keeps secure, when it keeps any.
    secure: NotRequired[list[str]]


class WaitOutcome(TypedDict):
    """The event (pushed on the kernel's channel, or read from a run's history on replay) that
    ends a wait: ``callback`` carries the request that came."""

    event: Literal["callback", "timedout", "cancelled"]
    #: With ``callback`` (and only then).
    callback: NotRequired[CallbackWire]


class StepHistory(TypedDict):
    """One step of a run's history: where it stands, and its recorded value (JSON text)."""

    step: str
    kind: str
    after: str | None
    first: bool
    position: int
    #: ``done`` (``value`` is its outcome) or ``running``.
    state: str
    value: str | None
    started: float | None
    ended: float | None
    #: A webhook step's wait.
    wait: NotRequired[WaitState]


class RunHistory(TypedDict):
    """What a kernel needs to replay a run: its trigger request and its steps in order."""

    id: str
    workflow: str
    status: str
    created: float
    started: float | None
    replays: int
    trigger: CallbackWire | None
    steps: list[StepHistory]


class AdoptAnswer(TypedDict):
    """The hub's answer to a kernel that defines a workflow: its lease, and the runs whose
    kernel is gone, to replay (``finalized``: runs cancelled while orphaned, now ended)."""

    lease: Literal["granted", "held", "pending"]
    runs: list[RunHistory]
    finalized: list[str]
    #: With ``held``: the kernel that holds the lease.
    holder: NotRequired[str]
