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

Runs of a ``%%hooknb trigger`` workflow call the Python handler registered with
``@hooknb.handler("NAME")`` (looked up when each run starts), else their result is the trigger
body. Magics run synchronously in the kernel and use hooknb's sync API, which re-enters the
kernel's loop with nest_asyncio2.

Mistakes in a cell body raise ``UsageError`` (shown without a traceback) naming the line of
the cell and the field: ``line 4, column 9: Expecting ',' delimiter (JSON)``, ``line 3:
inputs.subscribe.uri: missing; give the endpoint URL to call``. Nothing is subscribed then.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import yaml
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..errors import HookNBError
from ..http_model import normalize_request
from ..wdl import referenced_functions
from ..wdl.durations import parse_duration
from .registry import run_handler
from .render import clock, duration, mapping_lines, seconds_text
from .run import Run
from .triggers import HttpWebhookTrigger
from .workflow import Workflow

Kind = Literal["trigger", "action"]

# Top-level fields Logic Apps allows on the definition; the ones hooknb does not implement are
# accepted and ignored so a definition copied from the portal works as is.
_TRIGGER_FIELDS = (
    "type",
    "inputs",
    "conditions",
    "runtimeConfiguration",
    "operationOptions",
    "splitOn",
    "description",
    "metadata",
)
_ACTION_FIELDS = (
    "type",
    "inputs",
    "limit",
    "runAfter",
    "operationOptions",
    "runtimeConfiguration",
    "trackedProperties",
    "description",
    "metadata",
)
_INPUT_FIELDS = ("subscribe", "unsubscribe")


# -- parsing a definition -------------------------------------------------------------------------


class DefinitionError(ValueError):
    """A mistake in an HttpWebhook definition, with the line (and column) it is on."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class WebhookDefinition:
    """An HttpWebhook trigger or action definition, checked."""

    kind: Kind
    subscribe: dict[str, Any]
    unsubscribe: dict[str, Any] | None
    timeout: str | None
    document: dict[str, Any]


def parse_definition(source: str, kind: Kind = "trigger") -> WebhookDefinition:
    """Parse and check a Logic Apps HttpWebhook ``kind`` definition written as JSON or YAML.

    ``source`` is the whole object or just its ``inputs``. Raises :class:`DefinitionError`
    naming the line and the field that is wrong.
    """
    document = _load(source)
    where = _Locator(source)
    if not isinstance(document, dict):
        raise DefinitionError(
            f"expected the HttpWebhook {kind} as an object "
            '({"type": "HttpWebhook", "inputs": {...}}) or its inputs ({"subscribe": ...}), '
            f"not {_kind_of(document)}",
            where.first_line(),
        )
    timeout = None
    if "inputs" in document or "type" in document:
        allowed = _TRIGGER_FIELDS if kind == "trigger" else _ACTION_FIELDS
        _no_unknown(document, allowed, (), where, "")
        kind_type = document.get("type")
        if kind_type is None:
            raise DefinitionError('type is required: "HttpWebhook"', where.line(()))
        if not isinstance(kind_type, str) or kind_type.lower() != "httpwebhook":
            raise DefinitionError(
                f"type is {kind_type!r}; this magic takes an HttpWebhook {kind}",
                where.line(("type",)),
            )
        inputs = document.get("inputs")
        if inputs is None:
            raise DefinitionError("inputs is required (with subscribe and unsubscribe)", 1)
        if not isinstance(inputs, dict):
            raise DefinitionError(
                f"inputs must be an object with subscribe and unsubscribe, not {_kind_of(inputs)}",
                where.line(("inputs",)),
            )
        prefix: tuple[str, ...] = ("inputs",)
        if kind == "action":
            timeout = _limit_timeout(document, where)
    elif "subscribe" in document or "unsubscribe" in document:
        inputs, prefix = document, ()
    else:
        first = next(iter(document), None)
        raise DefinitionError(
            f"expected the HttpWebhook {kind} "
            '({"type": "HttpWebhook", "inputs": {...}}) or its inputs '
            f"(subscribe, unsubscribe); found {first!r}",
            where.line((str(first),)) if first is not None else where.first_line(),
        )
    _no_unknown(inputs, _INPUT_FIELDS, prefix, where, "inputs" if prefix else "")
    subscribe = inputs.get("subscribe")
    if subscribe is None:
        path = ".".join((*prefix, "subscribe"))
        raise DefinitionError(
            f"{path} is required: the HTTP request that subscribes the callback URL",
            where.line(prefix) if prefix else where.first_line(),
        )
    _check_request(subscribe, (*prefix, "subscribe"), where)
    unsubscribe = inputs.get("unsubscribe")
    if unsubscribe is not None and unsubscribe != {}:
        _check_request(unsubscribe, (*prefix, "unsubscribe"), where)
    else:
        unsubscribe = None
    return WebhookDefinition(kind, dict(subscribe), unsubscribe, timeout, document)


def trigger_from_definition(
    definition: str | Mapping[str, Any], *, name: str = "HTTP_Webhook"
) -> HttpWebhookTrigger:
    """An :class:`HttpWebhookTrigger` from a Logic Apps definition (JSON/YAML text or a dict)."""
    source = definition if isinstance(definition, str) else json.dumps(definition, indent=2)
    parsed = parse_definition(source, "trigger")
    return HttpWebhookTrigger(parsed.subscribe, parsed.unsubscribe, name=name)


def _load(source: str) -> Any:
    text = source.strip()
    if not text:
        raise DefinitionError(
            "the cell is empty: give the HttpWebhook definition as JSON or YAML "
            '({"type": "HttpWebhook", "inputs": {"subscribe": {...}, "unsubscribe": {...}}})'
        )
    if text[0] in "{[":
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            json_error = exc
        # YAML's flow style is a superset of JSON (comments, unquoted keys, trailing commas);
        # when even that fails, the JSON message is the one that fits what was written.
        try:
            return yaml.safe_load(source)
        except yaml.YAMLError:
            raise DefinitionError(
                f"{json_error.msg} (JSON)", json_error.lineno, json_error.colno
            ) from None
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is None:
            raise DefinitionError(f"{problem} (YAML)") from None
        raise DefinitionError(f"{problem} (YAML)", mark.line + 1, mark.column + 1) from None


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def _no_unknown(
    obj: Mapping[str, Any],
    allowed: Sequence[str],
    prefix: tuple[str, ...],
    where: _Locator,
    label: str,
) -> None:
    for key in obj:
        if key not in allowed:
            path = ".".join((*prefix, str(key)))
            hint = _close_match(str(key), allowed)
            raise DefinitionError(
                f"{path} is not a field of {label or 'the definition'} "
                f"({hint}allowed: {', '.join(allowed)})",
                where.line((*prefix, str(key))),
            )


def _close_match(key: str, allowed: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    return f"did you mean {match[0]}? " if match else ""


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and (
        (value.startswith("@") and not value.startswith("@@")) or "@{" in value
    )


def _check_request(spec: Any, path: tuple[str, ...], where: _Locator) -> None:
    dotted = ".".join(path)
    if not isinstance(spec, Mapping):
        raise DefinitionError(
            f"{dotted} must be an HTTP request object (method, uri, headers, body, ...), "
            f"not {_kind_of(spec)}",
            where.line(path),
        )
    # Expressions are evaluated at run time; check the shape with stand-ins for them.
    probe = dict(spec)
    for key in ("uri", "url"):
        if _is_expression(probe.get(key)):
            probe[key] = "https://expression.invalid/"
    if _is_expression(probe.get("method")):
        probe["method"] = "POST"
    try:
        normalize_request(probe, what=dotted)
    except ValueError as exc:
        message = str(exc)
        field, _, _ = message.partition(":")
        field_path = tuple(field.split(".")) if field.startswith(dotted) else path
        unexpected = re.search(r"unexpected field\(s\) ([^,\s]+)", message)
        if unexpected:
            field_path = (*path, unexpected.group(1))
        raise DefinitionError(message, where.line(field_path)) from None


def _limit_timeout(document: Mapping[str, Any], where: _Locator) -> str | None:
    limit = document.get("limit")
    if limit is None:
        return None
    if not isinstance(limit, Mapping):
        raise DefinitionError(
            'limit must be an object like {"timeout": "PT1H"}', where.line(("limit",))
        )
    timeout = limit.get("timeout")
    if timeout is None:
        return None
    try:
        parse_duration(timeout)
    except (ValueError, TypeError) as exc:
        raise DefinitionError(f"limit.timeout: {exc}", where.line(("limit", "timeout"))) from None
    return timeout


class _Locator:
    """Maps a field path back to the line it is written on (best effort)."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            # JSON is (nearly) YAML, so one composer gives positions for both.
            self.root: Any = yaml.compose(source, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            self.root = None

    def first_line(self) -> int:
        for number, text in enumerate(self.source.splitlines(), 1):
            if text.strip():
                return number
        return 1

    def line(self, path: Sequence[str]) -> int | None:
        """The line of the deepest key of ``path`` that is present in the source."""
        if not path:
            return self.first_line()
        if self.root is not None:
            found, node = None, self.root
            for key in path:
                if not isinstance(node, yaml.MappingNode):
                    break
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                        found, node = key_node.start_mark.line + 1, value_node
                        break
                else:
                    break
            if found is not None:
                return found
        return self._search(path)

    def _search(self, path: Sequence[str]) -> int | None:
        position, line = 0, None
        for key in path:
            match = re.compile(rf"""(["']?){re.escape(key)}\1\s*:""").search(self.source, position)
            if match is None:
                break
            position = match.end()
            line = self.source.count("\n", 0, match.start()) + 1
        return line


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


@magic_arguments("hooknb cancel")
@argument("run_id", help="the run's id")
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
%hooknb status                            the hub: URL, store, public base URL, counts"""


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
        %hooknb cancel RUN_ID | status

        The line is taken literally (no $var expansion); for computed arguments use
        get_ipython().run_line_magic("hooknb", f"cancel {run.id}").
        """
        command, _, rest = line.strip().partition(" ")
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
        trigger = HttpWebhookTrigger(
            definition.subscribe, definition.unsubscribe, name=args.trigger_name
        )
        workflow = Workflow(run_workflow, name=name, trigger=trigger)
        if name.isidentifier() and not keyword.iskeyword(name):
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
        step, subscribe, unsubscribe = args.name, definition.subscribe, definition.unsubscribe

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
            count = len(hub.runs_of(name))
            here = (
                f"{count} run{'s' if count != 1 else ''} here" if local is not None else "elsewhere"
            )
            print(f"{name:<{width}}  {state:<9} {here:<13} {url}".rstrip())

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
            print(
                f"{record['id']}  {record['workflow']:<{width}}  {record['status']:<9} "
                f"{when}  {took}".rstrip()
            )

    def _url(self, line: str) -> str:
        args = _parse(_url_args, line)
        hub = self._hub()
        local = hub.workflows.get(args.name)
        if local is not None and local.callback_url:
            return local.callback_url
        record = hub.call(hub.request("GET", f"hooknb/api/workflows/{_quote(args.name)}"))
        trigger = record.get("trigger") or {}
        if not trigger.get("callbackUrl"):
            raise UsageError(f"workflow {args.name!r} has no HttpWebhook trigger")
        return trigger["callbackUrl"]

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
        run = hub.get_run(args.run_id)
        if run is None:
            record = hub.call(
                hub.request("POST", f"hooknb/api/runs/{_quote(args.run_id)}/cancel", {})
            )
            print(f"run {args.run_id}: cancel requested ({record.get('status', 'sent')})")
            return
        if not run.cancel():
            print(f"run {run.id}: already {run.status}")
            return
        try:
            run.wait(timeout=10)
        except TimeoutError:
            print(f"run {run.id}: cancelling ({run.status})")
            return
        print(f"run {run.id}: {run.status}")

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
        print("\n".join(mapping_lines(rows)))


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _workflow_definition(shell: Any, line: str, cell: str) -> Any:
    # Whole workflow definitions are their own module (and feature); this magic only routes.
    from .magics_workflow import definition_magic

    return definition_magic(shell, line, cell)


def _checked(cell: str, kind: Kind) -> WebhookDefinition:
    try:
        return parse_definition(cell, kind)
    except DefinitionError as exc:
        if exc.line is not None:
            exc.line += 1  # IPython passes the body; the user counts the %%hooknb line too
        raise UsageError(f"%%hooknb {kind}: {exc}") from None


def _warn_without_callback_url(definition: WebhookDefinition) -> None:
    # Legal, but almost always a mistake: the service is never told where to call back.
    if "listcallbackurl" not in referenced_functions(definition.subscribe):
        print(
            "hooknb: note: subscribe never sends @{listCallbackUrl()}, so the service is not "
            "told where to call back",
            file=sys.stderr,
        )


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hooknb``: register ``%hooknb`` / ``%%hooknb``."""
    ipython.register_magics(HookNBMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hooknb``: remove the magics again."""
    magics = ipython.magics_manager.magics
    magics["line"].pop("hooknb", None)
    magics["cell"].pop("hooknb", None)
