"""The run-history page in real headless Chromium (Playwright, sync API).

Everything is real: a ``jupyter server`` subprocess with hooknb in strict-auth mode under
``/user/alice/``, an IPython kernel running the workflows (``HOOKNB_URL``/``HOOKNB_TOKEN``),
the demo webhook service, and Debian's Chromium (Playwright never downloads a browser). The
browser logs in once per context with ``?token=`` and then uses the Jupyter session cookie,
so the page's POST/DELETE calls must carry the XSRF header to get through.

The tests are plain functions: the sync Playwright API stays out of pytest-jupyter's loop.
Screenshots go to test-output/screenshots/ (CI keeps them as artifacts).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import wait_for
from playwright.sync_api import Browser, Locator, Page, expect
from processes import Kernel, ServerProcess

from hooknb.demo import DemoService

#: Where the screenshots go (git-ignored; CI keeps them), as in the browser conftest.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"

WAIT_MS = 15_000  # the bound on every wait for the page (it polls every 1.5 s)
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_NAME = "<img src=x onerror=alert(3)>"

WORKFLOWS = """
import hooknb
BASE = __BASE__

def topic(name):
    body = {"callbackUrl": hooknb.CALLBACK_URL}
    return hooknb.HttpWebhookTrigger(
        subscribe={"method": "POST", "uri": BASE + f"topics/{name}/subscriptions", "body": body},
        unsubscribe={"method": "POST", "uri": BASE + f"topics/{name}/unsubscribe", "body": body})

@hooknb.workflow(trigger=topic("orders"))
async def orders(run):
    order = run.trigger.body
    reply = await run.webhook(
        "Approval",
        subscribe={"method": "POST", "uri": BASE + "approvals",
                   "body": {"callbackUrl": hooknb.CALLBACK_URL,
                            "subject": f"Order {order['id']}"}},
        unsubscribe=lambda sub: {"method": "DELETE", "uri": BASE + "approvals/" + sub.body["id"]},
        timeout="PT10M")
    return {"order": order["id"], "decision": reply.body["decision"]}

@hooknb.workflow(trigger=topic("alerts"))
async def alerts(run):
    return {"alert": run.trigger.body}

@hooknb.workflow(trigger=topic("signals"))
async def signals(run):
    return {"signal": run.trigger.body}

@hooknb.workflow()
async def echo(run):
    return {"echo": run.trigger.body}

@hooknb.workflow()
async def flaky(run):
    raise RuntimeError("flaky failed on purpose")

hostile = hooknb.workflow(name=__HOSTILE_NAME__)(echo.__wrapped__)

orders.enable()
alerts.enable()
signals.enable()
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def service() -> Iterator[DemoService]:
    with DemoService() as demo:
        yield demo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("page"), base_url="/user/alice/").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def kernel(server: ServerProcess, service: DemoService) -> Iterator[Kernel]:
    kernel = Kernel(dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token))
    try:
        kernel.run(
            WORKFLOWS.replace("__BASE__", repr(service.url)).replace(
                "__HOSTILE_NAME__", repr(HOSTILE_NAME)
            )
        )
        yield kernel
    finally:
        kernel.shutdown()


class Watched:
    """A logged-in page, recording what must never happen: dialogs (an injected alert would
    open one), uncaught script errors and console errors such as CSP violations."""

    def __init__(self, browser: Browser, server: ServerProcess, *, frozen: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", self._console)
        if frozen:
            # Timers stand still: the page shows its first snapshot until it acts itself.
            self.page.clock.install()
        self.page.goto(f"{server.url}hooknb/?token={server.token}")
        expect(self.page.locator('[data-role="live"]')).to_have_attribute(
            "data-live", "live", timeout=WAIT_MS
        )

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        # The browser logs every non-2xx fetch; the tests that cause one check the page instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def close(self) -> None:
        self.context.close()
        assert self.problems == []


@pytest.fixture
def watched(chromium: Browser, server: ServerProcess, kernel: Kernel) -> Iterator[Watched]:
    view = Watched(chromium, server)
    yield view
    view.close()


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


# --------------------------------------------------------------------------- helpers


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of the image
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def publish(service: DemoService, topic: str, body: dict[str, Any]) -> str:
    """Publish an event; the (one) subscribed workflow's run id."""
    answer = httpx.post(f"{service.url}topics/{topic}/events", json=body, trust_env=False)
    (delivery,) = answer.json()["deliveries"]
    assert delivery["status"] == 202, delivery
    return delivery["response"]["run"]


def run_status(server: ServerProcess, run_id: str) -> str:
    return server.api("GET", f"runs/{run_id}")["status"]


def approval_for(service: DemoService, subject: str) -> dict[str, Any]:
    """The demo service's approval with this subject, once the paused step has subscribed."""

    def find() -> dict[str, Any] | None:
        approvals = httpx.get(f"{service.url}approvals", trust_env=False).json()
        return next((a for a in approvals if a["subject"] == subject), None)

    return wait_for(find, what=f"the approval {subject!r}")


def unsubscribes(service: DemoService) -> list[dict[str, Any]]:
    return httpx.get(
        f"{service.url}requests", params={"kind": "unsubscribe"}, trust_env=False
    ).json()


def run_card(page: Page, run_id: str) -> Locator:
    return page.locator(f'[data-run="{run_id}"]')


def start(kernel: Kernel, workflow: str, body: str = "{}", **kwargs: str) -> str:
    """Start a manual run in the kernel, wait for it to end; its id."""
    extra = "".join(f", {k}={v}" for k, v in kwargs.items())
    return kernel.run(f"r = {workflow}.start(body={body}{extra}); r.wait(15); print(r.id)").strip()


# --------------------------------------------------------------------------- tests


def test_waiting_run_and_callbacks_update_live(page: Page, service: DemoService) -> None:
    page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads
    run_id = publish(service, "orders", {"id": 1042, "item": "espresso beans", "qty": 12})

    card = run_card(page, run_id)
    expect(card).to_have_attribute("data-run-status", "Waiting", timeout=WAIT_MS)
    step = card.locator('[data-step="Approval"]')
    expect(step).to_have_attribute("data-step-status", "Waiting", timeout=WAIT_MS)
    expect(step).to_contain_text("waiting for a callback")
    expect(step).to_contain_text("/user/alice/hooknb/callback/")
    trigger = page.locator('[data-callback-kind="trigger"]').filter(has_text=run_id)
    expect(trigger.locator("pre.body")).to_contain_text('"id": 1042')
    shot(page, "page-waiting")

    pending = approval_for(service, "Order 1042")
    httpx.post(
        f"{service.url}approvals/{pending['id']}/decision",
        json={"decision": "approve"},
        trust_env=False,
    ).raise_for_status()

    expect(card).to_have_attribute("data-run-status", "Succeeded", timeout=WAIT_MS)
    expect(step).to_have_attribute("data-step-status", "Succeeded", timeout=WAIT_MS)
    action = page.locator('[data-callback-kind="wait"]').filter(has_text=run_id)
    expect(action.locator("pre.body")).to_contain_text('"decision": "Approved"')
    card.locator("summary", has_text="Result").click()
    expect(card.locator('details[data-key$=":result"] pre')).to_contain_text(
        '"decision": "Approved"'
    )
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "page-succeeded")


def test_cancel_a_waiting_run(page: Page, service: DemoService, server: ServerProcess) -> None:
    run_id = publish(service, "orders", {"id": 2001})
    card = run_card(page, run_id)
    expect(card).to_have_attribute("data-run-status", "Waiting", timeout=WAIT_MS)
    pending = approval_for(service, "Order 2001")

    card.locator('[data-action="cancel"]').click()

    expect(card).to_have_attribute("data-run-status", "Cancelled", timeout=WAIT_MS)
    expect(card.locator('[data-action="cancel"]')).to_have_count(0)
    expect(card.locator('[data-step="Approval"]')).to_have_attribute(
        "data-step-status", "Cancelled"
    )
    # the server unsubscribed the cancelled step: the demo service withdrew the approval
    wait_for(
        lambda: any(
            u["method"] == "DELETE" and u["path"] == f"/approvals/{pending['id']}"
            for u in unsubscribes(service)
        ),
        what="the step's unsubscribe call",
    )
    assert (
        httpx.get(f"{service.url}approvals/{pending['id']}", trust_env=False).json()["status"]
        == "Withdrawn"
    )
    assert run_status(server, run_id) == "Cancelled"
    shot(page, "page-cancelled")


def test_disable_a_trigger(page: Page, service: DemoService, server: ServerProcess) -> None:
    workflow = page.locator('[data-workflow="alerts"]')
    expect(workflow).to_have_attribute("data-trigger-state", "Enabled", timeout=WAIT_MS)

    workflow.locator('[data-action="disable"]').click()

    expect(workflow).to_have_attribute("data-trigger-state", "Disabled", timeout=WAIT_MS)
    expect(workflow.locator('[data-action="disable"]')).to_have_count(0)
    expect(workflow.locator('[data-call-purpose="unsubscribe"]').first).to_contain_text("→ 200")
    calls = [u for u in unsubscribes(service) if u["path"] == "/topics/alerts/unsubscribe"]
    assert len(calls) == 1
    # the service has no subscriber left for the topic
    answer = httpx.post(f"{service.url}topics/alerts/events", json={}, trust_env=False).json()
    assert answer["deliveries"] == []
    assert server.api("GET", "workflows/alerts")["trigger"]["state"] == "Disabled"
    shot(page, "page-disabled")


def test_resubmit_makes_a_new_run(page: Page, service: DemoService, server: ServerProcess) -> None:
    run_id = publish(service, "signals", {"n": 5})
    card = run_card(page, run_id)
    expect(card).to_have_attribute("data-run-status", "Succeeded", timeout=WAIT_MS)

    card.locator('[data-action="resubmit"]').click()

    notice = page.locator('[data-role="message"]', has_text="Resubmitted")
    expect(notice).to_contain_text(f"run {run_id} as run", timeout=WAIT_MS)
    new_id = re.search(r"as run ([0-9a-f]+)", notice.inner_text()).group(1)
    assert new_id != run_id
    resubmitted = run_card(page, new_id)
    expect(resubmitted).to_have_attribute("data-run-status", "Succeeded", timeout=WAIT_MS)
    expect(resubmitted).to_contain_text("resubmitted")
    assert server.api("GET", f"runs/{new_id}")["result"] == {"signal": {"n": 5}}
    shot(page, "page-resubmitted")


def test_filters_by_workflow_and_status(page: Page, kernel: Kernel) -> None:
    start(kernel, "flaky")
    start(kernel, "echo", '{"n": 6}')
    expect(page.locator('[data-run][data-run-workflow="flaky"]')).not_to_have_count(
        0, timeout=WAIT_MS
    )

    page.select_option('[data-filter="workflow"]', "flaky")
    expect(page.locator('[data-run]:not([data-run-workflow="flaky"])')).to_have_count(
        0, timeout=WAIT_MS
    )
    expect(page.locator("[data-run]")).not_to_have_count(0)
    expect(page.locator("[data-workflow]")).to_have_count(1)
    expect(page.locator('[data-workflow="flaky"]')).to_be_visible()
    expect(page.locator("[data-callback]")).not_to_have_count(0)
    for callback in page.locator("[data-callback]").all():
        expect(callback.locator(".wf")).to_have_text("flaky")
    expect(page).to_have_url(re.compile(r"\?workflow=flaky$"))
    shot(page, "page-filter-workflow")

    page.select_option('[data-filter="workflow"]', "")
    page.select_option('[data-filter="status"]', "Failed")
    expect(page.locator('[data-run]:not([data-run-status="Failed"])')).to_have_count(
        0, timeout=WAIT_MS
    )
    expect(page.locator('[data-run][data-run-status="Failed"]')).not_to_have_count(0)
    expect(page.locator('[data-run][data-run-workflow="flaky"]').first).to_contain_text(
        "flaky failed on purpose"
    )
    shot(page, "page-filter-status")

    page.locator('[data-role="clear"]').click()
    expect(page.locator('[data-run][data-run-status="Succeeded"]')).not_to_have_count(
        0, timeout=WAIT_MS
    )
    expect(page.locator('[data-filter="status"]')).to_have_value("")


def test_hostile_content_renders_as_text(page: Page, kernel: Kernel) -> None:
    run_id = start(
        kernel, "hostile", f"{{'html': {HOSTILE!r}}}", headers=f"{{'X-Evil': {HOSTILE!r}}}"
    )
    card = run_card(page, run_id)
    expect(card).to_have_attribute("data-run-status", "Succeeded", timeout=WAIT_MS)
    expect(card.locator(".wf")).to_have_text(HOSTILE_NAME)
    expect(page.locator("[data-workflow] h3", has_text=HOSTILE_NAME)).to_be_visible()

    callback = page.locator("[data-callback]").filter(has_text=run_id)
    expect(callback.locator("pre.body")).to_contain_text(HOSTILE)
    callback.locator("summary", has_text="Headers").click()
    expect(callback.locator("table.pairs tr", has_text="X-Evil")).to_contain_text(HOSTILE)
    assert page.locator("img").count() == 0  # text, never an element
    shot(page, "page-hostile")


def test_api_errors_show_in_the_page(
    chromium: Browser, server: ServerProcess, service: DemoService, kernel: Kernel
) -> None:
    run_id = publish(service, "orders", {"id": 3001})
    wait_for(lambda: run_status(server, run_id) == "Waiting", what="the run to wait")
    view = Watched(chromium, server, frozen=True)
    page = view.page
    try:
        card = run_card(page, run_id)
        expect(card).to_have_attribute("data-run-status", "Waiting")
        # the run ends behind the (frozen) page's back; its Cancel button is now stale
        pending = approval_for(service, "Order 3001")
        httpx.post(
            f"{service.url}approvals/{pending['id']}/decision",
            json={"decision": "reject"},
            trust_env=False,
        ).raise_for_status()
        wait_for(lambda: run_status(server, run_id) == "Succeeded", what="the run to end")

        card.locator('[data-action="cancel"]').click()

        error = page.locator('[data-role="message"][data-kind="error"]')
        expect(error).to_contain_text("HTTP 409", timeout=WAIT_MS)
        expect(error).to_contain_text("has already ended (Succeeded)")
        expect(card).to_have_attribute("data-run-status", "Succeeded", timeout=WAIT_MS)
        shot(page, "page-error", full_page=False)  # the notice, over the top of the page

        # without the _xsrf cookie, the session's POST is refused; the page says why
        view.context.clear_cookies(name="_xsrf")
        error.locator("button.close").click()
        card.locator('[data-action="resubmit"]').click()
        expect(error).to_contain_text("HTTP 403", timeout=WAIT_MS)
        expect(error).to_contain_text("XSRF")
    finally:
        view.close()


def test_delete_a_workflow_after_confirming(
    watched: Watched, service: DemoService, server: ServerProcess, kernel: Kernel
) -> None:
    """The Delete button asks first, then unsubscribes the trigger and takes the workflow off
    the page; its trigger history was shown, and its callback URL answers 404 after."""
    page = watched.page
    kernel.run("@hooknb.workflow(trigger=topic('parcels'))\nasync def parcels(run):\n    return 1")
    kernel.run("parcels.enable()")
    url = kernel.run("print(parcels.callback_url)").strip()
    publish(service, "parcels", {"n": 1})
    workflow = page.locator('[data-workflow="parcels"]')
    expect(workflow).to_have_attribute("data-trigger-state", "Enabled", timeout=WAIT_MS)
    history = workflow.locator("summary", has_text="Trigger history")
    expect(history).to_be_visible(timeout=WAIT_MS)
    history.click()
    expect(workflow.locator('[data-role="trigger-history"] li').first).to_contain_text("Fired")
    shot(page, "page-trigger-history")

    asked: list[str] = []
    page.remove_listener("dialog", watched._dialog)

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    workflow.locator('[data-action="delete"]').click()
    expect(page.locator('[data-role="message"]', has_text="deleted")).to_be_visible(timeout=WAIT_MS)
    expect(workflow).to_have_count(0, timeout=WAIT_MS)
    assert asked and "Delete workflow parcels?" in asked[0]
    assert [u for u in unsubscribes(service) if u["path"] == "/topics/parcels/unsubscribe"]
    assert httpx.post(url, json={}, trust_env=False).status_code == 404
    page.remove_listener("dialog", confirm)
    page.on("dialog", watched._dialog)
