"""Workflow functions: values that come from the run (the :class:`Context`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._functions_core import Invocation, arg_str, function, lookup


def _find(call: Invocation, table: Mapping[str, Any], name: str, what: str, arg: int = 0) -> Any:
    found, value = lookup(table, name)
    if found:
        return value
    if table:
        known = ", ".join(f"'{k}'" for k in list(table.keys())[:10])
        call.fail(f"there is no {what} named '{name}' (known: {known})", arg=arg)
    call.fail(f"there is no {what} named '{name}' (none are defined here)", arg=arg)


def _member(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return lookup(value, key)[1]
    return None


@function("listCallbackUrl", limit_result=False)
def _list_callback_url(call: Invocation, args: list[Any]) -> Any:
    url = call.context.callback_url
    if url is None:
        call.fail(
            "listCallbackUrl() is only available in HttpWebhook subscribe/unsubscribe inputs",
            prefix=False,
        )
    return url


def _trigger(call: Invocation) -> Mapping[str, Any]:
    trigger = call.context.trigger
    if trigger is None:
        call.fail("no trigger output is available here")
    return trigger


@function("trigger", limit_result=False)
def _trigger_fn(call: Invocation, args: list[Any]) -> Any:
    return _trigger(call)


@function("triggerOutputs", limit_result=False)
def _trigger_outputs(call: Invocation, args: list[Any]) -> Any:
    # Shorthand for trigger().outputs (functions reference).
    return _member(_trigger(call), "outputs")


@function("triggerBody", limit_result=False)
def _trigger_body(call: Invocation, args: list[Any]) -> Any:
    # Shorthand for trigger().outputs.body (functions reference).
    return _member(_member(_trigger(call), "outputs"), "body")


def _action(call: Invocation, args: list[Any]) -> Mapping[str, Any]:
    name = arg_str(call, args, 0)
    action = _find(call, call.context.actions, name, "action")
    if not isinstance(action, Mapping):
        call.fail(f"action '{name}' has no result object")
    return action


def _outputs(call: Invocation, args: list[Any]) -> Any:
    action = _action(call, args)
    found, outputs = lookup(action, "outputs")
    if not found:
        status = lookup(action, "status")[1]
        detail = f" (its status is '{status}')" if status else ""
        call.fail(f"action '{args[0]}' has no outputs{detail}")
    return outputs


@function("actions", 1, limit_result=False)
def _actions(call: Invocation, args: list[Any]) -> Any:
    return _action(call, args)


@function("outputs", 1, limit_result=False, aliases=("actionOutputs",))
def _outputs_fn(call: Invocation, args: list[Any]) -> Any:
    # actionOutputs() "resolves to outputs() in the Logic App Designer" (2021 reference).
    return _outputs(call, args)


@function("body", 1, limit_result=False, aliases=("actionBody",))
def _body(call: Invocation, args: list[Any]) -> Any:
    # Shorthand for actions('<actionName>').outputs.body (functions reference).
    return _member(_outputs(call, args), "body")


@function("action", limit_result=False)
def _current_action(call: Invocation, args: list[Any]) -> Any:
    action = call.context.action
    if action is None:
        call.fail(
            "action() is only available in a webhook action's unsubscribe inputs, "
            "trackedProperties and Until loop conditions",
            prefix=False,
        )
    return action


@function("parameters", 1, limit_result=False)
def _parameters(call: Invocation, args: list[Any]) -> Any:
    return _find(call, call.context.parameters, arg_str(call, args, 0), "workflow parameter")


@function("variables", 1, limit_result=False)
def _variables(call: Invocation, args: list[Any]) -> Any:
    return _find(call, call.context.variables, arg_str(call, args, 0), "variable")


@function("appsetting", 1, limit_result=False)
def _appsetting(call: Invocation, args: list[Any]) -> Any:
    # Standard logic apps only; not in the functions reference but common in real definitions.
    return _find(call, call.context.app_settings, arg_str(call, args, 0), "app setting")


@function("workflow", limit_result=False)
def _workflow(call: Invocation, args: list[Any]) -> Any:
    workflow = call.context.workflow
    if workflow is None:
        call.fail("no workflow details are available here")
    return workflow


@function("item", limit_result=False)
def _item(call: Invocation, args: list[Any]) -> Any:
    items = call.context.items
    if not items:
        call.fail("item() is only available inside a For_each loop", prefix=False)
    return list(items.values())[-1]


@function("items", 1, limit_result=False)
def _items(call: Invocation, args: list[Any]) -> Any:
    return _find(call, call.context.items, arg_str(call, args, 0), "enclosing For_each loop")


@function("iterationIndexes", 1, limit_result=False)
def _iteration_indexes(call: Invocation, args: list[Any]) -> Any:
    name = arg_str(call, args, 0)
    return _find(call, call.context.iteration_indexes, name, "enclosing Until loop")


@function("result", 1, limit_result=False)
def _result(call: Invocation, args: list[Any]) -> Any:
    name = arg_str(call, args, 0)
    return list(_find(call, call.context.results, name, "scoped action result"))
