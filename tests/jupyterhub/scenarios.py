"""Flows every hub-level receiver must pass, whatever its store (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from hubs import JupyterHub, remember


def post(url: str, **kwargs: Any) -> httpx.Response:
    """A request as an outside service makes it (no token, no cookie)."""
    return httpx.post(url, trust_env=False, timeout=60, **kwargs)


def receiver_api(hub: JupyterHub, token: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{hub.url}services/hooknb/api/{path}",
        params=params,
        headers={"Authorization": f"token {token}"} if token else {},
        trust_env=False,
        timeout=60,
    )


def until(predicate: Any, timeout: float, what: str) -> Any:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def each_user_gets_working_callback_urls(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    """alice and bob: callback URLs under the receiver, each resuming their own step."""
    for user in ("alice", "bob"):
        hub.start_server(user)
        server = hub.server(user, tokens[user])
        wait = server.waiting_run()
        url = remember(issued, wait["callbackUrl"])
        assert url.startswith(f"{hub.url}services/hooknb/callback/{user}/{wait['id']}?sig=")
        answer = post(url, json={"decision": "Approved", "by": user})
        # Delivered at once while the server runs: the sender gets the server's own answer.
        assert answer.status_code == 202, answer.text
        assert answer.json()["run"] == wait["run"]
        stored = server.api("GET", f"waits/{wait['id']}")
        assert stored["outcome"] == "Succeeded"
        body = json.loads(stored["callback"]["body"]["data"])
        assert body == {"decision": "Approved", "by": user}
        # A sender's retry: the same answer, nothing resumed twice.
        again = post(url, json={"decision": "Approved", "by": user})
        assert again.status_code == 202 and again.json().get("duplicate") is True


def a_callback_waits_for_a_stopped_server(
    hub: JupyterHub, token: str, issued: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """alice's server stops while a run waits; the callback is stored (202) and reaches her
    store once the server runs again. Returns the wait and the receiver's record."""
    hub.start_server("alice")
    alice = hub.server("alice", token)
    wait = alice.waiting_run()
    url = remember(issued, wait["callbackUrl"])
    hub.stop_server("alice")

    answer = post(url, content=b'{"decision": "Approved"}', headers={"X-Order": "1042"})
    assert answer.status_code == 202, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["queued"] is True
    listed = receiver_api(hub, token, "callbacks").json()["callbacks"]
    (record,) = [c for c in listed if c["callback_id"] == wait["id"]]
    assert record["state"] == "pending"

    hub.start_server("alice")
    # The server registers at start; the receiver forwards what waited for it.
    done = until(
        lambda: (
            (alice.api("GET", f"waits/{wait['id']}")["outcome"] == "Succeeded")
            and alice.api("GET", f"waits/{wait['id']}")
        ),
        60,
        "the stored callback to reach alice's store",
    )
    assert done["callback"]["body"]["data"] == '{"decision": "Approved"}'
    assert ["X-Order", "1042"] in done["callback"]["headers"]
    listed = receiver_api(hub, token, "callbacks").json()["callbacks"]
    (record,) = [c for c in listed if c["callback_id"] == wait["id"]]
    assert record["state"] == "delivered" and record["status"] == 202
    return wait, record


def senders_get_json_answers(hub: JupyterHub, url: str) -> None:
    """Refusals at the receiver: JSON with the right status, never the Hub's HTML."""
    base, _, sig = url.partition("?sig=")
    cases = {
        "bad signature": (post(f"{base}?sig={sig[::-1]}", json={}), 404),
        "no signature": (post(base, json={}), 404),
        "unknown user": (post(base.replace("/alice/", "/nobody/") + f"?sig={sig}", json={}), 404),
        "malformed id": (post(base.rsplit("/", 1)[0] + f"/x?sig={sig}", json={}), 404),
        "no id": (post(f"{hub.url}services/hooknb/callback/alice", json={}), 404),
        "GET": (httpx.get(url, trust_env=False, timeout=30), 405),
        "too large": (post(url, content=b"x" * (16 * 1024 * 1024 + 1)), 413),
        "unknown route": (post(f"{hub.url}services/hooknb/elsewhere", json={}), 404),
    }
    for case, (response, status) in cases.items():
        assert response.status_code == status, (case, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json"), case
        assert "error" in response.json(), case
