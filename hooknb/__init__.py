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

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .kernel.client import Hub, connect
    from .kernel.engine import Action, Run, RunTerminated, Workflow, workflow
    from .kernel.errors import ActionFailed, ActionTimedOut, HookNBError, HubRequestError
    from .kernel.outputs import Outputs
    from .kernel.registry import handler
    from .kernel.triggers import HttpWebhookTrigger, RecurrenceTrigger, RequestTrigger
    from .wdl.definitions import DefinitionError

__all__ = [
    "Action",
    "ActionFailed",
    "ActionTimedOut",
    "DefinitionError",
    "HookNBError",
    "HttpWebhookTrigger",
    "Hub",
    "HubRequestError",
    "Outputs",
    "RecurrenceTrigger",
    "RequestTrigger",
    "Run",
    "RunTerminated",
    "Workflow",
    "__version__",
    "connect",
    "handler",
    "load_ipython_extension",
    "unload_ipython_extension",
    "workflow",
]

_LAZY = {
    "connect": "hooknb.kernel.client",
    "Hub": "hooknb.kernel.client",
    "workflow": "hooknb.kernel.engine",
    "Workflow": "hooknb.kernel.engine",
    "Run": "hooknb.kernel.engine",
    "Action": "hooknb.kernel.engine",
    "HttpWebhookTrigger": "hooknb.kernel.triggers",
    "Outputs": "hooknb.kernel.outputs",
    "HookNBError": "hooknb.kernel.errors",
    "HubRequestError": "hooknb.kernel.errors",
    "ActionFailed": "hooknb.kernel.errors",
    "ActionTimedOut": "hooknb.kernel.errors",
    "handler": "hooknb.kernel.registry",
    "RequestTrigger": "hooknb.kernel.triggers",
    "RecurrenceTrigger": "hooknb.kernel.triggers",
    "RunTerminated": "hooknb.kernel.engine",
    "DefinitionError": "hooknb.wdl.definitions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hooknb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
