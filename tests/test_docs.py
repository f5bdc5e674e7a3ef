"""Every code block of README.md and notebooks/README.md runs as written (issue 12).

A newcomer copies them: so each block is run here exactly as the file has it, with what it
needs started first, as its own text says: the demo service by its command line on port 8765
(``hooknb demo-service --port 8765``), a Jupyter server with hooknb, a real kernel, an
approver who clicks Approve on the service (through its API) whenever an approval waits.
Blocks are found by their text; a block this test does not know fails it, so a new block
gets a way to run here. The few shell lines not run here are listed with the reason and the
test that runs their equivalent, and the list must match the files exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import Kernel, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "notebooks" / "README.md"]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BIN = Path(sys.executable).parent
DEMO_PORT = 8765  # the README's BASE

#: Shell lines not run here, and why (each is run in its equivalent elsewhere).
NOT_RUN = {
    'python3 -m venv .venv && .venv/bin/pip install -e ".[lab]" && .venv/bin/hooknb lab': (
        "a fresh venv from the registry and a server that runs until Ctrl-C: `bash .ci/run`"
        " installs the package the same way, tests/test_tutorials.py runs `hooknb lab`"
    ),
    "bash .ci/run": "the suite this test is part of",
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]"': "what `bash .ci/run` does",
    ".venv/bin/pytest -q": "the suite this test is part of",
}


def blocks() -> list[tuple[str, str, str]]:
    """(file name, language, text) of every fenced code block of the two READMEs."""
    found = []
    for path in DOCS:
        for match in BLOCK.finditer(path.read_text("utf-8")):
            found.append((str(path.relative_to(ROOT)), match.group(1), match.group(2)))
    return found


def kind(language: str, text: str) -> str:
    """Which test below runs a block."""
    if language == "bash":
        return "shell"
    if language == "text" and text.startswith("[ "):
        return "demo output"
    if language == "text" and text.startswith("%load_ext hooknb"):
        return "magics"
    if language == "python" and "hooknb.jupyterhub.configure(c)" in text:
        return "jupyterhub config"
    if language == "python" and "Workflow.from_definition(" in text:
        return "definition"
    if language == "python" and text.startswith("import hooknb"):
        return "notebook"
    if language == "json":
        return "not code"
    return "unknown"


def shell_lines(text: str) -> list[str]:
    """A bash block's commands, without their trailing comments, continuations joined."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


def test_every_block_is_run_here() -> None:
    kinds = [kind(language, text) for _, language, text in blocks()]
    assert "unknown" not in kinds, [
        b for b, k in zip(blocks(), kinds, strict=True) if k == "unknown"
    ]
    assert sorted(set(kinds)) == sorted(
        ["shell", "demo output", "magics", "jupyterhub config", "definition", "notebook"]
    )
    # The list of shell lines not run here names exactly the ones the files have.
    commands = {c for _, lang, text in blocks() if lang == "bash" for c in shell_lines(text)}
    assert set(NOT_RUN) <= commands, set(NOT_RUN) - commands


# --------------------------------------------------------------------------- shell blocks


def test_shell_lines_run_as_written(tmp_path: Path) -> None:
    """Every shell line but those in NOT_RUN, as written: `.venv` is this interpreter's
    environment, in a directory holding the repository's files."""
    work = tmp_path / "clone"
    work.mkdir()
    for name in ("hooknb", "tests", "bench", "notebooks", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(Path(sys.prefix))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("HOOKNB_URL", None)
    env.pop("HOOKNB_TOKEN", None)
    env.pop("HOOKNB_DEMO_URL", None)
    env.pop("HOOKNB_STORE", None)  # the tests' impossible default: the embedded hub's own
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")  # the embedded hub's store
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    ran = []
    for _, language, text in blocks():
        if language != "bash":
            continue
        for command in shell_lines(text):
            if command in NOT_RUN:
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            ran.append(command)
    assert any("ruff" in c for c in ran) and any("nbconvert" in c for c in ran), ran
    # The notebook README's nbconvert line writes where it says, the tutorial approved itself.
    executed = Path("/tmp/02-executed.ipynb").read_text("utf-8")
    assert "approved through the API: Approved" in executed


# --------------------------------------------------------------------------- hooknb demo


def _masked(line: str) -> str:
    """A line of `hooknb demo` with what changes from run to run masked."""
    line = re.sub(r"\[\s*[\d.]+s\]", "[t]", line)
    line = re.sub(r"https?://\S+", "<url>", line)
    line = re.sub(r"\b(sub|apr)_[0-9a-f]+", r"\1_<id>", line)
    line = re.sub(r"\b[0-9a-f]{20}\b", "<run>", line)
    return line.rstrip()


def test_hooknb_demo_prints_what_the_readme_shows() -> None:
    (sample,) = [text for _, lang, text in blocks() if kind(lang, text) == "demo output"]
    done = subprocess.run(
        [str(BIN / "hooknb"), "demo"], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = [_masked(line) for line in done.stdout.splitlines()]
    shown = [_masked(line) for line in sample.splitlines()]
    # The README shows the timeline's lines in order (the output goes on after them).
    position = 0
    for line in shown:
        assert line in printed[position:], f"not printed (in this order): {line!r}\n{done.stdout}"
        position = printed.index(line, position) + 1
    # It says nothing of opening the demo service's page: the service stops with the demo.
    assert "to see the pending approval" not in done.stdout


# --------------------------------------------------------------------------- the Python blocks


@pytest.fixture
def demo_service() -> Iterator[str]:
    """`hooknb demo-service --port 8765`, as the README's comment says, and an approver."""
    process = subprocess.Popen(
        [str(BIN / "hooknb"), "demo-service", "--port", str(DEMO_PORT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{DEMO_PORT}/"
    give_up = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "approvals", trust_env=False, timeout=2)
            break
        except httpx.TransportError:
            assert process.poll() is None, f"port {DEMO_PORT} taken? {process.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < give_up
            time.sleep(0.1)
    stop = threading.Event()

    def approver() -> None:  # a person who approves whatever waits, a moment later
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
            while not stop.wait(0.3):
                for approval in http.get("approvals").json():
                    if approval["status"] == "Pending":
                        http.post(
                            f"approvals/{approval['id']}/decision",
                            json={"decision": "approve", "by": "the docs test"},
                        )

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        stop.set()
        thread.join(5)
        process.terminate()
        process.wait(10)


APPROVAL_JSON = """{
  "definition": {
    "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"base": {"type": "String", "defaultValue": "https://prod.example.com/"}},
    "triggers": {"manual": {"type": "Request", "kind": "Http", "inputs": {}}},
    "actions": {
      "Approval": {
        "type": "HttpWebhook",
        "runAfter": {},
        "inputs": {
          "subscribe": {"method": "POST", "uri": "https://prod.example.com/approvals",
                        "body": {"callbackUrl": "@{listCallbackUrl()}", "subject": "from a file"}},
          "unsubscribe": {"method": "DELETE",
                          "uri": "https://prod.example.com/approvals/@{action().outputs.body.id}"}
        }
      }
    }
  }
}
"""


def test_python_and_magic_blocks_run_as_written(tmp_path: Path, demo_service: str) -> None:
    """The README's notebook, magics and definition blocks, in that order, in one kernel of a
    Jupyter server with hooknb (the definition block's own file, approval.json, is written
    where the kernel runs, as a reader's would be)."""
    (tmp_path / "approval.json").write_text(APPROVAL_JSON)
    server = ServerProcess(tmp_path / "server").start()
    kernel = Kernel(dict(server.env, HOOKNB_URL=server.url, HOOKNB_TOKEN=server.token))
    try:
        kernel.run(f"import os; os.chdir({str(tmp_path)!r})")
        found = {kind(lang, text): text for _, lang, text in blocks()}
        kernel.run(found["notebook"], timeout=120)
        # The block ends with orders.disable(); its run was approved by the "person".
        assert kernel.run("print(run.status, run.result['decision'], orders.enabled)").split() == [
            "Succeeded",
            "Approved",
            "False",
        ]
        cells = re.split(r"\n\n(?=%)", found["magics"])
        assert [c.split()[0] for c in cells] == ["%load_ext", "%%hooknb", "%%hooknb"]
        for cell in cells:
            kernel.run(cell, timeout=120)
        kernel.run(found["definition"], timeout=120)
        assert kernel.run("run.wait(60); print(run.status)").strip() == "Succeeded"
        assert kernel.run("print(sorted(wf.to_definition()))").strip() == (
            "['$schema', 'actions', 'contentVersion', 'outputs', 'parameters', 'triggers']"
        )
        runs = server.api("GET", "runs")["runs"]
        assert {r["status"] for r in runs} == {"Succeeded"}, runs
    finally:
        kernel.shutdown()
        server.stop()


def test_jupyterhub_block_runs_as_written() -> None:
    """`jupyterhub_config.py` lines: run with the ``c`` JupyterHub gives that file."""
    from traitlets.config import Config

    (text,) = [t for _, lang, t in blocks() if kind(lang, t) == "jupyterhub config"]
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"c": c})  # the README's own lines
    services = [s["name"] for s in c.JupyterHub.services]
    assert "hooknb" in services
