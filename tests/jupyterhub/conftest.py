"""Fixtures for the JupyterHub tests: real hubs (module-scoped: a hub and its users' servers
take seconds to start), PostgreSQL from $HOOKNB_TEST_POSTGRES_URL (``bash .ci/run`` starts one).

These tests drive separate processes with sync HTTP, so pytest-jupyter's autouse fixtures
(an asyncio loop, an in-process server's cleanup) are turned off here, as in tests/browser.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubs import REQUIRED, JupyterHub, chp_command


@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


def _need(thing: str | None, reason: str) -> None:
    if thing:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (required in CI: HOOKNB_REQUIRE_JUPYTERHUB_PARTS=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chp() -> str:
    command = chp_command()
    _need(command, "configurable-http-proxy is not installed (bash .ci/run installs it from npm)")
    return str(command)


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """A fresh database on the test PostgreSQL (one per module)."""
    url = os.environ.get("HOOKNB_TEST_POSTGRES_URL")
    _need(url, "no PostgreSQL: set HOOKNB_TEST_POSTGRES_URL (bash .ci/run starts one)")
    import sqlalchemy as sa

    from hooknb.jupyterhub.store import engine_for

    name = "hooknb_" + secrets.token_hex(6)
    admin = engine_for(str(url)).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(sa.engine.make_url(str(url)).set(database=name).render_as_string(False))


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jupyterhub")


@pytest.fixture(scope="module")
def issued() -> list[str]:
    """Signatures of the callback URLs a module's tests were handed (searched in the logs)."""
    return []


@pytest.fixture(scope="module")
def hubs_to_stop() -> Iterator[list[JupyterHub]]:
    hubs: list[JupyterHub] = []
    yield hubs
    for hub in hubs:
        hub.stop()
