"""Property-based tests: on any input, evaluate() returns or raises ExpressionError,
within bounded time and memory.

Never another exception (the evaluator turns an unexpected Python exception into
an ExpressionError saying "internal error", which these tests also reject), never
a hang (hypothesis deadlines), never unbounded recursion; and every evaluation is
measured: its CPU time and its peak allocation (tracemalloc) stay under
``MAX_SECONDS`` and ``MAX_BYTES``. Known "bombs" (results that explode before a
size check) must fail with ExpressionError within 100 ms of CPU and 50 MB.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hooknb.wdl import (
    Context,
    ExpressionError,
    evaluate,
    evaluate_template,
    function_names,
    parse,
    referenced_functions,
)
from hooknb.wdl._functions import FUNCTIONS, FunctionSpec

CONTEXT = Context(
    callback_url="https://hub.example/cb",
    trigger={
        "name": "manual",
        "outputs": {
            "headers": httpx.Headers({"Authorization": "Bearer x", "Content-Type": "text/plain"}),
            "body": {"value": [1, "two", None, {"k": 3.5}], "text": "héllo", "n": 7},
        },
    },
    actions={"A": {"name": "A", "status": "Succeeded", "outputs": {"body": {"id": 1}}}},
    action={"outputs": {"body": {"id": "sub-1"}}},
    parameters={"p": "value", "n": 3, "list": [3, 1, 2], "obj": {"a": {"b": [1, 2]}}},
    workflow={"name": "wf", "run": {"name": "run-1"}},
    variables={"v": 1.5},
    items={"loop": {"x": 1}},
    iteration_indexes={"until": 2},
    results={"scope": []},
    app_settings={"s": "t"},
    now=lambda: datetime(2021, 6, 1, 12, 0, tzinfo=UTC),
)

FUZZ = settings(
    max_examples=350,
    deadline=2_000,  # milliseconds per example; a hang or a quadratic blow-up fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


#: Bounds of one evaluation of any fuzzed expression: CPU time (of this thread, so that other
#: processes on a shared machine do not count) and peak memory allocated while evaluating.
#: Legitimate work can take a while (sorting 100,000 items); bombs must fail much sooner.
MAX_SECONDS = 0.5
MAX_BYTES = 50 * 1024 * 1024


def measured(value: str, context: Context = CONTEXT) -> tuple[ExpressionError | None, float, int]:
    """Evaluate ``value`` twice: once under tracemalloc for the peak allocation, once without
    (tracemalloc slows allocation down) for the CPU time. The error raised, if any."""
    tracemalloc.start()
    try:
        evaluate(value, context)
    except ExpressionError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    error = None
    # The time is the expression's own: a collection of this process's whole heap (a thousand
    # tests' leftovers, by the end of a CI run) landing inside it took 1.1 s once.
    gc.disable()
    started = time.thread_time()
    try:
        evaluate(value, context)
    except ExpressionError as exc:
        error = exc
    finally:
        seconds = time.thread_time() - started
        gc.enable()
    return error, seconds, peak


def _check(value: str) -> None:
    exc, seconds, peak = measured(value)
    assert seconds <= MAX_SECONDS, f"{value!r} took {seconds:.3f} s of CPU"
    assert peak <= MAX_BYTES, f"{value!r} allocated {peak / 2**20:.1f} MiB at its peak"
    if exc is not None:
        assert "internal error" not in exc.message, exc
        assert exc.expression == value
        assert exc.position is None or 0 <= exc.position <= len(value)


# ---------------------------------------------------------------------------
# Arbitrary text

WDL_CHARS = st.sampled_from(list("@{}()[]'?.,-+ 0123456789abcdeftrunlxyzACTS_$\"\n\\é"))


@FUZZ
@given(st.text(max_size=120))
def test_arbitrary_text(text: str) -> None:
    _check(text)
    _check("@" + text)
    _check("@{" + text + "}")


@FUZZ
@given(st.text(WDL_CHARS, max_size=80))
def test_arbitrary_wdl_like_text(text: str) -> None:
    _check(text)
    _check("@" + text)


# ---------------------------------------------------------------------------
# Near-valid expressions: generated from the grammar, then possibly mutated

NAMES = function_names()
STRING_ARGS = [
    "''",
    "'a'",
    "'it''s'",
    "'2018-03-15T13:27:36Z'",
    "'03/15/2018 12:00:00'",
    "'Pacific Standard Time'",
    "'Day'",
    "'D'",
    "'o'",
    "'yyyy-MM-dd'",
    "'#,##0.00'",
    "'C2'",
    "'de-DE'",
    "'https://x.example:8080/p?q=1'",
    "'aGVsbG8='",
    "'data:text/plain;charset=utf-8;base64,aGVsbG8='",
    "'[1, 2, {\"a\": null}]'",
    "'{\"a\": 1}'",
    "'10,000.5'",
    "'true'",
    "'p'",
    "'A'",
    "'value'",
    "'%41'",
    "'<a x=\"1\"><b>t</b><b/></a>'",
    "'/a/b'",
    "'count(//b)'",
    "'k'",
]

literals = st.one_of(
    st.sampled_from(STRING_ARGS),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.sampled_from(["0", "1", "-1", "2", "5", "100000", "100001", ".5", "-2.5", "1e308"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "false", "null"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(
        lambda s: "'" + s.replace("'", "''") + "'"
    ),
)


def _call(args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def with_arity(spec: FunctionSpec) -> st.SearchStrategy[str]:
        high = spec.max_args if spec.max_args is not None else spec.min_args + 3
        return st.lists(args, min_size=spec.min_args, max_size=high).map(
            lambda values: f"{spec.name}({', '.join(values)})"
        )

    # Mostly the right number of arguments, so function bodies run, not just arity checks.
    right = st.sampled_from(sorted(FUNCTIONS.values(), key=lambda s: s.name)).flatmap(with_arity)
    wrong = st.tuples(st.sampled_from(NAMES), st.lists(args, max_size=4)).map(
        lambda t: f"{t[0]}({', '.join(t[1])})"
    )
    return st.one_of(right, right, right, wrong)


def _access(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    step = st.one_of(
        st.sampled_from([".a", ".value", ".outputs", ".body", "?.x", ".length"]),
        inner.map(lambda e: f"[{e}]"),
        inner.map(lambda e: f"?[{e}]"),
        st.sampled_from(["[0]", "[1]", "?[5]", "['a']", "?['b']", "[-1]"]),
    )
    return st.tuples(inner, st.lists(step, min_size=1, max_size=3)).map(
        lambda t: t[0] + "".join(t[1])
    )


expressions = st.recursive(
    literals, lambda inner: st.one_of(_call(inner), _access(inner)), max_leaves=12
)


@st.composite
def mutated(draw: st.DrawFn, source: st.SearchStrategy[str]) -> str:
    text = draw(source)
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        index = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(WDL_CHARS)
        if action == "delete":
            text = text[:index] + text[index + 1 :]
        elif action == "insert":
            text = text[:index] + char + text[index:]
        else:
            text = text[:index] + char + text[index + 1 :]
    return text


@FUZZ
@given(expressions)
def test_generated_expressions(expression: str) -> None:
    _check("@" + expression)
    _check("x @{" + expression + "} y")


@FUZZ
@given(mutated(expressions))
def test_mutated_expressions(expression: str) -> None:
    _check("@" + expression)
    _check("@{" + expression + "}")


@FUZZ
@given(st.lists(expressions, min_size=1, max_size=3), st.text(WDL_CHARS, max_size=10))
def test_interpolations(parts: list[str], glue: str) -> None:
    _check(glue.join("@{" + p + "}" for p in parts))


# ---------------------------------------------------------------------------
# Whole templates and the static analysis

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        expressions.map(lambda e: "@" + e),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(json_values)
def test_templates(template: Any) -> None:
    try:
        evaluate_template(template, CONTEXT)
    except ExpressionError as exc:
        assert "internal error" not in exc.message, exc
    try:
        names = referenced_functions(template)
    except ExpressionError:
        return
    assert all(name == name.lower() for name in names)


@FUZZ
@given(expressions)
def test_referenced_functions_matches_parse(expression: str) -> None:
    value = "@" + expression
    try:
        template = parse(value)
    except ExpressionError:
        return
    assert referenced_functions({"k": [value]}) == set(template.functions)
    called = {name.lower() for name in NAMES if f"{name}(".lower() in expression.lower()}
    assume(called)
    assert template.functions <= {n.lower() for n in NAMES}


# ---------------------------------------------------------------------------
# Size bombs: every one fails with ExpressionError before it allocates its result

HUGE = "x" * (16 * 1024 * 1024)  # a 16 MiB trigger body, as text
BOMB_CONTEXT = Context(
    parameters={
        "s": "z" * 100_000,
        "huge": HUGE,
        "deep": "[" * 100_000 + "]" * 100_000,
        "commas": "," * 131_000,
        "ints": "[" + "1," * 4_000_000 + "1]",  # 8 MB of JSON text, 4 million items
        "nodes": "<r>" + "<a>1</a>" * 100_001 + "</r>",  # one node too many
        "xmldeep": "<a>" * 100_000 + "</a>" * 100_000,
        "bigxml": "<r>" + "<a x='1'>t</a>" * 50_000 + "</r>",  # within every bound
        "laughs": '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        "<r>&b;&b;&b;</r>",
    },
    trigger={"outputs": {"body": HUGE}},
)
BOMBS = [
    # the issue's: replace and join over ranges (7.7 s and 2.3 GB; 11.4 GB asked at once)
    "@replace(string(range(0, 20000)), ',', string(range(0, 20000)))",
    "@join(range(0, 100000), string(range(0, 20000)))",
    "@join(range(0, 100000), join(range(0, 20000), ','))",
    "@replace(parameters('commas'), ',', parameters('s'))",
    "@string(range(0, 100000))",
    "@string(createArray(range(0, 100000), range(0, 100000), range(0, 100000)))",
    "@concat(" + ", ".join(["parameters('s')"] * 400) + ")",
    "@" + "concat(" * 40 + "parameters('s')" + ", parameters('s'))" * 40,
    "@{parameters('s')}@{parameters('s')}",
    "@createArray(" + ", ".join(["range(0, 100000)"] * 12) + ")",
    "@union(range(0, 100000), range(100000, 100000), range(200000, 100000))",
    "@json(parameters('deep'))",
    "@json(concat('[', parameters('deep')))",
    "@json(parameters('ints'))",
    "@base64(parameters('huge'))",
    "@base64(triggerBody())",
    "@dataUri(parameters('huge'))",
    "@uriComponent(parameters('huge'))",
    "@binary(parameters('huge'))",
    "@base64ToBinary(parameters('huge'))",
    "@toUpper(parameters('huge'))",
    "@substring(parameters('huge'), 1)",
    "@slice(parameters('huge'), 0, -1)",
    "@split(parameters('huge'), 'x')",
    "@chunk(parameters('huge'), 1)",
    "@chunk(range(0, 100000), 0)",
    "@xml(parameters('s'))",
    "@xml(parameters('nodes'))",
    "@xml(parameters('xmldeep'))",
    "@xml(parameters('laughs'))",
    "@json(xml(parameters('nodes')))",
    "@xpath(xml(parameters('bigxml')), '//a[count(//a) > 0]')",
    "@xpath(xml(parameters('bigxml')), '//a[following::a]')",
    "@xml(json(concat('{\"r\":', string(range(0, 100000)), '}')))",
    "@" + "string(" * 60 + "range(0, 100000)" + ")" * 60,
    "@length(string(json(string(range(0, 30000)))))",
]


@pytest.mark.parametrize("bomb", BOMBS)
def test_size_bombs_fail_fast_and_small(bomb: str) -> None:
    assert len(bomb) <= 8192  # each fits in one Logic Apps expression
    error, seconds, peak = measured(bomb, BOMB_CONTEXT)
    assert error is not None, f"{bomb[:80]!r} did not fail"
    assert "internal error" not in error.message
    assert seconds <= 0.1, f"{bomb[:80]!r} took {seconds * 1000:.0f} ms of CPU"
    assert peak <= 50 * 1024 * 1024, f"{bomb[:80]!r} allocated {peak / 2**20:.1f} MiB"


SEARCHES = [
    # case-insensitive searches of long texts: linear, not text x search (1.3 s per 131,072
    # characters before, minutes for a 16 MiB body)
    "@indexOf(parameters('s'), concat(substring(parameters('s'), 0, 4000), 'b'))",
    "@lastIndexOf(parameters('huge'), concat(substring(parameters('huge'), 0, 8000), 'b'))",
    "@nthIndexOf(parameters('huge'), 'x', -99999)",
    "@nthIndexOf(parameters('huge'), concat(substring(parameters('huge'), 0, 8000), 'b'), 1)",
]


@pytest.mark.parametrize("search", SEARCHES)
def test_searching_long_texts_is_fast(search: str) -> None:
    error, seconds, peak = measured(search, BOMB_CONTEXT)
    assert error is None, error
    assert seconds <= 0.1, f"{search[:80]!r} took {seconds * 1000:.0f} ms of CPU"
    assert peak <= 50 * 1024 * 1024, f"{search[:80]!r} allocated {peak / 2**20:.1f} MiB"


HEAVY = st.sampled_from(
    [
        "range(0, 100000)",
        "range(0, 20000)",
        "string(range(0, 20000))",
        "join(range(0, 20000), ',')",
        "parameters('s')",
        "parameters('huge')",
        "parameters('deep')",
        "parameters('commas')",
        "triggerBody()",
        "parameters('bigxml')",
        "xml(parameters('bigxml'))",
        "','",
        "'x'",
        "1",
        "100000",
    ]
)
BUILDERS = [
    "replace({0}, {1}, {2})",
    "join({0}, {1})",
    "concat({0}, {1}, {2})",
    "string({0})",
    "createArray({0}, {1}, {2})",
    "union({0}, {1})",
    "intersection({0}, {1})",
    "split({0}, {1})",
    "chunk({0}, {1})",
    "base64({0})",
    "json({0})",
    "uriComponent({0})",
    "toUpper({0})",
    "skip({0}, {1})",
    "reverse({0})",
    "sort({0})",
    "setProperty(json('{{}}'), 'k', {0})",
    "array({0})",
    "xml({0})",
    "xpath({0}, '/r/a')",
    "json(xml({0}))",
]


def _heavy(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(BUILDERS), inner, inner, inner).map(
        lambda t: t[0].format(t[1], t[2], t[3])
    )


heavy_expressions = st.recursive(HEAVY, _heavy, max_leaves=10)


@settings(
    max_examples=150,
    deadline=None,  # measured() bounds CPU time itself; wall time depends on the machine
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(heavy_expressions)
def test_heavy_expressions_are_bounded(expression: str) -> None:
    """Big building blocks combined at random: whatever the combination, one evaluation
    stays within MAX_SECONDS of CPU and MAX_BYTES of memory, and fails cleanly if at all."""
    error, seconds, peak = measured("@" + expression, BOMB_CONTEXT)
    assert seconds <= MAX_SECONDS, f"{expression!r} took {seconds:.3f} s of CPU"
    assert peak <= MAX_BYTES, f"{expression!r} allocated {peak / 2**20:.1f} MiB at its peak"
    assert error is None or "internal error" not in error.message, error
