"""The WDL expression language itself: string forms, syntax, member access, errors, limits.

The §4.1 table is verbatim from MicrosoftDocs/azure-docs
``articles/logic-apps/logic-apps-workflow-definition-language.md`` (ms.date 04/30/2018,
commit 8bbef411ac46dc3cf346a8e1d6afe30e84ed6f5d), as quoted in
/work/shared/reference/logicapps-webhook.md §4.1.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import datetime

import httpx
import pytest

from hooknb.wdl import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING_DEPTH,
    MAX_RESULT_LENGTH,
    Context,
    ExpressionError,
    Template,
    evaluate,
    evaluate_template,
    function_names,
    parse,
    referenced_functions,
)

AGE = Context(parameters={"myBirthMonth": "January", "myAge": 42})


# ---------------------------------------------------------------------------
# "@" vs "@{...}" vs "@@" (WDL reference, §4.1 of the reference notes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sophia Owen", "Sophia Owen"),
        ("array[1]", "array[1]"),
        ("@@", "@"),
        (" @", " @"),
        ("@parameters('myBirthMonth')", "January"),
        ("@{parameters('myBirthMonth')}", "January"),
        ("@parameters('myAge')", 42),
        ("@{parameters('myAge')}", "42"),
        ("My age is @{parameters('myAge')}", "My age is 42"),
        ("@concat('My age is ', string(parameters('myAge')))", "My age is 42"),
        ("My age is @@{parameters('myAge')}", "My age is @{parameters('myAge')}"),
    ],
)
def test_wdl_reference_table(value: str, expected: object) -> None:
    result = evaluate(value, AGE)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("plain", "plain"),
        ("a@b.com", "a@b.com"),
        ("x@", "x@"),
        ("@@x", "@x"),
        ("@@{x}", "@{x}"),
        ("@@@", "@@"),
        ("mail me @ home", "mail me @ home"),
        # "Incorrect" inline use in the functions reference: stays literal text.
        ("text/@concat('a')/text", "text/@concat('a')/text"),
        ("a @@ b", "a @@ b"),
        ("a @@{b} @{'c'}", "a @{b} c"),
        ("@{'a'}@{'b'}", "ab"),
        ("x @{1} y @{2}", "x 1 y 2"),
        ("@{ add(1, 2) }", "3"),
        ("@{'}'}", "}"),
        ("@{'it''s'} fine", "it's fine"),
        ("@{1}}", "1}"),
        ("@{'x'} it's", "x it's"),
        ("naïve @{'ü'}", "naïve ü"),
    ],
)
def test_string_forms(value: str, expected: str) -> None:
    assert evaluate(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@{null}", ""),
        ("@{true}", "True"),  # Logic Apps renders booleans the .NET way (Azure/logicapps#414)
        ("@{false}", "False"),
        ("@{equals(1, 1)}", "True"),
        ("@{createArray(1, 'a', null, true)}", '[1,"a",null,true]'),
        ('@{json(\'{"a": {"b": [1, 2]}}\')}', '{"a":{"b":[1,2]}}'),
        ('@{json(\'{"name": "Zoë"}\')}', '{"name":"Zoë"}'),
        ("@{div(11.0, 5)}", "2.2"),
        ("@{sub(10.3, .3)}", "10"),
        ("@{decimal('1.2345678912312131')}", "1.2345678912312131"),
        ("@{base64ToBinary('aGVsbG8=')}", "hello"),
        ("n=@{add(1, 2)}", "n=3"),
    ],
)
def test_interpolation_stringifies(value: str, expected: str) -> None:
    assert evaluate(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@true", True),
        ("@FALSE", False),
        ("@null", None),
        ("@'text'", "text"),
        ("@'it''s'", "it's"),
        ("@''", ""),
        ("@42", 42),
        ("@-7", -7),
        ("@1.5", 1.5),
        ("@-1.5", -1.5),
        ("@-.5", -0.5),
        ("@.25", 0.25),
        ("@1e3", 1000.0),
        ("@1.5E-2", 0.015),
        ("@9223372036854775807", 9223372036854775807),
        ("@-9223372036854775808", -9223372036854775808),
        ("@  concat( 'a' ,\n'b' )  ", "ab"),
        ("@json('{}')", {}),
        ("@createArray()", []),
        ("@add(-1, -2)", -3),
        ("@createArray(1,-2,.5)[1]", -2),
    ],
)
def test_whole_value_results(value: str, expected: object) -> None:
    result = evaluate(value)
    assert result == expected
    assert type(result) is type(expected)


def test_whole_value_decimal_becomes_float_and_binary_stays_bytes() -> None:
    assert evaluate("@decimal('1.5')") == 1.5
    assert type(evaluate("@decimal('1.5')")) is float
    assert evaluate("@createArray(decimal('1.5'))") == [1.5]
    assert evaluate("@base64ToBinary('aGVsbG8=')") == b"hello"
    assert evaluate("@string(createArray(binary('hi')))") == (
        '[{"$content-type":"application/octet-stream","$content":"aGk="}]'
    )


# ---------------------------------------------------------------------------
# Names and member access

WEBHOOK = Context(
    callback_url="https://hub.example/cb?sig=1",
    trigger={
        "name": "manual",
        "outputs": {
            "headers": httpx.Headers({"Authorization": "Bearer abc", "X-Multi": "a"}),
            "body": {"value": [1, 2, 3], "Customer": {"Name": "Sophia"}, "nothing": None},
            "queries": {"a": "1"},
        },
        "clientTrackingId": "08585-track",
    },
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@{listCallBackUrl()}", "https://hub.example/cb?sig=1"),  # WH26 spelling
        ("@{listCallbackURL()}", "https://hub.example/cb?sig=1"),  # RayPering spelling
        ("@LISTCALLBACKURL()", "https://hub.example/cb?sig=1"),
        ("@triggerbody()?['value']", [1, 2, 3]),  # WAT22 spelling
        ("@TriggerBody()?.value", [1, 2, 3]),
        ("@CONCAT('a', 'b')", "ab"),
    ],
)
def test_function_names_are_case_insensitive(value: str, expected: object) -> None:
    assert evaluate(value, WEBHOOK) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@triggerOutputs()?['headers']?['Authorization']", "Bearer abc"),
        ("@triggerOutputs()?['headers']?['authorization']", "Bearer abc"),
        ("@triggerOutputs()['headers']['AUTHORIZATION']", "Bearer abc"),
        ("@triggerOutputs().headers.authorization", "Bearer abc"),
        ("@triggerOutputs()?['headers']?['X-Missing']", None),
        ("@startsWith(triggerOutputs()?['headers']?['Authorization'], 'Bearer')", True),
        ("@triggerBody()?['customer']?['name']", "Sophia"),  # plain dicts: case-insensitive
        ("@triggerBody().Customer.Name", "Sophia"),
        ("@triggerBody()['value'][0]", 1),
        ("@triggerBody()?['value']?[2]", 3),
        ("@triggerBody()?['value']?[7]", None),
        ("@triggerBody()?['missing']", None),
        ("@triggerBody()?.missing", None),
        ("@triggerBody()?['nothing']?['deeper']", None),
        ("@triggerBody()['value'][add(0, 1)]", 2),
        ("@trigger().clientTrackingId", "08585-track"),
        ("@triggerOutputs()['queries']['a']", "1"),
        ("@coalesce(trigger().outputs?.body?.missing, 'default')", "default"),
    ],
)
def test_member_access(value: str, expected: object) -> None:
    assert evaluate(value, WEBHOOK) == expected


def test_headers_become_a_plain_dict_in_whole_value_results() -> None:
    headers = evaluate("@triggerOutputs()['headers']", WEBHOOK)
    assert type(headers) is dict
    assert headers == {"authorization": "Bearer abc", "x-multi": "a"}
    outputs = evaluate("@triggerOutputs()", WEBHOOK)
    assert type(outputs["headers"]) is dict


def test_exact_key_wins_over_case_insensitive_match() -> None:
    ctx = Context(parameters={"p": {"name": "lower", "Name": "upper"}})
    assert evaluate("@parameters('p').Name", ctx) == "upper"
    assert evaluate("@parameters('p').name", ctx) == "lower"
    assert evaluate("@parameters('p').NAME", ctx) == "lower"  # first match in order


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("@triggerBody()['missing']", "property 'missing' doesn't exist"),
        ("@triggerBody().missing", "available properties are 'value', 'Customer', 'nothing'"),
        (
            "@triggerBody()?['nothing']['deeper']",
            "cannot select property 'deeper' because the value is null",
        ),
        ("@triggerBody()['value'][3]", "index 3 is out of range for an array of 3 items"),
        ("@triggerBody()['value'][-1]", "index -1 is out of range"),
        ("@triggerBody()['value']['x']", "cannot read property 'x' of array of 3 items"),
        ("@triggerBody()[0]", "cannot index object with integer 0"),
        ("@triggerBody()['value'][true]", "must be an integer or a string, got boolean"),
        ("@'abc'.length", "cannot read property 'length' of string 'abc'"),
        ("@triggerOutputs()['headers']['X-Missing']", "property 'X-Missing' doesn't exist"),
    ],
)
def test_member_access_errors(value: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("[", r"\[").replace("(", r"\(")):
        evaluate(value, WEBHOOK)


def test_null_safety_applies_to_one_step_only() -> None:
    # Logic Apps needs "?" at each level: ?['a']['b'] fails when 'a' is missing.
    with pytest.raises(ExpressionError, match="cannot select property 'b'"):
        evaluate("@triggerBody()?['a']['b']", WEBHOOK)
    assert evaluate("@triggerBody()?['a']?['b']", WEBHOOK) is None


def test_long_member_chains_do_not_recurse() -> None:
    deep: dict = {"end": True}
    for _ in range(3000):
        deep = {"a": deep}
    ctx = Context(parameters={"d": deep})
    assert evaluate("@parameters('d')" + ".a" * 3000 + ".end", ctx) is True


# ---------------------------------------------------------------------------
# Errors: one type, with positions and messages naming function and argument


def test_error_type_position_and_message() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("@add(1, 'x')")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.message == "add(): argument 2 must be a number, got string 'x'"
    assert error.position == 8
    assert error.expression == "@add(1, 'x')"
    assert str(error) == (
        "add(): argument 2 must be a number, got string 'x' (at position 8 of \"@add(1, 'x')\")"
    )


def test_error_positions_inside_interpolation_count_from_the_string_start() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("abc @{toUpper(1)} def")
    assert info.value.position == 14
    assert "toUpper(): argument 1 must be a string, got integer 1" in str(info.value)


def test_error_pickles() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("@add(1, 'x')")
    clone = pickle.loads(pickle.dumps(info.value))
    assert (clone.message, clone.position, clone.expression) == (
        info.value.message,
        info.value.position,
        info.value.expression,
    )


@pytest.mark.parametrize(
    ("value", "message", "position"),
    [
        ("@", "expected an expression, found end of expression", 1),
        ("@{}", "expected an expression, found '}'", 2),
        ("@{1", "expected '}' to close '@{', found end of expression", 3),
        ("x @{'a'", "expected '}' to close '@{'", 7),
        ("@concat('a'", "expected ',' or ')' in the arguments of concat()", 11),
        ("@concat('a',,'b')", "expected an expression, found ','", 12),
        ("@concat('a' 'b')", "expected ',' or ')'", 12),
        ("@'abc", "unterminated string literal", 1),
        ('@concat("a")', "string literals use single quotes", 8),
        ("@concatt('a')", "unknown function 'concatt'; did you mean 'concat'?", 1),
        ("@frobnicate()", "unknown function 'frobnicate'", 1),
        ("@add(1)", "add() expects 2 arguments, got 1", 1),
        ("@add(1, 2, 3)", "add() expects 2 arguments, got 3", 1),
        ("@concat()", "concat() expects at least 1 argument, got 0", 1),
        ("@substring('a')", "substring() expects 2 to 3 arguments, got 1", 1),
        ("@utcnow", "'utcnow' is not a value; call functions with parentheses", 1),
        ("@add(1, 2) extra", "expected end of expression, found 'extra'", 11),
        ("@add(1, 2)}", "expected end of expression, found '}'", 10),
        ("@1abc", "invalid number '1a'", 1),
        ("@99999999999999999999", "out of the 64-bit range", 1),
        ("@body('x')?", "expected '.' or '[' after '?'", 11),
        ("@body('x').", "expected a property name after '.'", 11),
        ("@[1]", "expected an expression, found '['", 1),
        ("@concat('a') #", "unexpected character '#'", 13),
        ("@-x", "unexpected character '-'", 1),
    ],
)
def test_syntax_errors(value: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(value)
    assert message in info.value.message
    assert info.value.position == position


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("@substring('hello', 2, 9)", "substring(): start index 2 plus length 9 runs past the end"),
        ("@div(1, 0)", "div(): argument 2 (the divisor) can't be zero"),
        ("@int('ten')", "int(): string 'ten' is not a valid 64-bit integer"),
        ("@json('{bad')", "json(): argument 1 is not valid JSON"),
        ("@not('yes')", "not(): argument 1 must be a boolean (true or false), got string 'yes'"),
        ("@and(true, 1)", "and(): argument 2 must be a boolean"),
        ("@if('x', 1, 2)", "if(): argument 1 must be a boolean"),
        ("@length(5)", "length(): argument 1 must be a string or an array, got integer 5"),
        ("@greater(1, 'a')", "greater(): cannot compare integer 1 with string 'a'"),
        (
            "@formatDateTime('not a date')",
            "formatDateTime(): string 'not a date' is not a valid timestamp",
        ),
        ("@addToTime('2018-01-01', 1, 'Fortnight')", "addToTime(): unknown time unit 'Fortnight'"),
        (
            "@convertFromUtc('2018-01-01', 'Mars Standard Time')",
            "unknown time zone 'Mars Standard Time'",
        ),
        ("@range(0, 100001)", "range(): the count must be between 0 and 100,000"),
        ("@add(9223372036854775807, 1)", "add(): integer overflow"),
        ("@mul(1e308, 10.0)", "mul(): the result is not a finite number"),
        ("@addProperty(json('{\"a\": 1}'), 'A', 2)", "addProperty(): property 'a' already exists"),
        ("@base64ToString('***')", "base64ToString(): string '***' is not valid base64"),
        ("@uriHost('/relative/path')", "uriHost(): string '/relative/path' is not an absolute URI"),
        ("@formatNumber(1.5, 'D')", "formatNumber(): format 'D' needs an integer"),
        ("@formatNumber(1, 'C', 'xx-YY')", "unsupported locale 'xx-YY'"),
        ("@sort(createArray(1, 'a'))", "sort(): cannot sort a mix of numbers and strings"),
        (
            "@union(createArray(1), json('{}'))",
            "union(): the arguments must be all arrays or all objects",
        ),
    ],
)
def test_function_errors_name_the_function(value: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(value)
    assert message in str(info.value)


def test_run_function_errors_are_specific() -> None:
    ctx = Context(actions={"Get_user": {"status": "Skipped"}}, parameters={"a": 1})
    with pytest.raises(ExpressionError, match="no action named 'Nope' \\(known: 'Get_user'\\)"):
        evaluate("@body('Nope')", ctx)
    with pytest.raises(
        ExpressionError, match="action 'Get_user' has no outputs \\(its status is 'Skipped'\\)"
    ):
        evaluate("@body('Get_user')", ctx)
    with pytest.raises(ExpressionError, match="no workflow parameter named 'b' \\(known: 'a'\\)"):
        evaluate("@parameters('b')", ctx)
    with pytest.raises(ExpressionError, match="no variable named 'v' \\(none are defined here\\)"):
        evaluate("@variables('v')", ctx)
    with pytest.raises(ExpressionError) as info:
        evaluate("@{listCallbackUrl()}")
    assert info.value.message == (
        "listCallbackUrl() is only available in HttpWebhook subscribe/unsubscribe inputs"
    )
    with pytest.raises(ExpressionError, match="action\\(\\) is only available in a webhook"):
        evaluate("@action()")
    with pytest.raises(ExpressionError, match="item\\(\\) is only available inside a For_each"):
        evaluate("@item()")
    with pytest.raises(ExpressionError, match="triggerBody\\(\\): no trigger output"):
        evaluate("@triggerBody()")


def test_unsubscribe_reads_the_subscribe_result_through_action() -> None:
    ctx = Context(
        action={"name": "HTTP_Webhook", "outputs": {"statusCode": 201, "body": {"id": "sub-9"}}},
        actions={"Prev": {"outputs": {"body": "x", "statusCode": 200}}},
    )
    assert evaluate("@action().outputs.body.id", ctx) == "sub-9"
    assert evaluate("@{action()['outputs']['statusCode']}", ctx) == "201"
    assert evaluate("@outputs('prev').statusCode", ctx) == 200  # action names: case-insensitive


# ---------------------------------------------------------------------------
# Evaluation order


def test_if_and_or_coalesce_short_circuit() -> None:
    assert evaluate("@if(true, 'a', div(1, 0))") == "a"
    assert evaluate("@if(false, div(1, 0), 'b')") == "b"
    assert evaluate("@and(false, div(1, 0))") is False
    assert evaluate("@or(true, div(1, 0))") is True
    assert evaluate("@coalesce('x', div(1, 0))") == "x"
    with pytest.raises(ExpressionError, match="div"):
        evaluate("@if(true, div(1, 0), 'b')")


def test_equality_rules() -> None:
    assert evaluate("@equals(1, 1.0)") is True
    assert evaluate("@equals('a', 'A')") is False
    # "null values are converted to empty string values" in logical comparisons.
    assert evaluate("@equals(null, '')") is True
    assert evaluate("@equals(json('{\"a\": [1, 2]}'), json('{\"a\": [1, 2.0]}'))") is True
    assert evaluate("@equals(json('{\"a\": 1}'), json('{\"A\": 1}'))") is False
    assert evaluate("@equals('1', 1)") is False
    assert evaluate("@greater(null, 'a')") is False


# ---------------------------------------------------------------------------
# Templates, caching and referenced functions


def test_parse_returns_a_reusable_cached_template() -> None:
    template = parse("n=@{add(1, 2)}")
    assert isinstance(template, Template)
    assert parse("n=@{add(1, 2)}") is template
    assert template.kind == "interpolation"
    assert template.functions == frozenset({"add"})
    assert [template.evaluate() for _ in range(3)] == ["n=3"] * 3
    assert parse("@@x").kind == "literal"
    assert parse("@x()".replace("x", "utcNow")).kind == "expression"
    assert repr(template) == "Template('n=@{add(1, 2)}')"


def test_evaluate_template_walks_json() -> None:
    template = {
        "method": "POST",
        "uri": "https://hub.example/subscribe",
        "body": {
            "hub.callback": "@{listCallbackUrl()}",
            "@{key}": "@@literal",
            "count": 3,
            "flags": [True, None, 1.5, "@add(1, 1)"],
            "whole": "@triggerBody()?['value']",
        },
    }
    snapshot = copy.deepcopy(template)
    result = evaluate_template(template, WEBHOOK)
    assert result == {
        "method": "POST",
        "uri": "https://hub.example/subscribe",
        "body": {
            "hub.callback": "https://hub.example/cb?sig=1",
            "@{key}": "@literal",  # keys are not evaluated
            "count": 3,
            "flags": [True, None, 1.5, 2],
            "whole": [1, 2, 3],
        },
    }
    assert template == snapshot


def test_evaluate_template_errors_carry_the_path() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_template({"subscribe": {"body": {"hub.callback": "@{listCallbackUrl()}"}}})
    assert info.value.path == ("subscribe", "body", "hub.callback")
    assert str(info.value).endswith("[at $.subscribe.body['hub.callback']]")
    with pytest.raises(ExpressionError) as info:
        evaluate_template({"list": ["ok", "@add(1)"]})
    assert info.value.path == ("list", 1)


def test_referenced_functions() -> None:
    unsubscribe = {
        "method": "DELETE",
        "uri": "https://svc.example/subs/@{action().outputs.body.id}",
        "headers": {"x-run": "@{workflow()['run']['name']}"},
        "body": ["@{listCallBackUrl()}", {"n": 1, "@toUpper('key')": "literal"}],
    }
    assert referenced_functions(unsubscribe) == {"action", "workflow", "listcallbackurl"}
    assert referenced_functions("@if(equals(1, 1), body('A'), outputs('B')[0])") == {
        "if",
        "equals",
        "body",
        "outputs",
    }
    assert referenced_functions({"a": "plain", "b": 5, "c": None, "d": "@@{action()}"}) == set()
    with pytest.raises(ExpressionError) as info:
        referenced_functions({"a": ["@nope()"]})
    assert info.value.path == ("a", 0)


def test_function_names_lists_documented_spellings() -> None:
    names = function_names()
    assert "listCallbackUrl" in names and "triggerBody" in names and "actionBody" in names
    assert len(names) == len({n.lower() for n in names}) >= 115


def test_context_is_immutable_and_replaceable() -> None:
    ctx = Context(parameters={"a": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.parameters = {}  # type: ignore[misc]
    assert evaluate("@parameters('a')", dataclasses.replace(ctx, parameters={"a": 2})) == 2


# ---------------------------------------------------------------------------
# Limits and hostile input


def test_expression_length_limit() -> None:
    body = "concat('" + "a" * (MAX_EXPRESSION_LENGTH - len("concat('')")) + "')"
    assert len(body) == MAX_EXPRESSION_LENGTH
    assert evaluate("@" + body) == "a" * (MAX_EXPRESSION_LENGTH - 10)
    with pytest.raises(ExpressionError, match="longer than the 8,192 characters"):
        evaluate("@" + body.replace("('", "('a"))
    with pytest.raises(ExpressionError, match="longer than the 8,192 characters"):
        evaluate("x @{" + body.replace("('", "('a") + "} y")
    with pytest.raises(ExpressionError, match="longer than the 8,192 characters"):
        evaluate("@{'" + "a" * 20_000)  # unterminated, stops at the limit


def test_literal_text_around_expressions_is_not_an_expression() -> None:
    text = "x" * 50_000 + "@{'y'}"
    assert evaluate(text) == "x" * 50_000 + "y"


def test_result_size_limit() -> None:
    big = Context(parameters={"s": "z" * 70_000})
    with pytest.raises(ExpressionError, match=r"concat\(\): the result has 140,000 characters"):
        evaluate("@concat(parameters('s'), parameters('s'))", big)
    with pytest.raises(ExpressionError, match=r"string\(\): the result has [\d,]+ characters"):
        evaluate("@string(range(0, 30000))")
    with pytest.raises(ExpressionError, match=r"join\(\): the result has at least [\d,]+ char"):
        evaluate("@join(range(0, 30000), ',')")
    assert len(evaluate("@join(range(0, 20000), '')")) == 88_890
    with pytest.raises(ExpressionError, match="the interpolated string has 140,000 characters"):
        evaluate("@{parameters('s')}@{parameters('s')}", big)
    # Values taken from the run are not limited, only what functions build.
    assert len(evaluate("@parameters('s')", big)) == 70_000
    assert len(evaluate("@{parameters('s')}", big)) == 70_000
    assert MAX_RESULT_LENGTH == 131_072


def test_nesting_depth_limit() -> None:
    depth = MAX_NESTING_DEPTH - 1
    assert evaluate("@" + "concat(" * depth + "'a'" + ")" * depth) == "a"
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        evaluate("@" + "concat(" * 65 + "'a'" + ")" * 65)
    index = "0"
    for _ in range(80):
        index = f"createArray(0)[{index}]"
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        evaluate("@" + index)
    with pytest.raises(ExpressionError, match="nested more than 64 levels"):
        evaluate("@" + "f(" * 4000)


def test_deeply_nested_json_values_fail_cleanly() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        evaluate("@json('" + "[" * 4000 + "]" * 4000 + "')")
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ExpressionError, match="nested too deeply"):
        evaluate("@string(parameters('d'))", Context(parameters={"d": deep}))


def test_unexpected_exceptions_surface_as_expression_errors() -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("clock unplugged")

    with pytest.raises(ExpressionError, match=r"utcNow\(\): internal error \(RuntimeError: clock"):
        evaluate("@utcNow()", Context(now=broken_clock))


# ---------------------------------------------------------------------------
# Expressions from real HttpWebhook definitions (reference notes §6)

REAL = Context(
    callback_url="https://hooknb.example/cb/1",
    trigger={"clientTrackingId": "track-1"},
    actions={
        "ResolveException": {
            "outputs": {"body": {"Status": "Failed", "code": "E42", "description": "boom"}}
        }
    },
    parameters={
        "resourceGroupName": "rg",
        "subscriptionId": "sub",
        "$connections": {"office365": {"connectionId": "/conn/1"}},
    },
    workflow={"name": "wf", "run": {"name": "run-7"}, "endpoint": "https://hooknb.example/"},
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@listCallbackUrl()", "https://hooknb.example/cb/1"),  # WH26
        ("@{listCallBackUrl()}", "https://hooknb.example/cb/1"),  # WH26
        ("@{listCallbackURL()}", "https://hooknb.example/cb/1"),  # RayPering
        ("@parameters('$connections')['office365']['connectionId']", "/conn/1"),  # issue 43001
        ("@trigger().clientTrackingId", "track-1"),  # invictus
        ("@{body('ResolveException').Status}", "Failed"),
        (
            "@{if(equals(body('ResolveException').Status, 'Failed'), "
            "body('ResolveException').code, null)}",
            "E42",
        ),
        ("@{parameters('resourceGroupName')}/@{parameters('subscriptionId')}", "rg/sub"),
        (
            "@{workflow().endpoint}@{listCallbackUrl()}",
            "https://hooknb.example/https://hooknb.example/cb/1",
        ),
        ("@{workflow().name}", "wf"),
        ("@{workflow()['run']['name']}", "run-7"),
    ],
)
def test_real_definition_expressions(value: str, expected: str) -> None:
    assert evaluate(value, REAL) == expected


def test_leading_escape_makes_the_whole_string_literal() -> None:
    # "@@" at the start escapes the string (WDL reference); later "@{...}" stay text.
    assert evaluate("@@{x} @{'y'}") == "@{x} @{'y'}"
    assert evaluate("@{concat('@{', '}')}") == "@{}"
    assert evaluate("@concat('@{x}')") == "@{x}"


def test_public_docstring_examples() -> None:
    import doctest

    import hooknb.wdl

    assert doctest.testmod(hooknb.wdl).failed == 0
