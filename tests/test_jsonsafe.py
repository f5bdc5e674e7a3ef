"""hooknb.jsonsafe: depth measured without recursion and in linear time, whatever the text."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb import jsonsafe

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=20,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(values)
def test_depth_of_json_text_is_its_nesting(value: Any) -> None:
    """Brackets inside strings (escaped quotes and backslashes included) do not count."""
    text = json.dumps(value)
    assert jsonsafe.depth_of(text) == depth(value)
    assert jsonsafe.depth_of(text.encode()) == depth(value)
    ok, parsed = jsonsafe.try_loads(text)
    assert ok == (depth(value) <= jsonsafe.MAX_DEPTH) and (not ok or parsed == value)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 200 + '"' + '\\"' * 2_000_000,  # an unterminated string of escaped quotes
        "[" * 200 + '"a' * 2_000_000,  # a million strings
        "[" * 200 + "\\" * 4_000_000,
        "[" * 3_000_000 + "]" * 3_000_000,
    ],
)
def test_depth_of_takes_linear_time(text: str) -> None:
    started = time.thread_time()
    jsonsafe.depth_of(text)
    assert time.thread_time() - started < 2.0  # quadratic would be hours


def test_too_deep_text_is_refused_before_parsing() -> None:
    with pytest.raises(jsonsafe.JSONTooDeep):
        jsonsafe.loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="longer than 10"):
        jsonsafe.loads("[" + "1," * 10 + "1]", max_chars=10)
    assert jsonsafe.try_loads(b"\xff[]") == (False, None)
    assert jsonsafe.loads("[" * 128 + "]" * 128) is not None


def test_clip_depth_keeps_max_depth_levels_and_says_what_it_cut() -> None:
    deep: Any = "bottom"
    for _ in range(5_000):
        deep = [deep]
    clipped = jsonsafe.clip_depth({"r": deep}, 10)
    assert jsonsafe.depth_of(json.dumps(clipped)) == 10
    value = clipped["r"]
    for _ in range(8):
        value = value[0]
    assert value["$truncated"] is True and value["repr"].startswith("[[[[")
    shallow = {"a": [1, {"b": 2}]}
    assert jsonsafe.clip_depth(shallow) is shallow  # nothing to cut: no copy


def test_dumps_anything_encodes_what_rows_may_hold() -> None:
    value = {b"key": b"\xff", "inf": float("inf"), 1: ["\udcff", {2: None}], "t": (1,)}
    text = jsonsafe.dumps_anything(value)
    text.encode("utf-8")  # a lone surrogate is escaped, not left to break the encoding
    assert json.loads(text) == {
        "key": "\ufffd",
        "inf": None,
        "1": ["\udcff", {"2": None}],
        "t": [1],
    }


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=20,
    )
)
def test_dumps_bytes_is_json_that_reads_back_as_the_value(value: Any) -> None:
    # Any text (lone surrogates too) and any integer (beyond 64 bits too): orjson or the
    # json fallback, the bytes are UTF-8 JSON of the same value.
    assert json.loads(jsonsafe.dumps_bytes(value)) == value


def test_dumps_bytes_writes_utf8_compactly_and_nan_as_null() -> None:
    assert jsonsafe.dumps_bytes({"a": "é", "b": [1, 2.5]}) == '{"a":"é","b":[1,2.5]}'.encode()
    assert json.loads(jsonsafe.dumps_bytes({"n": float("nan"), "i": float("inf")})) == {
        "n": None,
        "i": None,
    }
