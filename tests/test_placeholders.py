"""Requests are data: what the Python API fills in (CALLBACK_URL, expr) and nothing else; the
way to and from Logic Apps templates; run reports that the hub always takes.

Pure functions and objects, no server (the end-to-end attacks are in test_hostile_kernel.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_wdl_fuzz import BOMBS

import hooknb
from hooknb.errors import ExpressionError, HookNBError
from hooknb.jsonsafe import MAX_DEPTH, MAX_REQUEST_DEPTH, depth_of
from hooknb.kernel.action import REPORT_BODY_LIMIT, SECURED, Action, secure_properties
from hooknb.kernel.outputs import Outputs, decode_body, jsonable
from hooknb.kernel.placeholders import (
    from_template,
    functions_in,
    in_template,
    literal_callback_url_hint,
    resolve,
    shown_template,
    to_template,
)
from hooknb.kernel.run import REPORT_LIMIT, Run
from hooknb.wdl import Context, evaluate

URL = "https://h.example/hooknb/callback/abc?sig=S1g"
CONTEXT = Context(
    callback_url=URL,
    trigger={"outputs": {"body": {"id": 7, "text": "@{outputs('Secret')}"}}},
    actions={"Secret": {"outputs": {"key": "k-123"}}},
    workflow={"name": "wf"},
)


def test_strings_are_data_and_only_placeholders_are_filled_in() -> None:
    request = {
        "uri": "https://svc/@{outputs('Secret')}",
        "body": {
            "cb": hooknb.CALLBACK_URL,
            "cbs": [hooknb.CALLBACK_URL, ("t", hooknb.CALLBACK_URL.with_query(a="1 2", b=True))],
            "text": hooknb.CALLBACK_URL.map(lambda url: f"Approve at {url}"),
            "literal": "@outputs('Secret')",
            "escaped": "@@{x}",
            "asked": hooknb.expr("@outputs('Secret')?['key']"),
            "name": hooknb.expr("wf=@{workflow().name}"),
            "echo": hooknb.expr("@triggerBody()?['text']"),
            "n": 1,
            "none": None,
        },
    }
    made = resolve(request, CONTEXT)
    assert made == {
        "uri": "https://svc/@{outputs('Secret')}",
        "body": {
            "cb": URL,
            "cbs": [URL, ["t", URL + "&a=1+2&b=true"]],
            "text": f"Approve at {URL}",
            "literal": "@outputs('Secret')",
            "escaped": "@@{x}",
            "asked": "k-123",
            "name": "wf=wf",
            # What an expression returns is data: the sender's text is not evaluated again.
            "echo": "@{outputs('Secret')}",
            "n": 1,
            "none": None,
        },
    }
    assert request["body"]["cb"] is hooknb.CALLBACK_URL  # the request itself is unchanged


def test_the_callback_url_is_not_text() -> None:
    for build in (
        lambda: f"{hooknb.CALLBACK_URL}",
        lambda: str(hooknb.CALLBACK_URL),
        lambda: "x" + hooknb.CALLBACK_URL,  # type: ignore[operator]
        lambda: "{}".format(hooknb.CALLBACK_URL),  # noqa: UP032 - the way being tested
        lambda: json.dumps({"cb": hooknb.CALLBACK_URL}),
    ):
        with pytest.raises(TypeError):
            build()
    assert repr(hooknb.CALLBACK_URL.with_query(a="b")) == "hooknb.CALLBACK_URL.with_query(a='b')"
    with pytest.raises(HookNBError, match="only filled in"):
        resolve({"body": {"cb": hooknb.CALLBACK_URL}}, Context())
    with pytest.raises(TypeError):
        hooknb.CALLBACK_URL.map(len).with_query(a="b")


def test_a_literal_list_callback_url_in_python_gets_a_hint() -> None:
    """Code written before requests were data (or copied from a definition) sends the text
    '@{listCallbackUrl()}': it still goes out as written, and the user is told why and what to
    write instead; a request that carries the placeholder, or a template, is not flagged."""
    literal = {"uri": "http://svc/sub", "body": {"callbackUrl": "@{listCallbackUrl()}"}}
    hint = literal_callback_url_hint(literal)
    assert hint and "hooknb.CALLBACK_URL" in hint and "as written" in hint
    with pytest.warns(UserWarning, match="hooknb.CALLBACK_URL"):
        trigger = hooknb.HttpWebhookTrigger(literal)
    assert trigger.subscribe["body"]["callbackUrl"] == "@{listCallbackUrl()}"  # data is data
    placeholder = {"uri": "http://svc/sub", "body": {"callbackUrl": hooknb.CALLBACK_URL}}
    assert literal_callback_url_hint(placeholder) is None
    both = {"uri": "http://svc/sub", "body": {"url": hooknb.CALLBACK_URL, "note": "@{x}"}}
    assert literal_callback_url_hint(both) is None
    assert literal_callback_url_hint({"uri": "http://svc/sub", "body": {"n": 1}}) is None
    # A template (a magic's or a definition's JSON) reads it as the expression it is.
    assert literal_callback_url_hint(from_template(literal)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hooknb.HttpWebhookTrigger.from_template(literal)


def test_expressions_are_checked_when_written_and_say_where_they_fail() -> None:
    with pytest.raises(ExpressionError):
        hooknb.expr("@concat('a'")
    with pytest.raises(ValueError, match="not an expression"):
        hooknb.expr("plain")
    with pytest.raises(ExpressionError) as failed:
        resolve({"body": [1, {"x": hooknb.expr("@outputs('Missing').x")}]}, CONTEXT)
    assert failed.value.path == ("body", 1, "x")
    assert functions_in({"a": "@action()", "b": hooknb.expr("@{action().outputs}")}) == {"action"}


def test_a_bomb_as_data_costs_nothing() -> None:
    """Every known expression bomb, forwarded as data, is copied, not evaluated."""
    data = {"bombs": BOMBS, "nested": [{"b": bomb} for bomb in BOMBS]}
    tracemalloc.start()
    began = time.perf_counter()
    made = resolve({"body": data, "cb": hooknb.CALLBACK_URL}, CONTEXT)
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert made["body"] == data
    assert seconds < 0.1 and peak < 1_000_000


def test_templates_keep_logic_apps_semantics() -> None:
    template = {
        "body": {"cb": "@{listCallbackUrl()}", "id": "@triggerBody()?['id']", "t": "plain"},
        "unsubscribe": "@@{not an expression}",
    }
    made = resolve(from_template(template), CONTEXT)
    assert made == {
        "body": {"cb": URL, "id": 7, "t": "plain"},
        "unsubscribe": "@{not an expression}",
    }
    assert to_template(from_template(template)) == template
    # Python placeholders in a builder's template are written as the expressions they mean.
    assert in_template({"cb": hooknb.CALLBACK_URL, "e": hooknb.expr("@utcNow()"), "s": "@y"}) == {
        "cb": "@{listCallbackUrl()}",
        "e": "@utcNow()",
        "s": "@y",
    }
    with pytest.raises(HookNBError, match="no Logic Apps form"):
        to_template({"x": hooknb.CALLBACK_URL.map(str.upper)})
    assert shown_template({"x": hooknb.CALLBACK_URL.map(str.upper)})["x"].startswith("<hooknb")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["@", "{", "}", "a", "'", "(", ")"]), max_size=12))
def test_literal_strings_export_as_templates_of_themselves(text: str) -> None:
    """A Python trigger's literal strings, exported to a definition, read back as the same."""
    exported = to_template({"s": text})["s"]
    assert evaluate(exported) == text
    assert resolve(from_template(exported), Context()) == text


def test_a_python_trigger_exports_and_loads_back() -> None:
    trigger = hooknb.HttpWebhookTrigger(
        subscribe={
            "method": "POST",
            "uri": "https://svc/sub",
            "body": {"cb": hooknb.CALLBACK_URL.with_query(x="1"), "note": "@home"},
        },
        include_authorization_headers=True,
    )
    exported = trigger.to_definition()
    assert exported["inputs"]["subscribe"]["body"] == {
        "cb": "@{listCallbackUrl()}&x=1",
        "note": "@@home",
    }
    assert exported["operationOptions"] == "IncludeAuthorizationHeadersInOutputs"
    wf = hooknb.Workflow.declare("exported", trigger=trigger, hub=SimpleNamespace())  # type: ignore[arg-type]
    loaded = wf.trigger
    assert isinstance(loaded, hooknb.HttpWebhookTrigger)
    assert loaded.include_authorization_headers
    assert resolve(loaded.subscribe, CONTEXT)["body"] == {"cb": URL + "&x=1", "note": "@home"}


# -- bounded outputs and reports ---------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_jsonable_is_bounded_in_depth_and_iterative() -> None:
    shown = jsonable({"a": deep(5000), "b": b"\x00\xff", "c": Outputs(body=deep(300))})
    text = json.dumps(shown)
    assert depth_of(text) <= MAX_DEPTH
    assert shown["b"]["$content"] == "AP8="
    assert '"$truncated": true' in text
    assert jsonable(deep(10)) == deep(10)  # shallow values are copied exactly


def test_deep_json_bodies_stay_text_as_on_the_server() -> None:
    assert decode_body(b"[" * 129 + b"]" * 129, "application/json") == "[" * 129 + "]" * 129
    assert decode_body(b"[" * 128 + b"]" * 128, "application/json") == deep(128)


def test_secure_parts_and_credential_headers() -> None:
    callback = {
        "headers": [["Authorization", "Bearer x"], ["Cookie", "c=1"], ["X-A", "1"]],
        "body": {"encoding": "utf-8", "data": "{}"},
        "contentType": "application/json",
    }
    assert list(Outputs.from_callback(callback).headers) == ["x-a"]  # type: ignore[arg-type]
    kept = Outputs.from_callback(callback, include_authorization_headers=True)  # type: ignore[arg-type]
    assert kept.headers["authorization"] == "Bearer x"
    action = Action(
        "S",
        "Python",
        inputs={"pin": "1234"},
        value={"key": "k"},
        secure=secure_properties("outputs"),
    )
    report = action.to_report()
    assert report["inputs"] == {"pin": "1234"} and report["outputs"] == SECURED
    assert action.to_json()["outputs"] == {"key": "k"}  # what expressions read
    with pytest.raises(ValueError):
        secure_properties(["inputs", "everything"])


def fake_run(actions: dict[str, Action], result: Any = None) -> Run:
    loop = asyncio.new_event_loop()
    owner = SimpleNamespace(hub=SimpleNamespace(loop=loop), trigger=None, name="fake")
    run = Run(owner, "r1", Outputs())  # type: ignore[arg-type]
    run.actions.update(actions)
    run.result = result
    loop.close()
    return run


@pytest.mark.parametrize(
    "make",
    [
        lambda: fake_run({"A": Action("A", "Python", value=deep(3000))}, deep(3000)),
        lambda: fake_run(
            {f"S{i}": Action(f"S{i}", "Python", value="x" * 60_000) for i in range(200)}
        ),
        lambda: fake_run(
            {f"S{i}": Action(f"S{i}", "Python", value=i, error="e" * 5000) for i in range(20_000)}
        ),
        lambda: fake_run({"A": Action("A", "Python", inputs={"x": object()}, value={1, 2})}),
    ],
)
def test_run_reports_stay_within_what_the_hub_takes(make: Any) -> None:
    run = make()
    run.status = "Succeeded"
    report = run.to_report()
    text = json.dumps(report)
    assert len(text) <= REPORT_LIMIT
    # Each value is cut at MAX_DEPTH; the report's own levels come on top: far below what the
    # hub's API parses.
    assert depth_of(text) <= MAX_DEPTH + 4 < MAX_REQUEST_DEPTH
    assert report["status"] == "Succeeded" and report["id"] == "r1"
    for shown in report["actions"].values():
        assert len(json.dumps(shown)) <= 2 * REPORT_BODY_LIMIT
