"""Shared fixtures: a real Jupyter server with hooknb (strict auth), the demo service, a hub.

Every Jupyter server in this suite runs with ``ServerApp.allow_unauthenticated_access=False``
(as the JupyterLab extension template does): a route that forgot its auth decorator fails.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# Tests and the processes they start must talk to loopback only, never through a proxy.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
# Defining a workflow where an embedded hub's store exists starts that hub to adopt its runs:
# the tests' default store is one that cannot exist (a developer's own, from `hooknb demo`,
# must not be opened by the tests); a test that needs an embedded hub names its store.
os.environ["HOOKNB_STORE"] = "/dev/null/hooknb-tests-have-no-default-store.sqlite"


@pytest.fixture
def hooknb_store(tmp_path: Path) -> Path:
    return tmp_path / "store" / "hooknb.sqlite"


@pytest.fixture
def hooknb_config() -> dict[str, Any]:
    """Extra ``c.HookNB`` settings for a test (override in a module or test)."""
    return {}


@pytest.fixture
def jp_server_config(hooknb_store: Path, hooknb_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            # pytest-jupyter adds the terminals extension unless told; it has undecorated routes.
            "jpserver_extensions": {"hooknb": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "HookNB": {"store_path": str(hooknb_store), **hooknb_config},
    }


@pytest.fixture
def server_url(jp_fetch: Any, jp_http_port: int, jp_base_url: str) -> str:
    """The running test server's URL (requesting jp_fetch makes it listen)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def server_token(jp_serverapp: Any) -> str:
    return jp_serverapp.identity_provider.token


@pytest.fixture
def http(jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[httpx.AsyncClient]:
    """A plain HTTP client for playing an outside service (no Jupyter token)."""
    client = httpx.AsyncClient(trust_env=False, timeout=30)
    yield client
    jp_asyncio_loop.run_until_complete(client.aclose())


@pytest.fixture
def demo() -> Iterator[Any]:
    """The demo webhook service (topics and approvals), on its own thread."""
    from hooknb.demo import DemoService

    with DemoService() as service:
        yield service


@pytest.fixture
def hub(
    server_url: str, server_token: str, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[Any]:
    """A kernel-side connection to the test server whose runs live on the test's loop.

    Tests use the ``*_async`` API with it (the sync API would re-enter the server's loop).
    """
    from hooknb.kernel.client import HubClient
    from hooknb.kernel.discovery import HubAddress

    connection = HubClient(HubAddress(server_url, server_token, "test"), loop=jp_asyncio_loop)
    yield connection
    jp_asyncio_loop.run_until_complete(connection.aclose())
