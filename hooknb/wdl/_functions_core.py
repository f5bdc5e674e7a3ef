"""Function registry, argument checking and the value semantics shared by all functions.

Value model (what expressions compute with):

* JSON values as Python objects: ``None``, ``bool``, ``int`` (64-bit range is
  enforced), ``float`` (finite), ``str``, ``list``, ``dict``; any
  ``collections.abc.Mapping`` is accepted where an object is expected (so
  ``httpx.Headers`` from the context works, case-insensitively).
* ``decimal.Decimal`` from ``decimal()``, so ``string(decimal('1.2345678912312131'))``
  keeps every digit as the reference documents.
* ``bytes`` from the binary functions (``binary``, ``base64ToBinary``, ...).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeGuard

if TYPE_CHECKING:
    from .context import Context

# https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config:
# "Expression evaluation limit: 131,072 characters.
# The @concat(), @base64(), @string() expressions can't be longer than this limit."
MAX_RESULT_LENGTH = 131_072
# functions reference, range(): "count ... doesn't exceed 100,000".
MAX_RANGE_COUNT = 100_000
# Items in an array a function builds (split, chunk, union...): range()'s bound, which is also
# Logic Apps' limit on the items a loop or a query takes.
MAX_ARRAY_LENGTH = 100_000
# What one evaluation may build in all, in bytes (roughly: a character or a byte is 1, an array
# slot 8, a new number 32). Logic Apps publishes no such number; it bounds an expression that
# stays under every per-result limit but repeats a big result many times (a 131,072-character
# string concatenated 400 times, ten 100,000-item ranges). Checked after each call.
MAX_EVALUATION_BYTES = 32 * 1024 * 1024
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

JSON_CONTENT_KEY = "$content"
JSON_CONTENT_TYPE_KEY = "$content-type"


class Invocation(Protocol):
    """What a function implementation sees of the call being evaluated."""

    @property
    def name(self) -> str: ...

    @property
    def context(self) -> Context: ...

    def fail(self, message: str, arg: int | None = None, *, prefix: bool = True) -> NoReturn:
        """Raise ExpressionError at the call (or argument ``arg``), "name(): " prefixed."""
        ...

    def arg(self, index: int) -> Any: ...

    @property
    def arg_count(self) -> int: ...


Impl = Callable[[Invocation, list[Any]], Any]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str  # canonical spelling, used in messages
    impl: Impl
    min_args: int
    max_args: int | None
    lazy: bool  # impl pulls arguments through Invocation.arg() (if/and/or/coalesce)
    limit_result: bool  # string results count against MAX_RESULT_LENGTH
    # The result is a value the function made (counted against MAX_EVALUATION_BYTES), not a
    # value it was given or read from the context (first(), triggerBody()...).
    builds: bool = True


REGISTRY: dict[str, FunctionSpec] = {}


def function(
    name: str,
    min_args: int = 0,
    max_args: int | None = -1,
    *,
    lazy: bool = False,
    limit_result: bool = True,
    builds: bool = True,
    aliases: Sequence[str] = (),
) -> Callable[[Impl], Impl]:
    """Register ``impl`` under ``name`` (and aliases); ``max_args=-1`` means "= min_args"."""

    def register(impl: Impl) -> Impl:
        high = min_args if max_args == -1 else max_args
        for each in (name, *aliases):
            key = each.lower()
            if key in REGISTRY:
                raise RuntimeError(f"WDL function {each!r} registered twice")
            REGISTRY[key] = FunctionSpec(
                each, impl, min_args, high, lazy, limit_result, builds and limit_result
            )
        return impl

    return register


# ---------------------------------------------------------------------------
# Describing values in messages


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def describe(value: Any) -> str:
    """``string 'x'``, ``integer 5``, ``array of 3 items`` ... for error messages."""
    kind = type_name(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int | float | Decimal):
        return f"{kind} {to_text(value)}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, bytes):
        return f"binary content ({len(value)} bytes)"
    if isinstance(value, list | tuple):
        return f"array of {len(value)} item{'' if len(value) == 1 else 's'}"
    return kind


# ---------------------------------------------------------------------------
# Argument helpers. Each fails with "<fn>(): argument N must be ..., got ...".


def _bad(call: Invocation, index: int, wanted: str, value: Any) -> NoReturn:
    call.fail(f"argument {index + 1} must be {wanted}, got {describe(value)}", arg=index)


def is_number(value: Any) -> TypeGuard[int | float | Decimal]:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def arg_str(call: Invocation, args: list[Any], index: int) -> str:
    value = args[index]
    if not isinstance(value, str):
        _bad(call, index, "a string", value)
    return value


def arg_int(call: Invocation, args: list[Any], index: int) -> int:
    value = args[index]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _bad(call, index, "an integer", value)


def arg_number(call: Invocation, args: list[Any], index: int) -> int | float | Decimal:
    value = args[index]
    if not is_number(value):
        _bad(call, index, "a number", value)
    return value


def arg_bool(call: Invocation, args: list[Any], index: int) -> bool:
    value = args[index]
    if not isinstance(value, bool):
        _bad(call, index, "a boolean (true or false)", value)
    return value


def arg_list(call: Invocation, args: list[Any], index: int) -> list[Any]:
    value = args[index]
    if not isinstance(value, list | tuple):
        _bad(call, index, "an array", value)
    return list(value)


def arg_object(call: Invocation, args: list[Any], index: int) -> Mapping[str, Any]:
    value = args[index]
    if not isinstance(value, Mapping):
        _bad(call, index, "an object", value)
    return value


def optional(args: list[Any], index: int) -> Any:
    return args[index] if index < len(args) else None


# ---------------------------------------------------------------------------
# Numbers


def check_int(call: Invocation, value: int) -> int:
    # Logic Apps integers are .NET Int64; Python's would otherwise grow without bound.
    if not INT64_MIN <= value <= INT64_MAX:
        call.fail("integer overflow: the result does not fit in 64 bits")
    return value


def check_float(call: Invocation, value: float) -> float:
    if not math.isfinite(value):
        call.fail("the result is not a finite number")
    return value


def check_number(call: Invocation, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return check_int(call, value)
    if isinstance(value, float):
        return check_float(call, value)
    if isinstance(value, Decimal) and not value.is_finite():
        call.fail("the result is not a finite number")
    return value


def coerce_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Make two numbers combinable: a float beside a Decimal turns the Decimal into a float."""
    if isinstance(a, Decimal) and isinstance(b, float):
        return float(a), b
    if isinstance(b, Decimal) and isinstance(a, float):
        return a, float(b)
    return a, b


def format_float(value: float) -> str:
    """Shortest round-trip text, spelled as .NET Core 3.0+ prints a double.

    10.0 -> "10" (the reference: ``sub(10.3, .3)`` returns 10), 1e20 -> "1E+20",
    1e-05 -> "1E-05"; .NET turns to exponents from 1e15 up, Python's repr from 1e16.
    """
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1e15:
        return format(Decimal(repr(value)).normalize(), "E")
    return repr(value).replace("e", "E")


def format_decimal(value: Decimal) -> str:
    return format(value, "f")


# ---------------------------------------------------------------------------
# Text conversion (string(), @{...}, concat())


class TooLarge(Exception):
    """A result would exceed a size limit; raised *before* it is built where the size can be
    known first. The evaluator turns it into an :class:`ExpressionError` naming the call."""

    def __init__(
        self, size: int, limit: int, unit: str = "characters", *, at_least: bool = False
    ) -> None:
        super().__init__(size, limit, unit)
        self.size = size
        self.limit = limit
        self.unit = unit
        self.at_least = at_least

    @property
    def message(self) -> str:
        whose = "Logic Apps allows" if self.unit == "characters" else "allowed"
        size = f"{'at least ' if self.at_least else ''}{self.size:,}"
        return f"the result has {size} {self.unit}, more than the {self.limit:,} {whose}"


def check_length(
    size: int, limit: int = MAX_RESULT_LENGTH, unit: str = "characters", *, at_least: bool = False
) -> None:
    """Raise :class:`TooLarge` when a result of ``size`` would exceed ``limit``; called with
    the size a function computed before building its result (``at_least``: a lower bound)."""
    if size > limit:
        raise TooLarge(size, limit, unit, at_least=at_least)


def check_items(count: int, *, at_least: bool = False) -> None:
    """As :func:`check_length`, for the items of an array a function is about to build."""
    check_length(count, MAX_ARRAY_LENGTH, "items", at_least=at_least)


def json_size_floor(value: Any, limit: int = MAX_RESULT_LENGTH) -> int:
    """A lower bound of ``len(to_json(value))``, computed without building the text and
    without recursion; it stops counting once past ``limit`` (so it costs at most ``limit``
    steps). Used to refuse ``string()`` of a huge array before serializing it."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bytes):
            total += len(item) * 4 // 3 + 40
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            for key, child in item.items():
                total += len(str(key)) + 2
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 1 + len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def to_text(value: Any) -> str:
    """Stringify a value the way ``string()`` and ``@{...}`` do.

    null -> ``""``; booleans -> ``True``/``False`` (the .NET rendering Logic Apps
    shows, see Azure/logicapps#414 and Azure/LogicAppsUX#2012); objects and
    arrays -> compact JSON; binary -> its UTF-8 text.

    Raises :class:`TooLarge` (before serializing) when an object's or array's text would be
    longer than ``MAX_RESULT_LENGTH``; a string is returned as it is, whatever its length.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, bytes):
        check_length(len(value))
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping) and JSON_CONTENT_KEY in value and JSON_CONTENT_TYPE_KEY in value:
        # Content kept as {"$content-type", "$content"} (XML, form data, binary) reads as its
        # text, like binary does: string(triggerBody()) of an XML body is the XML.
        from .content import envelope_bytes

        data = envelope_bytes(value)
        if data is not None:
            check_length(len(data))
            return data.decode("utf-8", errors="replace")
    check_length(json_size_floor(value), at_least=True)
    text = to_json(value)
    check_length(len(text))
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value.items())
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return binary_envelope(value)
    raise TypeError(f"cannot serialize {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    """Compact JSON text (no spaces), keeping non-ASCII characters as they are."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_text(call: Invocation, value: str) -> Any:
    """JSON text (argument 1 of ``json()``, ``xml()``...) parsed within the evaluation's bounds.

    The text may come from a sender (a trigger body): its depth is measured before parsing
    (jsonsafe), and a text the evaluation could not afford to hold parsed is refused first.
    What parsing would hold, estimated from the text: its characters and a slot and a value per
    item (one per comma or colon).
    """
    from .. import jsonsafe

    parsed = len(value) + 48 * (value.count(",") + value.count(":"))
    check_length(parsed, MAX_EVALUATION_BYTES, "bytes once parsed", at_least=True)
    if jsonsafe.too_deep(value):
        call.fail(f"argument 1 is JSON nested too deeply (over {jsonsafe.MAX_DEPTH} levels)", 0)
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = f" at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        call.fail(f"argument 1 is not valid JSON: {detail}{where}", 0)


def binary_envelope(data: bytes) -> dict[str, str]:
    """The ``{"$content-type", "$content"}`` object Logic Apps uses for binary in JSON."""
    return {
        JSON_CONTENT_TYPE_KEY: "application/octet-stream",
        JSON_CONTENT_KEY: base64.b64encode(data).decode("ascii"),
    }


def check_text(call: Invocation, text: str) -> str:
    if len(text) > MAX_RESULT_LENGTH:
        call.fail(
            f"the result has {len(text):,} characters, more than the "
            f"{MAX_RESULT_LENGTH:,} Logic Apps allows"
        )
    return text


# ---------------------------------------------------------------------------
# Objects


def lookup(container: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """Property lookup: exact key, then (plain dicts) a case-insensitive match.

    Other mappings (``httpx.Headers``...) are asked directly so their own
    case rules apply.
    """
    if isinstance(container, dict):
        if key in container:
            return True, container[key]
        folded = key.casefold()
        for name, value in container.items():
            if isinstance(name, str) and name.casefold() == folded:
                return True, value
        return False, None
    try:
        return True, container[key]
    except (KeyError, TypeError, ValueError):
        # ValueError covers e.g. httpx.Headers refusing a non-ASCII header name.
        return False, None


# ---------------------------------------------------------------------------
# Equality, ordering, hashing


def values_equal(a: Any, b: Any) -> bool:
    """Deep equality: 1 == 1.0, true == 1 (reference: ``equals(true, 1)`` is true),
    strings case-sensitive, objects by key set and values, order-insensitive."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, bytes) or isinstance(b, bytes):
        return isinstance(a, bytes) and isinstance(b, bytes) and a == b
    if is_number(a) or isinstance(a, bool):
        if not (is_number(b) or isinstance(b, bool)):
            return False
        x, y = coerce_pair(a, b)
        return bool(x == y)
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not values_equal(value, b[key]):
                return False
        return True
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def hash_key(value: Any) -> Any:
    """A hashable stand-in with the same equality as :func:`values_equal`."""
    if isinstance(value, Mapping):
        return ("{}", frozenset((k, hash_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("[]", tuple(hash_key(v) for v in value))
    if isinstance(value, Decimal):
        # values_equal compares a Decimal with a float as floats; hash the same way.
        return float(value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bytes):
        return ("b", value)
    return value


def comparable(call: Invocation, args: list[Any], index: int) -> Any:
    """An argument of greater()/less()...: a number or a string; null counts as ''.

    Reference, logical comparison functions: "null values are converted to
    empty string ("") values".
    """
    value = args[index]
    if value is None:
        return ""
    if is_number(value) or isinstance(value, str):
        return value
    _bad(call, index, "a number or a string", value)


def compare(call: Invocation, args: list[Any]) -> int:
    a = comparable(call, args, 0)
    b = comparable(call, args, 1)
    if isinstance(a, str) != isinstance(b, str):
        call.fail(f"cannot compare {describe(args[0])} with {describe(args[1])}")
    a, b = coerce_pair(a, b)
    # Ordinal (code point) order for strings; the reference does not say otherwise.
    return int(a > b) - int(a < b)
