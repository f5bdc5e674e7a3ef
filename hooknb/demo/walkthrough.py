"""``hooknb demo``: the whole webhook story in a terminal, on real HTTP over loopback.

1. The demo service and an embedded hub start (no Jupyter server, no browser).
2. Enabling the workflow subscribes its HTTP Webhook trigger to the service's ``orders`` topic.
3. The service publishes an order: it POSTs to the trigger's callback URL and a run starts.
4. The run reaches its HTTP Webhook action: it subscribes to the approvals service with a
   fresh callback URL and pauses.
5. The demo approver approves on the service, which POSTs the decision to that URL; the run
   resumes with the callback's body, and hooknb unsubscribes the step.
6. Disabling the workflow unsubscribes the trigger.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from .service import DemoService

if TYPE_CHECKING:
    from ..kernel.client import HubClient


class _Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def say(self, text: str, *more: str) -> None:
        with self.lock:
            print(f"[{time.monotonic() - self.t0:6.2f}s] {text}", file=self.out)
            for line in more:
                print(f"           {line}", file=self.out)
            self.out.flush()


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_walkthrough(
    *, approve_after: float = 1.5, reject: bool = False, out: TextIO | None = None
) -> int:
    """Run the demo; returns a process exit code (0 when the run ended as expected)."""
    import hooknb

    out = out or sys.stdout
    say = _Narrator(out).say
    print("hooknb demo: the Logic Apps HTTP Webhook trigger and action, in a terminal", file=out)
    with DemoService() as service, tempfile.TemporaryDirectory(prefix="hooknb-demo-") as tmp:
        store = str(Path(tmp) / "hooknb.sqlite")
        hub = hooknb.connect(embedded=True, store=store)
        try:
            say(f"demo service at {service.url}", f"embedded hub at {hub.url} (store {store})")
            return _story(hub, service, say, out, approve_after=approve_after, reject=reject)
        finally:
            hub.close()


def _story(
    hub: HubClient,
    service: DemoService,
    say: Callable[..., None],
    out: TextIO,
    *,
    approve_after: float,
    reject: bool,
) -> int:
    import hooknb

    base = service.url
    waiting = threading.Event()
    finished = threading.Event()
    seen: dict[str, str] = {}

    trigger = hooknb.HttpWebhookTrigger(
        subscribe={
            "method": "POST",
            "uri": f"{base}topics/orders/subscriptions",
            "body": {"callbackUrl": hooknb.CALLBACK_URL},
        },
        unsubscribe={
            "method": "POST",
            "uri": f"{base}topics/orders/unsubscribe",
            "body": {"callbackUrl": hooknb.CALLBACK_URL},
        },
    )

    @hooknb.workflow(trigger=trigger, hub=hub)
    async def orders(run: Any) -> dict[str, Any]:
        order = run.trigger.body
        reply = await run.webhook(
            "Approval",
            subscribe={
                "method": "POST",
                "uri": f"{base}approvals",
                "body": {
                    "callbackUrl": hooknb.CALLBACK_URL,
                    "subject": f"Order {order['id']}: {order['quantity']} x {order['item']}",
                    "requester": hooknb.expr("@{workflow().name}"),
                },
            },
            unsubscribe=lambda sub: {
                "method": "DELETE",
                "uri": f"{base}approvals/{sub.body['id']}",
            },
            timeout="PT5M",
        )
        return {"order": order["id"], "decision": reply.body["decision"]}

    def on_run_change(run: Any) -> None:
        for action in run.actions.values():
            key = f"{action.name}:{action.status}"
            if key in seen:
                continue
            seen[key] = action.status
            if action.status == "Running":
                say(f"step {action.name!r}: subscribing to the approvals service")
            elif action.status == "Waiting":
                # Nothing here tells the reader to open the service's page: it stops with
                # the demo, moments later (`hooknb demo-service` keeps one up).
                say(
                    f"step {action.name!r}: Waiting - the run is paused (nothing polls)",
                    f"callback URL {action.callback_url}",
                )
                waiting.set()
            else:
                body = action.outputs.body if action.outputs else action.error
                say(f"step {action.name!r}: {action.status} - callback body {_short(body)}")
        if run.done and "run:done" not in seen:
            seen["run:done"] = run.status
            say(f"run {run.status}: {_short(run.result if run.result is not None else run.error)}")
            finished.set()

    def on_workflow_change(workflow: Any, run: Any) -> None:
        if run is not None:
            say(f"run {run.id} started by the trigger callback, body {_short(run.trigger.body)}")
            run.observe(on_run_change)

    orders.observe(on_workflow_change)
    say("enabling workflow 'orders': its HTTP Webhook trigger subscribes to topic 'orders'")
    orders.enable()
    assert orders._record is not None  # enable() has the hub's record of the workflow
    subscription = orders._record["trigger"]["subscription"]
    say(
        f"trigger Enabled (the service answered {subscription['statusCode']}, "
        f"subscription {subscription['body']['id']})",
        f"trigger callback URL {orders.callback_url}",
    )

    order = {"id": 1042, "item": "espresso beans", "quantity": 12}
    say(f"the service publishes an event to topic 'orders': {_short(order)}")
    with httpx.Client(trust_env=False, timeout=30) as http:
        published = http.post(f"{base}topics/orders/events", json=order).json()
        delivery = published["deliveries"][0]
        say(f"the callback POST was answered {delivery['status']}: {_short(delivery['response'])}")

        if not waiting.wait(30):
            say("the run never reached its webhook step")
            return 1
        time.sleep(approve_after)
        approvals = http.get(f"{base}approvals").json()
        pending = [a for a in approvals if a["status"] == "Pending"]
        decision = "reject" if reject else "approve"
        say(f"the approver clicks {decision.title()} on {pending[0]['subject']!r}")
        http.post(
            f"{base}approvals/{pending[0]['id']}/decision",
            json={"decision": decision, "by": "hooknb demo", "comment": "looks fine"},
        )
        if not finished.wait(30):
            say("the run did not finish")
            return 1

        run = orders.runs[-1].wait(timeout=30)
        wait_id = run.actions["Approval"].wait_id
        assert wait_id is not None  # the step opened its wait
        unsubscribed = _await_unsubscribe(hub, wait_id)
        say(f"hooknb unsubscribed the finished step: {unsubscribed}")

        say("disabling workflow 'orders': the trigger unsubscribes")
        orders.disable()
        log = http.get(f"{base}requests").json()

    print("\nWhat the demo service received:", file=out)
    for entry in log:
        print(f"  {entry['method']:<6} {entry['path']:<42} {entry['kind']}", file=out)
    print("\nThe run's timeline:\n" + repr(run), file=out)
    expected = "Rejected" if reject else "Approved"
    return 0 if run.status == "Succeeded" and run.result["decision"] == expected else 1


def _await_unsubscribe(hub: Any, wait_id: str, timeout: float = 10.0) -> str:
    """The step's unsubscribe outcome, as the hub records it (it runs after the callback)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        wait = hub.call(hub.request("GET", f"hooknb/api/waits/{wait_id}"))
        calls = [c for c in wait["calls"] if c["purpose"] == "unsubscribe"]
        if calls and calls[-1]["state"] != "pending":
            call = calls[-1]
            status = (call["response"] or {}).get("statusCode")
            return (
                f"{call['request']['method']} {call['request']['uri']} -> {status or call['error']}"
            )
        time.sleep(0.05)
    return "still pending"
