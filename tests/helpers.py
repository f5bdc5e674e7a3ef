"""Bounded waits shared by the tests (plain module: `conftest` names can collide)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError


async def until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Wait (bounded) for ``predicate()`` to become truthy; for observing other processes."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > give_up:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def started_runs(workflow: Any, count: int, timeout: float = 10) -> list[Any]:
    """Wait (bounded) until a workflow has started ``count`` runs in this process."""
    return await until(lambda: len(workflow.runs) >= count and workflow.runs, timeout, "runs")


async def waiting(run: Any, action: str, timeout: float = 10) -> Any:
    """Wait (bounded) until a run's step is Waiting; return the step."""
    return await until(
        lambda: (
            action in run.actions
            and run.actions[action].status == "Waiting"
            and run.actions[action]
        ),
        timeout,
        f"{action} to wait",
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Block (bounded) until ``predicate()`` is truthy; for sync tests watching processes."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def notebook(*cells: str) -> nbformat.NotebookNode:
    """A notebook of code cells."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def stdout(nb: nbformat.NotebookNode, index: int) -> str:
    """What cell ``index`` printed to stdout."""
    return "".join(
        o.get("text", "")
        for o in nb.cells[index].outputs
        if o.get("output_type") == "stream" and o.get("name", "stdout") == "stdout"
    )


async def api(jp_fetch: Any, *parts: str, method: str = "GET", body: Any = None, **kw: Any) -> Any:
    """``<base>hooknb/api/<parts>`` on the test server, JSON in and out (POST/PUT send ``{}``
    when no body is given)."""
    kwargs: dict[str, Any] = {"method": method, **kw}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = "{}"
    response = await jp_fetch("hooknb", "api", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def enabled_trigger(jp_fetch: Any, subscribe_uri: str, workflow: str = "t") -> str:
    """Define ``workflow`` with an HttpWebhook trigger subscribed at ``subscribe_uri`` (a
    subscriber that answers 2xx) and enable it: its callback URL."""
    await api(jp_fetch, "workflows", workflow, method="PUT", body={"client": "c", "trigger": "T"})
    record = await api(
        jp_fetch,
        "workflows",
        workflow,
        "trigger",
        method="PUT",
        body={"client": "c", "subscribe": {"method": "POST", "uri": subscribe_uri}},
    )
    return str(record["trigger"]["callbackUrl"])


async def api_error(jp_fetch: Any, *parts: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of an API call that must fail."""
    with pytest.raises(HTTPClientError) as info:
        await api(jp_fetch, *parts, **kw)
    body = info.value.response.body if info.value.response is not None else b"{}"
    return info.value.code, json.loads(body or b"{}")


def the_hub(jp_serverapp: Any) -> Any:
    """The test server's hooknb hub."""
    return jp_serverapp.web_app.settings["hooknb_hub"]
