"""The tutorials in notebooks/ run headless, and do what they say they do.

Each notebook is executed by nbclient in a real IPython kernel against a real Jupyter server
with the hooknb extension (``HOOKNB_URL``/``HOOKNB_TOKEN``), with
``HOOKNB_TUTORIAL_AUTO_APPROVE=1`` so tutorial 2 approves through the demo service's API
instead of waiting for a person. Outputs are checked cell by cell (code cells carry a tag
naming them), the hub's API and the demo service are checked from outside, and the repository
copies must carry no outputs. ``hooknb lab`` is started as a real process too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

from hooknb.demo import DemoService
from hooknb.server.embedded import free_port

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TUTORIALS = ["01-webhook-trigger.ipynb", "02-approval-action.ipynb", "03-error-paths.ipynb"]


# --------------------------------------------------------------------------- helpers


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


async def execute(
    name: str, server_url: str, server_token: str, tmp_path: Path, demo_url: str | None
) -> nbformat.NotebookNode:
    """Run a tutorial top to bottom as a reader (or CI) would; fails on any cell error."""
    nb = read(name)
    env = dict(
        os.environ,
        HOOKNB_URL=server_url,
        HOOKNB_TOKEN=server_token,
        HOOKNB_TUTORIAL_AUTO_APPROVE="1",
    )
    env.pop("HOOKNB_DEMO_URL", None)
    if demo_url is not None:
        env["HOOKNB_DEMO_URL"] = demo_url
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    await client.async_execute(env=env)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{cell.metadata.get('tags')}: {output}"
            # A tutorial must not show a reader tracebacks, even logged ones.
            assert "Traceback" not in output.get("text", ""), output.get("text")
    return nb


def out(nb: nbformat.NotebookNode, tag: str) -> str:
    """The printed output of the code cell tagged ``tag``."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream")


def lines(nb: nbformat.NotebookNode, tag: str) -> list[str]:
    return out(nb, tag).splitlines()


def callback_url_re(server_url: str) -> str:
    """A regex for this server's callback URLs (it names itself localhost or 127.0.0.1)."""
    parts = urlsplit(server_url)
    return (
        rf"http://(localhost|127\.0\.0\.1):{parts.port}{re.escape(parts.path)}hooknb/callback/\S+"
    )


def widget_values(nb: nbformat.NotebookNode, css: str) -> list[str]:
    """Final ``value`` of every saved widget model carrying the DOM class ``css``."""
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [
        m["state"].get("value", "")
        for m in state.values()
        if css in m["state"].get("_dom_classes", [])
    ]


async def api(jp_fetch: Any, *path: str, **params: str) -> Any:
    return json.loads((await jp_fetch("hooknb", "api", *path, params=params)).body)


async def runs_of(jp_fetch: Any, workflow: str) -> list[dict[str, Any]]:
    return (await api(jp_fetch, "runs", workflow=workflow))["runs"]


# --------------------------------------------------------------------------- repository copies


@pytest.mark.parametrize("name", TUTORIALS)
def test_repository_copy_has_no_outputs(name: str) -> None:
    nb = read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a tutorial without code"
    for cell in code:
        assert cell.outputs == [], f"{cell.id} has outputs: clear them before committing"
        assert cell.execution_count is None, f"{cell.id} has an execution count"
        assert cell.metadata.get("tags"), f"{cell.id} has no tag (the tests find cells by tag)"
    assert "widgets" not in nb.metadata, "saved widget state: clear outputs before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_links_the_seed_steps(name: str) -> None:
    """Every tutorial quotes the Logic Apps page's Korean steps and links the page."""
    text = "\n".join(c.source for c in read(name).cells if c.cell_type == "markdown")
    assert "learn.microsoft.com/ko-kr/azure/connectors/connectors-native-webhook" in text
    assert re.search(r"[\uac00-\ud7a3]", text), "no Korean quote of the seed's steps"
    assert "웹후크" in text or "웹 후크" in text


# --------------------------------------------------------------------------- executed


async def test_tutorial_1_webhook_trigger(
    jp_fetch: Any, server_url: str, server_token: str, tmp_path: Path
) -> None:
    # No HOOKNB_DEMO_URL: the kernel starts its own demo service (ensure_demo_service).
    nb = await execute(TUTORIALS[0], server_url, server_token, tmp_path, demo_url=None)

    setup = out(nb, "setup")
    assert re.search(r"demo service: http://127\.0\.0\.1:\d+/", setup)
    assert f"{urlsplit(server_url).path}" in setup
    assert lines(nb, "enable")[0] == "trigger: Enabled"
    assert re.fullmatch(f"callback URL: {callback_url_re(server_url)}", lines(nb, "enable")[1])
    assert "POST /topics/orders/subscriptions -> 201" in out(nb, "subscribed")
    assert "subscriptions on 'orders' holding our callback URL: 1" in out(nb, "subscribed")
    published = lines(nb, "publish")
    assert [line.split(" {")[0] for line in published] == [
        "order 1001: callback answered 202",
        "order 1002: callback answered 202",
    ]
    assert "'status': 'Accepted'" in published[0]
    capability = lines(nb, "capability")
    assert capability[0].startswith("with the callback URL:   202 {'run': ")
    assert capability[1] == "with a forged signature: 404"
    runs = lines(nb, "runs")
    assert len(runs) == 3
    assert sorted(r.split(" ", 1)[1] for r in runs) == [
        "Succeeded {'order': 1001, 'total': 114.0}",
        "Succeeded {'order': 1002, 'total': 13.5}",
        "Succeeded {'order': 1003, 'total': 10.0}",
    ]
    outputs = out(nb, "outputs")
    assert "'x-shop': 'north'" in outputs
    assert "body:    {'id': 1003, 'item': 'paper cups', 'quantity': 50, 'price': 0.2}" in outputs
    assert "queries: {'source': 'notebook'}" in outputs
    assert lines(nb, "event-headers")[0] == "X-Demo-Topic:    orders"
    assert re.fullmatch(r"X-Demo-Event-Id: evt_[0-9a-f]+", lines(nb, "event-headers")[1])
    assert [line.rsplit("-> ", 1)[1] for line in lines(nb, "expressions")] == [
        "'paper cups'",
        "'notebook'",
        "'north'",
    ]
    assert lines(nb, "disable")[0] == "trigger: Disabled"
    assert lines(nb, "disable")[1].startswith("POST /topics/orders/unsubscribe -> 200 | body: ")
    assert lines(nb, "after") == [
        "subscribers that got the event: 0",
        "the callback URL now answers: 409",
    ]
    # The hub agrees: the trigger is disabled and ran three runs, all succeeded.
    workflow = await api(jp_fetch, "workflows", "new_orders")
    assert workflow["trigger"]["state"] == "Disabled"
    assert [c["purpose"] for c in workflow["trigger"]["calls"]] == ["subscribe", "unsubscribe"]
    runs_api = await runs_of(jp_fetch, "new_orders")
    assert sorted(r["status"] for r in runs_api) == ["Succeeded"] * 3
    # The workflow view saved its final state: Disabled.
    assert widget_values(nb, "hooknb-trigger-state") == ["Disabled"]


async def test_tutorial_2_approval_action(
    jp_fetch: Any,
    server_url: str,
    server_token: str,
    tmp_path: Path,
    demo: DemoService,
    http: httpx.AsyncClient,
) -> None:
    nb = await execute(TUTORIALS[1], server_url, server_token, tmp_path, demo_url=demo.url)

    assert f"demo service: {demo.url}" in out(nb, "setup")
    waiting = lines(nb, "waiting")
    assert waiting[0] == "run: Waiting · step Approval: Waiting"
    assert re.fullmatch(f"callback URL: {callback_url_re(server_url)}", waiting[1])
    assert re.fullmatch(rf"approval page: {re.escape(demo.url)}approvals/apr_\w+/view", waiting[2])
    assert out(nb, "auto-approve").strip() == "approved through the API: Approved"
    assert out(nb, "resumed").strip() == (
        "run: Succeeded {'order': 1042, 'decision': 'Approved', 'by': 'the tutorial robot'}"
    )
    outputs = lines(nb, "outputs")
    assert outputs[:2] == ["status code: 200", "X-Demo-Approval-Id matches: True"]
    assert "'decision': 'Approved'" in outputs[2]
    unsubscribed = lines(nb, "unsubscribed")
    assert re.fullmatch(r"DELETE /approvals/apr_\w+ -> 204", unsubscribed[0])
    assert unsubscribed[1:] == [
        "x-ms-client-tracking-id is the run id: True",
        "x-ms-workflow-operation-name: Approval",
    ]
    assert [line.split()[0] for line in lines(nb, "story")] == [
        "subscribe",
        "decision",
        "unsubscribe",
    ]
    # From the demo service's side: approved, the decision reached the hub (202), withdrawn
    # from its list by the unsubscribe call.
    (approval,) = (await http.get(demo.url + "approvals")).json()
    assert approval["status"] == "Approved"
    assert approval["callback"]["status"] == 202
    assert approval["unsubscribed"] is not None
    # From the hub's side: the run succeeded with the decision as its result.
    (run,) = await runs_of(jp_fetch, "approve_order")
    assert run["status"] == "Succeeded"
    assert run["result"] == {"order": 1042, "decision": "Approved", "by": "the tutorial robot"}
    # The live run view ended Succeeded, its step too (the saved widget state).
    (status,) = widget_values(nb, "hooknb-status")
    assert status.startswith("Succeeded")
    assert widget_values(nb, "hooknb-step-status") == ["Succeeded", "Succeeded"]


async def test_tutorial_3_error_paths(
    jp_fetch: Any,
    server_url: str,
    server_token: str,
    tmp_path: Path,
    demo: DemoService,
    http: httpx.AsyncClient,
) -> None:
    nb = await execute(TUTORIALS[2], server_url, server_token, tmp_path, demo_url=demo.url)

    assert lines(nb, "timeout-result") == [
        "with_fallback     run Succeeded · step TimedOut · result "
        "{'decision': 'escalated to a manager'}",
        "without_fallback  run TimedOut  · step TimedOut · result None",
        "the uncaught one's error: action 'Approval' timed out after 2 s waiting for its callback",
    ]
    assert lines(nb, "timeout-unsubscribed") == ["caught:   Withdrawn", "uncaught: Withdrawn"]
    assert lines(nb, "cancel") == [
        "before: Waiting · approval Pending",
        "after:  Cancelled · step Cancelled · approval Withdrawn",
    ]
    unsubscribes = lines(nb, "unsubscribe-log")
    assert len(unsubscribes) == 3
    assert all(re.fullmatch(r"DELETE /approvals/apr_\w+ -> 204 · run \w+", u) for u in unsubscribes)

    not_retried = lines(nb, "not-retried")
    assert not_retried[0] == "run: Failed · step: Failed"
    assert "HTTP 404 Not Found" in not_retried[1]
    assert not_retried[2:] == ["  attempt 1 at +0.0 s: 404"]

    retried = lines(nb, "retried")
    assert retried[0] == "run: Failed · step: Failed"
    assert "failed after 4 attempts: connection refused" in retried[1]
    attempts = retried[2:]
    assert len(attempts) == 4
    offsets = [float(re.findall(r"at \+([\d.]+) s", a)[0]) for a in attempts]
    assert offsets[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(0.3 <= gap <= 1.5 for gap in gaps), offsets  # fixed, PT0.5S apart
    assert all(a.endswith("connection refused") for a in attempts)

    # The demo service: three approvals asked, all withdrawn by unsubscribe calls.
    approvals = (await http.get(demo.url + "approvals")).json()
    assert sorted(a["status"] for a in approvals) == ["Withdrawn"] * 3
    # The hub: the final states of every workflow's run.
    expected = {
        "with_fallback": "Succeeded",
        "without_fallback": "TimedOut",
        "needs_approval": "Cancelled",
        "wrong_address": "Failed",
        "service_down": "Failed",
    }
    for workflow, status in expected.items():
        (run,) = await runs_of(jp_fetch, workflow)
        assert run["status"] == status, workflow


# --------------------------------------------------------------------------- hooknb lab


def test_lab_falls_back_to_a_free_demo_port() -> None:
    from hooknb.lab import DEFAULT_DEMO_PORT, _start_demo

    blocker = socket.socket()
    try:
        try:
            blocker.bind(("127.0.0.1", DEFAULT_DEMO_PORT))
            blocker.listen()
        except OSError:
            pass  # already busy: the same case
        demo = _start_demo(DemoService, None)
        try:
            assert demo.port != DEFAULT_DEMO_PORT
            assert httpx.get(demo.url + "health", trust_env=False).json() == {"ok": True}
        finally:
            demo.stop()
    finally:
        blocker.close()


def test_lab_command_line(tmp_path: Path) -> None:
    import argparse

    from hooknb.lab import _jupyter_command, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--notebook", "--port", "9999", "--no-browser", "--", "--ServerApp.ip=0.0.0.0"]
    )
    command = _jupyter_command("notebook", tmp_path, args)
    assert command[:3] == [sys.executable, "-m", "notebook"]
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert "--ServerApp.port=9999" in command
    assert "--no-browser" in command
    assert command[-1] == "--ServerApp.ip=0.0.0.0"
    assert ("--allow-root" in command) == (os.geteuid() == 0)
    defaults = parser.parse_args([])
    assert (defaults.port, defaults.demo_port, defaults.notebook) == (None, None, False)
    assert "--ServerApp.port=" not in " ".join(_jupyter_command("jupyterlab", tmp_path, defaults))


def test_hooknb_lab_serves_the_tutorials(tmp_path: Path) -> None:
    """``hooknb lab``: demo service + JupyterLab with the extension on notebooks/, both URLs
    printed, HOOKNB_DEMO_URL for kernels, and Ctrl-C stops both."""
    port, demo_port = free_port(), free_port()
    token = os.urandom(8).hex()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        HOOKNB_STORE=str(tmp_path / "hooknb.sqlite"),
        HOOKNB_URL="http://elsewhere.invalid/",  # must not reach the kernels
        PYTHONUNBUFFERED="1",
    )
    env.pop("HOOKNB_DEMO_URL", None)
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hooknb.lab",
                "--no-browser",
                "--port",
                str(port),
                "--demo-port",
                str(demo_port),
                "--",
                f"--IdentityProvider.token={token}",
                f"--HookNB.store_path={tmp_path / 'hooknb.sqlite'}",
                "--LabApp.news_url=None",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's
        )
    try:
        give_up = time.monotonic() + 60
        while "Press Ctrl-C twice" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < give_up, log_path.read_text(errors="replace")
            time.sleep(0.2)
        text = log_path.read_text(errors="replace")
        assert re.search(rf"JupyterLab\s+http://\S+:{port}/lab\?token={token}", text), text
        assert re.search(rf"demo service\s+http://127\.0\.0\.1:{demo_port}/", text), text
        assert str(NOTEBOOKS) in text
        assert "WARNING" not in text.split("hooknb lab is ready:")[1]

        demo_url = f"http://127.0.0.1:{demo_port}/"
        assert httpx.get(demo_url + "health", trust_env=False).json() == {"ok": True}
        base = f"http://127.0.0.1:{port}/"
        auth = {"Authorization": f"token {token}"}
        version = httpx.get(base + "hooknb/api/version", headers=auth, trust_env=False)
        assert version.status_code == 200
        listing = httpx.get(base + "api/contents", headers=auth, trust_env=False).json()
        names = {item["name"] for item in listing["content"]}
        assert set(TUTORIALS) <= names
        # Kernels inherit the server's environment: the demo URL, and no outside HOOKNB_URL.
        jupyter = [
            p for p in Path("/proc").glob("[0-9]*") if _parent(p) == proc.pid and _is_python(p)
        ]
        assert len(jupyter) == 1
        server_env = dict(
            item.split("=", 1)
            for item in (jupyter[0] / "environ").read_text().split("\0")
            if "=" in item
        )
        assert server_env["HOOKNB_DEMO_URL"] == demo_url
        assert "HOOKNB_URL" not in server_env

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            code = proc.wait(90)  # JupyterLab's own shutdown: slow on a loaded CI machine
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "hooknb lab did not stop on Ctrl-C:\n" + log_path.read_text(errors="replace")
            ) from None
        assert code == 0
        assert "hooknb lab: demo service stopped" in log_path.read_text(errors="replace")
        with pytest.raises(httpx.TransportError):
            httpx.get(demo_url + "health", trust_env=False, timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _parent(proc_dir: Path) -> int | None:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_python(proc_dir: Path) -> bool:
    try:
        return "jupyterlab" in (proc_dir / "cmdline").read_text()
    except OSError:
        return False


# --------------------------------------------------------------------------- run twice


#: What differs between two runs of a tutorial by nature: ids, URLs, times, durations.
_VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?"), "<iso time>"),
    (re.compile(r"https?://[^\s'\"]+"), "<url>"),
    (re.compile(r"\b(apr|sub|evt|cb)_[0-9a-f]+"), r"\1_<id>"),
    (re.compile(r"\b[0-9a-f]{20}\b"), "<run>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(\.\d+)?\b"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)? ?(ms|s|min|h)\b"), "<duration>"),
    (re.compile(r"'(seq|received|created|started|ended|at|deadline)': [\d.]+"), r"'\1': <n>"),
    (re.compile(r"\d{10}\.\d+"), "<epoch>"),
    (re.compile(r"[ \t]+"), " "),  # columns padded to a duration's width
]


def _normalized(nb: nbformat.NotebookNode, cells: range) -> list[tuple[str, str]]:
    shown = []
    for index in cells:
        cell = nb.cells[index]
        if cell.cell_type != "code":
            continue
        text = "".join(
            o.get("text", "") or o.get("data", {}).get("text/plain", "")
            for o in cell.outputs
            if o.output_type in ("stream", "execute_result")
        )
        # IPython's own note on a second %load_ext (the magics stay loaded): not hooknb's.
        text = text.replace(
            "The hooknb extension is already loaded. To reload it, use:\n  %reload_ext hooknb\n",
            "",
        )
        for pattern, replacement in _VARYING:
            text = pattern.sub(replacement, text)
        shown.append(((cell.metadata.get("tags") or ["?"])[0], text))
    return shown


@pytest.mark.parametrize(
    "name", [*TUTORIALS, "04-logic-apps-definitions.ipynb", "05-runs-outlive-the-kernel.ipynb"]
)
async def test_tutorial_run_twice_in_one_kernel_shows_the_same(
    name: str, server_url: str, server_token: str, tmp_path: Path
) -> None:
    """Run All twice in one kernel (a reader who runs it again): every cell prints the same
    the second time, but for ids, URLs and times (issue 12: tutorial 1 counted the first
    pass's runs and showed the first-ever run instead of the new one)."""
    nb = read(name)
    count = len(nb.cells)
    nb.cells = nb.cells + [nbformat.from_dict(json.loads(json.dumps(c))) for c in nb.cells]
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4  # the copies need no ids
    env = dict(
        os.environ,
        HOOKNB_URL=server_url,
        HOOKNB_TOKEN=server_token,
        HOOKNB_TUTORIAL_AUTO_APPROVE="1",
    )
    env.pop("HOOKNB_DEMO_URL", None)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    await client.async_execute(env=env)
    first = _normalized(nb, range(count))
    second = _normalized(nb, range(count, 2 * count))
    assert [tag for tag, _ in first] == [tag for tag, _ in second]
    differing = [(a, b) for a, b in zip(first, second, strict=True) if a != b]
    assert differing == [], "\n\n".join(f"{a[0]}:\n{a[1]}\n---\n{b[1]}" for a, b in differing)


# --------------------------------------------------------------------------- tutorial 5

TUTORIAL_5 = "05-runs-outlive-the-kernel.ipynb"


def test_tutorial_5_repository_copy_has_no_outputs() -> None:
    test_repository_copy_has_no_outputs(TUTORIAL_5)


async def test_tutorial_5_restart_in_the_middle(
    jp_fetch: Any, server_url: str, server_token: str, tmp_path: Path
) -> None:
    """What tutorial 5 tells the reader to do, headless: run it up to the waiting run, lose
    the kernel, then run it all in a new kernel: it takes the run over and finishes it, the
    recorded step not run again, the wait re-attached (same URL, one subscribe)."""
    demo = DemoService()
    demo.start()
    try:
        nb = read(TUTORIAL_5)
        tags = [(c.metadata.get("tags") or [""])[0] for c in nb.cells]
        first = read(TUTORIAL_5)
        first.cells = first.cells[: tags.index("waiting") + 1]
        env = dict(os.environ, HOOKNB_URL=server_url, HOOKNB_TOKEN=server_token)
        env["HOOKNB_DEMO_URL"] = demo.url
        env.pop("HOOKNB_TUTORIAL_AUTO_APPROVE", None)
        client = NotebookClient(
            first,
            kernel_name="python3",
            timeout=120,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        await client.async_execute(env=env)  # and the kernel is shut down: the run is left
        before = lines(first, "waiting")
        assert lines(first, "adopt") == ["runs taken over from a kernel that is gone: 0"]
        assert before[0].endswith("Waiting · replayed 0 time(s)")
        (waiting,) = [r for r in await runs_of(jp_fetch, "ship_order") if r["status"] == "Waiting"]
        for _ in range(100):
            waiting = await api(jp_fetch, "runs", waiting["id"])
            if waiting.get("kernel") == "gone":
                break
            await asyncio.sleep(0.1)
        assert waiting["kernel"] == "gone"

        nb = await execute(TUTORIAL_5, server_url, server_token, tmp_path, demo_url=demo.url)
        assert lines(nb, "adopt") == ["runs taken over from a kernel that is gone: 1"]
        after = lines(nb, "waiting")
        assert after[0] == before[0].replace("replayed 0 time(s)", "replayed 1 time(s)")
        assert after[1:] == before[1:]  # the same recorded time, the same callback URL
        assert lines(nb, "resumed") == ["run: Succeeded Approved"]
        assert lines(nb, "once") == ["subscribe calls for this approval: 1"]
        assert [r["status"] for r in await runs_of(jp_fetch, "ship_order")] == ["Succeeded"]
    finally:
        demo.stop()
