"""Logic Apps workflow definitions (WDL schema 2016-06-01): load, validate, edit, export.

:func:`load` reads a definition the way people have them: a dict, JSON text, a file path, the
code-view wrapper ``{"definition": ..., "parameters": {"p": {"value": ...}}}``, an ARM
template (``resources[].properties.definition`` of its ``Microsoft.Logic/workflows``
resource) or a pasted object member such as ``"triggers": {...}`` (read as if wrapped in
braces). It returns a :class:`Definition`, or raises :class:`DefinitionError` that says where
the problem is: ``line 28 column 31`` for JSON syntax, a dotted location such as
``actions.Scope_1.actions.Foo.type`` for everything else.

What hooknb runs (:mod:`hooknb.kernel.interpreter` interprets it on the run engine):

* triggers ``HttpWebhook``, ``Request`` (manual) and ``Recurrence``; at most one trigger; its
  ``conditions``, ``splitOn`` and concurrency (``runtimeConfiguration.concurrency`` ``runs`` and
  ``maximumWaitingRuns``, ``operationOptions: SingleInstance``), which the hub applies.
* actions ``HttpWebhook``, ``Http``, ``Compose``, ``Response``, ``If``, ``Switch``, ``Scope``,
  ``Foreach`` (``repetitions``, ``Sequential``), ``Until`` (``limit.count``,
  ``limit.timeout``), ``Wait``, ``Terminate``, the variable actions (``InitializeVariable`` at
  the top level, ``SetVariable``, ``IncrementVariable``, ``DecrementVariable``,
  ``AppendToArrayVariable``, ``AppendToStringVariable``), ``ParseJson``, ``Select``, ``Query``,
  ``Join`` and ``Table``, ordered by ``runAfter`` with the statuses Succeeded, Failed, Skipped
  and TimedOut; ``limit.timeout``; ``retryPolicy``; ``runtimeConfiguration.secureData`` on
  actions (:attr:`Step.secure`) and HttpWebhook triggers (:attr:`Trigger.secure`);
  ``operationOptions`` ``IncludeAuthorizationHeadersInOutputs`` on ``HttpWebhook`` triggers
  and actions and ``Request`` triggers.

Anything else is an error at load time, naming the type and where it is. Options that do not
change what a run does here are kept (and exported again) but ignored, each with a line in
:attr:`Definition.notes`: ``operationOptions`` (except ``DisableAsyncPattern`` on ``Http``,
``Sequential`` on ``Foreach``, ``SingleInstance`` on a trigger and
``IncludeAuthorizationHeadersInOutputs``, which are honoured), ``runtimeConfiguration`` other
than concurrency and ``secureData`` (and ``secureData`` on a trigger other than HttpWebhook),
``trackedProperties``, ``limit.count`` outside an Until, an HttpWebhook trigger's
``accessKeyType`` when the hub cannot honour it.

Leniency, where real definitions need it:

* Property names of the definition, its triggers and actions, and of HTTP request objects
  are matched case-insensitively (Logic Apps' JSON reader does), and written back in their
  documented spelling. ``url`` is accepted for ``uri``. Status names in ``runAfter`` and type
  names are case-insensitive too.
* Function names in expressions are case-insensitive (``listCallBackUrl()``).
* ARM template expressions (``"[parameters('x')]"``) are not WDL: ARM replaces them when it
  deploys a template. hooknb keeps them as literal strings and lists each one in
  :attr:`Definition.arm_expressions` (and a note), so it is clear why a URI such as
  ``[parameters('webhookURI')]`` cannot be called. Give real values with ``endpoints``.

Endpoints: real definitions often carry placeholder URIs (``<RunbookWebhookUrl>``,
``https://<external-service>.com/subscribe``) or URLs of services that are not reachable from a
notebook. ``endpoints`` maps them to URLs that are, without editing the definition:
a key equal to a request's whole ``uri`` (after expressions are evaluated) replaces it; a key
ending in ``/`` replaces that prefix of any ``uri`` (the longest such key wins). It applies to
the subscribe and unsubscribe requests of HttpWebhook triggers and actions and to Http
actions, at run time, so an exported definition keeps the original URIs.

Checks Logic Apps makes when it saves a definition are made here too: every expression must
parse; ``parameters('name')`` must name a declared parameter (or one given a value);
``listCallbackUrl()`` is only allowed in HttpWebhook subscribe/unsubscribe inputs;
``runAfter`` may only name actions of the same scope, without cycles; action names are unique
in the whole definition; a ``Response`` action needs a ``Request`` trigger (and no
``splitOn``); variables are initialized once, at the top level, and the variable actions name
one of a type they work on; a Switch's cases have distinct values; a ParseJson schema is a
valid JSON schema; nesting is at most 8 levels deep.

This package is pure: no I/O besides reading a definition file, no kernel or server imports.
Import from ``hooknb.wdl.definitions``; its modules, by job:

``recurrence``
    :class:`Recurrence` (a Recurrence trigger's schedule) and :func:`add_months`.
``endpoints``
    :func:`apply_endpoints`, :func:`rewrite_uri` and :func:`is_arm_expression`.
``parts``
    :class:`Parameter`, :class:`Trigger`, :class:`Step`, :class:`WebhookDefinition` and the
    schema's names (:data:`SCHEMA_URL`, :data:`ACTION_TYPES`, :data:`HTTP_REQUEST_KEYS`,
    :data:`PYTHON`...).
``validation``
    the checks, run by the builder that makes a :class:`Definition`'s parts.
``model``
    :class:`Definition`: the validated whole, to query, edit and export.
``reader``
    :func:`load` and :func:`parse_text`: text, files, the code-view wrapper, ARM templates;
    :func:`load_webhook`: one HttpWebhook trigger or action in JSON or YAML (the ``%%hooknb
    trigger`` and ``%%hooknb action`` cell magics), its mistakes named by line.

Each imports only those listed before it, so there is no import cycle (``validation`` names
:class:`Definition` for type checkers only: the builder fills a definition its caller makes).
"""

from __future__ import annotations

from ...errors import DefinitionError
from .endpoints import apply_endpoints, is_arm_expression, rewrite_uri
from .model import Definition
from .parts import (
    ACTION_TYPES,
    CONTENT_VERSION,
    FREQUENCIES,
    HTTP_REQUEST_KEYS,
    MAX_NAME_LENGTH,
    MAX_NESTING,
    PYTHON,
    RUN_AFTER_STATUSES,
    SCHEMA_URL,
    TRIGGER_TYPES,
    Parameter,
    Step,
    Trigger,
    WebhookDefinition,
    webhook_requests,
)
from .reader import RequestCheck, load, load_webhook, parse_text
from .recurrence import Recurrence, add_months
from .validation import condition_operator

__all__ = [
    "ACTION_TYPES",
    "CONTENT_VERSION",
    "FREQUENCIES",
    "HTTP_REQUEST_KEYS",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "PYTHON",
    "RUN_AFTER_STATUSES",
    "SCHEMA_URL",
    "TRIGGER_TYPES",
    "Definition",
    "DefinitionError",
    "Parameter",
    "Recurrence",
    "RequestCheck",
    "Step",
    "Trigger",
    "WebhookDefinition",
    "add_months",
    "apply_endpoints",
    "condition_operator",
    "is_arm_expression",
    "load",
    "load_webhook",
    "parse_text",
    "rewrite_uri",
    "webhook_requests",
]
