"""What importing hooknb loads: each side only its own modules."""

from __future__ import annotations

import os
import subprocess
import sys


def imported_by(code: str) -> set[str]:
    """The modules ``python -X importtime -c code`` imports, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_defining_a_workflow_loads_no_server_code() -> None:
    loaded = imported_by("import hooknb; hooknb.workflow; hooknb.HttpWebhookTrigger")
    assert "hooknb.kernel.client" in loaded  # the probe works
    heavy = {"tornado", "jwt", "cryptography", "jupyter_server"}
    assert not {name for name in loaded if name.split(".")[0] in heavy}
    assert not {name for name in loaded if name.startswith("hooknb.server")}
