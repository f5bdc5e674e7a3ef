"""Shared pieces of the browser tests: Debian's Chromium under Playwright's sync API.

The root ``tests/conftest.py`` loads pytest-jupyter, whose autouse fixtures run in-process
servers on an asyncio loop. Browser tests start real server processes instead, and between
sync calls Playwright marks its own loop as the running one, which those fixtures would then
pick up, run and close; so here they do nothing. A module may still override them.

Playwright never downloads a browser here: ``executable_path`` is always Debian's Chromium.
Only one sync Playwright may be active at a time, so browsers are module-scoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--no-proxy-server",  # loopback only, whatever the environment says
]
#: Git-ignored; CI keeps it as an artifact.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium for one test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where browser tests save screenshots (created on first use)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
