"""Property-based tests: on any input, evaluate() returns or raises ExpressionError.

Never another exception (the evaluator turns an unexpected Python exception into
an ExpressionError saying "internal error", which these tests also reject), never
a hang (hypothesis deadlines), never unbounded recursion.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
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


def _check(value: str) -> None:
    try:
        evaluate(value, CONTEXT)
    except ExpressionError as exc:
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
