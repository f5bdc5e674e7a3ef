"""The hub-level receiver on one machine (its default store, SQLite), with real JupyterHub,
configurable-http-proxy, SimpleLocalProcessSpawner and kernels started by users' servers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import scenarios
from hubs import JupyterHub, no_signature_in, receiver_config, remember
from subscribers import Recorder

USERS = ("alice", "bob", "carol")


def _config(hub: JupyterHub) -> str:
    db = f"sqlite:///{hub.root / 'receiver.sqlite'}"
    # No periodic sweep here: every delivery is either immediate or set off by the server's
    # registration when it starts (the PostgreSQL module runs the sweep).
    return receiver_config(hub, db, sweep_interval=3600) + (
        # carol's server keeps itself alive while runs wait; alice's and bob's (the default)
        # do not. Activity reaches the Hub every second here (300 s by default).
        "c.Spawner.environment['HOOKNB_KEEP_ALIVE'] = "
        "lambda spawner: '1' if spawner.user.name == 'carol' else ''\n"
        "c.Spawner.environment['HOOKNB_KEEP_ALIVE_INTERVAL'] = '0.5'\n"
        "c.Spawner.environment['JUPYTERHUB_ACTIVITY_INTERVAL'] = '1'\n"
    )


@pytest.fixture(scope="module")
def hub(chp: str, hub_dir: Path) -> Iterator[JupyterHub]:
    hub = JupyterHub(hub_dir, _config, users=USERS).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def tokens(hub: JupyterHub) -> dict[str, str]:
    return {user: hub.token(user) for user in USERS}


def test_callback_urls_point_at_the_receiver(hub: JupyterHub, tokens: dict[str, str]) -> None:
    hub.start_server("alice")
    status = hub.server("alice", tokens["alice"]).api("GET", "status")
    assert status["callbackBase"] == f"{hub.url}services/hooknb/callback/alice/"
    assert status["receiver"]["registered"] is True
    assert status["receiver"]["error"] is None
    # The test hub listens on loopback: the status says outside services cannot reach it.
    assert status["reachable"] is False
    assert "127.0.0.1 is a loopback" in status["warning"]


def test_each_user_gets_working_callback_urls(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    scenarios.each_user_gets_working_callback_urls(hub, tokens, issued)


def test_bob_cannot_reach_alices_page_api_runs_or_callbacks(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    hub.start_server("alice")
    hub.start_server("bob")
    alice = hub.server("alice", tokens["alice"])
    wait = alice.waiting_run("secret-plans")
    remember(issued, wait["callbackUrl"])
    as_bob = hub.server("alice", tokens["bob"])
    for method, path in [
        ("GET", "hooknb/"),
        ("GET", "hooknb/api/status"),
        ("GET", "hooknb/api/runs"),
        ("GET", f"hooknb/api/runs/{wait['run']}"),
        ("GET", "hooknb/api/callbacks"),
        ("GET", f"hooknb/api/waits/{wait['id']}"),
        ("POST", f"hooknb/api/runs/{wait['run']}/cancel"),
        ("POST", "hooknb/api/forwarded"),
    ]:
        response = as_bob.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "secret-plans" not in response.text

    # The receiver's API shows each user their own callbacks only.
    post = scenarios.post(wait["callbackUrl"], json={"plan": "A"})
    assert post.status_code == 202
    bobs = scenarios.receiver_api(hub, tokens["bob"], "callbacks").json()
    assert bobs["user"] == "bob"
    assert wait["id"] not in json.dumps(bobs)
    alices = scenarios.receiver_api(hub, tokens["alice"], "callbacks").json()
    assert any(c["callback_id"] == wait["id"] for c in alices["callbacks"])
    # A token is required, and only users' tokens are served.
    assert scenarios.receiver_api(hub, "", "callbacks").status_code == 403
    assert scenarios.receiver_api(hub, hub.admin_token, "callbacks").status_code == 403

    # bob's server can register keys for bob only (its token says who it is)...
    bob_status = hub.server("bob", tokens["bob"]).api("GET", "status")
    assert bob_status["callbackBase"].endswith("/callback/bob/")
    # ...so a URL signed by bob's server does not verify under alice's name.
    bob_wait = hub.server("bob", tokens["bob"]).waiting_run()
    remember(issued, bob_wait["callbackUrl"])
    forged = bob_wait["callbackUrl"].replace("/callback/bob/", "/callback/alice/")
    assert scenarios.post(forged, json={}).status_code == 404


def test_a_callback_for_a_stopped_server_is_kept_and_delivered(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    """A kernel of alice's server opens a webhook step (the subscriber gets the callback URL),
    the server stops (the culler, an admin), the service calls back (202, stored by the
    receiver), the server starts again, and the callback reaches alice's store."""
    hub.start_server("alice")
    alice = hub.server("alice", tokens["alice"])
    with Recorder() as subscriber:
        output = alice.execute(
            "import hooknb\n"
            "@hooknb.workflow\n"
            "async def approvals(run):\n"
            "    reply = await run.webhook('Approval', subscribe={'method': 'POST',\n"
            f"        'uri': '{subscriber.url}approvals',\n"
            "        'body': {'callbackUrl': hooknb.CALLBACK_URL}}, timeout='PT1H')\n"
            "    return reply.body\n"
            "run = approvals.start(body={'order': 1042})\n"
            "print(run.id)\n"
        )
        # The last line: before it, the kernel may say it adopted the runs of `approvals` that
        # earlier tests left waiting (made through the API by a kernel that is gone).
        run_id = output.strip().splitlines()[-1]
        subscribe = scenarios.until(lambda: subscriber.requests, 60, "the subscribe call")[0]
    url = remember(issued, subscribe["body"]["callbackUrl"])
    assert url.startswith(f"{hub.url}services/hooknb/callback/alice/")
    (wait,) = alice.api("GET", "waits", params={"run": run_id})["waits"]
    assert wait["state"] == "waiting"

    hub.stop_server("alice")  # its kernel goes with it
    # Without the receiver this is where senders got the Hub's HTML 403.
    answer = scenarios.post(url, json={"decision": "Approved"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["queued"] is True

    hub.start_server("alice")
    done = scenarios.until(
        lambda: alice.api("GET", f"waits/{wait['id']}")["outcome"] == "Succeeded", 60, "delivery"
    )
    assert done
    stored = alice.api("GET", f"waits/{wait['id']}")
    assert json.loads(stored["callback"]["body"]["data"]) == {"decision": "Approved"}
    status = alice.api("GET", "status")
    # The resume event waits for the kernel that ran the step, which the stop ended.
    assert status["pendingDeliveries"] >= 1
    assert alice.api("GET", f"runs/{run_id}")["status"] == "Waiting"
    # A new kernel re-running the defining cell adopts the run, replays it (the step
    # re-attaches to its wait: no second subscribe) and finishes it with the stored callback.
    alice.execute(
        "import hooknb\n"
        "@hooknb.workflow\n"
        "async def approvals(run):\n"
        "    reply = await run.webhook('Approval', subscribe={'method': 'POST',\n"
        "        'uri': 'http://127.0.0.1:9/approvals',\n"
        "        'body': {'callbackUrl': hooknb.CALLBACK_URL}}, timeout='PT1H')\n"
        "    return reply.body\n"
    )
    scenarios.until(
        lambda: alice.api("GET", f"runs/{run_id}")["status"] == "Succeeded", 60, "adoption"
    )
    assert alice.api("GET", f"runs/{run_id}")["result"] == {"decision": "Approved"}


def test_a_regenerated_key_reaches_the_receiver(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    """As in Logic Apps, URLs signed with a regenerated key stop working: at the receiver too,
    which learns the new key from the server (no restart, no admin)."""
    hub.start_server("alice")
    alice = hub.server("alice", tokens["alice"])
    old = alice.waiting_run("rotation")
    remember(issued, old["callbackUrl"])
    before = alice.api("GET", "status")["receiver"]["lastRegistered"]
    alice.api("POST", "keys/primary/regenerate")
    scenarios.until(
        lambda: (alice.api("GET", "status")["receiver"]["lastRegistered"] or 0) > before,
        30,
        "registration of the new key",
    )
    assert scenarios.post(old["callbackUrl"], json={}).status_code == 404
    new = alice.waiting_run("rotation")
    assert scenarios.post(remember(issued, new["callbackUrl"]), json={}).status_code == 202


def test_senders_get_json_answers(
    hub: JupyterHub, tokens: dict[str, str], issued: list[str]
) -> None:
    hub.start_server("alice")
    wait = hub.server("alice", tokens["alice"]).waiting_run()
    scenarios.senders_get_json_answers(hub, remember(issued, wait["callbackUrl"]))


def test_waiting_runs_keep_a_server_alive_only_when_the_admin_says_so(
    hub: JupyterHub, tokens: dict[str, str]
) -> None:
    """Idle culling: jupyterhub-idle-culler stops servers whose Hub `last_activity` is old.
    bob's waiting run leaves his server's activity where it was; carol's keeps hers fresh."""
    for user in ("bob", "carol"):
        hub.start_server(user)
        hub.server(user, tokens[user]).waiting_run("culling")
    opened = time.time()
    time.sleep(4)

    def last_activity(user: str) -> float:
        stamp = hub.server_model(user)["last_activity"]
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    assert last_activity("carol") > opened + 1.5
    assert last_activity("bob") < opened + 1


def test_no_signature_in_any_log(hub: JupyterHub, issued: list[str]) -> None:
    """The Hub, the proxy, the receiver and every user's server write to this one log."""
    hub.stop()
    log = hub.log()
    assert "/services/hooknb/callback/alice/" in log  # callbacks were logged...
    assert "sig=[secret]" in log
    assert issued
    no_signature_in(log, issued)  # ...without their signatures
