"""Users' servers taking callbacks themselves (no receiver) under a real JupyterHub with
``JupyterHub.public_url`` set: the right URLs through the proxy, each user's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import scenarios
from hubs import JupyterHub, no_signature_in, remember


def _config(hub: JupyterHub) -> str:
    return (
        f"c.JupyterHub.public_url = {hub.url!r}\n"
        "import hooknb.jupyterhub\n"
        "hooknb.jupyterhub.scrub_hub_log(c)\n"
    )


@pytest.fixture(scope="module")
def hub(chp: str, hub_dir: Path) -> Iterator[JupyterHub]:
    hub = JupyterHub(hub_dir, _config).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def tokens(hub: JupyterHub) -> dict[str, str]:
    return {user: hub.token(user) for user in ("alice", "bob")}


def test_each_user_gets_callback_urls_through_the_proxy(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    for user in ("alice", "bob"):
        hub.start_server(user)
        server = hub.server(user, tokens[user])
        status = server.api("GET", "status")
        # JUPYTERHUB_PUBLIC_URL already ends with /user/<name>/: used as given, not doubled.
        assert status["publicBase"] == f"{hub.url}user/{user}/"
        assert status["callbackBase"] == f"{hub.url}user/{user}/hooknb/callback/"
        assert status["receiver"] is None
        assert status["reachable"] is False and "loopback" in status["warning"]
        wait = server.waiting_run()
        url = remember(issued, wait["callbackUrl"])
        assert url.startswith(f"{hub.url}user/{user}/hooknb/callback/{wait['id']}?sig=")
        answer = scenarios.post(url, json={"by": user})
        assert answer.status_code == 202, answer.text
        assert server.api("GET", f"waits/{wait['id']}")["outcome"] == "Succeeded"
    # The page says it too.
    page = hub.server("alice", tokens["alice"]).request("GET", "hooknb/")
    assert page.status_code == 200
    assert "loopback, private or local-only address" in page.text


def test_bob_cannot_reach_alices_server(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    hub.start_server("alice")
    wait = hub.server("alice", tokens["alice"]).waiting_run("private")
    remember(issued, wait["callbackUrl"])
    as_bob = hub.server("alice", tokens["bob"])
    for path in ("hooknb/", "hooknb/api/runs", f"hooknb/api/waits/{wait['id']}"):
        response = as_bob.request("GET", path)
        assert response.status_code == 403, (path, response.status_code)
        assert "private" not in response.text


def test_a_stopped_servers_callbacks_need_the_receiver(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    """Without the receiver, a callback to a stopped server reaches the Hub, which refuses it
    (what the receiver is for); the Hub's log does not keep its signature."""
    hub.start_server("alice")
    wait = hub.server("alice", tokens["alice"]).waiting_run()
    url = remember(issued, wait["callbackUrl"])
    hub.stop_server("alice")
    answer = scenarios.post(url, json={})
    assert answer.status_code in (403, 424, 503)


def test_no_signature_in_any_log(hub: JupyterHub, issued: list[str]) -> None:
    hub.stop()
    log = hub.log()
    assert "/hooknb/callback/" in log and "sig=[secret]" in log
    no_signature_in(log, issued)
