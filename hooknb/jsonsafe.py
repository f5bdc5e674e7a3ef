"""JSON from outside, parsed and printed within bounds: the one way hooknb does it.

Anything a sender or a subscribed service sends (callback bodies, subscribe responses, Http
action responses) and anything read back from the store may be nested thousands of levels
deep or be megabytes long. Python's ``json`` recurses once per level and raises
``RecursionError`` (not ``ValueError``) somewhere near 1,000 levels, depending on how deep the
caller's own stack already is, and whatever walks the parsed value later (printing it with
``indent``, copying it, encoding it again inside a bigger document) recurses again. So the
depth is measured *before* parsing, without recursion, and a value deeper than
:data:`MAX_DEPTH` is never parsed: callers keep the text as it is (shown raw or cut).

No hooknb imports here: both the server and the kernel side may use it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import orjson

__all__ = [
    "MAX_DEPTH",
    "MAX_REQUEST_DEPTH",
    "JSONTooDeep",
    "clip_depth",
    "depth_of",
    "dumps",
    "dumps_anything",
    "dumps_bytes",
    "jsonable",
    "loads",
    "too_deep",
    "truncated_marker",
    "try_loads",
]

#: Deepest JSON hooknb parses or prints (objects and arrays, counted from 1). Far more than
#: real payloads use, and far enough from the interpreter's recursion limit (1,000 frames) that
#: a value this deep can be wrapped in an API answer, pretty-printed and copied safely.
MAX_DEPTH = 128

#: Deepest request body hooknb's own API parses (a kernel's subscribe requests and run reports),
#: so also the deepest request hooknb stores and reads back to send.
MAX_REQUEST_DEPTH = 512

# A JSON string literal (escapes included); brackets inside strings do not nest anything. An
# unterminated one runs to the end of the text: were it allowed to fail, the search would
# start again at every later quote, and '"\\"\\"\\"...' would cost quadratic time.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(ValueError):
    """The text nests objects/arrays deeper than allowed (raised before parsing it)."""


def depth_of(text: str | bytes) -> int:
    """How deep objects and arrays nest in JSON ``text`` (0 for a scalar), without recursion.

    Meant for deciding whether to parse: for text that is not JSON the number is still
    bounded by the count of brackets and costs one pass in C (regular expressions and
    ``accumulate``), never a Python loop per character.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", "replace")
    opening = text.count("[") + text.count("{")
    if opening == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def too_deep(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether JSON ``text`` nests deeper than ``max_depth`` (fast when it cannot: only text
    with more opening brackets than the limit is scanned)."""
    return text.count("[") + text.count("{") > max_depth and depth_of(text) > max_depth


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_chars: int | None = None) -> Any:
    """``json.loads`` that refuses text nested deeper than ``max_depth``, or longer than
    ``max_chars``, before parsing it.

    Raises:
        JSONTooDeep: too deep (a ``ValueError``).
        ValueError: too long, or not JSON (``json.JSONDecodeError``, or not UTF-8 for bytes).
    """
    if max_chars is not None and len(text) > max_chars:
        raise ValueError(f"JSON text longer than {max_chars} characters")
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8: {exc}") from None
    if too_deep(text, max_depth):
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # a caller already deep in its own stack; same answer
        raise JSONTooDeep(f"JSON nested too deeply to parse here ({max_depth} allowed)") from None


def try_loads(text: str | bytes | None, *, max_depth: int = MAX_DEPTH) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` is JSON within ``max_depth``, else ``(False, None)``."""
    if text is None:
        return False, None
    try:
        return True, loads(text, max_depth=max_depth)
    except ValueError:
        return False, None


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose failure on a too-deep value is a ``ValueError`` like the others."""
    try:
        return json.dumps(value, **kwargs)
    except RecursionError:
        raise JSONTooDeep("value nested too deeply to encode as JSON") from None


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON in UTF-8 of a value hooknb built (an answer, an event it pushes), written
    by orjson, ~10 times faster than ``json.dumps`` on the callback path. What orjson does not
    take (integers beyond 64 bits, lone surrogates, nesting beyond 254 levels) goes through
    :func:`dumps`. orjson writes NaN and infinities as ``null`` (JSON has no such numbers)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return dumps(value).encode()


def jsonable(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` always encodes: bytes
    and other non-JSON values become text (invalid UTF-8 replaced), object keys strings,
    infinities and NaN ``None``, and what is deeper than ``max_depth`` a
    :func:`truncated_marker`. Iterative. For answers built from rows that may be hostile."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        item, parent, key, level = stack.pop()
        if isinstance(item, dict | list | tuple) and level >= max_depth and not _flat(item):
            parent[key] = truncated_marker(_shallow_text(item, 2000))
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            parent[key] = copy
            for name, child in item.items():
                text = name if isinstance(name, str) else _scalar(name)
                text = str(text) if not isinstance(text, str) else text
                copy[text] = None
                stack.append((child, copy, text, level + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((child, items, index, level + 1) for index, child in enumerate(item))
        else:
            parent[key] = _scalar(item)
    return root[0]


def _scalar(item: Any) -> Any:
    if item is None or isinstance(item, bool | int | str):
        return item
    if isinstance(item, float):
        return item if item == item and item not in (float("inf"), float("-inf")) else None
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item).decode("utf-8", "replace")
    return repr(item)


def dumps_anything(value: Any, **kwargs: Any) -> str:
    """JSON text for an answer, whatever ``value`` holds: ``json.dumps`` (fast, in C) when it
    can, else the same of :func:`jsonable` of it. Lone surrogates are escaped (``\\udXXX``),
    so that the text always encodes as UTF-8."""
    kwargs["allow_nan"] = False
    kwargs["ensure_ascii"] = True
    try:
        return json.dumps(value, **kwargs)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(jsonable(value), **kwargs)


def truncated_marker(text: str, limit: int = 2000, **extra: Any) -> dict[str, Any]:
    """What is shown in place of a value that cannot be shown whole: its first ``limit``
    characters (``repr``) and its size. The page renders this marker as cut text."""
    return {"$truncated": True, "repr": text[:limit], "size": len(text), **extra}


def clip_depth(value: Any, max_depth: int = MAX_DEPTH, limit: int = 2000) -> Any:
    """``value`` cut to ``max_depth`` levels: an object or array at that level that still
    holds objects or arrays is replaced by a :func:`truncated_marker` of its JSON text.
    Iterative: safe on any depth Python can hold.

    Returns ``value`` itself when nothing is that deep (the common case: no copy).
    """
    if _depth_within(value, max_depth):
        return value
    return _clip(value, max_depth, limit)


def _depth_within(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if level > max_depth:
            return False
        stack.extend((child, level + 1) for child in children)
    return True


def _clip(value: Any, max_depth: int, limit: int) -> Any:
    root: list[Any] = [None]
    # (value, where to put its copy: (container, key), level)
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        item, parent, key, level = stack.pop()
        if isinstance(item, dict | list | tuple) and level >= max_depth and not _flat(item):
            # The marker (a flat object) takes this level: the result is max_depth deep.
            parent[key] = truncated_marker(_shallow_text(item, limit), limit)
        elif isinstance(item, dict):
            copy: dict[Any, Any] = {}
            parent[key] = copy
            for name, child in item.items():
                copy[name] = None
                stack.append((child, copy, name, level + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((child, items, index, level + 1) for index, child in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def _flat(value: Any) -> bool:
    children = value.values() if isinstance(value, dict) else value
    return not any(isinstance(child, dict | list | tuple) for child in children)


def _shallow_text(value: Any, limit: int) -> str:
    """The start of a too-deep value's JSON text, built without recursion."""
    parts: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < limit:
        item = stack.pop()
        if isinstance(item, _Token):
            text = item.value
        elif isinstance(item, dict):
            text = "{"
            stack.append(_Token("}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                name, child = entries[index]
                stack.append(child)
                stack.append(_Token(json.dumps(str(name)) + ":"))
                if index:
                    stack.append(_Token(","))
        elif isinstance(item, list | tuple):
            text = "["
            stack.append(_Token("]"))
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_Token(","))
        else:
            try:
                text = json.dumps(item)
            except (TypeError, ValueError):
                text = json.dumps(repr(item))
        parts.append(text)
        size += len(text)
    return "".join(parts)[:limit]


class _Token:
    """Punctuation pushed on :func:`_shallow_text`'s stack (a plain str would be a value)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value
