"""Loading, validating, editing and exporting Logic Apps workflow definitions (no server).

Real public definitions are read from ../shared/reference/logicapps-definitions (see its
workflows/INDEX.md for each file's source and quirks); the tests that need them skip when the
folder is absent. They are never copied into this repository.
"""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hooknb
from hooknb.kernel.interpreter import derive_status
from hooknb.wdl.definitions import (
    SCHEMA_URL,
    Definition,
    DefinitionError,
    Recurrence,
    apply_endpoints,
    is_arm_expression,
    load,
    load_webhook,
    parse_text,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "logicapps-definitions"
if not REFERENCE.is_dir():  # the checkout may sit elsewhere; the shared folder is fixed
    REFERENCE = Path("/work/shared/reference/logicapps-definitions")
WORKFLOWS = REFERENCE / "workflows"
SCHEMA_FILE = REFERENCE / "schema" / "workflowdefinition-2016-06-01.wdl-schema.cgillum.json"
needs_reference = pytest.mark.skipif(
    not WORKFLOWS.is_dir(), reason="the shared reference definitions are not available"
)


def real(name: str) -> Path:
    return WORKFLOWS / name


def fragment(name: str) -> Any:
    """A member-fragment file parsed as INDEX.md says: wrapped in braces."""
    return json.loads("{" + real(name).read_text() + "}")


def schema_validator() -> Any:
    if not SCHEMA_FILE.is_file():
        pytest.skip("the shared WDL schema is not available")
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft4Validator(schema)


def assert_schema_valid(definition: dict[str, Any]) -> None:
    errors = sorted(schema_validator().iter_errors(definition), key=lambda e: list(e.path))
    assert not errors, [f"{e.json_path}: {e.message[:200]}" for e in errors]


def minimal(actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"$schema": SCHEMA_URL, "contentVersion": "1.0.0.0", "actions": actions, **extra}


def compose(run_after: dict[str, Any] | None = None, inputs: Any = "x") -> dict[str, Any]:
    action: dict[str, Any] = {"type": "Compose", "inputs": inputs}
    if run_after is not None:
        action["runAfter"] = run_after
    return action


# -- the 15 real definitions ------------------------------------------------------------------


@needs_reference
def test_eulogious_autoscale_recurrence_and_webhook_action() -> None:
    d = load(real("eulogious__AzureRunbooks__autoscalewvd.json"))
    assert d.name == "eulogious__AzureRunbooks__autoscalewvd"
    trigger = d.trigger
    assert trigger is not None and trigger.type == "Recurrence"
    assert trigger.recurrence is not None
    assert (trigger.recurrence.frequency, trigger.recurrence.interval) == ("Minute", 5)
    step = d.actions["HTTP_Webhook"]
    assert step.type == "HttpWebhook" and step.run_after == {}
    assert step.inputs["subscribe"]["uri"] == "<RunbookWebhookUrl>"
    assert step.inputs["unsubscribe"] == {}
    assert step.inputs["subscribe"]["body"]["peakday"][0] == "Monday"
    assert d.notes == [] and d.arm_expressions == {}


@needs_reference
def test_fullimagedeploy_has_webhook_trigger_and_action_with_case_variant() -> None:
    d = load(real("RayPering__WindowsVirtualDesktop__fullimagedeploy.json"))
    assert list(d.triggers) == ["HTTP_Webhook_Trigger"]
    assert d.trigger is not None and d.trigger.type == "HttpWebhook"
    assert d.trigger.inputs["subscribe"] == {"method": "POST", "uri": "<RunbookWebhookUrl>"}
    body = d.actions["HTTP_Webhook"].inputs["subscribe"]["body"]
    assert body["callbackUrl"] == "@{listCallbackURL()}"  # the case variant loads as is


@needs_reference
@pytest.mark.parametrize(
    ("name", "line", "column"),
    [
        ("RayPering__WindowsVirtualDesktop__fullimagedeploy-3ea2b33-malformed.json", 28, 31),
        ("RayPering__WindowsVirtualDesktop__autoscalewvdpoolexpansion.json", 26, 33),
        ("MicrosoftDocs__azure-docs__issue-43001-truncated.json", 31, 11),
    ],
)
def test_malformed_real_definitions_are_rejected_with_line_and_column(
    name: str, line: int, column: int
) -> None:
    with pytest.raises(DefinitionError) as caught:
        load(real(name))
    error = caught.value
    assert (error.line, error.column, error.source) == (line, column, name)
    assert str(error).startswith(f"{name}, line {line} column {column}: not valid JSON")
    # the same text given as a string: same position, no file name
    with pytest.raises(DefinitionError) as again:
        load(real(name).read_text())
    assert (again.value.line, again.value.column) == (line, column)


@needs_reference
def test_trigger_only_and_no_callback_definitions() -> None:
    trigger_only = load(
        real("RayPering__WindowsVirtualDesktop__fullimagedeploy-97218b7-trigger.json")
    )
    assert list(trigger_only.triggers) == ["HTTP_Webhook"] and trigger_only.actions == {}
    no_callback = load(
        real("RayPering__WindowsVirtualDesktop__fullimagedeploy-aef2544-nocallback.json")
    )
    assert no_callback.triggers == {}
    assert "callbackUrl" not in no_callback.actions["HTTP_Webhook"].inputs["subscribe"]["body"]
    same = load(real("RayPering__WindowsVirtualDesktop__autoscalewvd.json"))
    assert same.actions["HTTP_Webhook"].inputs["subscribe"]["body"]["utcoffset"] == "-1"


@needs_reference
def test_docs_action_wrapper_keeps_timeout_and_callback_case_variant() -> None:
    d = load(real("MicrosoftDocs__azure-docs__connectors-native-webhook-action.json"))
    step = d.actions["Run_HTTP_Webhook_action"]
    assert step.timeout == "PT1H" and step.run_after == {}
    assert step.inputs["subscribe"]["body"] == {"callbackUrl": "@{listCallBackUrl()}"}


@needs_reference
def test_bare_trigger_is_explained_then_loads_when_wrapped() -> None:
    text = real("MicrosoftDocs__azure-docs__connectors-native-webhook-trigger-secondary-key.json")
    with pytest.raises(DefinitionError, match="looks like a single trigger or action"):
        load(text)
    wrapped = {"triggers": {"HTTP_Webhook": json.loads(text.read_text())}}
    d = load(wrapped)
    inputs = d.triggers["HTTP_Webhook"].inputs
    assert inputs["accessKeyType"] == "Secondary"
    assert inputs["subscribe"]["body"] == "@listCallbackUrl()"
    assert any("runAfter is meaningless on a trigger" in n for n in d.notes)


@needs_reference
def test_eventhub_member_fragment_loads_as_if_wrapped() -> None:
    d = load(real("logicappsio__EventHubAPI__readme-ehubtrigger.json"))
    trigger = d.triggers["EhubTrigger"]
    assert trigger.conditions == []
    assert trigger.inputs["unsubscribe"]["body"] == {"callbackUrl": "@{listCallbackUrl()}"}
    assert trigger.inputs["subscribe"]["headers"] == {"content-type": "application/json"}
    # "[hubname]" is a placeholder, not an ARM expression
    assert d.arm_expressions == {}
    assert load(fragment("logicappsio__EventHubAPI__readme-ehubtrigger.json")).triggers


@needs_reference
def test_pubsubhubbub_example_is_rejected_then_loads_repaired() -> None:
    name = "MicrosoftDocs__azure-docs__workflow-actions-triggers-httpwebhook-example.json"
    with pytest.raises(DefinitionError) as caught:
        load(real(name))
    assert (caught.value.line, caught.value.column) == (12, 7)
    assert "trailing" not in str(caught.value) and "as if wrapped" in str(caught.value)
    repaired = real(name).read_text().replace("},\n      },", "}\n      },", 1)
    d = load({"triggers": json.loads("{" + repaired + "}")})
    unsubscribe = d.triggers["HTTP_Webhook"].inputs["unsubscribe"]
    assert unsubscribe["url"] == "https://pubsubhubbub.appspot.com/subscribe"  # the url alias
    assert unsubscribe["body"]["hub.callback"] == "@{workflow().endpoint}@{listCallbackUrl()}"


@needs_reference
def test_doc_template_is_rejected_with_position() -> None:
    with pytest.raises(DefinitionError) as caught:
        load(real("MicrosoftDocs__azure-docs__workflow-actions-triggers-httpwebhook-template.json"))
    assert (caught.value.line, caught.value.column) == (7, 42)


@needs_reference
def test_arm_template_definition_reports_arm_expressions() -> None:
    d = load(real("Azure__RDS-Templates__wvd-scaling-azurelogicappcreation.json"))
    assert d.arm_expressions == {
        "triggers.Recurrence.recurrence.interval": "[parameters('recurrenceInterval')]",
        "actions.HTTP_Webhook.inputs.subscribe.body": "[parameters('actionSettingsBody')]",
        "actions.HTTP_Webhook.inputs.subscribe.uri": "[parameters('webhookURI')]",
    }
    # kept as literal strings
    assert d.actions["HTTP_Webhook"].inputs["subscribe"]["uri"] == "[parameters('webhookURI')]"
    assert d.trigger is not None and d.trigger.recurrence is not None
    assert "interval is the expression" in (d.trigger.recurrence.problem or "")
    assert any("ARM template expression(s) are kept as literal strings" in n for n in d.notes)


@needs_reference
def test_invictus_scope_fragment_needs_its_context() -> None:
    member = fragment("invictus-integration__docs-ifa__exceptionhandler-scope.json")
    with pytest.raises(DefinitionError, match="look like actions or triggers"):
        load(member)
    with pytest.raises(DefinitionError) as caught:
        load({"actions": member})
    assert caught.value.location == "actions.Scope_ExceptionHandling.runAfter"
    assert "no action 'Scope'" in caught.value.message
    actions = {"Scope": {"type": "Scope", "actions": {}, "runAfter": {}}, **member}
    with pytest.raises(DefinitionError, match=r"parameters\('resourceGroupName'\) names a"):
        load({"actions": actions})
    parameters = {
        "resourceGroupName": {"type": "String", "defaultValue": "rg"},
        "subscriptionId": {"type": "String", "defaultValue": "sub"},
    }
    d = load({"actions": actions, "parameters": parameters})
    inner = d.find("ResolveException")
    assert inner.parent == "Scope_ExceptionHandling"
    assert inner.location == "actions.Scope_ExceptionHandling.actions.ResolveException"
    assert d.find("Terminate").run_after == {"ResolveException": ["Succeeded"]}
    assert d.actions["Scope_ExceptionHandling"].run_after == {
        "Scope": ["Failed", "Skipped", "TimedOut"]
    }
    assert list(d.arm_expressions) == [
        "actions.Scope_ExceptionHandling.actions.ResolveException.inputs.subscribe.uri"
    ]


@needs_reference
def test_every_real_file_either_loads_or_fails_with_a_definition_error() -> None:
    outcome = {}
    for path in sorted(WORKFLOWS.glob("*.json")):
        try:
            load(path)
            outcome[path.name.split("__", 1)[1]] = "loads"
        except DefinitionError as exc:
            outcome[path.name.split("__", 1)[1]] = "line/column" if exc.line else exc.location
    assert outcome == {
        "EventHubAPI__readme-ehubtrigger.json": "loads",  # #1, read as a wrapped member
        "AzureRunbooks__autoscalewvd.json": "loads",  # #2
        "WindowsVirtualDesktop__fullimagedeploy.json": "loads",  # #3
        "WindowsVirtualDesktop__fullimagedeploy-97218b7-trigger.json": "loads",  # #4
        "WindowsVirtualDesktop__fullimagedeploy-aef2544-nocallback.json": "loads",  # #5
        "WindowsVirtualDesktop__fullimagedeploy-3ea2b33-malformed.json": "line/column",  # #6
        "WindowsVirtualDesktop__autoscalewvd.json": "loads",  # #7
        "WindowsVirtualDesktop__autoscalewvdpoolexpansion.json": "line/column",  # #8
        "docs-ifa__exceptionhandler-scope.json": None,  # #9: a member of "actions"
        "azure-docs__connectors-native-webhook-action.json": "loads",  # #10
        "azure-docs__connectors-native-webhook-trigger-secondary-key.json": None,  # #11
        "azure-docs__workflow-actions-triggers-httpwebhook-example.json": "line/column",  # #12
        "azure-docs__workflow-actions-triggers-httpwebhook-template.json": "line/column",  # #13
        "RDS-Templates__wvd-scaling-azurelogicappcreation.json": "loads",  # #14
        "azure-docs__issue-43001-truncated.json": "line/column",  # #15
    }


# -- sources: dict, text, path, wrapper, ARM --------------------------------------------------


def test_sources_text_bytes_path_wrapper_and_arm(tmp_path: Path) -> None:
    definition = minimal({"A": compose({})}, parameters={"p": {"type": "Int", "defaultValue": 1}})
    text = json.dumps(definition)
    path = tmp_path / "orders.json"
    path.write_text(text)
    assert load(text).actions["A"].type == "Compose"
    assert load(text.encode()).actions["A"].type == "Compose"
    assert load(path).name == "orders" and load(str(path)).name == "orders"
    wrapper = {"definition": definition, "parameters": {"p": {"value": 7}}}
    assert load(wrapper).values == {"p": 7}
    assert load(wrapper, {"p": 9}).values == {"p": 9}  # given values win
    arm = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {"type": "Microsoft.Storage/storageAccounts", "name": "x"},
            {
                "type": "Microsoft.Logic/workflows",
                "name": "orders-flow",
                "properties": {"definition": definition, "parameters": {"p": {"value": 3}}},
            },
        ],
    }
    loaded = load(arm)
    assert loaded.name == "orders-flow" and loaded.values == {"p": 3}
    with pytest.raises(DefinitionError, match="neither JSON text nor the path"):
        load("no-such-file.json")
    with pytest.raises(DefinitionError, match=r"no Microsoft\.Logic/workflows resource"):
        load({"resources": []})


def test_case_insensitive_names_and_canonical_spelling() -> None:
    d = load(
        {
            "Triggers": {"manual": {"TYPE": "request", "Kind": "Http"}},
            "ACTIONS": {
                "A": {"Type": "compose", "Inputs": "@triggerBody()", "RunAfter": {}},
                "B": {"type": "COMPOSE", "inputs": 1, "runAfter": {"A": ["succeeded", "FAILED"]}},
                "W": {
                    "type": "httpwebhook",
                    "inputs": {"Subscribe": {"Method": "post", "URL": "http://x/s"}},
                },
            },
        }
    )
    assert d.trigger is not None and d.trigger.type == "Request"
    assert d.actions["A"].type == "Compose"
    assert d.actions["B"].run_after == {"A": ["Succeeded", "Failed"]}
    assert d.actions["W"].inputs["subscribe"] == {"method": "post", "url": "http://x/s"}
    exported = d.to_json()
    assert exported["actions"]["A"] == {
        "type": "Compose",
        "inputs": "@triggerBody()",
        "runAfter": {},
    }


def test_operation_options_and_other_ignored_settings_are_noted() -> None:
    d = load(
        {
            "actions": {
                "H": {
                    "type": "Http",
                    "inputs": {"method": "GET", "uri": "http://x/"},
                    "operationOptions": "DisableAsyncPattern",
                },
                "W": {
                    "type": "HttpWebhook",
                    "inputs": {"subscribe": {"method": "POST", "uri": "http://x/"}},
                    "operationOptions": "IncludeAuthorizationHeadersInOutputs",
                    "runtimeConfiguration": {"secureData": {"properties": ["inputs"]}},
                    "limit": {"timeout": "PT5M", "count": 3},
                },
            }
        }
    )
    assert d.actions["H"].operation_options == {"disableasyncpattern"}
    assert d.actions["W"].include_authorization_headers
    assert d.actions["W"].secure == {"inputs"}
    notes = "\n".join(d.notes)
    assert "actions.H" not in notes  # honoured, not ignored
    assert "actions.W.operationOptions" not in notes  # honoured too
    assert "actions.W.runtimeConfiguration" not in notes  # secureData is honoured
    assert "actions.W.limit.count is ignored" in notes
    # Options an action type does not take are still noted.
    other = load(
        {
            "actions": {
                "C": {
                    "type": "Compose",
                    "inputs": 1,
                    "operationOptions": "IncludeAuthorizationHeadersInOutputs",
                    "runtimeConfiguration": {"concurrency": {"runs": 1}},
                }
            }
        }
    )
    assert "actions.C.operationOptions 'IncludeAuthorizationHeadersInOutputs' is ignored" in (
        "\n".join(other.notes)
    )
    assert "actions.C.runtimeConfiguration.concurrency is ignored" in "\n".join(other.notes)
    with pytest.raises(DefinitionError) as bad:
        load(
            {
                "actions": {
                    "C": {
                        **other.actions["C"].raw,
                        "runtimeConfiguration": {"secureData": {"properties": ["everything"]}},
                    }
                }
            }
        )
    assert bad.value.location == "actions.C.runtimeConfiguration.secureData"


# -- validation errors name the place ---------------------------------------------------------

WEBHOOK = {"type": "HttpWebhook", "inputs": {"subscribe": {"method": "POST", "uri": "http://x/"}}}


@pytest.mark.parametrize(
    ("definition", "location", "message"),
    [
        (
            {"actions": {"Scope_1": {"type": "Scope", "actions": {"Foo": {"type": "Teleport"}}}}},
            "actions.Scope_1.actions.Foo.type",
            "unknown action type 'Teleport'",
        ),
        (
            {"actions": {"Loop": {"type": "Foreach", "foreach": "@x()"}}},
            "actions.Loop.foreach",
            "unknown function 'x'",
        ),
        (
            {"actions": {"Loop": {"type": "Foreach", "foreach": [], "cases": {}}}},
            "actions.Loop.cases",
            "only Switch actions have 'cases'",
        ),
        (
            {"actions": {"A": {"type": "Compose", "input": "x"}}},
            "actions.A",
            "unknown property 'input' of an action; did you mean 'inputs'?",
        ),
        (
            {"actions": {"Loop": {"type": "Foreach"}}},
            "actions.Loop",
            'a Foreach needs "foreach"',
        ),
        (
            {"actions": {"X": {"type": "Xslt"}}},
            "actions.X.type",
            "'Xslt' is a Logic Apps type hooknb does not run",
        ),
        (
            {"triggers": {"t": {"type": "ApiConnection"}}},
            "triggers.t.type",
            "'ApiConnection' is a Logic Apps type hooknb does not run",
        ),
        ({"actions": {"A": {"type": "Compose"}}}, "actions.A", 'needs "inputs"'),
        (
            {"actions": {"A": compose({"B": ["Succeeded"]})}},
            "actions.A.runAfter",
            "no action 'B' in this scope",
        ),
        (
            {"actions": {"A": compose({"A": ["Succeeded"]})}},
            "actions.A.runAfter",
            "cannot run after itself",
        ),
        (
            {"actions": {"A": compose({"B": ["Succeeded"]}), "B": compose({"A": ["Failed"]})}},
            "actions",
            "runAfter makes a cycle",
        ),
        (
            {"actions": {"A": compose({}), "B": compose({"A": ["Done"]})}},
            "actions.B.runAfter.A",
            "'Done' is not a status to run after",
        ),
        (
            {"actions": {"A": compose({}), "B": compose({"A": []})}},
            "actions.B.runAfter.A",
            "lists the statuses",
        ),
        (
            {
                "actions": {
                    "S": {"type": "Scope", "actions": {"A": compose({})}},
                    "B": compose({"A": ["Succeeded"]}),
                }
            },
            "actions.B.runAfter",
            "'A' is not in the same scope",
        ),
        (
            {
                "actions": {
                    "S": {"type": "Scope", "actions": {"A": compose({})}},
                    "A": compose({}),
                }
            },
            "actions.A",
            "there is already an action named 'A'",
        ),
        (
            {"actions": {"R": {"type": "Response", "inputs": {"statusCode": 200}}}},
            "actions.R",
            "a Response action needs a Request trigger",
        ),
        (
            {"actions": {"A": compose({}, "@parameters('nope')")}},
            "actions.A.inputs",
            "parameters('nope') names a parameter the definition does not declare",
        ),
        (
            {
                "parameters": {"p": {"type": "String"}},
                "actions": {"A": compose({}, {"x": "@parameters('p')"})},
            },
            "actions.A.inputs.x",
            "has no value and no defaultValue",
        ),
        (
            {"actions": {"A": compose({}, {"deep": ["@concat('a',"]})}},
            "actions.A.inputs.deep[0]",
            "expected",
        ),
        (
            {
                "actions": {
                    "H": {
                        "type": "Http",
                        "inputs": {"method": "POST", "uri": "@{listCallbackUrl()}"},
                    }
                }
            },
            "actions.H.inputs.uri",
            "listCallbackUrl() only works in the subscribe and unsubscribe inputs",
        ),
        (
            {"parameters": {"n": {"type": "Int", "defaultValue": "five"}}},
            "parameters.n.defaultValue",
            "expected a value of type Int",
        ),
        (
            {
                "actions": {
                    "W": {"type": "HttpWebhook", "inputs": {"subscribe": {"uri": "http://x"}}}
                }
            },
            "actions.W.inputs.subscribe.method",
            "missing",
        ),
        (
            {"actions": {"W": {**WEBHOOK, "limit": {"timeout": "P1M"}}}},
            "actions.W.limit.timeout",
            "months have no fixed length",
        ),
        (
            {"triggers": {"a": {"type": "Request"}, "b": {"type": "Request"}}},
            "triggers",
            "hooknb runs one trigger per workflow",
        ),
        (
            {"triggers": {"t": {**WEBHOOK, "splitOn": ["a"]}}},
            "triggers.t.splitOn",
            "splitOn is an expression",
        ),
        (
            {"actions": {"I": {"type": "If", "expression": {"xor": [1, 2]}}}},
            "actions.I.expression",
            "unknown condition operator 'xor'",
        ),
        (
            {"actions": {"T": {"type": "Terminate", "inputs": {"runStatus": "Paused"}}}},
            "actions.T.inputs.runStatus",
            "unknown runStatus type 'Paused'",
        ),
        (
            {
                "actions": {
                    "W": {"type": "Wait", "inputs": {"interval": {"count": 1, "unit": "Fortnight"}}}
                }
            },
            "actions.W.inputs.interval.unit",
            "unknown unit type 'Fortnight'",
        ),
    ],
)
def test_invalid_definitions_name_the_place(
    definition: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        load(definition)
    assert caught.value.location == location, str(caught.value)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{location}: ")


def test_nesting_deeper_than_logic_apps_allows_is_rejected() -> None:
    inner: dict[str, Any] = {"Leaf": compose({})}
    for level in range(9):
        inner = {f"S{level}": {"type": "Scope", "actions": inner}}
    with pytest.raises(DefinitionError, match="nested more than 8 levels"):
        load({"actions": inner})


def test_json_syntax_and_strictness() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_text('{\n  "actions": {,\n}')
    assert (caught.value.line, caught.value.column) == (2, 15)
    with pytest.raises(DefinitionError, match="appears twice"):
        parse_text('{"actions": {"A": {}, "A": {}}}')
    with pytest.raises(DefinitionError, match="NaN is not a JSON value"):
        parse_text('{"a": NaN}')
    with pytest.raises(DefinitionError, match="nested too deeply"):
        parse_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DefinitionError, match="is not a JSON value"):
        load({"actions": {"A": compose({}, {1, 2})}})


# -- runAfter / Skipped / Scope status ---------------------------------------------------------
# https://learn.microsoft.com/azure/logic-apps/error-exception-handling


def steps_of(actions: dict[str, Any]) -> Any:
    return load({"actions": actions}).actions


# Each row: the actions' runAfter graph, the statuses they ended with, the derived status and
# the action that decided it. The rule is EXC22's: an unhandled failure makes successors
# Skipped; "if a branch ends with a Skipped action, that branch's completion status is based
# on that skipped action's predecessor status"; "if any branch ends in failure, the entire
# logic app run is marked Failed".
STATUS_TABLE = [
    (
        "all succeed",
        {"A": {}, "B": {"A": ["Succeeded"]}},
        {"A": "Succeeded", "B": "Succeeded"},
        ("Succeeded", None),
    ),
    (
        "unhandled failure",
        {"A": {}, "B": {"A": ["Succeeded"]}},
        {"A": "Failed", "B": "Skipped"},
        ("Failed", "A"),
    ),
    (
        "handled failure",
        {"A": {}, "B": {"A": ["Failed"]}},
        {"A": "Failed", "B": "Succeeded"},
        ("Succeeded", None),
    ),
    (
        "handler not needed",
        {"A": {}, "B": {"A": ["Failed"]}},
        {"A": "Succeeded", "B": "Skipped"},
        ("Succeeded", None),
    ),
    (
        "run after Skipped",
        {"A": {}, "B": {"A": ["Succeeded"]}, "C": {"B": ["Skipped"]}},
        {"A": "Failed", "B": "Skipped", "C": "Succeeded"},
        ("Succeeded", None),
    ),
    (
        "unhandled timeout",
        {"A": {}, "B": {"A": ["Succeeded"]}},
        {"A": "TimedOut", "B": "Skipped"},
        ("TimedOut", "A"),
    ),
    (
        "handled timeout",
        {"A": {}, "B": {"A": ["TimedOut"]}},
        {"A": "TimedOut", "B": "Succeeded"},
        ("Succeeded", None),
    ),
    (
        "parallel branch fails",
        {"A": {}, "B": {}},
        {"A": "Succeeded", "B": "Failed"},
        ("Failed", "B"),
    ),
    (
        "failure beats timeout",
        {"A": {}, "B": {}},
        {"A": "TimedOut", "B": "Failed"},
        ("Failed", "B"),
    ),
    (
        "all conditions must hold",
        {"A": {}, "B": {}, "C": {"A": ["Succeeded"], "B": ["Failed"]}},
        {"A": "Succeeded", "B": "Succeeded", "C": "Skipped"},
        ("Succeeded", None),
    ),
    (
        "skip caused by a failure two levels up",
        {"A": {}, "B": {"A": ["Succeeded"]}, "C": {"B": ["Succeeded"]}},
        {"A": "Failed", "B": "Skipped", "C": "Skipped"},
        ("Failed", "A"),
    ),
    ("empty scope", {}, {}, ("Succeeded", None)),
]


@pytest.mark.parametrize(
    ("graph", "statuses", "expected"),
    [row[1:] for row in STATUS_TABLE],
    ids=[row[0] for row in STATUS_TABLE],
)
def test_derived_status_follows_exc22(
    graph: dict[str, dict[str, list[str]]], statuses: dict[str, str], expected: tuple[str, Any]
) -> None:
    steps = steps_of({name: compose(after) for name, after in graph.items()})
    assert derive_status(steps, statuses) == expected


# -- endpoints, ARM, recurrence ---------------------------------------------------------------


def test_endpoints_exact_then_longest_prefix() -> None:
    endpoints = {
        "<RunbookWebhookUrl>": "http://127.0.0.1:9/runbook",
        "https://svc.example/": "http://127.0.0.1:9/",
        "https://svc.example/api/": "http://127.0.0.1:9/v2/",
    }
    request = {"method": "POST", "uri": "<RunbookWebhookUrl>", "body": {"a": 1}}
    assert apply_endpoints(request, endpoints)["uri"] == "http://127.0.0.1:9/runbook"
    assert request["uri"] == "<RunbookWebhookUrl>"  # not changed in place
    assert apply_endpoints({"url": "https://svc.example/x?y=1"}, endpoints)["url"] == (
        "http://127.0.0.1:9/x?y=1"
    )
    assert apply_endpoints({"uri": "https://svc.example/api/s"}, endpoints)["uri"] == (
        "http://127.0.0.1:9/v2/s"
    )
    assert apply_endpoints({"uri": "https://other/"}, endpoints)["uri"] == "https://other/"
    with pytest.raises(DefinitionError, match="pair of strings"):
        load({"actions": {}}, endpoints={"a": 1})  # type: ignore[dict-item]


def test_arm_expressions_are_told_from_placeholders() -> None:
    assert is_arm_expression("[parameters('x')]")
    assert is_arm_expression("[concat(parameters('a'), '/b')]")
    assert not is_arm_expression("[[parameters('x')]")  # ARM's escape
    assert not is_arm_expression("[hubname]")
    assert not is_arm_expression("<RunbookWebhookUrl>")


def test_recurrence_first_time_follows_logic_apps() -> None:
    now = datetime(2024, 5, 10, 12, 0, 30, tzinfo=UTC)
    every5 = Recurrence("Minute", 5)
    assert every5.first(now) == now  # no start: at once
    future = Recurrence("Hour", 1, start=datetime(2024, 5, 11, tzinfo=UTC))
    assert future.first(now) == datetime(2024, 5, 11, tzinfo=UTC)
    past = Recurrence("Minute", 5, start=datetime(2024, 5, 10, 11, 58, tzinfo=UTC))
    assert past.first(now) == datetime(2024, 5, 10, 12, 3, tzinfo=UTC)
    monthly = Recurrence("Month", 1, start=datetime(2024, 1, 31, 9, tzinfo=UTC))
    assert monthly.first(now) == datetime(2024, 5, 31, 9, tzinfo=UTC)
    assert monthly.occurrence(monthly.start, 1) == datetime(2024, 2, 29, 9, tzinfo=UTC)  # type: ignore[arg-type]
    yearly = Recurrence("Year", 2, start=datetime(2020, 2, 29, tzinfo=UTC))
    assert yearly.first(now) == datetime(2026, 2, 28, tzinfo=UTC)


# -- editing and exporting --------------------------------------------------------------------


def approval_request(base: str = "https://approvals.example/") -> dict[str, Any]:
    return {
        "method": "POST",
        "uri": f"{base}approvals",
        "body": {"callbackUrl": "@{listCallbackUrl()}", "subject": "@{triggerBody()?['item']}"},
    }


def declared() -> hooknb.Workflow:
    # A template, as the builder's steps are: its strings are expressions.
    trigger = hooknb.HttpWebhookTrigger.from_template(
        subscribe={
            "method": "POST",
            "uri": "https://svc.example/topics/orders/subscriptions",
            "body": {"callbackUrl": "@{listCallbackUrl()}"},
        },
        unsubscribe={"method": "POST", "uri": "https://svc.example/topics/orders/unsubscribe"},
    )
    wf = hooknb.Workflow.declare("orders", trigger=trigger, parameters={"limit": 100})
    wf.add_webhook(
        "Approval",
        approval_request(),
        {
            "method": "DELETE",
            "uri": "https://approvals.example/approvals/@{action().outputs.body.id}",
        },
        timeout="PT10M",
        run_after={},
    )
    wf.add_http(
        "Notify",
        {"method": "POST", "uri": "https://hooks.example/notify", "body": "@body('Approval')"},
        async_pattern=False,
    )
    wf.add_condition(
        "Approved",
        {"and": [{"equals": ["@body('Approval')?['decision']", "Approved"]}]},
        actions={"Ship": {"type": "Compose", "inputs": {"ship": "@triggerBody()?['id']"}}},
        else_actions={"Refuse": {"type": "Compose", "inputs": "refused"}},
    )
    wf.add_compose("Log", "after @{body('Approval')?['decision']}", scope="Approved", branch="else")
    wf.add_scope("Cleanup", run_after={"Approved": ["Succeeded", "Failed"]})
    wf.add_compose("Done", "@outputs('Ship')", scope="Cleanup")
    return wf


def test_declared_workflow_exports_a_schema_valid_definition() -> None:
    exported = declared().to_definition()
    assert_schema_valid(exported)
    assert list(exported) == [
        "$schema",
        "contentVersion",
        "parameters",
        "triggers",
        "actions",
        "outputs",
    ]
    actions = exported["actions"]
    assert list(actions) == ["Approval", "Notify", "Approved", "Cleanup"]
    assert actions["Notify"]["runAfter"] == {"Approval": ["Succeeded"]}  # after the previous step
    assert actions["Notify"]["operationOptions"] == "DisableAsyncPattern"
    assert actions["Approval"]["limit"] == {"timeout": "PT10M"}
    assert actions["Approved"]["else"]["actions"]["Log"]["runAfter"] == {"Refuse": ["Succeeded"]}
    assert actions["Cleanup"]["actions"]["Done"]["runAfter"] == {}
    assert exported["parameters"] == {"limit": {"type": "Int", "defaultValue": 100}}
    trigger = exported["triggers"]["HTTP_Webhook"]["inputs"]
    assert trigger["subscribe"]["body"] == {"callbackUrl": "@{listCallbackUrl()}"}
    # round trip: loading the export and exporting again gives the same definition
    assert load(exported).to_json() == exported
    assert hooknb.Workflow.from_definition(exported).to_definition() == exported


@needs_reference
def test_real_definitions_export_schema_valid_and_round_trip() -> None:
    for name in (
        "eulogious__AzureRunbooks__autoscalewvd.json",
        "RayPering__WindowsVirtualDesktop__fullimagedeploy.json",
        "RayPering__WindowsVirtualDesktop__fullimagedeploy-97218b7-trigger.json",
        "RayPering__WindowsVirtualDesktop__fullimagedeploy-aef2544-nocallback.json",
        "RayPering__WindowsVirtualDesktop__autoscalewvd.json",
        "MicrosoftDocs__azure-docs__connectors-native-webhook-action.json",
    ):
        exported = hooknb.Workflow.from_definition(real(name)).to_definition()
        assert_schema_valid(exported)
        original = json.loads(real(name).read_text())
        assert exported["actions"] == {
            k: {**v, "runAfter": v.get("runAfter", {})} for k, v in original["actions"].items()
        }
        assert load(exported).to_json() == exported


@needs_reference
def test_arm_interval_is_the_one_schema_failure_and_is_reported() -> None:
    exported = load(real("Azure__RDS-Templates__wvd-scaling-azurelogicappcreation.json")).to_json()
    errors = list(schema_validator().iter_errors(exported))
    assert [e.json_path for e in errors] == ["$.triggers.Recurrence"]


def test_python_steps_run_but_are_named_when_exporting() -> None:
    wf = declared()
    wf.add_step("Score", lambda run: 42, run_after="Approval")
    wf.add_step("Audit", lambda run: None, scope="Cleanup")
    with pytest.raises(hooknb.HookNBError) as caught:
        wf.to_definition()
    assert "Python step(s) 'Audit', 'Score' have no WDL form" in str(caught.value)
    wf.remove_step("Score").remove_step("Audit")
    assert_schema_valid(wf.to_definition())

    @hooknb.workflow
    async def code_first(run: Any) -> Any:
        return 1

    with pytest.raises(hooknb.HookNBError, match=r"is the Python function .*code_first"):
        code_first.to_definition()
    with pytest.raises(hooknb.HookNBError, match="steps can only be added"):
        code_first.add_compose("X", 1)


def test_editing_validates_and_keeps_the_workflow_unchanged_on_error() -> None:
    wf = declared()
    before = wf.to_definition()
    with pytest.raises(DefinitionError, match="unknown action type 'Teleport'"):
        wf.add_action("Beam", {"type": "Teleport"})
    with pytest.raises(DefinitionError, match="no action 'Nope'"):
        wf.add_compose("X", 1, run_after="Nope")
    with pytest.raises(DefinitionError, match="already an action named 'Ship'"):
        wf.add_compose("Ship", 1)
    assert wf.to_definition() == before
    # removing a step rewires its successors to its predecessors
    wf.remove_step("Notify")
    assert wf.to_definition()["actions"]["Approved"]["runAfter"] == {"Approval": ["Succeeded"]}


def test_wrapper_export_carries_values_but_not_secrets() -> None:
    d = minimal(
        {},
        parameters={
            "base": {"type": "String", "defaultValue": "http://a/"},
            "key": {"type": "SecureString"},
        },
    )
    wf = hooknb.Workflow.from_definition(d, {"base": "http://b/", "key": "s3cret"})
    wrapped = wf.to_definition(wrapper=True)
    assert wrapped["parameters"] == {"base": {"value": "http://b/"}}
    assert "s3cret" not in json.dumps(wrapped)
    again = hooknb.Workflow.from_definition(wrapped, {"key": "s3cret"})
    assert again.parameters == {"base": "http://b/", "key": "s3cret"}


def test_definition_passthrough_and_names() -> None:
    d = load(minimal({"A": compose({})}))
    assert isinstance(d, Definition)
    wf = hooknb.Workflow.from_definition(d, name="direct")
    assert wf.definition is d and wf.name == "direct" and wf.trigger is None
    assert hooknb.Workflow.from_definition(minimal({})).name == "workflow"


# -- the %%hooknb workflow magic -----------------------------------------------------------------


class FakeShell:
    def __init__(self, **names: Any) -> None:
        self.user_ns: dict[str, Any] = dict(names)


def test_definition_magic_binds_the_workflow_and_reports_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from IPython.core.error import UsageError

    from hooknb.kernel.magics_workflow import definition_magic

    cell = json.dumps(
        {
            "definition": minimal(
                {
                    "A": compose({}, "@parameters('p')"),
                    "B": {**compose({}), "trackedProperties": {}},
                },
                parameters={"p": {"type": "Int", "defaultValue": 1}},
            ),
            "parameters": {},
        },
        indent=2,
    )
    shell = FakeShell(VALUES={"p": 5}, MAP={"https://a/": "http://127.0.0.1:1/"})
    wf = definition_magic(shell, "workflow flow --parameters VALUES --endpoints MAP", cell)
    assert shell.user_ns["flow"] is wf and wf.name == "flow"
    assert wf.parameters == {"p": 5} and wf.endpoints == {"https://a/": "http://127.0.0.1:1/"}
    assert "note: actions.B.trackedProperties are ignored" in capsys.readouterr().out
    with pytest.raises(UsageError) as caught:
        definition_magic(
            shell, "broken", '{\n  "actions": {\n    "A": {"type": "Compose",}\n  }\n}'
        )
    assert str(caught.value) == (
        "%%hooknb workflow broken: line 3 column 29: not valid JSON: Expecting property name "
        'enclosed in double quotes near \'"A": {"type": "Compose",}\''
    )
    with pytest.raises(UsageError, match="unknown action type 'Teleport'"):
        definition_magic(shell, "t", '{"actions": {"X": {"type": "Teleport"}}}')
    with pytest.raises(UsageError, match="needs a NAME"):
        definition_magic(shell, "workflow", cell)
    with pytest.raises(UsageError, match="NameError"):
        definition_magic(shell, "w --parameters NOPE", cell)
    with pytest.raises(UsageError, match="unexpected '--bogus'"):
        definition_magic(shell, "w --bogus", cell)


# -- one HttpWebhook trigger or action, as the %%hooknb cell magics read it -----------------------


def test_a_lone_webhook_in_both_forms_and_flavours() -> None:
    whole = load_webhook(
        '{"type": "httpwebhook", "inputs": {"subscribe": {"method": "post", '
        '"uri": "@{parameters(\'base\')}/subscribe"}, "unsubscribe": {},},}',  # trailing commas
        "trigger",
    )
    assert whole.subscribe["uri"] == "@{parameters('base')}/subscribe"
    assert whole.unsubscribe is None
    action = load_webhook(
        "type: HttpWebhook\ninputs:\n  subscribe: {method: POST, url: 'http://x/'}\n"
        "limit: {timeout: PT90M}\nrunAfter: {}\n",
        "action",
    )
    assert (action.subscribe["url"], action.timeout) == ("http://x/", "PT90M")
    # As in a whole definition: property names in any case, inputs-wide retryPolicy and
    # authentication for both requests, the trigger's accessKeyType.
    trigger = load_webhook(
        "Type: HttpWebhook\nInputs:\n  Subscribe: {Method: POST, URI: 'http://x/s'}\n"
        "  unsubscribe: {method: DELETE, uri: 'http://x/u', retryPolicy: {type: none}}\n"
        "  retryPolicy: {type: fixed, count: 2, interval: PT1S}\n  accessKeyType: secondary\n",
        "trigger",
    )
    assert trigger.subscribe == {
        "retryPolicy": {"type": "fixed", "count": 2, "interval": "PT1S"},
        "method": "POST",
        "uri": "http://x/s",
    }
    assert trigger.unsubscribe is not None and trigger.unsubscribe["retryPolicy"] == {
        "type": "none"
    }
    assert trigger.access_key_type == "Secondary"


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        ("", "trigger", "the definition is empty"),
        ("- subscribe", "trigger", "line 1: expected the HttpWebhook trigger as an object"),
        ("type: HttpWebhook\n", "trigger", 'line 1: inputs: an HttpWebhook needs "inputs"'),
        (
            "type: Http\ninputs: {}\n",
            "action",
            "line 1: type: expected \"HttpWebhook\", not 'Http'",
        ),
        (
            "\nsubscribe:\n  method: POST\n  uri: ftp://x/\n",
            "trigger",
            "line 4: subscribe.uri: only",
        ),
        (
            "subscribe: {method: POST, uri: 'http://x/'}\nunsubscribe:\n  method: POST\n"
            "  uri: http://x/\n  headers: {Bad Name: 1}\n",
            "trigger",
            "line 5: unsubscribe.headers: 'Bad Name' is not a valid HTTP header name",
        ),
        (
            '{"type": "HttpWebhook",\n "inputs": {"subscribe": {"method": "POST", "uri": "http://x/"}},'
            '\n "limit": {"timeout": 5}}',
            "action",
            "line 3: limit.timeout: ",
        ),
        (
            "type: HttpWebhook\ninputs: {}\ncondition: []\n",
            "trigger",
            "line 3: unknown property 'condition' of a trigger; did you mean 'conditions'?",
        ),
        ('{\n  "subscribe": {"method": "POST",,}\n}', "trigger", "line 2 column"),
        (
            "subscribe:\n  method: POST\n  uri: http://x/\n  body:\n    hub.callback: x\n"
            "    topics:\n      - a\n      - \"@{concat('a',}\"\n",
            "trigger",
            "line 8: subscribe.body.topics[1]: expected an expression",
        ),
        (  # a key with a dot in it, after the key its name starts with
            "subscribe:\n  method: POST\n  uri: http://x/\n  body:\n    hub: {callback: x}\n"
            "    hub.callback: \"@{concat('a',}\"\n",
            "trigger",
            "line 6: subscribe.body.hub.callback: expected an expression",
        ),
        (
            "type: HttpWebhook\ninputs: {subscribe: {method: POST, uri: 'http://x/'}}\n"
            "limit:\n  timeout: \"@{parameters('t')}\"\n",
            "action",
            "line 4: limit.timeout: an expression is not evaluated here",
        ),
    ],
)
def test_lone_webhook_mistakes_name_line_and_field(source: str, kind: Any, message: str) -> None:
    from hooknb.http_model import normalize_request

    with pytest.raises(DefinitionError) as caught:
        load_webhook(source, kind, check_request=normalize_request)
    assert str(caught.value).startswith(message), str(caught.value)


# -- load() only ever raises DefinitionError ---------------------------------------------------

_KEYS = st.sampled_from(
    [
        "$schema", "contentVersion", "parameters", "triggers", "actions", "outputs", "type",
        "inputs", "runAfter", "subscribe", "unsubscribe", "method", "uri", "url", "body",
        "expression", "else", "limit", "timeout", "recurrence", "frequency", "interval",
        "startTime", "defaultValue", "value", "definition", "resources", "properties",
        "statusCode", "runStatus", "until", "timestamp", "count", "unit", "and", "equals",
        "conditions", "operationOptions", "A", "B",
    ]
)  # fmt: skip
_STRINGS = st.one_of(
    st.sampled_from(
        [
            "HttpWebhook", "Http", "Compose", "If", "Scope", "Wait", "Terminate", "Response",
            "Request", "Recurrence", "Succeeded", "Failed", "Skipped", "TimedOut", "POST",
            "http://x/", "PT1S", "P1M", "Minute", "Second", "@triggerBody()",
            "@{listCallbackUrl()}", "@parameters('A')", "@concat(", "[parameters('x')]",
            "Object", "String", "Int", "A", "2024-01-01T00:00:00Z", "Microsoft.Logic/workflows",
        ]
    ),
    st.text(max_size=12),
)  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _STRINGS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_load_raises_only_definition_errors_on_arbitrary_json(value: Any) -> None:
    with contextlib.suppress(DefinitionError):
        load(value if isinstance(value, dict) else {"actions": value})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_load_raises_only_definition_errors_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(DefinitionError):
        load("{" + text)


_NAMES = st.sampled_from(["A", "B", "C", "D"])
_RUN_AFTER = st.dictionaries(
    _NAMES,
    st.lists(st.sampled_from(["Succeeded", "Failed", "skipped", "TIMEDOUT", "Nope"]), max_size=2),
    max_size=2,
)
_PLAUSIBLE = st.deferred(
    lambda: st.one_of(
        st.builds(
            lambda inputs, after: {"type": "Compose", "inputs": inputs, "runAfter": after},
            _JSON,
            _RUN_AFTER,
        ),
        st.builds(
            lambda method, uri, after: {
                "type": "Http",
                "inputs": {"method": method, "uri": uri},
                "runAfter": after,
            },
            st.sampled_from(["GET", "POST", "@parameters('A')"]),
            _STRINGS,
            _RUN_AFTER,
        ),
        st.builds(
            lambda uri, timeout: {
                "type": "HttpWebhook",
                "inputs": {
                    "subscribe": {
                        "method": "POST",
                        "uri": uri,
                        "body": {"cb": "@{listCallbackUrl()}"},
                    }
                },
                "limit": {"timeout": timeout},
            },
            _STRINGS,
            st.sampled_from(["PT1M", "P1M", "@{parameters('A')}", "x"]),
        ),
        st.builds(
            lambda expression, inner, other: {
                "type": "If",
                "expression": expression,
                "actions": inner,
                "else": {"actions": other},
            },
            _JSON,
            st.dictionaries(_NAMES, _PLAUSIBLE, max_size=2),
            st.dictionaries(_NAMES, _PLAUSIBLE, max_size=1),
        ),
        st.builds(
            lambda inner, after: {"type": "Scope", "actions": inner, "runAfter": after},
            st.dictionaries(_NAMES, _PLAUSIBLE, max_size=2),
            _RUN_AFTER,
        ),
        st.builds(
            lambda count, unit: {
                "type": "Wait",
                "inputs": {"interval": {"count": count, "unit": unit}},
            },
            _JSON,
            _STRINGS,
        ),
        st.builds(lambda status: {"type": "Terminate", "inputs": {"runStatus": status}}, _STRINGS),
        _JSON,
    )
)
_ACTION = st.fixed_dictionaries(
    {
        "type": _STRINGS,
        "runAfter": st.dictionaries(_KEYS, st.lists(_STRINGS, max_size=2), max_size=2),
    },
    optional={
        "inputs": _JSON,
        "actions": st.dictionaries(_KEYS, _JSON, max_size=2),
        "expression": _JSON,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(_KEYS, _ACTION, max_size=4) | st.dictionaries(_NAMES, _PLAUSIBLE, max_size=4),
    st.dictionaries(_NAMES, _JSON, max_size=2),
)
def test_load_raises_only_definition_errors_on_action_shaped_input(
    actions: dict[str, Any], parameters: dict[str, Any]
) -> None:
    definition = {
        "parameters": {name: {"type": "Object"} for name in parameters},
        "actions": copy.deepcopy(actions),
    }
    try:
        d = load(definition, {k: {"v": v} for k, v in parameters.items()})
    except DefinitionError:
        return
    # whatever loads exports, and loads again to the same definition
    exported = d.to_json()
    assert load(exported, {k: {"v": v} for k, v in parameters.items()}).to_json() == exported


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(_JSON, _ACTION, st.dictionaries(_KEYS, _JSON, max_size=4)),
    st.sampled_from(["json", "yaml", "mangled"]),
    st.sampled_from(["trigger", "action"]),
)
def test_load_webhook_raises_only_definition_errors(value: Any, form: str, kind: Any) -> None:
    import yaml

    from hooknb.http_model import normalize_request

    text = json.dumps(value, indent=2) if form != "yaml" else yaml.safe_dump(value)
    if form == "mangled":  # a syntax error somewhere, to be located
        text = text[: len(text) // 2] + ",}" + text[len(text) // 2 :]
    with contextlib.suppress(DefinitionError):
        load_webhook(text, kind, first_line=2, check_request=normalize_request)
