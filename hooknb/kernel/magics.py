"""``%load_ext hooknb``: Logic Apps HttpWebhook definitions as cell magics, and line magics.

Cell magics take the definition the way Logic Apps' code view shows it, as JSON or YAML: the
whole object (``{"type": "HttpWebhook", "inputs": {"subscribe": ..., "unsubscribe": ...}}``)
or just its ``inputs``::

    %%hooknb trigger orders          defines and enables workflow `orders`, shows it live
    %%hooknb action Approval [--workflow adhoc] [--timeout PT10M]
                                     runs the action once as a one-step manual run
    %%hooknb workflow NAME [...]     a whole workflow definition (hooknb.kernel.magics_workflow)

Line magics::

    %hooknb list | runs [NAME] | url NAME | enable NAME | disable NAME | cancel RUN_ID | status
    %hooknb delete NAME | triggers NAME

Runs of a ``%%hooknb trigger`` workflow call the Python handler registered with
``@hooknb.handler("NAME")`` (looked up when each run starts), else their result is the trigger
body. Magics run synchronously in the kernel and use hooknb's sync API, which re-enters the
kernel's loop with nest_asyncio2.

A cell is a Logic Apps template that the user writes, so its strings are expressions as in
Logic Apps (``"@{listCallbackUrl()}"``, ``"@triggerBody()?['id']"``), each evaluated once when
the request is made; what an expression returns is data. (Python request dicts are literal
instead, with ``hooknb.CALLBACK_URL`` and ``hooknb.expr``: see :mod:`hooknb.kernel.placeholders`.)

The cells are read by :func:`hooknb.wdl.definitions.load_webhook`, with the checks a whole
workflow definition gets. Mistakes in a cell body raise ``UsageError`` (shown without a
traceback) naming the line of the cell and the field: ``line 4 column 9: not valid JSON:
Expecting ',' delimiter``, ``line 4: inputs.subscribe.uri: missing: the URL to call``. Nothing
is subscribed then.
"""

from __future__ import annotations

import keyword
import sys
from datetime import datetime
from typing import Any, Literal

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..errors import DefinitionError, HookNBError
from ..http_model import normalize_request
from ..wdl import referenced_functions
from ..wdl.definitions import WebhookDefinition, load, load_webhook
from ..wdl.durations import parse_duration
from .placeholders import from_template
from .registry import get_handler, on_register, run_handler
from .render import clock, duration, mapping_lines, seconds_text
from .run import Run
from .triggers import HttpWebhookTrigger
from .workflow import Workflow

Kind = Literal["trigger", "action"]

# -- the magics -----------------------------------------------------------------------------------


@magic_arguments("hooknb trigger")
@argument("name", help="the workflow's name")
@argument("--trigger-name", default="HTTP_Webhook", help="the trigger's name in the workflow")
def _trigger_args() -> None:
    """Define and enable workflow NAME with the HttpWebhook trigger in the cell (JSON/YAML)."""


@magic_arguments("hooknb action")
@argument("name", help="the action's (step's) name")
@argument("--workflow", "-w", default="adhoc", help="the manual workflow the run belongs to")
@argument("--timeout", "-t", default=None, help="ISO 8601 duration, e.g. PT10M")
def _action_args() -> None:
    """Run the HttpWebhook action in the cell (JSON/YAML) once, as a one-step manual run."""


@magic_arguments("hooknb runs")
@argument("name", nargs="?", default=None, help="only this workflow's runs")
@argument("--limit", "-n", type=int, default=20, help="how many (newest first)")
def _runs_args() -> None:
    """List runs known to the hub."""


@magic_arguments("hooknb url")
@argument("name", help="the workflow")
def _url_args() -> None:
    """The trigger's callback URL."""


@magic_arguments("hooknb enable")
@argument("name", help="the workflow")
def _enable_args() -> None:
    """Enable (subscribe) a workflow's trigger."""


@magic_arguments("hooknb disable")
@argument("name", help="the workflow")
def _disable_args() -> None:
    """Disable (unsubscribe) a workflow's trigger."""


@magic_arguments("hooknb delete")
@argument("name", help="the workflow")
def _delete_args() -> None:
    """Delete a workflow: unsubscribe, cancel its unfinished runs, close its callback URLs."""


@magic_arguments("hooknb triggers")
@argument("name", help="the workflow")
@argument("--limit", "-n", type=int, default=20, help="how many (newest first)")
def _triggers_args() -> None:
    """A workflow's trigger history: Fired, Skipped, Failed."""


@magic_arguments("hooknb cancel")
@argument("target", nargs="?", default=None, help="the run's id; with --orphaned a workflow")
@argument(
    "--orphaned",
    action="store_true",
    help="end every unfinished run no kernel runs (of workflow TARGET, or of all)",
)
def _cancel_args() -> None:
    """Cancel a run: a waiting step unsubscribes and the run ends Cancelled."""


_USAGE = """\
%%hooknb trigger NAME [--trigger-name T]   cell: a Logic Apps HttpWebhook trigger (JSON/YAML)
%%hooknb action NAME [--workflow W] [--timeout PT10M]
                                          cell: an HttpWebhook action, run once (W: adhoc)
%%hooknb workflow NAME [options]          cell: a whole Logic Apps workflow definition
%hooknb list                              workflows, trigger states, callback URLs
%hooknb runs [NAME] [--limit N]           runs, newest first
%hooknb url NAME                          the trigger's callback URL
%hooknb enable NAME | disable NAME        subscribe / unsubscribe the trigger
%hooknb cancel RUN_ID                     cancel a run
%hooknb delete NAME                       delete a workflow (unsubscribe, cancel its runs)
%hooknb triggers NAME [--limit N]         trigger history: Fired, Skipped, Failed
%hooknb cancel --orphaned [NAME]          end the runs whose kernel is gone (of NAME, or all)
%hooknb status                            the hub: URLs and whether services reach them, counts
A line may end with a # comment, as in Python.

A cell is a Logic Apps template: its strings are expressions ("@{listCallbackUrl()}"),
evaluated once when the request is made. (In Python dicts, use hooknb.CALLBACK_URL.)"""


def _parse(func: Any, line: str, *, cell: bool = False) -> Any:
    try:
        return parse_argstring(func, line)
    except UsageError as exc:
        # IPython formats usage as reStructuredText ("::" and an indented block); plain is
        # what a UsageError line needs.
        usage = " ".join(func.parser.format_usage().replace("::", "").split()).rstrip(".")
        raise UsageError(f"{exc}\nusage: {'%' if cell else ''}{usage}") from None


@magics_class
class HookNBMagics(Magics):
    """The ``%hooknb`` line magic and ``%%hooknb`` cell magic (``%load_ext hooknb``)."""

    @no_var_expand
    @line_cell_magic
    def hooknb(self, line: str, cell: str | None = None) -> Any:
        """Logic Apps HttpWebhook triggers and actions in the notebook.

        %%hooknb trigger NAME [--trigger-name T]      (cell: the trigger as JSON or YAML)
        %%hooknb action NAME [--workflow W] [--timeout PT10M]   (cell: the action)
        %%hooknb workflow NAME [options]   (cell: a whole Logic Apps workflow definition)
        %hooknb list | runs [NAME] | url NAME | enable NAME | disable NAME
        %hooknb cancel RUN_ID | cancel --orphaned [NAME] | status

        The line is taken literally (no $var expansion); for computed arguments use
        get_ipython().run_line_magic("hooknb", f"cancel {run.id}").
        """
        command, _, rest = _without_comment(line).strip().partition(" ")
        try:
            if cell is not None:
                return self._cell(command, rest, cell)
            return self._line(command, rest)
        except HookNBError as exc:  # the hub's answer is the message; a traceback adds nothing
            raise UsageError(str(exc)) from None

    def _cell(self, command: str, rest: str, cell: str) -> Any:
        if command == "trigger":
            return self._trigger(rest, cell)
        if command == "action":
            return self._action(rest, cell)
        if command == "workflow":
            return _workflow_definition(self.shell, rest, cell)
        raise UsageError(
            f"%%hooknb takes 'trigger', 'action' or 'workflow', not {command!r}\n{_USAGE}"
        )

    def _line(self, command: str, rest: str) -> Any:
        handlers = {
            "list": self._list,
            "runs": self._runs,
            "url": self._url,
            "enable": self._enable,
            "disable": self._disable,
            "cancel": self._cancel,
            "delete": self._delete,
            "triggers": self._triggers,
            "status": self._status,
        }
        if command in ("", "help"):
            print(_USAGE)
            return None
        if command in ("trigger", "action", "workflow"):
            raise UsageError(f"%%hooknb {command} is a cell magic: put the definition below it")
        if command not in handlers:
            raise UsageError(f"unknown %hooknb command {command!r}\n{_USAGE}")
        return handlers[command](rest)

    # -- cells ---------------------------------------------------------------------------------

    def _trigger(self, line: str, cell: str) -> None:
        args = _parse(_trigger_args, line, cell=True)
        definition = _checked(cell, "trigger")
        name = args.name

        async def run_workflow(run: Run) -> Any:
            return await run_handler(name, run)

        run_workflow.__doc__ = f"Runs of {name!r} call @hooknb.handler({name!r}) if defined."
        # The cell is a template the user wrote: its strings are expressions, as in Logic Apps.
        trigger = HttpWebhookTrigger.from_template(
            definition.subscribe,
            definition.unsubscribe,
            name=args.trigger_name,
            access_key_type=definition.access_key_type,
        )
        # With no Python handler yet, the server runs it (each run records the trigger's
        # outputs, kernel or not); registering a handler brings it back here (_run_here).
        workflow = Workflow(
            run_workflow,
            name=name,
            trigger=trigger,
            host="kernel" if get_handler(name) else "server",
            define=False,
        )
        workflow._use_definition(
            load({"triggers": {trigger.name: trigger.to_definition()}, "actions": {}})
        )
        workflow._define()
        if name.isidentifier() and not keyword.iskeyword(name):
            assert self.shell is not None  # a magic runs in a shell
            self.shell.user_ns[name] = workflow
        _warn_without_callback_url(definition)
        from IPython.display import display

        display(workflow)  # the live view follows the enabling below
        try:
            workflow.enable()
        except HookNBError as exc:
            raise UsageError(f"enabling workflow {name!r} failed: {exc}") from None

    def _action(self, line: str, cell: str) -> Run:
        args = _parse(_action_args, line, cell=True)
        definition = _checked(cell, "action")
        timeout = args.timeout or definition.timeout
        if args.timeout:
            try:
                parse_duration(args.timeout)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"--timeout: {exc}") from None
        _warn_without_callback_url(definition)
        from .client import default_hub

        hub = default_hub()
        existing = hub.workflows.get(args.workflow)
        if isinstance(existing, Workflow) and existing.trigger is not None:
            raise UsageError(
                f"workflow {args.workflow!r} has a trigger; --workflow names a manual workflow "
                "for one-off actions (default: adhoc)"
            )
        # The cell is a template the user wrote: its strings are expressions, as in Logic Apps.
        step = args.name
        subscribe = from_template(definition.subscribe)
        unsubscribe = from_template(definition.unsubscribe) if definition.unsubscribe else None

        async def one_step(run: Run) -> Any:
            reply = await run.webhook(step, subscribe, unsubscribe, timeout=timeout)
            return reply.body

        one_step.__doc__ = f"The HttpWebhook action {step!r}, run once."
        workflow = Workflow(one_step, name=args.workflow, hub=hub)
        return workflow.start(body={"action": step})

    # -- lines ---------------------------------------------------------------------------------

    def _hub(self) -> Any:
        from .client import default_hub

        return default_hub()

    def _list(self, line: str) -> None:
        if line.strip():
            raise UsageError("%hooknb list takes no arguments")
        hub = self._hub()
        records = {
            w["name"]: w for w in hub.call(hub.request("GET", "hooknb/api/workflows"))["workflows"]
        }
        names = sorted(set(records) | set(hub.workflows))
        if not names:
            print("no workflows yet")
            return
        width = max(len(n) for n in names)
        for name in names:
            record = records.get(name) or {}
            trigger = record.get("trigger")
            local = hub.workflows.get(name)
            if trigger:
                state, url = trigger.get("state", "?"), trigger.get("callbackUrl") or ""
            elif local is not None and local.trigger is not None:
                state, url = ("Enabled" if local.enabled else "Disabled"), local.callback_url or ""
            else:
                state, url = "Manual", ""
            print(f"{name:<{width}}  {state:<9} {_owner(hub, name, record)}")
            if url:
                print(f"{'':<{width}}  callback URL {url}")

    def _runs(self, line: str) -> None:
        args = _parse(_runs_args, line)
        hub = self._hub()
        params = {"limit": str(max(1, args.limit))}
        if args.name:
            params["workflow"] = args.name
        runs = hub.call(hub.request("GET", "hooknb/api/runs", params=params))["runs"]
        if not runs:
            print(f"no runs of {args.name!r}" if args.name else "no runs yet")
            return
        width = max(len(r["workflow"]) for r in runs)
        for record in runs:
            started, ended = record.get("started"), record.get("ended")
            took = duration(started, ended) if isinstance(started, int | float) else ""
            when = clock(started) if isinstance(started, int | float) else ""
            line = f"{record['id']}  {record['workflow']:<{width}}  {record['status']:<9} {when}"
            if record.get("kernel") == "gone":
                # Nothing runs it until a kernel defines its workflow again (and adopts it).
                line += (
                    f"  {record['status'].lower()}, no kernel: run the cell that defines "
                    f"`{record['workflow']}` to continue"
                )
            else:
                line += f"  {took}"
            print(line.rstrip())

    def _url(self, line: str) -> str:
        args = _parse(_url_args, line)
        hub = self._hub()
        local = hub.workflows.get(args.name)
        if local is not None and local.callback_url:
            local_url: str = local.callback_url
            return local_url
        record = hub.call(hub.request("GET", f"hooknb/api/workflows/{_quote(args.name)}"))
        trigger = record.get("trigger") or {}
        if not trigger.get("callbackUrl"):
            raise UsageError(f"workflow {args.name!r} has no HttpWebhook trigger")
        url: str = trigger["callbackUrl"]
        return url

    def _enable(self, line: str) -> None:
        args = _parse(_enable_args, line)
        workflow = self._hub().workflows.get(args.name)
        if workflow is None:
            raise UsageError(
                f"no workflow {args.name!r} in this kernel: define it (%%hooknb trigger) first"
            )
        workflow.enable()
        print(f"workflow {args.name!r}: Enabled, callback URL {workflow.callback_url}")

    def _disable(self, line: str) -> None:
        args = _parse(_disable_args, line)
        hub = self._hub()
        workflow = hub.workflows.get(args.name)
        if workflow is not None:
            workflow.disable()
        else:  # defined in another kernel, or before a restart: the hub can still unsubscribe
            hub.call(hub.request("DELETE", f"hooknb/api/workflows/{_quote(args.name)}/trigger"))
        print(f"workflow {args.name!r}: Disabled (unsubscribed)")

    def _cancel(self, line: str) -> None:
        args = _parse(_cancel_args, line)
        hub = self._hub()
        if args.orphaned:
            self._cancel_orphaned(hub, args.target)
            return
        if not args.target:
            raise UsageError("%hooknb cancel takes a RUN_ID (or --orphaned [NAME])")
        run = hub.get_run(args.target)
        if run is None:
            record = hub.call(
                hub.request("POST", f"hooknb/api/runs/{_quote(args.target)}/cancel", {})
            )
            print(f"run {args.target}: cancel requested ({record.get('status', 'sent')})")
            return
        status = run.status
        try:
            if not run.cancel(timeout=10):
                print(f"run {run.id}: already {status}")
                return
        except TimeoutError:
            print(f"run {run.id}: cancelling ({run.status})")
            return
        print(f"run {run.id}: {run.status}")

    def _cancel_orphaned(self, hub: Any, name: str | None) -> None:
        """End the unfinished runs no kernel runs (the server cancels them; no kernel needed)."""
        body: dict[str, Any] = {"orphaned": True}
        if name:
            body["workflow"] = name
        answer = hub.call(hub.request("POST", "hooknb/api/runs/cancel", body))
        cancelled = list(answer.get("cancelled") or ())
        of = f" of {name!r}" if name else ""
        if not cancelled:
            print(f"no runs{of} wait without a kernel")
            return
        plural = "s" * (len(cancelled) != 1)
        print(f"cancelled {len(cancelled)} run{plural}{of} whose kernel was gone:")
        for run_id in cancelled:
            print(f"  {run_id}")

    def _delete(self, line: str) -> None:
        args = _parse(_delete_args, line)
        hub = self._hub()
        workflow = hub.workflows.get(args.name)
        try:
            if workflow is not None:
                answer = workflow.delete()
            else:  # defined in another kernel, or before a restart
                answer = hub.call(
                    hub.request("DELETE", f"hooknb/api/workflows/{_quote(args.name)}")
                )
        except HookNBError as exc:
            raise UsageError(f"deleting workflow {args.name!r} failed: {exc}") from None
        cancelled = len(answer.get("cancelled") or [])
        print(
            f"workflow {args.name!r}: deleted ({cancelled} unfinished run"
            f"{'s' if cancelled != 1 else ''} cancelled; its callback URLs answer 404)"
        )

    def _triggers(self, line: str) -> None:
        args = _parse(_triggers_args, line)
        hub = self._hub()
        path = f"hooknb/api/workflows/{_quote(args.name)}/triggers"
        history = hub.call(hub.request("GET", path, params={"limit": str(max(1, args.limit))}))
        entries = history["history"]
        if not entries:
            print(f"no trigger events of {args.name!r}")
            return
        for entry in entries:
            runs = ", ".join(entry.get("runs") or [])
            detail = f"runs {runs}" if runs else (entry.get("reason") or "")
            line_text = (
                f"{clock(entry['received'])}  {entry['status']:<7} {entry['code']}  {detail}"
            )
            print(line_text.rstrip())

    def _status(self, line: str) -> None:
        if line.strip():
            raise UsageError("%hooknb status takes no arguments")
        hub = self._hub()
        status = hub.call(hub.request("GET", "hooknb/api/status"))
        started = status.get("started")
        rows = {
            "hub": f"{hub.url} ({'embedded' if hub.embedded else hub.address.source})",
            "version": status.get("version"),
            "store": status.get("store"),
            "public base URL": status.get("publicBase"),
            "callback base": status.get("callbackBase"),
            "reachable": "yes" if status.get("reachable", True) else "no",
            "warning": status.get("warning"),
            "receiver": _receiver_text(status.get("receiver")),
            "up for": seconds_text(datetime.now().timestamp() - started)
            if isinstance(started, int | float)
            else "?",
            "workflows": f"{status.get('workflows')} "
            f"({status.get('enabledTriggers')} with an enabled trigger)",
            "runs": status.get("runs"),
            "open waits": status.get("openWaits"),
            "pending deliveries": status.get("pendingDeliveries"),
            "pending calls": status.get("pendingCalls"),
            "connected kernels": status.get("connectedKernels"),
        }
        print("\n".join(mapping_lines({k: v for k, v in rows.items() if v is not None})))


def _without_comment(line: str) -> str:
    """``line`` without a trailing ``# comment``, as Python reads one: a ``#`` outside quotes
    that starts the line or follows a space (``--parameters {"a": "#1"}`` keeps its ``#``)."""
    quote: str | None = None
    for i, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def _owner(hub: Any, name: str, record: dict[str, Any]) -> str:
    """Which kernel runs a workflow: this one, another (connected), the server, or none."""
    client, kernel = record.get("client"), record.get("kernel")
    local = hub.workflows.get(name)
    if (client is not None and client == hub.client_id) or (not record and local is not None):
        count = len(hub.runs_of(name))
        return f"this kernel ({count} run{'s' * (count != 1)} here)"
    if str(client).startswith("hooknb-worker-"):  # the server's definitions worker
        return "the server (its definitions worker)"
    if kernel == "connected":
        return f"another kernel (connected: {client})"
    if kernel == "gone":
        seen = record.get("lastSeen")
        when = f", last seen {_when(seen)}" if isinstance(seen, int | float) else ""
        return f"no kernel: its kernel is gone{when}; run the cell that defines it to take it"
    return "no kernel yet"


def _when(timestamp: float) -> str:
    """A past moment, short: the time today, else the date too."""
    moment = datetime.fromtimestamp(timestamp)
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def _receiver_text(receiver: Any) -> str | None:
    """The JupyterHub receiver's state in one line (None without a receiver)."""
    if not isinstance(receiver, dict):
        return None
    state = "registered" if receiver.get("registered") else "not registered"
    if receiver.get("error"):
        state += f" ({receiver['error']})"
    return f"{receiver.get('url')}: {state}"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _workflow_definition(shell: Any, line: str, cell: str) -> Any:
    # Whole workflow definitions are their own module (and feature); this magic only routes.
    from .magics_workflow import definition_magic

    return definition_magic(shell, line, cell)


def _checked(cell: str, kind: Kind) -> WebhookDefinition:
    try:
        # IPython passes the body; the user counts the %%hooknb line too. The hub's own check
        # of a request runs here as well, so that a request it would refuse names its line.
        return load_webhook(cell, kind, first_line=2, check_request=normalize_request)
    except DefinitionError as exc:
        raise UsageError(f"%%hooknb {kind}: {exc}") from None


def _warn_without_callback_url(definition: WebhookDefinition) -> None:
    # Legal, but almost always a mistake: the service is never told where to call back.
    if "listcallbackurl" not in referenced_functions(definition.subscribe):
        print(
            "hooknb: note: subscribe never sends @{listCallbackUrl()}, so the service is not "
            "told where to call back",
            file=sys.stderr,
        )


def _run_here(name: str) -> None:
    """A handler was registered for ``name``: a ``%%hooknb trigger`` workflow of that name the
    server runs comes back into this kernel, so its runs call the handler."""
    from .client import _default

    workflow = _default.workflows.get(name) if _default is not None else None
    if isinstance(workflow, Workflow) and workflow.host == "server":
        workflow.run_here()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hooknb``: register ``%hooknb`` / ``%%hooknb``."""
    if _run_here not in on_register:
        on_register.append(_run_here)
    ipython.register_magics(HookNBMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hooknb``: remove the magics again."""
    magics = ipython.magics_manager.magics
    magics["line"].pop("hooknb", None)
    magics["cell"].pop("hooknb", None)
