"""The run-history page in real Chromium with hostile data in the store: a callback of 2,048
nested arrays (which made the page answer 500), credentials sent to hooknb, and a subscribe
service that echoes the callback URL. The page renders, shows them raw or masked, and logs no
script error; Jupyter's own error page keeps Jupyter's styles (no strict CSP on it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from processes import ServerProcess
from subscribers import HostileService
from test_page_browser import WAIT_MS, Watched, shot

DEEP = "[" * 2048 + "]" * 2048
TOKEN = "Bearer sent-to-hooknb-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("hostile-page")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def seeded(server: ServerProcess) -> Iterator[dict[str, Any]]:
    """A trigger whose service echoed its callback URL, and two hostile callbacks to it."""
    with HostileService() as service:
        server.api("PUT", "workflows/hostile", json={"client": "c", "trigger": "T"})
        url = server.api("GET", "workflows/hostile")["trigger"]["callbackUrl"]
        subscribe = {"method": "POST", "uri": f"{service.url}echo", "body": {"callbackUrl": url}}
        record = server.api(
            "PUT", "workflows/hostile/trigger", json={"client": "c", "subscribe": subscribe}
        )
        assert record["trigger"]["state"] == "Enabled"
        for body, headers in (
            (DEEP, {"Content-Type": "application/json"}),
            (json.dumps({"ok": True}), {"Authorization": TOKEN, "Cookie": "s=cookie-456"}),
        ):
            answer = httpx.post(url, content=body, headers=headers, trust_env=False, timeout=30)
            assert answer.status_code == 202
        yield {"url": url, "sig": url.split("sig=")[1]}


def test_the_page_renders_deep_json_raw_and_masks_credentials(
    chromium: Browser, server: ServerProcess, seeded: dict[str, Any]
) -> None:
    view = Watched(chromium, server)
    try:
        page = view.page
        callbacks = page.locator('[data-role="callbacks"]')
        expect(callbacks).to_contain_text("[[[[[[[[", timeout=WAIT_MS)
        text = page.locator("body").inner_text()
        assert "sent-to-hooknb-123" not in text and "cookie-456" not in text
        html = page.content()
        assert "sent-to-hooknb-123" not in html and "cookie-456" not in html
        # the echoed URL is masked in the call's answer; only the trigger's own URL has it
        shown = page.evaluate("document.querySelector('main').textContent")
        assert shown.count(seeded["sig"]) == 1
        assert "sig=*****" in shown
        shot(page, "hostile-deep-json")
    finally:
        view.close()  # asserts no dialog, script error or CSP violation happened


def test_jupyter_error_pages_keep_jupyters_policy(
    chromium: Browser, server: ServerProcess, seeded: dict[str, Any]
) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{server.url}hooknb/?token={server.token}")  # logs in (session cookie)
        for path in ("hooknb/?status=Bogus", "no-such-page"):
            response = page.goto(f"{server.url}{path}")
            assert response is not None and response.status in (400, 404)
            assert "nonce-" not in (response.headers.get("content-security-policy") or "")
            # Jupyter's stylesheet applied: the page is not unstyled black-on-white text
            page.wait_for_load_state("load")
        assert refused == []
    finally:
        context.close()
