"""What a Python step's request holds besides plain data: the callback URL and expressions.

**Data is data.** In the Python API a request object (``subscribe``, ``unsubscribe``, an Http
request, a Compose's inputs, a trigger's requests) is taken literally: every string is sent as
it is, whatever it contains, so runtime data put there (a trigger body, a callback's answer, a
string formatted from them) can never run as an expression. Two objects stand for what the
kernel fills in, wherever they appear as a value (an object's value or an array's item, at any
depth; never inside a string):

* :data:`CALLBACK_URL` — the step's (or trigger's) callback URL; ``.with_query(k=v)`` adds
  query parameters to it, ``.map(fn)`` makes a value from it (``fn(url)``);
* :func:`expr` — a Logic Apps expression, evaluated once where it stands, in the run's context.
  Its text is code written by the programmer, never data.

Logic Apps definitions (and the magics' JSON or YAML) are templates written by the user: their
strings are expressions, as in Logic Apps. :func:`from_template` turns a template into this
form (each string with an ``@`` becomes an :class:`Expression`), so both run through the same
:func:`resolve`, which evaluates each expression once and never looks inside what one returns:
a value that comes from outputs is never parsed again. :func:`to_template` is the way back,
for exporting a workflow as a definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlencode

from ..errors import HookNBError
from ..wdl import Context, ExpressionError, parse

__all__ = [
    "CALLBACK_URL",
    "CallbackUrl",
    "Expression",
    "expr",
    "from_template",
    "functions_in",
    "has_placeholders",
    "in_template",
    "resolve",
    "shown_template",
    "to_template",
]

_CALLBACK_URL_TEXT = "@{listCallbackUrl()}"


class CallbackUrl:
    """The callback URL of a webhook step or trigger, filled in when its requests are made
    (:data:`CALLBACK_URL`). Put it where the service expects the URL, as a value::

        {"body": {"callbackUrl": hooknb.CALLBACK_URL}}
        {"body": {"notify": hooknb.CALLBACK_URL.with_query(source="crm")}}
        {"body": {"text": hooknb.CALLBACK_URL.map(lambda url: f"Approve at {url}")}}

    It is not text: formatting it into a string (an f-string, ``str()``, ``+``) raises
    ``TypeError``, since the URL does not exist yet when the string is built.
    """

    __slots__ = ("_map", "_query")

    def __init__(
        self,
        query: tuple[tuple[str, str], ...] = (),
        map: Callable[[str], Any] | None = None,
    ) -> None:
        self._query = query
        self._map = map

    def with_query(self, **params: str | int | float | bool) -> CallbackUrl:
        """The callback URL with these query parameters added (URL-encoded; its own ``sig``
        stays as it is)."""
        if self._map is not None:
            raise TypeError("with_query() goes before map(): the mapped value is not a URL")
        added = tuple((name, _query_text(value)) for name, value in params.items())
        return CallbackUrl(self._query + added)

    def map(self, fn: Callable[[str], Any]) -> CallbackUrl:
        """A value made from the callback URL: ``fn(url)``, called when the request is made
        (what it returns is data, sent as it is)."""
        if not callable(fn):
            raise TypeError("map() takes a function of the callback URL")
        if self._map is not None:
            inner = self._map
            return CallbackUrl(self._query, lambda url: fn(inner(url)))
        return CallbackUrl(self._query, fn)

    def resolve(self, url: str) -> Any:
        """This placeholder's value for the callback URL ``url``."""
        if self._query:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(self._query)}"
        return self._map(url) if self._map is not None else url

    def to_template(self) -> str:
        """Its Logic Apps form (``@{listCallbackUrl()}``, with the added query text).

        Raises:
            HookNBError: a :meth:`map` has no Logic Apps form.
        """
        if self._map is not None:
            raise HookNBError(
                "hooknb.CALLBACK_URL.map(...) is Python: it has no Logic Apps form (use "
                "hooknb.expr('@{...listCallbackUrl()...}') in a workflow to export)"
            )
        if not self._query:
            return _CALLBACK_URL_TEXT
        return f"{_CALLBACK_URL_TEXT}&{_escape(urlencode(self._query))}"

    def __repr__(self) -> str:
        text = "hooknb.CALLBACK_URL"
        if self._query:
            text += f".with_query({', '.join(f'{k}={v!r}' for k, v in self._query)})"
        if self._map is not None:
            text += f".map({getattr(self._map, '__qualname__', '...')})"
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallbackUrl):
            return NotImplemented
        return self._query == other._query and self._map is other._map

    def __hash__(self) -> int:
        return hash((CallbackUrl, self._query, id(self._map)))

    def _not_text(self, *_: Any) -> NoReturn:
        raise TypeError(
            "hooknb.CALLBACK_URL is filled in when the request is made, so it cannot be part "
            "of a string built now: put it as a value ({'callbackUrl': hooknb.CALLBACK_URL}), "
            "add query parameters with hooknb.CALLBACK_URL.with_query(...), or build text "
            "from it with hooknb.CALLBACK_URL.map(lambda url: f'...{url}...')"
        )

    __str__ = __format__ = __add__ = __radd__ = __mod__ = __rmod__ = _not_text  # type: ignore[assignment]


#: The callback URL of the webhook step or trigger whose request holds it (see
#: :class:`CallbackUrl`).
CALLBACK_URL = CallbackUrl()


class Expression:
    """A Logic Apps expression in a Python request, evaluated once where it stands: made by
    :func:`expr`. Its text is code, never data."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"an expression is a string, not {type(text).__name__}")
        if "@" not in text:
            raise ValueError(
                f"{text!r} is not an expression: write '@...' for a whole value or "
                "'...@{...}...' inside text"
            )
        parse(text)  # a syntax error or an unknown function shows where it is written
        self.text = text

    def evaluate(self, context: Context) -> Any:
        return parse(self.text).evaluate(context)

    def __repr__(self) -> str:
        return f"hooknb.expr({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash((Expression, self.text))


def expr(text: str) -> Expression:
    """A Logic Apps expression to evaluate in a Python step's request, explicitly::

        run.http("Notify", {"method": "POST", "uri": URL,
                            "body": {"approved": hooknb.expr("@body('Approval')?['ok']")}})

    ``"@expr"`` gives any JSON value, ``"...@{expr}..."`` text. It is evaluated once, when
    the request is made, with the run's context (``triggerBody()``, ``outputs('Step')``,
    ``listCallbackUrl()`` in a webhook's requests, ``action()`` in an unsubscribe...); what
    it returns is data and is never evaluated again. Write its text in your code: never build
    it from data (pass data as data, or compute it in Python).

    Raises:
        ExpressionError: the text is not a valid expression (raised here, not at run time).
    """
    return Expression(text)


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"a query parameter is text or a number, not {type(value).__name__}")


def _escape(text: str) -> str:
    """A literal string as a Logic Apps template string that evaluates to exactly it."""
    if text.startswith("@"):
        return "@" + text  # a leading "@@" makes the whole rest literal
    return text.replace("@{", "@@{")


def resolve(value: Any, context: Context) -> Any:
    """``value`` with its placeholders filled in: each :class:`Expression` evaluated once in
    ``context``, each :class:`CallbackUrl` given ``context.callback_url``. Everything else is
    copied as it is (mappings become dicts, tuples lists); strings are never looked into, nor
    is what an expression returns. Iterative: any depth.

    Raises:
        ExpressionError: an expression failed (its ``path`` says where it stands).
        HookNBError: :data:`CALLBACK_URL` where there is no callback URL.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, tuple[str | int, ...]]] = [(value, root, 0, ())]
    while stack:
        item, parent, key, path = stack.pop()
        if isinstance(item, Expression):
            try:
                parent[key] = item.evaluate(context)
            except ExpressionError as exc:
                raise exc.with_path(path) from exc
        elif isinstance(item, CallbackUrl):
            if context.callback_url is None:
                where = ".".join(map(str, path)) or "the value"
                raise HookNBError(
                    f"{where}: hooknb.CALLBACK_URL is only filled in in the subscribe and "
                    "unsubscribe requests of a webhook step or trigger"
                )
            parent[key] = item.resolve(context.callback_url)
        elif isinstance(item, Mapping):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            for name, child in item.items():
                copy[name] = None
                stack.append((child, copy, name, (*path, name)))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((child, items, index, (*path, index)) for index, child in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def from_template(value: Any) -> Any:
    """A Logic Apps template (a definition's or a magic's JSON) in the form :func:`resolve`
    takes: each string holding an ``@`` becomes an :class:`Expression`; other strings stay
    literal text. Keys are not expressions (as in Logic Apps).

    Raises:
        ExpressionError: a string is not valid WDL (a definition was checked when loaded).
    """
    return _rebuild(value, _template_leaf)


def _template_leaf(item: Any) -> Any:
    return Expression(item) if isinstance(item, str) and "@" in item else item


def to_template(value: Any) -> Any:
    """The Logic Apps form of a request with placeholders (for a definition): expressions as
    their text, :data:`CALLBACK_URL` as ``@{listCallbackUrl()}``, and literal strings escaped
    (``@@``) so that Logic Apps reads them as the same text.

    Raises:
        HookNBError: a :meth:`CallbackUrl.map` has no Logic Apps form.
    """
    return _rebuild(value, _wdl_leaf)


def _wdl_leaf(item: Any) -> Any:
    if isinstance(item, Expression):
        return item.text
    if isinstance(item, CallbackUrl):
        return item.to_template()
    if isinstance(item, str):
        return _escape(item)
    return item


def in_template(value: Any) -> Any:
    """A template (strings are expressions) in which Python placeholders are written too, as
    the declarative builder takes them: :data:`CALLBACK_URL` becomes ``@{listCallbackUrl()}``
    and :func:`expr` its text; strings stay as written.

    Raises:
        HookNBError: a :meth:`CallbackUrl.map` has no Logic Apps form.
    """
    return _rebuild(value, _in_template_leaf)


def _in_template_leaf(item: Any) -> Any:
    if isinstance(item, CallbackUrl):
        return item.to_template()
    return item.text if isinstance(item, Expression) else item


def shown_template(value: Any) -> Any:
    """A request with placeholders as it is shown before it is made: strings as they are,
    expressions as their text, :data:`CALLBACK_URL` as ``@{listCallbackUrl()}`` (a ``map()``
    as what it is)."""
    return _rebuild(value, _shown_leaf)


def _shown_leaf(item: Any) -> Any:
    if isinstance(item, CallbackUrl):
        return f"<{item!r}>" if item._map is not None else item.to_template()
    return item.text if isinstance(item, Expression) else item


def _rebuild(value: Any, leaf: Callable[[Any], Any]) -> Any:
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, Mapping):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            for name, child in item.items():
                copy[name] = None
                stack.append((child, copy, name))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((child, items, index) for index, child in enumerate(item))
        else:
            parent[key] = leaf(item)
    return root[0]


def _leaves(value: Any) -> list[Any]:
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, Expression | CallbackUrl):
            found.append(item)
    return found


def functions_in(value: Any) -> set[str]:
    """Lower-cased names of the functions the expressions in ``value`` call (not strings')."""
    names: set[str] = set()
    for leaf in _leaves(value):
        if isinstance(leaf, Expression):
            names |= parse(leaf.text).functions
    return names


def has_placeholders(value: Any) -> bool:
    """Whether ``value`` holds an :class:`Expression` or a :class:`CallbackUrl`."""
    return bool(_leaves(value))


def literal_callback_url_hint(subscribe: Any) -> str | None:
    """What to say when a Python ``subscribe`` request sends no :data:`CALLBACK_URL` but one
    of its strings reads ``listCallbackUrl()``: that text is sent as written (requests are
    data), so the service would get it instead of a URL. None when nothing looks wrong."""
    stack, leaves = [subscribe], 0
    found = False
    while stack and leaves < 10_000:  # a bound: requests are small, data may not be
        item = stack.pop()
        leaves += 1
        if isinstance(item, CallbackUrl) or (
            isinstance(item, Expression) and "listcallbackurl" in parse(item.text).functions
        ):
            return None
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str) and "listCallbackUrl()" in item:
            found = True
    if not found:
        return None
    return (
        "this subscribe request sends the text '@{listCallbackUrl()}' as written, not a URL: "
        "in Python, requests are data; put hooknb.CALLBACK_URL where the service expects the "
        "callback URL ({'callbackUrl': hooknb.CALLBACK_URL})"
    )
