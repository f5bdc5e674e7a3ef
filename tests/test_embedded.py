"""Embedded mode: plain Python processes (no Jupyter server) and the `hooknb demo` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from processes import isolated_env

SCRIPT = """
import sys
import hooknb
from hooknb.demo import DemoService

with DemoService(auto_approve_after=0.2) as service:
    hub = hooknb.connect()
    assert hub.embedded is not None, hub

    @hooknb.workflow
    async def expense(run):
        reply = await run.webhook(
            "Approval",
            subscribe={
                "method": "POST",
                "uri": service.url + "approvals",
                "body": {
                    "callbackUrl": hooknb.CALLBACK_URL,
                    "subject": hooknb.expr(
                        "@{concat('Expense ', string(triggerBody()['amount']))}"
                    ),
                },
            },
            unsubscribe=lambda sub: {
                "method": "DELETE", "uri": service.url + "approvals/" + sub.body["id"]
            },
            timeout="PT1M")
        return reply.body["decision"]

    run = expense.start(body={"amount": 42})   # returns at once; the run goes on in the background
    print("started", run.status)
    run.wait(timeout=30)
    print("ended", run.status, run.result)
    import httpx
    print("subject", httpx.get(service.url + "approvals", trust_env=False).json()[0]["subject"])
    print("runs on the hub", len(hub.call(hub.request("GET", "hooknb/api/runs"))["runs"]))
    hub.close()
    import gc
    print("frozen", gc.get_freeze_count())
"""


def test_a_plain_python_process_runs_workflows_on_an_embedded_hub(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, HOOKNB_STORE=str(tmp_path / "embedded.sqlite"))
    for attempt in (1, 2):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "started Running"
        assert lines[1] == "ended Succeeded Approved"
        assert lines[2] == "subject Expense 42"
        # the store outlives the process: the second process sees both runs
        assert lines[3] == f"runs on the hub {attempt}"
        # The embedded hub is a guest here: the script's objects are not frozen out of full
        # garbage collections, as a Jupyter server's startup objects are.
        assert lines[4] == "frozen 0"


def test_hooknb_demo_command(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "hooknb", "demo", "--approve-after", "0.2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in (
        "trigger Enabled",
        "started by the trigger callback",
        "step 'Approval': Waiting",
        "step 'Approval': Succeeded",
        'run Succeeded: {"order": 1042, "decision": "Approved"}',
        "hooknb unsubscribed the finished step: DELETE",
        "POST   /topics/orders/unsubscribe",
    ):
        assert expected in out, expected
    rejected = subprocess.run(
        [sys.executable, "-m", "hooknb", "demo", "--approve-after", "0", "--reject"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    assert '"decision": "Rejected"' in rejected.stdout


def test_demo_service_command(tmp_path: Path) -> None:
    import httpx

    from hooknb.server.embedded import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hooknb", "demo-service", "--port", str(port)],
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in banner
        assert httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).json() == {"ok": True}
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


OPEN_A_WAIT = """
import hooknb, sys
hub = hooknb.connect()

@hooknb.workflow
async def approve(run):
    reply = await run.webhook(
        "Approval",
        subscribe={"method": "POST", "uri": sys.argv[1] + "subscribe",
                   "body": {"callbackUrl": hooknb.CALLBACK_URL}},
        unsubscribe={"method": "POST", "uri": sys.argv[1] + "unsubscribe"},
        timeout="PT1H")
    return reply.body

run = approve.start(body={})
import asyncio, time
give_up = time.monotonic() + 30
while run.actions.get("Approval") is None or run.actions["Approval"].status != "Waiting":
    assert time.monotonic() < give_up, run
    time.sleep(0.02)
print(run.actions["Approval"].callback_url, flush=True)
hub.close()
"""

SERVE = """
import hooknb, sys, time
hub = hooknb.connect()
print(hub.url, flush=True)
sys.stdin.read()  # until the test closes our stdin
hub.close()
"""


def test_the_embedded_hub_keeps_its_address_so_callback_urls_work_in_the_next_process(
    tmp_path: Path,
) -> None:
    import httpx
    from subscribers import Recorder

    env = isolated_env(tmp_path, HOOKNB_STORE=str(tmp_path / "script.sqlite"))
    with Recorder() as service:
        done = subprocess.run(
            [sys.executable, "-c", OPEN_A_WAIT, service.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        callback_url = done.stdout.strip().splitlines()[-1]
        # The script has ended: nothing listens there now.
        try:
            httpx.post(callback_url, json={"ok": True}, trust_env=False, timeout=5)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the first process's hub still answers")
        # The next run of a script on that store listens there again.
        serving = subprocess.Popen(
            [sys.executable, "-c", SERVE],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert serving.stdout is not None
            url = serving.stdout.readline().strip()
            assert callback_url.startswith(url + "hooknb/callback/")
            answer = httpx.post(callback_url, json={"ok": True}, trust_env=False, timeout=10)
            assert answer.status_code == 202, answer.text
        finally:
            assert serving.stdin is not None
            serving.stdin.close()
            assert serving.wait(60) == 0


def test_a_taken_embedded_address_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    env = isolated_env(tmp_path, HOOKNB_STORE=str(tmp_path / "script.sqlite"))
    first = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    url = first.stdout.readline().strip()
    assert first.stdin is not None
    first.stdin.close()
    assert first.wait(60) == 0
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        done = subprocess.run(
            [sys.executable, "-c", SERVE],
            env=env,
            input="",
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr and "HOOKNB_EMBEDDED_PORT" in done.stderr


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    """Jupyter Server serves on when an extension fails to load: the script got the server's
    HTML 404 page at its first hub request. It gets an error naming the store instead."""
    (tmp_path / "a-directory").mkdir()
    cases = {
        str(tmp_path / "a-file" / "hooknb.sqlite"): "cannot keep its store",  # parent a file
        str(tmp_path / "a-directory"): "server extension did not load",  # a directory
    }
    (tmp_path / "a-file").write_text("")
    for store, said in cases.items():
        done = subprocess.run(
            [sys.executable, "-c", "import hooknb; hooknb.connect()"],
            env=isolated_env(tmp_path, HOOKNB_STORE=store),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("RuntimeError") and said in last and store in last, last


# The same workflow as OPEN_A_WAIT's (a script run again), then what a script does to finish
# the runs it adopts.
ADOPTING_SCRIPT = (
    OPEN_A_WAIT.split("run = approve.start")[0]
    + """
answer = approve.adopt()          # a script waits until its workflows adopted their runs
print("adopted", len(answer["runs"]), flush=True)
for run in approve.runs:
    run.wait(timeout=60)
    print("ended", run.status, run.result, flush=True)
"""
)


def test_a_script_run_again_adopts_the_runs_its_first_run_left(tmp_path: Path) -> None:
    import httpx
    from subscribers import Recorder

    env = isolated_env(tmp_path, HOOKNB_STORE=str(tmp_path / "script.sqlite"))
    with Recorder() as service:
        first = subprocess.run(
            [sys.executable, "-c", OPEN_A_WAIT, service.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.returncode == 0, first.stderr
        callback_url = first.stdout.strip().splitlines()[-1]

        second = subprocess.Popen(
            [sys.executable, "-c", ADOPTING_SCRIPT, service.url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert second.stdout is not None
            told = second.stdout.readline().strip()
            assert told.startswith("hooknb: adopted 1 unfinished run of 'approve'"), told
            assert second.stdout.readline().strip() == "adopted 1"
            # The URL the first process handed out resumes the run in the second one.
            answer = httpx.post(callback_url, json={"decision": "yes"}, trust_env=False, timeout=10)
            assert answer.status_code == 202, answer.text
            assert second.stdout.readline().strip() == "ended Succeeded {'decision': 'yes'}"
            assert second.wait(60) == 0
        finally:
            if second.poll() is None:
                second.kill()
        assert len(service.calls("POST", "/subscribe")) == 1


def test_a_notebook_executed_again_without_a_server_adopts_its_runs(tmp_path: Path) -> None:
    """papermill/nbclient re-runs: a kernel with no Jupyter server runs an embedded hub on
    the same store, so the second execution adopts the run the first one left waiting."""
    import httpx
    import nbformat
    from helpers import notebook
    from nbclient import NotebookClient
    from subscribers import Recorder

    env = isolated_env(tmp_path, HOOKNB_STORE=str(tmp_path / "nb.sqlite"))
    with Recorder() as service:
        define = OPEN_A_WAIT.split("run = approve.start")[0].replace(
            "sys.argv[1]", repr(service.url)
        )
        first = notebook(
            define,
            "run = approve.start(body={})\n"
            "import asyncio\n"
            "step = lambda: run.actions.get('Approval')\n"
            "while step() is None or step().status != 'Waiting':\n"
            "    await asyncio.sleep(0.02)\n"
            "print(step().callback_url)",
        )
        NotebookClient(first, timeout=120, kernel_name="python3").execute(env=env)
        callback_url = first.cells[1].outputs[0]["text"].strip()

        second = notebook(
            define,
            "answer = approve.adopt()\nprint(answer['runs'])",
            "(run,) = approve.runs\nrun.wait(timeout=60)\nprint(run.status, run.result)",
        )
        import threading

        def approve_when_listening() -> None:
            for _ in range(600):
                try:
                    answer = httpx.post(callback_url, json={"ok": 1}, trust_env=False, timeout=5)
                except httpx.TransportError:
                    import time

                    time.sleep(0.1)
                    continue
                assert answer.status_code == 202, answer.text
                return

        poster = threading.Thread(target=approve_when_listening, daemon=True)
        poster.start()
        NotebookClient(second, timeout=120, kernel_name="python3").execute(env=env)
        poster.join(30)
        texts = ["".join(o.get("text", "") for o in cell.outputs) for cell in second.cells]
        assert len(eval(texts[1])) == 1  # the run adopted (the ids the hub answered)
        assert texts[2].strip() == "Succeeded {'ok': 1}"
        assert len(service.calls("POST", "/subscribe")) == 1
        nbformat.validate(second)
