"""The run-history page as a person reads it, in headless Chromium: what waits comes first,
filters apply to everything shown, workflows whose kernel is gone are folded apart with when
they were last seen, a run no kernel runs says so and can be ended in bulk, and runs page by
run id.

Real parts: a ``jupyter server`` subprocess, two IPython kernels (one shut down on purpose,
leaving a run that waits with no kernel), the demo webhook service, Debian's Chromium.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from processes import Kernel, ServerProcess

from hooknb.demo import DemoService

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
WAIT_MS = 15_000

APPROVAL = """
import hooknb
BASE = {base!r}

@hooknb.workflow
async def {name}(run):
    reply = await run.webhook(
        "Approval",
        subscribe={{"method": "POST", "uri": BASE + "approvals",
                   "body": {{"callbackUrl": hooknb.CALLBACK_URL, "subject": {name!r}}}}},
        unsubscribe=lambda sub: {{"method": "DELETE",
                                  "uri": BASE + f"approvals/{{sub.body['id']}}"}})
    return reply.body

@hooknb.workflow
async def {name}_quick(run):
    return run.trigger.body

waiting = {name}.start(body={{}})
for n in range({quick}):
    {name}_quick.start(body={{"n": n}}).wait(15)
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ServerProcess, Kernel]]:
    """A server where kernel `gone` left a waiting run of `approve` and 3 finished runs of
    `approve_quick`, and the live kernel runs `live` (one run waiting, 60 finished)."""
    with DemoService() as service:
        server = ServerProcess(tmp_path).start()
        env = dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token)
        gone = Kernel(env)
        live = Kernel(env)
        try:
            gone.run(APPROVAL.format(base=service.url, name="approve", quick=3))
            live.run(APPROVAL.format(base=service.url, name="live", quick=60))
            give_up = time.monotonic() + 30
            while len(server.api("GET", "runs", params={"status": "Waiting"})["runs"]) < 2:
                assert time.monotonic() < give_up, "the runs never waited"
                time.sleep(0.1)
            gone.shutdown()
            while server.api("GET", "workflows/approve")["kernel"] != "gone":
                assert time.monotonic() < give_up, "the kernel never went"
                time.sleep(0.1)
            yield server, live
        finally:
            live.shutdown()
            server.stop()


def top(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["y"]


def test_what_waits_comes_first_and_filters_apply_to_everything(
    chromium: Browser, setup: tuple[ServerProcess, Kernel]
) -> None:
    server, _live = setup
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{server.url}hooknb/?token={server.token}")
        open_runs = page.locator('[data-role="open-runs"] article.run')
        expect(open_runs).to_have_count(2, timeout=WAIT_MS)
        # Open runs, then the history, then the workflows: a waiting run is on the first screen.
        assert top(page, '[data-role="open-runs"]') < top(page, '[data-role="runs"]')
        assert top(page, '[data-role="runs"]') < top(page, '[data-role="workflows"]')
        assert top(page, '[data-role="open-runs"] article.run') < 900

        # The run whose kernel is gone says so, and how to continue.
        orphan = open_runs.filter(has_text="no kernel")
        expect(orphan).to_have_count(1)
        expect(orphan.locator('[data-role="no-kernel"]')).to_have_text(
            "waiting, no kernel: run the cell that defines approve to continue "
            "(or cancel it: no kernel is needed)"
        )
        expect(orphan).to_have_attribute("data-run-workflow", "approve")

        # Workflows whose kernel is gone: apart and folded, with when they were last seen.
        gone = page.locator('[data-role="gone"]')
        expect(gone).to_be_visible()
        expect(gone).not_to_have_attribute("open", "")
        expect(page.locator('[data-role="gone-summary"]')).to_have_text(
            re.compile(r"^2 workflows whose kernel is gone \(last seen \d\d:\d\d:\d\d\)$")
        )
        live_cards = page.locator('[data-role="workflows"] article.workflow')
        expect(live_cards).to_have_count(2)
        assert sorted(live_cards.evaluate_all("cs => cs.map(c => c.dataset.workflow)")) == [
            "live",
            "live_quick",
        ]
        page.screenshot(path=str(SCREENSHOTS / "page-layout-1-open-first.png"))  # first screen
        page.locator('[data-role="gone-summary"]').click()
        gone_cards = page.locator('[data-role="gone-workflows"] article.workflow')
        expect(gone_cards).to_have_count(2)
        expect(gone_cards.first).to_contain_text("gone, last seen")

        # A status filter applies to everything: no open runs, only workflows with such runs,
        # only the callbacks that started the runs shown.
        page.select_option('[data-filter="status"]', "Succeeded")
        expect(page.locator('[data-role="open-runs"]')).to_have_text("Nothing running or waiting.")
        expect(live_cards).to_have_count(1, timeout=WAIT_MS)
        expect(live_cards.first).to_have_attribute("data-workflow", "live_quick")
        expect(gone_cards).to_have_count(1)
        expect(gone_cards.first).to_have_attribute("data-workflow", "approve_quick")
        statuses = page.locator('[data-role="runs"] article.run').evaluate_all(
            "cs => cs.map(c => c.dataset.runStatus)"
        )
        assert statuses and set(statuses) == {"Succeeded"}
        expect(page.locator('[data-role="orphans"]')).to_be_empty()

        # Paging by run id: 65 runs, 50 a page.
        page.select_option('[data-filter="status"]', "")
        history = page.locator('[data-role="runs"] article.run')
        # 50 newest; the 2 open runs (the oldest) are shown once, above, not again on page 2
        expect(history).to_have_count(50, timeout=WAIT_MS)
        first_page = history.evaluate_all("cs => cs.map(c => c.dataset.run)")
        page.locator('[data-role="more"]').click()
        expect(page.locator('[data-role="newest"]')).to_be_visible(timeout=WAIT_MS)
        expect(history).to_have_count(13, timeout=WAIT_MS)
        older = history.evaluate_all("cs => cs.map(c => c.dataset.run)")
        assert max(older) < min(first_page) and not set(older) & set(first_page)
        expect(page.locator('[data-role="more"]')).to_be_hidden()
        page.locator('[data-role="newest"]').click()
        expect(history).to_have_count(50, timeout=WAIT_MS)

        # End every run whose kernel is gone, from the page; the live kernel's run goes on.
        orphan_id = orphan.get_attribute("data-run")
        button = page.locator('[data-role="orphans"] button[data-action="cancel-orphaned"]')
        expect(button).to_have_text("End 1 run whose kernel is gone")
        button.click()
        expect(page.locator('[data-role="message"][data-kind="ok"]')).to_contain_text(
            "Ended 1 run(s) whose kernel was gone.", timeout=WAIT_MS
        )
        expect(open_runs).to_have_count(1, timeout=WAIT_MS)
        expect(open_runs.first).to_have_attribute("data-run-workflow", "live")
        assert server.api("GET", f"runs/{orphan_id}")["status"] == "Cancelled"
        expect(page.locator('[data-role="orphans"]')).to_be_empty()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / "page-layout-2-orphans-ended.png"))
    finally:
        context.close()
