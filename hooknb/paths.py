"""Where hooknb keeps things on this machine, for both sides: a kernel decides from it whether an
embedded hub may have runs to adopt, and the embedded hub stores its state there."""

from __future__ import annotations

import os
from pathlib import Path


def default_embedded_store() -> str:
    """The embedded hub's store: ``HOOKNB_STORE``, else
    ``<jupyter data dir>/hooknb/embedded.sqlite``."""
    from jupyter_core.paths import jupyter_data_dir  # cheap (unlike jupyter_server)

    return os.environ.get("HOOKNB_STORE") or str(
        Path(jupyter_data_dir()) / "hooknb" / "embedded.sqlite"
    )
