"""``%%hooknb workflow NAME``: a Logic Apps workflow definition pasted into a cell.

The cell holds what :meth:`hooknb.Workflow.from_definition` takes: definition JSON, the
code-view wrapper ``{"definition": ..., "parameters": ...}``, an ARM template, or the path of
a JSON file on a line of its own. The workflow is bound to ``NAME`` in the notebook's
namespace (when ``NAME`` is an identifier) and displayed; notes about what hooknb ignores are
printed. Options, whose values are Python expressions evaluated in the notebook::

    %%hooknb workflow approvals --parameters {"base": BASE} --endpoints ENDPOINTS --enable

``--parameters`` (parameter values), ``--endpoints`` (URI rewrites), ``--hub`` (a
:class:`hooknb.HubClient`), ``--enable`` (enable the trigger at once). A definition that cannot be
loaded is reported with its line and column, or its location, without a traceback.

:func:`definition_magic` is the implementation; the ``%%hooknb`` magic (``%load_ext hooknb``)
dispatches its ``workflow`` subcommand to it.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..errors import DefinitionError

__all__ = ["definition_magic"]

_USAGE = (
    "usage: %%hooknb workflow NAME [--parameters EXPR] [--endpoints EXPR] [--hub EXPR] "
    "[--enable]\n<definition JSON, or the path of a JSON file>"
)
_VALUED = ("--parameters", "--endpoints", "--hub")


def definition_magic(shell: Any, line: str, cell: str) -> Any:
    """Load the definition in ``cell`` as a workflow named by ``line``; bind and return it.

    ``line`` is ``NAME [options]``, optionally preceded by the subcommand word ``workflow``.
    Raises IPython's ``UsageError`` (shown without a traceback) for bad arguments and for
    definitions that cannot be loaded.
    """
    from IPython.core.error import UsageError

    from .workflow import Workflow

    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"{exc}\n{_USAGE}") from None
    if words and words[0] == "workflow":
        words = words[1:]
    if not words or words[0].startswith("--"):
        raise UsageError(f"the workflow needs a NAME\n{_USAGE}")
    name, rest = words[0], words[1:]
    options: dict[str, Any] = {}
    enable = False
    namespace = getattr(shell, "user_ns", {})
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--enable":
            enable = True
            i += 1
            continue
        if word not in _VALUED or i + 1 >= len(rest):
            raise UsageError(f"unexpected {word!r}\n{_USAGE}")
        expression = rest[i + 1]
        try:
            options[word[2:]] = eval(expression, namespace)  # noqa: S307 - the user's own notebook code
        except Exception as exc:
            raise UsageError(f"{word} {expression}: {type(exc).__name__}: {exc}") from None
        i += 2
    source = cell.strip()
    if not source:
        raise UsageError(f"the cell is empty: paste a workflow definition\n{_USAGE}")
    try:
        workflow = Workflow.from_definition(
            cell if source[0] in '{"[' else source,
            options.get("parameters"),
            name=name,
            hub=options.get("hub"),
            endpoints=options.get("endpoints"),
        )
    except DefinitionError as exc:
        raise UsageError(f"%%hooknb workflow {name}: {exc}") from None
    definition = workflow.definition
    assert definition is not None
    for note in definition.notes:
        print(f"note: {note}")
    if name.isidentifier():
        namespace[name] = workflow
    if enable:
        workflow.enable()
    return workflow
