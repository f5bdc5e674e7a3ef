"""The built wheel enables the server extension by itself (hatchling shared-data)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_server_extension_config(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("hooknb-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        config = [n for n in names if n.endswith("etc/jupyter/jupyter_server_config.d/hooknb.json")]
        assert len(config) == 1 and ".data/data/" in config[0]
        assert json.loads(archive.read(config[0])) == {
            "ServerApp": {"jpserver_extensions": {"hooknb": True}}
        }
        assert "hooknb/server/app.py" in names and "hooknb/kernel/run.py" in names
        # the run-history page inlines these: they must ship in the wheel
        assert "hooknb/server/static/page.js" in names
        assert "hooknb/server/static/page.css" in names
