"""Loops, Switch, variables and data operations in definitions, run by the server's worker
against local services: definitions shaped like the designer's (Logic Apps' code view)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import test_replay
from helpers import until, waiting
from subscribers import Recorder
from test_definitions_run import SCHEMA_FILE, finished, statuses

import hooknb
from hooknb.errors import DefinitionError
from hooknb.wdl.definitions import load

# Two "kernels" on the test's loop, and adoption without a reconnect grace.
new_kernel = test_replay.new_kernel
hooknb_config = test_replay.hooknb_config

ORDERS = {
    "orders": [
        {"id": 1, "qty": 2, "price": 5.0, "kind": "book"},
        {"id": 2, "qty": 1, "price": 20.0, "kind": "toy"},
        {"id": 3, "qty": 4, "price": 1.5, "kind": "book"},
    ]
}

# A definition as the designer writes one: variables, a sequential For each with a Switch
# inside, data operations after it.
ORDER_TOTALS: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
    "2016-06-01/workflowdefinition.json#",
    "contentVersion": "1.0.0.0",
    "triggers": {
        "manual": {"type": "Request", "kind": "Http", "inputs": {"schema": {}}},
    },
    "actions": {
        "Initialize_total": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "total", "type": "float", "value": 0}]},
            "runAfter": {},
        },
        "Initialize_log": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "log", "type": "array"}]},
            "runAfter": {"Initialize_total": ["Succeeded"]},
        },
        "Initialize_count": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "books", "type": "integer", "value": 0}]},
            "runAfter": {"Initialize_log": ["Succeeded"]},
        },
        "For_each": {
            "type": "Foreach",
            "foreach": "@triggerBody()?['orders']",
            "actions": {
                "Line": {
                    "type": "Compose",
                    "inputs": "@mul(items('For_each')?['qty'], item()?['price'])",
                },
                "Add_line": {
                    "type": "IncrementVariable",
                    "inputs": {"name": "total", "value": "@outputs('Line')"},
                    "runAfter": {"Line": ["Succeeded"]},
                },
                "Kind": {
                    "type": "Switch",
                    "expression": "@item()?['kind']",
                    "cases": {
                        "Book": {
                            "case": "book",
                            "actions": {
                                "Count_book": {
                                    "type": "IncrementVariable",
                                    "inputs": {"name": "books"},
                                }
                            },
                        }
                    },
                    "default": {
                        "actions": {
                            "Note_other": {
                                "type": "AppendToArrayVariable",
                                "inputs": {"name": "log", "value": "other @{item()?['id']}"},
                            }
                        }
                    },
                    "runAfter": {"Add_line": ["Succeeded"]},
                },
            },
            "runAfter": {"Initialize_count": ["Succeeded"]},
            "runtimeConfiguration": {"concurrency": {"repetitions": 1}},
        },
        "Select": {
            "type": "Select",
            "inputs": {
                "from": "@triggerBody()?['orders']",
                "select": {"order": "@item()?['id']", "amount": "@mul(item()?['qty'], 2)"},
            },
            "runAfter": {"For_each": ["Succeeded"]},
        },
        "Filter_array": {
            "type": "Query",
            "inputs": {"from": "@body('Select')", "where": "@greater(item()?['amount'], 3)"},
            "runAfter": {"Select": ["Succeeded"]},
        },
        "Join": {
            "type": "Join",
            "inputs": {"from": "@variables('log')", "joinWith": "; "},
            "runAfter": {"Filter_array": ["Succeeded"]},
        },
        "Create_CSV_table": {
            "type": "Table",
            "inputs": {"from": "@body('Filter_array')", "format": "CSV"},
            "runAfter": {"Join": ["Succeeded"]},
        },
        "Create_HTML_table": {
            "type": "Table",
            "inputs": {
                "from": "@triggerBody()?['orders']",
                "format": "HTML",
                "columns": [
                    {"header": "Order", "value": "@item()?['id']"},
                    {"header": "Kind <b>", "value": "@toUpper(item()?['kind'])"},
                ],
            },
            "runAfter": {"Create_CSV_table": ["Succeeded"]},
        },
        "Parse_JSON": {
            "type": "ParseJson",
            "inputs": {
                "content": "@string(triggerBody())",
                "schema": {
                    "type": "object",
                    "properties": {"orders": {"type": "array", "items": {"type": "object"}}},
                    "required": ["orders"],
                },
            },
            "runAfter": {"Create_HTML_table": ["Succeeded"]},
        },
    },
    "outputs": {
        "total": {"type": "Float", "value": "@variables('total')"},
        "books": {"type": "Int", "value": "@variables('books')"},
        "log": {"type": "String", "value": "@body('Join')"},
        "filtered": {"type": "Array", "value": "@body('Filter_array')"},
        "csv": {"type": "String", "value": "@body('Create_CSV_table')"},
        "html": {"type": "String", "value": "@body('Create_HTML_table')"},
        "parsed": {"type": "Int", "value": "@length(body('Parse_JSON')?['orders'])"},
        "results": {"type": "Int", "value": "@length(result('For_each'))"},
    },
}


async def test_foreach_switch_variables_and_data_operations(hub: Any) -> None:
    wf = hooknb.Workflow.from_definition(ORDER_TOTALS, name="totals", hub=hub)
    run = await finished(await wf.start_async(body=ORDERS), timeout=60)
    assert run.status == "Succeeded", run.error
    assert run.result == {
        "total": 36.0,
        "books": 2,
        "log": "other 2",
        "filtered": [{"order": 1, "amount": 4}, {"order": 3, "amount": 8}],
        "csv": "order,amount\r\n1,4\r\n3,8\r\n",
        "html": "<table><thead><tr><th>Order</th><th>Kind &lt;b&gt;</th></tr></thead><tbody>"
        "<tr><td>1</td><td>BOOK</td></tr><tr><td>2</td><td>TOY</td></tr>"
        "<tr><td>3</td><td>BOOK</td></tr></tbody></table>",
        "parsed": 3,
        "results": 9,
    }
    shown = statuses(run)
    # each repetition's actions under their own names; the branch a Switch did not take Skipped
    assert shown["Line#0"] == shown["Line#2"] == "Succeeded"
    assert shown["Count_book#0"] == "Succeeded" and shown["Note_other#0"] == "Skipped"
    assert shown["Note_other#1"] == "Succeeded" and shown["Count_book#1"] == "Skipped"
    assert shown["For_each"] == shown["Kind#2"] == "Succeeded"

    # Invalid content fails ParseJson with the schema's complaint.
    bad = await finished(await wf.start_async(body={"orders": [1]}), timeout=60)
    assert bad.status == "Failed"
    assert "ActionFailed" in (bad.error or "") or "For_each" in (bad.error or "")


async def test_parallel_foreach_and_until_limits(hub: Any) -> None:
    async def slow(recorder: Recorder, request: dict[str, Any]) -> tuple[int, Any, dict]:
        await asyncio.sleep(0.3)
        return 200, {"n": request["body"]["n"]}, {}

    with Recorder(slow) as svc:
        definition = {
            "actions": {
                "Init": {
                    "type": "InitializeVariable",
                    "inputs": {"variables": [{"name": "i", "type": "Integer", "value": 0}]},
                },
                "Calls": {
                    "type": "Foreach",
                    "foreach": "@range(0, 6)",
                    "actions": {
                        "Call": {
                            "type": "Http",
                            "inputs": {"method": "POST", "uri": svc.url, "body": {"n": "@item()"}},
                        }
                    },
                    "runtimeConfiguration": {"concurrency": {"repetitions": 3}},
                    "runAfter": {"Init": ["Succeeded"]},
                },
                "Count": {
                    "type": "Until",
                    "expression": "@equals(variables('i'), 3)",
                    "limit": {"count": 10, "timeout": "PT1M"},
                    "actions": {
                        "Step": {"type": "IncrementVariable", "inputs": {"name": "i"}},
                        "Seen": {
                            "type": "Compose",
                            "inputs": "@iterationIndexes('Count')",
                            "runAfter": {"Step": ["Succeeded"]},
                        },
                    },
                    "runAfter": {"Calls": ["Succeeded"]},
                },
                "Capped": {
                    "type": "Until",
                    "expression": "@equals(1, 2)",
                    "limit": {"count": 2},
                    "actions": {"Nothing": {"type": "Compose", "inputs": 1}},
                    "runAfter": {"Count": ["Succeeded"]},
                },
                "Timed": {
                    "type": "Until",
                    "expression": "@false",
                    "limit": {"timeout": "PT0.5S"},
                    "actions": {
                        "Nap": {
                            "type": "Wait",
                            "inputs": {"interval": {"count": 0.2, "unit": "Second"}},
                        }
                    },
                    "runAfter": {"Capped": ["Succeeded"]},
                },
                "After_timeout": {
                    "type": "Compose",
                    "inputs": "@variables('i')",
                    "runAfter": {"Timed": ["TimedOut"]},
                },
            },
            "outputs": {
                "calls": {"type": "Array", "value": "@result('Calls')"},
                "seen": {"type": "Int", "value": "@outputs('Seen#2')"},
            },
        }
        wf = hooknb.Workflow.from_definition(definition, name="loops", hub=hub)
        run = await finished(await wf.start_async(), timeout=60)
        assert run.status == "Succeeded", run.error
        # six 0.3 s calls, three at a time: about 0.6 s, not 1.8 s
        calls = run.actions["Calls"]
        assert calls.ended is not None and calls.ended - calls.started < 1.4
        assert sorted(r["body"]["n"] for r in svc.requests) == [0, 1, 2, 3, 4, 5]
        assert [c["outputs"]["body"]["n"] for c in run.result["calls"]] == [0, 1, 2, 3, 4, 5]
        assert run.result["seen"] == 2
        shown = statuses(run)
        assert shown["Count"] == "Succeeded" and "Step#3" not in shown
        assert shown["Capped"] == "Succeeded" and "Nothing#1" in shown and "Nothing#2" not in shown
        assert shown["Timed"] == "TimedOut" and shown["After_timeout"] == "Succeeded"


@pytest.mark.parametrize(
    ("action", "location", "message"),
    [
        (
            {"type": "SetVariable", "inputs": {"name": "nope", "value": 1}},
            "actions.A.inputs.name",
            "no InitializeVariable declares the variable 'nope'",
        ),
        (
            {
                "type": "Scope",
                "actions": {
                    "Inner": {
                        "type": "InitializeVariable",
                        "inputs": {"variables": [{"name": "v", "type": "String"}]},
                    }
                },
            },
            "actions.A.actions.Inner.inputs",
            "only at the top level",
        ),
        (
            {"type": "Until", "expression": "@true", "limit": {"count": 5001}, "actions": {}},
            "actions.A.limit.count",
            "1 to 5000",
        ),
        (
            {
                "type": "Foreach",
                "foreach": "@createArray(1)",
                "actions": {},
                "runtimeConfiguration": {"concurrency": {"repetitions": 51}},
            },
            "actions.A.runtimeConfiguration.concurrency.repetitions",
            "from 1 to 50",
        ),
        (
            {
                "type": "Switch",
                "expression": "@triggerBody()",
                "cases": {"One": {"case": 1, "actions": {}}, "Uno": {"case": 1, "actions": {}}},
            },
            "actions.A.cases.Uno.case",
            "same value as case 'One'",
        ),
        (
            {"type": "ParseJson", "inputs": {"content": "{}", "schema": {"type": "nothing"}}},
            "actions.A.inputs.schema",
            "not a valid JSON schema",
        ),
        (
            {"type": "Table", "inputs": {"from": [], "format": "PDF"}},
            "actions.A.inputs.format",
            "CSV or HTML",
        ),
        (
            {"type": "Select", "inputs": {"from": []}},
            "actions.A.inputs.select",
            "missing",
        ),
    ],
)
def test_new_actions_refused_with_their_location(
    action: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        load({"actions": {"A": action}})
    assert caught.value.location == location
    assert message in str(caught.value)


def test_round_trip_and_schema() -> None:
    """to_definition()/to_json() gives back every new type as written, and it validates
    against the 2016-06-01 schema (the community copy)."""
    definition = load(ORDER_TOTALS)
    exported = definition.to_json()
    assert load(exported).to_json() == exported
    loop = exported["actions"]["For_each"]
    assert loop["foreach"] == "@triggerBody()?['orders']"
    assert loop["actions"]["Kind"]["cases"]["Book"]["case"] == "book"
    assert "Note_other" in loop["actions"]["Kind"]["default"]["actions"]
    assert exported["actions"]["Initialize_total"]["inputs"]["variables"][0]["type"] == "Float"
    if SCHEMA_FILE.is_file():
        import jsonschema

        jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text())).validate(exported)


def test_builders_make_every_new_type() -> None:
    wf = hooknb.Workflow.declare("built", trigger=None)
    wf.add_variable("Init", "seen", "Array")
    wf.add_foreach("Each", "@triggerBody()", repetitions=5)
    wf.add_action(
        "Remember",
        {"type": "AppendToArrayVariable", "inputs": {"name": "seen", "value": "@item()"}},
        scope="Each",
    )
    wf.add_switch("Which", "@length(variables('seen'))", {"None": 0, "One": 1})
    wf.add_compose("Nothing", "none", scope="Which", branch="case:None")
    wf.add_compose("Many", "many", scope="Which", branch="else")
    wf.add_until("Again", "@true", count=3, timeout=60)
    wf.add_compose("Once", "@iterationIndexes('Again')", scope="Again")
    exported = wf.to_definition()
    assert exported["actions"]["Each"]["runtimeConfiguration"] == {
        "concurrency": {"repetitions": 5}
    }
    assert exported["actions"]["Which"]["cases"]["None"]["actions"]["Nothing"]["inputs"] == "none"
    assert exported["actions"]["Which"]["default"]["actions"]["Many"]["inputs"] == "many"
    assert exported["actions"]["Again"]["limit"] == {"count": 3, "timeout": "PT1M"}
    assert load(exported).to_json() == exported
    with pytest.raises(DefinitionError, match="its branches are"):
        wf.add_compose("Lost", 1, scope="Which", branch="case:Nope")
    if SCHEMA_FILE.is_file():
        import jsonschema

        jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text())).validate(exported)


REVIEWS: dict[str, Any] = {
    "triggers": {"manual": {"type": "Request", "kind": "Http"}},
    "actions": {
        "Init": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "decisions", "type": "Array", "value": []}]},
        },
        "Stamp": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "at", "type": "String", "value": "@utcNow()"}]},
            "runAfter": {"Init": ["Succeeded"]},
        },
        "Each_document": {
            "type": "Foreach",
            "foreach": "@triggerBody()?['documents']",
            "actions": {
                "Review": {
                    "type": "HttpWebhook",
                    "inputs": {
                        "subscribe": {
                            "method": "POST",
                            "uri": "@{parameters('service')}subscribe",
                            "body": {"callbackUrl": "@{listCallbackUrl()}", "doc": "@item()"},
                        },
                        "unsubscribe": {},
                    },
                },
                "Keep": {
                    "type": "AppendToArrayVariable",
                    "inputs": {
                        "name": "decisions",
                        "value": "@{item()}=@{body('Review')?['decision']}",
                    },
                    "runAfter": {"Review": ["Succeeded"]},
                },
            },
            "runAfter": {"Stamp": ["Succeeded"]},
        },
    },
    "parameters": {"service": {"type": "String"}},
    "outputs": {
        "decisions": {"type": "Array", "value": "@variables('decisions')"},
        "at": {"type": "String", "value": "@variables('at')"},
    },
}


async def test_a_loop_with_waiting_webhooks_and_variables_survives_its_kernel(
    new_kernel: Any, http: Any
) -> None:
    """Kernel one starts a run whose For each waits on three webhooks, one of which is
    answered; it dies. Kernel two adopts the run: replay takes the items, the variables and
    the finished repetition from the history, re-attaches to the two open waits (no second
    subscribe), and the run ends with every decision once."""
    with Recorder() as svc:
        first = new_kernel()
        flow = hooknb.Workflow.from_definition(
            REVIEWS, name="reviews", hub=first, host="kernel", parameters={"service": svc.url}
        )
        await flow.adopt_async()
        run = await flow.start_async(body={"documents": ["a", "b", "c"]})
        steps = [await waiting(run, f"Review#{i}") for i in range(3)]
        assert (await http.post(steps[0].callback_url, json={"decision": "yes"})).status_code == 202
        await until(
            lambda: run.actions.get("Keep#0") and run.actions["Keep#0"].status == "Succeeded"
        )
        stamp = run.actions["Stamp"].value["body"]["value"]
        await first.flush()
        await first.aclose()

        second = new_kernel()
        again = hooknb.Workflow.from_definition(
            REVIEWS, name="reviews", hub=second, host="kernel", parameters={"service": svc.url}
        )
        assert (await again.adopt_async())["runs"] == [run.id]
        (adopted,) = again.runs
        for i in (1, 2):
            resumed = await waiting(adopted, f"Review#{i}")
            assert resumed.callback_url == steps[i].callback_url
        for i, decision in ((2, "no"), (1, "maybe")):
            posted = await http.post(steps[i].callback_url, json={"decision": decision})
            assert posted.status_code == 202
        await asyncio.wait_for(adopted._wait(), 20)
        assert adopted.status == "Succeeded", adopted.error
        assert adopted.result["decisions"] == ["a=yes", "c=no", "b=maybe"]
        assert adopted.result["at"] == stamp  # utcNow() was not evaluated again
        assert len(svc.calls("POST", "/subscribe")) == 3
        # The dead kernel's copy of the run is still parked on this loop: stop it quietly.
        run._fence()
        await asyncio.gather(run._task, return_exceptions=True)


def test_trigger_settings_round_trip_and_reach_the_hub_settings() -> None:
    """splitOn, conditions, concurrency and SingleInstance stay in the export (schema-valid)
    and become the settings the hub applies."""
    definition = {
        "triggers": {
            "Batch": {
                "type": "HttpWebhook",
                "inputs": {"subscribe": {"method": "POST", "uri": "http://127.0.0.1:9/s"}},
                "splitOn": "@triggerBody()?['rows']",
                "conditions": [{"expression": "@equals(parameters('on'), true)"}],
                "runtimeConfiguration": {"concurrency": {"runs": 2, "maximumWaitingRuns": 5}},
            }
        },
        "parameters": {"on": {"type": "Bool", "defaultValue": True}},
        "actions": {},
    }
    wf = hooknb.Workflow.from_definition(definition, name="settings")
    exported = wf.to_definition()
    assert load(exported).to_json() == exported
    assert exported["triggers"]["Batch"]["splitOn"] == "@triggerBody()?['rows']"
    assert wf._trigger_settings() == {
        "trigger": "Batch",
        "kind": "HttpWebhook",
        "conditions": ["@equals(parameters('on'), true)"],
        "splitOn": "@triggerBody()?['rows']",
        "parameters": {"on": True},
        "runs": 2,
        "maximumWaitingRuns": 5,
    }
    single = dict(definition, triggers={"Batch": dict(definition["triggers"]["Batch"])})
    single["triggers"]["Batch"]["operationOptions"] = "SingleInstance"
    del single["triggers"]["Batch"]["runtimeConfiguration"]
    only_one = hooknb.Workflow.from_definition(single, name="single")
    assert only_one._trigger_settings()["runs"] == 1
    assert not [n for n in load(single).notes if "operationOptions" in n]
    if SCHEMA_FILE.is_file():
        import jsonschema

        jsonschema.Draft4Validator(json.loads(SCHEMA_FILE.read_text())).validate(exported)


async def test_parse_json_validation_and_data_operation_errors(hub: Any) -> None:
    definition = {
        "actions": {
            "Parse": {
                "type": "ParseJson",
                "inputs": {
                    "content": "@triggerBody()",
                    "schema": {
                        "type": "object",
                        "properties": {"id": {"type": "integer"}, "tags": {"type": "array"}},
                        "required": ["id"],
                    },
                },
            },
            "Join_tags": {
                "type": "Join",
                "inputs": {"from": "@body('Parse')?['tags']", "joinWith": "|"},
                "runAfter": {"Parse": ["Succeeded"]},
            },
            "After_failure": {
                "type": "Compose",
                "inputs": "@actions('Parse')?['error']",
                "runAfter": {"Parse": ["Failed"]},
            },
        },
        "outputs": {"joined": {"type": "String", "value": "@body('Join_tags')"}},
    }
    wf = hooknb.Workflow.from_definition(definition, name="parse", hub=hub, host="kernel")
    good = await finished(await wf.start_async(body={"id": 7, "tags": ["a", 1, None]}))
    assert good.status == "Succeeded", good.error
    assert good.result == {"joined": "a|1|"}
    assert statuses(good)["After_failure"] == "Skipped"

    bad = await finished(await wf.start_async(body={"id": "seven", "tags": "x"}))
    assert bad.status == "Failed"
    parse = bad.actions["Parse"]
    assert parse.status == "Failed" and parse.code == "ValidationFailed"
    assert "id: 'seven' is not of type 'integer'" in parse.error
    assert "tags: 'x' is not of type 'array'" in parse.error
    assert statuses(bad)["Join_tags"] == "Skipped"
    assert "does not match the schema" in bad.actions["After_failure"].value

    # A Join whose "from" is not an array (no tags: null) fails the action, with the reason.
    untagged = await finished(await wf.start_async(body={"id": 1}))
    assert untagged.status == "Failed"
    assert statuses(untagged)["Join_tags"] == "Failed"
    assert "from must be an array, not null" in untagged.actions["Join_tags"].error


async def test_a_loop_of_thousands_of_repetitions_stays_linear(hub: Any) -> None:
    """2,000 repetitions of two steps: each step reads its repetition's outputs and the run's
    report is made when it is sent, not at every change (this took 140 s when every change
    serialised every step so far; about 3 s now)."""
    definition = {
        "actions": {
            "Init": {
                "type": "InitializeVariable",
                "inputs": {"variables": [{"name": "t", "type": "Integer", "value": 0}]},
            },
            "Loop": {
                "type": "Foreach",
                "foreach": "@range(0, 2000)",
                "runAfter": {"Init": ["Succeeded"]},
                "actions": {
                    "Double": {"type": "Compose", "inputs": "@mul(item(), 2)"},
                    "Add": {
                        "type": "IncrementVariable",
                        "inputs": {"name": "t", "value": "@outputs('Double')"},
                        "runAfter": {"Double": ["Succeeded"]},
                    },
                },
            },
        },
        "outputs": {"t": {"type": "Int", "value": "@variables('t')"}},
    }
    wf = hooknb.Workflow.from_definition(definition, name="thousands", hub=hub, host="kernel")
    started = time.monotonic()
    run = await finished(await wf.start_async(), timeout=60)
    assert run.status == "Succeeded", run.error
    assert run.result == {"t": 3_998_000}
    assert len(run.actions) == 2 + 2 * 2000
    assert time.monotonic() - started < 30
