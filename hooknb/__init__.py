"""hooknb: Azure Logic Apps-style HTTP Webhook triggers and actions for Jupyter.

```python
import hooknb

@hooknb.workflow(trigger=hooknb.HttpWebhookTrigger(subscribe={...}, unsubscribe={...}))
async def orders(run):
    reply = await run.webhook("Approval", subscribe={...}, timeout="PT10M")
    return reply.body

orders.enable()
```

The same package is imported by the Jupyter server (as a server extension) and by kernels (as
a library and IPython extension). Names are imported lazily so that neither side pays for the
other's modules.
"""

from __future__ import annotations

from typing import Any

import lazy_loader

from ._version import __version__ as __version__

# The public names and where each lives are listed once, in __init__.pyi: type checkers read it
# as this module's interface, and lazy_loader imports each module on first use from it, so the
# server and a kernel each load only their own side.
__getattr__, __dir__, _public = lazy_loader.attach_stub(__name__, __file__)
__all__ = sorted({*_public, "load_ipython_extension", "unload_ipython_extension"}, key=str.lower)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hooknb``: the ``%hooknb`` line magic and ``%%hooknb`` cell magic."""
    from .kernel.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hooknb``."""
    from .kernel.magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import HookNB

    return [{"module": "hooknb", "app": HookNB}]
