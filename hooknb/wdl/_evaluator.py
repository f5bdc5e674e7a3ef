"""Tree-walking evaluator and the parsed :class:`Template`."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn

from ..errors import ExpressionError
from ._functions import FUNCTIONS
from ._functions_core import (
    MAX_EVALUATION_BYTES,
    MAX_RESULT_LENGTH,
    FunctionSpec,
    TooLarge,
    describe,
    lookup,
    to_text,
    type_name,
)
from ._parser import Access, Call, Const, Node, Parsed, Step, TemplateKind, parse_value
from .context import Context

_DEFAULT_CONTEXT = Context()


class Template:
    """One JSON string value, parsed once, evaluable many times.

    Attributes:
        source: the string value as written.
        kind: ``"literal"`` (no expression; ``"@@"`` escapes resolved),
            ``"expression"`` (``"@expr"``: any JSON value) or
            ``"interpolation"`` (``"...@{expr}..."``: always a string).
        functions: lower-cased names of every function the value calls.
    """

    __slots__ = ("_parsed", "functions", "kind", "source")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise TypeError(f"a WDL template is a string, not {type(source).__name__}")
        parsed: Parsed = parse_value(source)
        self.source = source
        self.kind: TemplateKind = parsed.kind
        self.functions: frozenset[str] = parsed.functions
        self._parsed = parsed

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def evaluate(self, context: Context | None = None) -> Any:
        """Evaluate against ``context`` and return the JSON value Logic Apps would produce.

        Raises:
            ExpressionError: on any evaluation failure.
        """
        parts = self._parsed.parts
        if self.kind == "literal":
            return parts[0]
        ev = _Evaluator(self.source, context or _DEFAULT_CONTEXT)
        try:
            if self.kind == "expression":
                return _finalize(ev.eval(parts[0]))  # type: ignore[arg-type]
            pieces = []
            length = 0
            for part in parts:
                piece = part if isinstance(part, str) else to_text(ev.eval(part))
                length += len(piece)
                if length > MAX_RESULT_LENGTH:  # checked before the pieces are joined
                    at_least = "at least " if part is not parts[-1] else ""
                    raise ExpressionError(
                        f"the interpolated string has {at_least}{length:,} characters, more "
                        f"than the {MAX_RESULT_LENGTH:,} Logic Apps allows",
                        expression=self.source,
                    )
                pieces.append(piece)
            return "".join(pieces)
        except TooLarge as exc:
            raise ExpressionError(exc.message, expression=self.source) from None
        except RecursionError:
            raise ExpressionError(
                "a value is nested too deeply to process", expression=self.source
            ) from None


_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _finalize(value: Any) -> Any:
    """Make a result JSON-shaped: Decimal -> float, other mappings -> dict, tuple -> list.

    Returns the same object when nothing needs converting, so large trigger
    bodies are not copied. ``bytes`` stay ``bytes`` (binary content).
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        changed: dict[str, Any] | None = None
        for key, item in value.items():
            new = _finalize(item)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, Mapping):
        return {key: _finalize(item) for key, item in value.items()}
    if isinstance(value, list):
        # Arrays of plain scalars (the common case, e.g. range()) are checked at C speed.
        if all(map(_PLAIN.__contains__, map(type, value))):
            return value
        new_items = [_finalize(item) for item in value]
        if all(a is b for a, b in zip(new_items, value, strict=True)):
            return value
        return new_items
    if isinstance(value, tuple):
        return [_finalize(item) for item in value]
    return value


class _Invocation:
    __slots__ = ("_args", "_ev", "_node", "spec")

    def __init__(self, ev: _Evaluator, spec: FunctionSpec, node: Call) -> None:
        self._ev = ev
        self.spec = spec
        self._node = node

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def context(self) -> Context:
        return self._ev.context

    @property
    def arg_count(self) -> int:
        return len(self._node.args)

    def arg(self, index: int) -> Any:
        return self._ev.eval(self._node.args[index])

    def fail(self, message: str, arg: int | None = None, *, prefix: bool = True) -> NoReturn:
        node = self._node
        position = node.args[arg].start if arg is not None and arg < len(node.args) else node.start
        text = f"{self.spec.name}(): {message}" if prefix else message
        raise ExpressionError(text, position=position, expression=self._ev.source)


class _Evaluator:
    __slots__ = ("context", "source", "spent")

    def __init__(self, source: str, context: Context) -> None:
        self.source = source
        self.context = context
        self.spent = 0  # bytes (roughly) of values this evaluation has built

    def fail(self, message: str, position: int) -> NoReturn:
        raise ExpressionError(message, position=position, expression=self.source)

    def eval(self, node: Node) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Call):
            return self.call(node)
        value = self.eval(node.target)
        for step in node.steps:
            value = self.member(value, step, node)
        return value

    def call(self, node: Call) -> Any:
        spec = FUNCTIONS[node.key]
        invocation = _Invocation(self, spec, node)
        args: list[Any] = [] if spec.lazy else [self.eval(arg) for arg in node.args]
        try:
            result = spec.impl(invocation, args)
        except ExpressionError:
            raise
        except TooLarge as exc:
            invocation.fail(exc.message)
        except RecursionError:
            invocation.fail("a value is nested too deeply to process")
        except MemoryError:
            invocation.fail("the result does not fit in memory")
        except Exception as exc:  # a bug must not escape as a non-WDL error
            invocation.fail(f"internal error ({type(exc).__name__}: {exc})")
        if spec.limit_result and isinstance(result, str) and len(result) > MAX_RESULT_LENGTH:
            invocation.fail(
                f"the result has {len(result):,} characters, more than the "
                f"{MAX_RESULT_LENGTH:,} Logic Apps allows"
            )
        if spec.builds and not spec.lazy and not any(result is arg for arg in args):
            self.spent += _cost(result)
            if self.spent > MAX_EVALUATION_BYTES:
                invocation.fail(
                    f"the expression builds more than {MAX_EVALUATION_BYTES // 2**20} MiB of "
                    "values in all; make it do less"
                )
        return result

    def member(self, container: Any, step: Step, chain: Access) -> Any:
        key = self.eval(step.key)
        label = _label(key, step)
        if container is None:
            if step.null_safe:
                return None
            self.fail(
                f"cannot select {label} because the value is null; use '?' "
                f"(e.g. ?['{key}']) to get null instead",
                step.start,
            )
        if isinstance(key, str):
            if isinstance(container, Mapping):
                found, value = lookup(container, key)
                if found:
                    return value
                if step.null_safe:
                    return None
                self.fail(f"property '{key}' doesn't exist{_available(container)}", step.start)
            if step.null_safe and isinstance(container, list | tuple):
                return None
            self.fail(
                f"cannot read {label} of {describe(container)}; only objects have properties",
                step.start,
            )
        if isinstance(key, int) and not isinstance(key, bool):
            if isinstance(container, list | tuple):
                if 0 <= key < len(container):
                    return container[key]
                if step.null_safe:
                    return None
                self.fail(
                    f"index {key} is out of range for an array of {len(container)} "
                    f"item{'' if len(container) == 1 else 's'}",
                    step.start,
                )
            if step.null_safe and isinstance(container, Mapping):
                return None
            self.fail(f"cannot index {describe(container)} with integer {key}", step.start)
        self.fail(
            f"an index or property name must be an integer or a string, got {type_name(key)}",
            step.key.start,
        )


def _cost(value: Any) -> int:
    """Roughly how many bytes a function's new result holds (what MAX_EVALUATION_BYTES
    counts): its characters or bytes; for an array or object, a slot and a small value per
    item plus the length of items that have one (the strings split() made). At C speed: this
    runs after every call."""
    if isinstance(value, str | bytes):
        return len(value) + 48
    if isinstance(value, list | tuple | Mapping):
        items = value.values() if isinstance(value, Mapping) else value
        cost = 64 + 48 * len(value)
        with contextlib.suppress(TypeError):  # numbers have no length: slots are enough
            cost += sum(map(len, items))
        return cost
    return 32


def _label(key: Any, step: Step) -> str:
    if isinstance(key, str):
        return f"property '{key}'"
    return f"index {key!r}" if not step.dotted else f"property {key!r}"


def _available(container: Mapping[str, Any]) -> str:
    names = [str(k) for k in list(container.keys())[:11]]
    if not names:
        return " (the object is empty)"
    shown = ", ".join(f"'{n}'" for n in names[:10])
    more = ", ..." if len(names) > 10 else ""
    return f"; available properties are {shown}{more}"
