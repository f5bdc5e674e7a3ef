"""The Workflow Definition Language (WDL) expression language of Azure Logic Apps.

Evaluate JSON string values the way Logic Apps does::

    >>> from hooknb.wdl import Context, evaluate
    >>> evaluate("@concat('a', 'b')")
    'ab'
    >>> evaluate("n=@{add(1, 2)}")
    'n=3'
    >>> evaluate("@{listCallbackUrl()}", Context(callback_url="https://h/cb"))
    'https://h/cb'

String values (https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language):

* ``"@expr"`` is a whole-value expression: its result may be any JSON value.
* ``"...@{expr}..."`` interpolates: the result is always a string. null becomes
  ``""``, booleans ``True``/``False`` (as Logic Apps renders them, see
  Azure/logicapps#414), objects and arrays compact JSON.
* ``"@@..."`` escapes a leading ``@``; ``"@@{"`` anywhere is a literal ``@{``;
  any other ``@`` (``"a@b.com"``, ``" @"``) is plain text.

Functions follow the "Reference guide to functions in expressions", which the modules call
"the functions reference"
(https://learn.microsoft.com/azure/logic-apps/expression-functions-reference).
Names are case-insensitive. Not implemented: ``multipartBody`` and
``triggerMultipartBody`` (a multipart body's parts are in its ``$multipart``).
Non-JSON content is Logic Apps' ``{"$content-type", "$content"}`` object
(:mod:`hooknb.wdl.content`), which ``xml()``, ``xpath()``, ``json()``,
``base64()`` and the form-data functions read.

Limits, as Logic Apps publishes them: 8,192 characters per expression
(:data:`MAX_EXPRESSION_LENGTH`), 131,072 characters for a string a function
or an interpolation produces (:data:`MAX_RESULT_LENGTH`), 100,000 items from
``range()``; plus :data:`MAX_NESTING_DEPTH` levels of nesting, 100,000 items
in any array a function builds (:data:`MAX_ARRAY_LENGTH`), JSON text nested at
most ``hooknb.jsonsafe.MAX_DEPTH`` levels for ``json()``, and about 32 MiB of
values built by one evaluation in all (:data:`MAX_EVALUATION_BYTES`). Sizes
are checked *before* a result is built wherever they can be known first
(``replace``, ``join``, ``concat``, ``string``, ``base64``, ``split``...), so
an expression that would build gigabytes fails at once. Every failure raises
:class:`ExpressionError`.

Choices where the reference is silent:

* Results are JSON-shaped Python values, except binary content, which is
  ``bytes``; ``decimal()`` computes with :class:`decimal.Decimal` and a
  whole-value result turns it into a ``float``.
* Property lookup on plain dicts tries the exact key, then a case-insensitive
  match; other mappings (``httpx.Headers``) apply their own rules.
* ``if``, ``and``, ``or`` and ``coalesce`` stop evaluating once the result is
  known, so anything Logic Apps evaluates gives the same result here.
* Timestamps with a UTC offset are converted to UTC; ones without a zone stay
  zone-less, as ``formatDateTime('03/15/2018')`` shows in the reference.
* Locale-aware functions know en-US, en-GB, fr-FR, es-ES, de-DE, is-IS and the
  invariant culture, and reject others rather than guess.
* Time zones use :mod:`zoneinfo`; on systems without a tz database (Windows)
  that needs the ``tzdata`` package, which hooknb does not pull in.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..errors import ExpressionError
from ._evaluator import Template
from ._functions import FUNCTIONS
from ._functions_core import MAX_ARRAY_LENGTH, MAX_EVALUATION_BYTES, MAX_RESULT_LENGTH
from ._lexer import MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH
from .context import Context

__all__ = [
    "MAX_ARRAY_LENGTH",
    "MAX_EVALUATION_BYTES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_RESULT_LENGTH",
    "Context",
    "ExpressionError",
    "Template",
    "evaluate",
    "evaluate_template",
    "function_names",
    "parse",
    "referenced_functions",
]


_cached_template = lru_cache(maxsize=4096)(Template)
# Very long strings are parsed every time rather than pinned in the cache.
_CACHE_MAX_LENGTH = 65_536


def parse(value: str) -> Template:
    """Parse one string value into a :class:`Template` (cached; templates are immutable).

    Syntax errors, unknown functions and wrong argument counts are reported
    here, before anything is evaluated.

    Raises:
        ExpressionError: if the value is not valid WDL.
    """
    if isinstance(value, str) and len(value) > _CACHE_MAX_LENGTH:
        return Template(value)
    return _cached_template(value)


def evaluate(value: str, context: Context | None = None) -> Any:
    """Evaluate one JSON string value as Logic Apps would.

    >>> evaluate("@add(1, 2)"), evaluate("plain"), evaluate("@@x")
    (3, 'plain', '@x')

    Raises:
        ExpressionError: on any parse or evaluation failure.
    """
    if isinstance(value, str) and "@" not in value:
        return value  # no expression possible; keeps plain data out of the cache
    return parse(value).evaluate(context)


def evaluate_template(value: Any, context: Context | None = None) -> Any:
    """Evaluate every string in a JSON-like structure; return a new structure.

    Dict keys are not evaluated. Numbers, booleans and null pass through.
    An error names where the failing string sits, in ``ExpressionError.path``.

    Raises:
        ExpressionError: on any parse or evaluation failure.
    """
    try:
        return _walk(value, context, ())
    except RecursionError:
        raise ExpressionError("the template is nested too deeply to evaluate") from None


def _walk(value: Any, context: Context | None, path: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):
        try:
            return evaluate(value, context)
        except ExpressionError as exc:
            raise exc.with_path(path) from exc
    if isinstance(value, Mapping):
        return {key: _walk(item, context, (*path, key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, context, (*path, index)) for index, item in enumerate(value)]
    return value


def referenced_functions(value: Any) -> set[str]:
    """Lower-cased names of every function called anywhere in a JSON-like template.

    >>> sorted(referenced_functions({"body": {"url": "@{listCallbackUrl()}", "n": "@add(1, 2)"}}))
    ['add', 'listcallbackurl']

    Raises:
        ExpressionError: if a string in it is not valid WDL.
    """
    found: set[str] = set()
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "@" not in item:
                continue
            try:
                found |= parse(item).functions
            except ExpressionError as exc:
                raise exc.with_path(path) from exc
        elif isinstance(item, Mapping):
            stack.extend((v, (*path, k)) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, (*path, i)) for i, v in enumerate(item))
    return found


def function_names() -> list[str]:
    """Every supported function, in its documented spelling, sorted case-insensitively."""
    return sorted({spec.name for spec in FUNCTIONS.values()}, key=str.lower)
