"""Collection, logical comparison and JSON manipulation functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._functions_core import (
    MAX_ARRAY_LENGTH,
    Invocation,
    arg_bool,
    arg_int,
    arg_list,
    arg_object,
    arg_str,
    check_items,
    check_length,
    compare,
    describe,
    function,
    hash_key,
    is_number,
    lookup,
    to_text,
    values_equal,
)

# ---------------------------------------------------------------------------
# Logical comparison. and/or/if/coalesce evaluate lazily, left to right, and stop
# early: any expression Logic Apps evaluates gives the same result here, and
# guards such as if(empty(x), null, first(x)) also work.


@function("and", 1, None, lazy=True)
def _and(call: Invocation, args: list[Any]) -> bool:
    return all(_bool_arg(call, index) for index in range(call.arg_count))


@function("or", 1, None, lazy=True)
def _or(call: Invocation, args: list[Any]) -> bool:
    return any(_bool_arg(call, index) for index in range(call.arg_count))


def _bool_arg(call: Invocation, index: int) -> bool:
    value = call.arg(index)
    if not isinstance(value, bool):
        call.fail(
            f"argument {index + 1} must be a boolean (true or false), got {describe(value)}", index
        )
    return value


@function("not", 1)
def _not(call: Invocation, args: list[Any]) -> bool:
    return not arg_bool(call, args, 0)


@function("if", 3, lazy=True)
def _if(call: Invocation, args: list[Any]) -> Any:
    return call.arg(1) if _bool_arg(call, 0) else call.arg(2)


@function("coalesce", 1, None, lazy=True)
def _coalesce(call: Invocation, args: list[Any]) -> Any:
    for index in range(call.arg_count):
        value = call.arg(index)
        if value is not None:
            return value
    return None


@function("equals", 2)
def _equals(call: Invocation, args: list[Any]) -> bool:
    # "If you use logical functions ... to compare values, null values are converted
    # to empty string ("") values." (functions reference, logical comparison functions)
    a, b = ("" if v is None else v for v in args)
    return values_equal(a, b)


@function("greater", 2)
def _greater(call: Invocation, args: list[Any]) -> bool:
    return compare(call, args) > 0


@function("greaterOrEquals", 2)
def _greater_or_equals(call: Invocation, args: list[Any]) -> bool:
    return compare(call, args) >= 0


@function("less", 2)
def _less(call: Invocation, args: list[Any]) -> bool:
    return compare(call, args) < 0


@function("lessOrEquals", 2)
def _less_or_equals(call: Invocation, args: list[Any]) -> bool:
    return compare(call, args) <= 0


@function("true")
def _true(call: Invocation, args: list[Any]) -> bool:
    return True


@function("false")
def _false(call: Invocation, args: list[Any]) -> bool:
    return False


# ---------------------------------------------------------------------------
# Collections


def _sequence(call: Invocation, args: list[Any], index: int) -> str | list[Any]:
    value = args[index]
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return list(value)
    call.fail(f"argument {index + 1} must be a string or an array, got {describe(value)}", index)


def _count(call: Invocation, args: list[Any], index: int) -> int:
    count = arg_int(call, args, index)
    if count < 0:
        call.fail(f"argument {index + 1} must not be negative, got {count}", index)
    return count


@function("contains", 2)
def _contains(call: Invocation, args: list[Any]) -> bool:
    collection, value = args
    if isinstance(collection, str):
        return arg_str(call, args, 1) in collection
    if isinstance(collection, list | tuple):
        return any(values_equal(item, value) for item in collection)
    if isinstance(collection, Mapping):
        return arg_str(call, args, 1) in collection
    call.fail(f"argument 1 must be a string, an array or an object, got {describe(collection)}", 0)


@function("empty", 1)
def _empty(call: Invocation, args: list[Any]) -> bool:
    value = args[0]
    if value is None:
        return True
    if isinstance(value, str | list | tuple | Mapping | bytes):
        return len(value) == 0
    call.fail(f"argument 1 must be a string, an array or an object, got {describe(value)}", 0)


@function("length", 1)
def _length(call: Invocation, args: list[Any]) -> int:
    value = args[0]
    if isinstance(value, str | list | tuple | bytes):
        return len(value)
    call.fail(f"argument 1 must be a string or an array, got {describe(value)}", 0)


@function("first", 1, builds=False)
def _first(call: Invocation, args: list[Any]) -> Any:
    sequence = _sequence(call, args, 0)
    # An empty collection gives null rather than an error (the reference is silent).
    return sequence[0] if sequence else None


@function("last", 1, builds=False)
def _last(call: Invocation, args: list[Any]) -> Any:
    sequence = _sequence(call, args, 0)
    return sequence[-1] if sequence else None


@function("skip", 2)
def _skip(call: Invocation, args: list[Any]) -> Any:
    return _sequence(call, args, 0)[_count(call, args, 1) :]


@function("take", 2)
def _take(call: Invocation, args: list[Any]) -> Any:
    return _sequence(call, args, 0)[: _count(call, args, 1)]


@function("join", 2)
def _join(call: Invocation, args: list[Any]) -> str:
    items = arg_list(call, args, 0)
    delimiter = arg_str(call, args, 1)
    # Counted as the pieces are made, so that 100,000 items joined by a long delimiter (or
    # holding long texts) are refused at the limit, not after gigabytes are built.
    length = len(delimiter) * max(0, len(items) - 1)
    check_length(length)
    pieces: list[str] = []
    for item in items:
        piece = to_text(item)
        length += len(piece)
        check_length(length, at_least=len(pieces) + 1 < len(items))
        pieces.append(piece)
    return delimiter.join(pieces)


@function("reverse", 1)
def _reverse(call: Invocation, args: list[Any]) -> list[Any]:
    return arg_list(call, args, 0)[::-1]


@function("chunk", 2)
def _chunk(call: Invocation, args: list[Any]) -> list[Any]:
    sequence = _sequence(call, args, 0)
    size = arg_int(call, args, 1)
    if size <= 0:
        call.fail(f"argument 2 must be a positive integer, got {size}", 1)
    check_items(-(-len(sequence) // size))
    return [sequence[i : i + size] for i in range(0, len(sequence), size)]


@function("createArray", 0, None)
def _create_array(call: Invocation, args: list[Any]) -> list[Any]:
    return list(args)


@function("array", 1)
def _array(call: Invocation, args: list[Any]) -> list[Any]:
    return [args[0]]


def _collections(call: Invocation, args: list[Any]) -> tuple[bool, list[Any]]:
    """All arrays (True) or all objects (False); the reference forbids mixing."""
    if all(isinstance(a, list | tuple) for a in args):
        return True, [list(a) for a in args]
    if all(isinstance(a, Mapping) for a in args):
        return False, list(args)
    for index, value in enumerate(args):
        if not isinstance(value, list | tuple | Mapping):
            call.fail(
                f"argument {index + 1} must be an array or an object, got {describe(value)}", index
            )
    call.fail("the arguments must be all arrays or all objects, not a mix")


@function("union", 2, None)
def _union(call: Invocation, args: list[Any]) -> Any:
    arrays, collections = _collections(call, args)
    if not arrays:
        merged: dict[str, Any] = {}
        for obj in collections:
            merged.update(obj.items())  # "the last item with that name appears"
        return merged
    seen: set[Any] = set()
    out: list[Any] = []
    for array in collections:
        for item in array:
            key = hash_key(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
                if len(out) > MAX_ARRAY_LENGTH:
                    check_items(len(out), at_least=True)
    return out


@function("intersection", 2, None)
def _intersection(call: Invocation, args: list[Any]) -> Any:
    arrays, collections = _collections(call, args)
    if not arrays:
        # Keys present in every object (compared as written); the value of the last wins.
        result: dict[str, Any] = {}
        for key in collections[0]:
            if all(key in other for other in collections[1:]):
                result[key] = collections[-1][key]
        return result
    others = [{hash_key(item) for item in array} for array in collections[1:]]
    seen: set[Any] = set()
    out: list[Any] = []
    for item in collections[0]:
        key = hash_key(item)
        if key not in seen and all(key in other for other in others):
            seen.add(key)
            out.append(item)
    return out


def _sort_value(call: Invocation, value: Any, where: str) -> tuple[int, Any]:
    if isinstance(value, str):
        return (1, value)
    if is_number(value) or isinstance(value, bool):
        return (0, float(value) if not isinstance(value, int) else value)
    call.fail(f"cannot sort {where}: {describe(value)} is not a number, string or boolean")


@function("sort", 1, 2)
def _sort(call: Invocation, args: list[Any]) -> list[Any]:
    items = arg_list(call, args, 0)
    key_name = arg_str(call, args, 1) if len(args) > 1 else None
    keyed: list[tuple[tuple[int, Any], Any]] = []
    for index, item in enumerate(items):
        if key_name is None:
            keyed.append((_sort_value(call, item, f"item {index}"), item))
            continue
        if not isinstance(item, Mapping):
            call.fail(f"item {index} is {describe(item)}, not an object with '{key_name}'")
        found, value = lookup(item, key_name)
        if not found:
            call.fail(f"item {index} has no property '{key_name}'")
        keyed.append((_sort_value(call, value, f"by '{key_name}'"), item))
    if len({kind for (kind, _), _ in keyed}) > 1:
        call.fail("cannot sort a mix of numbers and strings")
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


# ---------------------------------------------------------------------------
# JSON manipulation. The original object is never modified; a new dict is returned.


def _matching_key(obj: Mapping[str, Any], name: str) -> str | None:
    if name in obj:
        return name
    folded = name.casefold()
    for key in obj:
        if isinstance(key, str) and key.casefold() == folded:
            return key
    return None


@function("addProperty", 3)
def _add_property(call: Invocation, args: list[Any]) -> dict[str, Any]:
    obj = arg_object(call, args, 0)
    name = arg_str(call, args, 1)
    existing = _matching_key(obj, name)
    if existing is not None:
        call.fail(f"property '{existing}' already exists; use setProperty() to change it", 1)
    result = dict(obj.items())
    result[name] = args[2]
    return result


@function("setProperty", 3)
def _set_property(call: Invocation, args: list[Any]) -> dict[str, Any]:
    obj = arg_object(call, args, 0)
    name = arg_str(call, args, 1)
    result = dict(obj.items())
    # Property names are case-insensitive in Logic Apps: update the existing spelling.
    result[_matching_key(obj, name) or name] = args[2]
    return result


@function("removeProperty", 2)
def _remove_property(call: Invocation, args: list[Any]) -> dict[str, Any]:
    obj = arg_object(call, args, 0)
    name = arg_str(call, args, 1)
    result = dict(obj.items())
    existing = _matching_key(obj, name)
    if existing is not None:
        del result[existing]
    return result
