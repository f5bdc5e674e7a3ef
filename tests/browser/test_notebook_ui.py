"""Tutorial 2 in real JupyterLab 4 and Notebook 7, in headless Chromium: a person approves.

Everything is real and nothing is shortcut: the Jupyter app runs as a subprocess under a
non-default ``base_url`` (``/user/alice/``, as behind JupyterHub) with isolated Jupyter dirs;
its kernel finds the server by itself (no ``HOOKNB_URL``) and the demo service through
``HOOKNB_DEMO_URL``, as under ``hooknb lab``. The test runs the whole notebook with
Run → Run All Cells (so later cells are queued behind the one that waits), sees the run view
reach *Waiting*, opens the demo service's page in a second tab and clicks **Approve** there,
and then sees the very same widget turn *Succeeded* while the queued cells finish — nothing is
re-run. ``HOOKNB_TUTORIAL_AUTO_APPROVE`` is not set: the click is the only approval.

Widget DOM hooks (the contract with ``hooknb.kernel.widgets``): ``hooknb-run`` for a run view,
``hooknb-status`` for its status label. Text is only looked for inside output areas.
Screenshots of both states go to test-output/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from processes import ServerProcess

from hooknb.demo import DemoService

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIAL = "02-approval-action.ipynb"
BASE_URL = "/user/alice/"
FIRST_WAIT_MS = 60_000  # server + page + kernel start + the cells up to the waiting step
WAIT_MS = 30_000  # every other wait on the page
OUTPUTS = ".jp-Cell-outputWrapper"
APPS = {
    # app module -> the page that opens a notebook in it
    "jupyterlab": "lab/tree/{path}",
    "notebook": "notebooks/{path}",
}


class JupyterApp(ServerProcess):
    """``python -m jupyterlab`` or ``python -m notebook`` on a copy of the tutorials."""

    def __init__(self, module: str, root: Path, demo_url: str) -> None:
        notebooks = root / "notebooks"
        shutil.copytree(NOTEBOOKS, notebooks)
        # User settings of its own, so nothing of this machine's leaks in; no news toast
        # (it would cover part of the screenshots).
        settings = root / "settings"
        news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True)
        news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        super().__init__(
            root,
            base_url=BASE_URL,
            app=module,
            root_dir=notebooks,
            only_hooknb=False,
            extra_args=(f"--LabApp.workspaces_dir={root / 'workspaces'}",),
            env={"HOOKNB_DEMO_URL": demo_url, "JUPYTERLAB_SETTINGS_DIR": str(settings)},
        )
        self.module = module
        # The reader clicks Approve: nothing may approve by itself.
        self.env.pop("HOOKNB_TUTORIAL_AUTO_APPROVE", None)

    def kernel_state(self, notebook: str) -> str | None:
        """The execution state of the kernel of ``notebook``'s session, if it has one yet."""
        sessions = httpx.get(f"{self.url}api/sessions", headers=self.auth, trust_env=False).json()
        for session in sessions:
            if session["path"].endswith(notebook) and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def runs(self, workflow: str) -> list[dict[str, object]]:
        return self.api("GET", "runs", params={"workflow": workflow})["runs"]


@pytest.fixture
def service() -> Iterator[DemoService]:
    with DemoService() as demo:  # no auto-approve: the test clicks
        yield demo


@pytest.fixture(params=list(APPS))
def jupyter(
    request: pytest.FixtureRequest, tmp_path: Path, service: DemoService
) -> Iterator[JupyterApp]:
    app = JupyterApp(request.param, tmp_path, service.url).start()
    try:
        yield app
    finally:
        app.stop()


def wait_for_kernel(page: Page, jupyter: JupyterApp, notebook: str) -> None:
    """Until the notebook's kernel is started and idle, on the server and on the page.

    The page's execution indicator says "idle" before any kernel exists, and Run All then
    asks which kernel to start instead of running; so ask the server first.
    """
    give_up = time.monotonic() + FIRST_WAIT_MS / 1000
    while jupyter.kernel_state(notebook) != "idle":
        assert time.monotonic() < give_up, f"no idle kernel:\n{jupyter.log()}"
        time.sleep(0.2)
    indicator = page.locator(".jp-Notebook-ExecutionIndicator")
    expect(indicator).to_have_attribute("data-status", "idle", timeout=WAIT_MS)


def run_all(page: Page) -> None:
    """Run → Run All Cells, from the menu bar (JupyterLab and Notebook 7 share it)."""
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def output_text(page: Page, containing: str) -> str:
    """The text of the one output area that contains ``containing``."""
    output = page.locator(f"{OUTPUTS} .jp-OutputArea-output", has_text=containing)
    expect(output).to_have_count(1, timeout=WAIT_MS)
    return output.text_content() or ""  # rendered or not (windowed notebooks)


def shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"))


def test_clicking_approve_resumes_the_waiting_run_view(
    chromium: Browser, jupyter: JupyterApp, service: DemoService, screenshots: Path
) -> None:
    app = jupyter.module
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        path = APPS[app].format(path=TUTORIAL)
        page.goto(f"{jupyter.url}{path}?token={jupyter.token}")
        wait_for_kernel(page, jupyter, TUTORIAL)
        run_all(page)

        # The run view reaches Waiting: the step subscribed and the run paused.
        status = page.locator(f"{OUTPUTS} .hooknb-run .hooknb-status").first
        expect(status).to_have_text(re.compile(r"^Waiting"), timeout=FIRST_WAIT_MS)
        status.scroll_into_view_if_needed()
        waiting = status.element_handle()
        shot(page, screenshots, f"notebook-ui-{app}-1-waiting")

        # The kernel found this server by itself (no HOOKNB_URL), under its base_url.
        assert f"127.0.0.1:{jupyter.port}{BASE_URL}" in output_text(page, "hooknb hub:").replace(
            "localhost", "127.0.0.1"
        )
        # The cells after the waiting one are queued behind it, not run yet.
        assert "Waiting for you: click Approve" in output_text(page, "Waiting for you")
        found = re.search(r"approvals/(apr_\w+)/view", output_text(page, "approval page:"))
        assert found is not None
        approval_id = found.group(1)

        # Another tab: the demo service's page, as the approver sees it. Click Approve.
        approver = context.new_page()
        approver.goto(service.url)
        row = approver.locator(f'#pending tr[data-approval-id="{approval_id}"]')
        expect(row).to_have_count(1, timeout=WAIT_MS)
        row.locator('button[data-action="approve"]').click()
        decided = approver.locator(f'#decided tr[data-approval-id="{approval_id}"]')
        expect(decided).to_have_attribute("data-status", "Approved", timeout=WAIT_MS)
        shot(approver, screenshots, f"notebook-ui-{app}-2-demo-service-approved")

        # Back in the notebook: the same widget (the same DOM node) turns Succeeded by itself.
        page.bring_to_front()
        expect(status).to_have_text(re.compile(r"^Succeeded"), timeout=WAIT_MS)
        assert waiting is not None
        assert waiting.evaluate("node => node.isConnected")
        assert waiting.inner_text().startswith("Succeeded")
        # The queued cells ran on: the result carries the page's decision, and the step
        # unsubscribed (the last cell prints the service's view of the conversation).
        resumed = output_text(page, "run: Succeeded")
        assert "'decision': 'Approved', 'by': 'demo page'" in resumed
        assert "x-ms-client-tracking-id is the run id: True" in output_text(
            page, "x-ms-client-tracking-id"
        )
        story = output_text(page, "unsubscribe  DELETE")
        assert [line.split()[0] for line in story.splitlines()] == [
            "subscribe",
            "decision",
            "unsubscribe",
        ]
        status.scroll_into_view_if_needed()
        shot(page, screenshots, f"notebook-ui-{app}-3-succeeded")

        # One run, started once (Run All was clicked once and nothing was re-run).
        runs = jupyter.runs("approve_order")
        assert [run["status"] for run in runs] == ["Succeeded"]
        approval = httpx.get(f"{service.url}approvals/{approval_id}", trust_env=False).json()
        assert approval["status"] == "Approved"
        assert approval["decidedVia"] == "page"
        assert approval["unsubscribed"] is not None
    except BaseException:
        for n, tab in enumerate(context.pages):  # for whoever reads the CI artifacts
            shot(tab, screenshots, f"notebook-ui-{app}-failed-tab{n}")
        raise
    finally:
        context.close()


def _clipped(locator: Any) -> list[str]:
    """What is cut in the elements ``locator`` matches: text wider than its box, or a box
    that reaches past its output area's right edge (as a person sees it, at this width)."""
    return locator.evaluate_all(
        """nodes => nodes.flatMap(node => {
            const area = node.closest('.jp-OutputArea-output').getBoundingClientRect();
            const box = node.getBoundingClientRect();
            const problems = [];
            if (node.offsetParent === null) return problems;  // hidden: nothing to cut
            // An input scrolls its text (a long URL): only its box must fit.
            if (node.tagName !== 'INPUT' && node.scrollWidth > node.clientWidth + 1)
                problems.push(
                    `${node.className}: text ${node.scrollWidth}px in ${node.clientWidth}px`);
            if (box.right > area.right + 0.5)
                problems.push(`${node.className}: right edge ${box.right} past ${area.right}`);
            return problems;
        })"""
    )


STEP_PARTS = (
    ".hooknb-step-status, .hooknb-step-times, .hooknb-send-result, "
    ".hooknb-callback-url, .hooknb-callback-url input, .hooknb-step-send-test"
)


def test_send_test_callback_after_run_all(
    chromium: Browser, jupyter: JupyterApp, screenshots: Path
) -> None:
    """Tutorial 02's "No browser tab handy?" exactly: Run All, type a body in the box next to
    Send test callback while later cells keep the kernel busy, click it: the step resumes
    with that body. A refused body's error has a line of its own, nothing of the step row is
    cut at common widths (1280 and 1024 px), and the error goes when the step ends."""
    app = jupyter.module
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{jupyter.url}{APPS[app].format(path=TUTORIAL)}?token={jupyter.token}")
        wait_for_kernel(page, jupyter, TUTORIAL)
        run_all(page)
        run_view = page.locator(f"{OUTPUTS} .hooknb-run").first
        status = run_view.locator(".hooknb-status")
        expect(status).to_have_text(re.compile(r"^Waiting"), timeout=FIRST_WAIT_MS)
        # The cell that awaits the run is still going: the kernel is busy.
        expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "busy"
        )
        step = run_view.locator(".hooknb-step", has_text="Approval")
        box = step.locator(".hooknb-test-body textarea")
        send = step.locator(".hooknb-step-send-test")
        result = step.locator(".hooknb-send-result")

        # A body that is not JSON: refused in the view, on its own line, nothing cut.
        box.click()
        page.keyboard.press("Control+A")
        page.keyboard.type('{"decision": Approved}', delay=20)
        send.click()
        expect(result).to_contain_text("not sent: the body is not JSON", timeout=WAIT_MS)
        step.scroll_into_view_if_needed()
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 1000})
            step.scroll_into_view_if_needed()
            shot(page, screenshots, f"send-test-{app}-{width}-refused")
            assert _clipped(step.locator(STEP_PARTS)) == [], width
            line = step.locator(".hooknb-step-status").bounding_box()
            message = result.bounding_box()
            assert line is not None and message is not None
            assert message["y"] >= line["y"] + line["height"], "the error shares the status line"
        expect(step.locator(".hooknb-step-status")).to_have_text("Waiting")

        # What a person types, keystroke by keystroke, is what is sent.
        box.click()
        page.keyboard.press("Control+A")
        page.keyboard.type('{"decision": "Approved", "by": "me"}', delay=20)
        send.click()
        expect(status).to_have_text(re.compile(r"^Succeeded"), timeout=WAIT_MS)
        expect(step.locator(".hooknb-step-status")).to_have_text("Succeeded")
        expect(result).to_have_text("", timeout=WAIT_MS)  # the error went with the step
        assert "'decision': 'Approved', 'by': 'me'" in output_text(page, "run: Succeeded")
        step.scroll_into_view_if_needed()
        shot(page, screenshots, f"send-test-{app}-1024-succeeded")
        assert _clipped(step.locator(STEP_PARTS)) == []
        runs = jupyter.runs("approve_order")
        assert [run["status"] for run in runs] == ["Succeeded"]
    except BaseException:
        for n, tab in enumerate(context.pages):
            shot(tab, screenshots, f"send-test-{app}-failed-tab{n}")
        raise
    finally:
        context.close()


@pytest.mark.parametrize("jupyter", ["jupyterlab"], indirect=True)
def test_restart_kernel_and_run_all_continues_the_waiting_run(
    chromium: Browser, jupyter: JupyterApp, service: DemoService, screenshots: Path
) -> None:
    """Tutorial 05 as it says: Run All, a run waits; Kernel > Restart Kernel and Run All
    Cells; the new kernel adopts the run, and the workflow's live view shows it (marked
    adopted) continue to Succeeded when the approver clicks Approve."""
    tutorial = "05-runs-outlive-the-kernel.ipynb"
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{jupyter.url}{APPS['jupyterlab'].format(path=tutorial)}?token={jupyter.token}")
        wait_for_kernel(page, jupyter, tutorial)
        run_all(page)
        workflow = page.locator(f"{OUTPUTS} .hooknb-workflow").first
        status = workflow.locator(".hooknb-run .hooknb-status")
        expect(status).to_have_text(re.compile(r"^Waiting"), timeout=FIRST_WAIT_MS)
        waiting = output_text(page, "replayed 0 time(s)")
        (before,) = jupyter.runs("ship_order")
        assert before["status"] == "Waiting"

        # Kernel > Restart Kernel and Run All Cells..., confirmed.
        page.get_by_role("menuitem", name="Kernel", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel and Run All Cells")).click()
        page.locator(".jp-Dialog .jp-mod-accept").click()

        # The new kernel's workflow view lists the same run, adopted, still waiting.
        replayed = page.locator(f"{OUTPUTS} .hooknb-workflow .hooknb-run .hooknb-replayed")
        expect(replayed).to_contain_text("adopted after its kernel was gone", timeout=FIRST_WAIT_MS)
        status = page.locator(f"{OUTPUTS} .hooknb-workflow .hooknb-run .hooknb-status").first
        expect(status).to_have_text(re.compile(r"^Waiting"), timeout=WAIT_MS)
        again = output_text(page, "replayed 1 time(s)")
        assert again.splitlines()[1:] == waiting.splitlines()[1:]  # same time, same URL
        assert "runs taken over from a kernel that is gone: 1" in output_text(page, "taken over")
        # The recorded step shows its own times (milliseconds), not the replay's.
        recorded = page.locator(f"{OUTPUTS} .hooknb-workflow .hooknb-step", has_text="asked at")
        expect(recorded.locator(".hooknb-step-times")).to_have_text(re.compile(r"· \d+ ms$"))
        status.scroll_into_view_if_needed()
        shot(page, screenshots, "restart-run-all-1-adopted-waiting")

        # The approver clicks Approve on the service's page: the adopted run finishes.
        approver = context.new_page()
        approver.goto(service.url)
        row = approver.locator("#pending tr", has_text="Ship order 2001?")
        expect(row).to_have_count(1, timeout=WAIT_MS)
        row.locator('button[data-action="approve"]').click()
        page.bring_to_front()
        expect(status).to_have_text(re.compile(r"^Succeeded"), timeout=WAIT_MS)
        assert "run: Succeeded Approved" in output_text(page, "run: Succeeded")
        assert "subscribe calls for this approval: 1" in output_text(page, "subscribe calls")
        status.scroll_into_view_if_needed()
        shot(page, screenshots, "restart-run-all-2-succeeded")
        (after,) = jupyter.runs("ship_order")
        assert after["id"] == before["id"] and after["status"] == "Succeeded"
    except BaseException:
        for n, tab in enumerate(context.pages):
            shot(tab, screenshots, f"restart-run-all-failed-tab{n}")
        raise
    finally:
        context.close()
