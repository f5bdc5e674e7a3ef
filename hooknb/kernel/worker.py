"""``python -m hooknb.kernel.worker``: the server's definitions worker.

The Jupyter server starts this process (see :mod:`hooknb.server.definitions_worker`) to run
the Logic Apps definitions handed to it, so that their runs need no kernel. It is a client of
the server like any kernel — ``HOOKNB_URL``, ``HOOKNB_TOKEN`` and its client id
``HOOKNB_CLIENT_ID`` come from the server — and runs each definition with the same engine
and interpreter a kernel uses (``host="kernel"``: here, this process is the kernel).

It loads every definition the server has, takes each workflow's lease (so the trigger's runs
come here) and adopts the runs left by a worker before it, replaying them from their
history. It loads again when the server says a definition changed, and gives back a workflow
the server no longer runs (its runs are left for a kernel that defines it). It exits when its
stdin closes: the server closes it to stop the worker, and a server that dies closes it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any

from .client import HubClient
from .discovery import HubAddress
from .workflow import Workflow

log = logging.getLogger("hooknb.worker")


class DefinitionsWorker:
    """Runs the server's definitions in this process."""

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub
        #: The workflows run here, and the version of each one's definition.
        self.workflows: dict[str, tuple[str, Workflow]] = {}
        self._reloading = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    async def reload(self) -> None:
        """Load what the server runs now: new and changed definitions, and give back the rest."""
        async with self._reloading:
            answer = await self.hub.request("GET", "hooknb/api/definitions")
            current = {item["name"]: item for item in answer["definitions"]}
            for name in set(self.workflows) - set(current):
                await self._give_back(name)
            for name, item in current.items():
                known = self.workflows.get(name)
                if known is not None and known[0] == item["version"]:
                    continue
                try:
                    await self._load(name, item)
                except Exception:  # one broken definition must not stop the others
                    log.exception("hooknb worker: cannot run workflow %r", name)

    async def _load(self, name: str, item: dict[str, Any]) -> None:
        document = item["document"]
        old = self.workflows.get(name)
        workflow = Workflow.from_definition(
            document["definition"],
            document.get("parameters") or {},
            name=name,
            hub=self.hub,
            endpoints=document.get("endpoints") or {},
            host="kernel",
        )
        self.workflows[name] = (item["version"], workflow)
        adopted = await workflow.adopt_async()
        if adopted.get("lease") not in ("granted", None):
            log.warning("hooknb worker: workflow %r: %s", name, adopted.get("error", adopted))
        if old is not None and old[1]._recurrence_task is not None:
            await old[1].disable_async()  # the new definition keeps the schedule from now on
        trigger = workflow.trigger
        if document.get("state") == "Enabled" and trigger and trigger.type != "HttpWebhook":
            await workflow._enable_local()  # a schedule the worker keeps
            workflow.observe(self._schedule_changed)
        log.info("hooknb worker: runs workflow %r (%d runs adopted)", name, len(adopted["runs"]))

    def _schedule_changed(self, workflow: Workflow, run: Any) -> None:
        # A schedule that ended by itself (its count or end time): the server, and the
        # kernels showing the workflow, learn the trigger is off.
        if (
            run is None
            and not workflow.enabled
            and self.workflows.get(workflow.name, (0, None))[1] is workflow
        ):
            task = asyncio.get_running_loop().create_task(
                self.hub.request("PUT", f"{workflow._path}/definition", workflow._document())
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _give_back(self, name: str) -> None:
        _, workflow = self.workflows.pop(name)
        if workflow._recurrence_task is not None:
            await workflow.disable_async()
        for run in workflow.runs:
            run._fence()  # it goes on in whichever kernel defines the workflow next
        self.hub.workflows.pop(name, None)
        await self.hub.request(
            "POST",
            f"{workflow._path}/release",
            {"client": self.hub.client_id},
        )
        log.info("hooknb worker: the server no longer runs workflow %r", name)


async def serve(stop: asyncio.Event) -> None:
    """Run the server's definitions until ``stop`` is set."""
    hub = HubClient(
        HubAddress(os.environ["HOOKNB_URL"], os.environ.get("HOOKNB_TOKEN", ""), "worker"),
        loop=asyncio.get_running_loop(),
        client_id=os.environ.get("HOOKNB_CLIENT_ID") or None,
    )
    worker = DefinitionsWorker(hub)
    loop = asyncio.get_running_loop()

    reloads: set[asyncio.Task[None]] = set()

    def changed(_event: dict[str, Any]) -> None:
        task = loop.create_task(worker.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    hub.notice_handlers["definitions"] = changed
    try:
        await hub.wait_connected()
        await worker.reload()
        await stop.wait()
    finally:
        await hub.aclose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[hooknb worker] %(levelname)s %(message)s")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()

    def watch_stdin() -> None:
        # The server holds our stdin: EOF means it stopped us or is gone.
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, name="hooknb-worker-stdin", daemon=True).start()
    try:
        loop.run_until_complete(serve(stop))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
