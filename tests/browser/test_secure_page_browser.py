"""The run-history page in real Chromium for a trigger that keeps its inputs and outputs secure
(secureData): its callback card says "Content not shown due to security configuration." where
the body, headers and query would be, its subscribe call shows no request or response, and no
secret is in the page's text or markup; it logs no script error."""

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

from hooknb.http_model.redaction import SECURED

IN = "in-5ecret-pin-321"
CB = "cb-5ecret-body-654"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("secure-page")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def seeded(server: ServerProcess) -> Iterator[dict[str, Any]]:
    """A secure trigger whose service echoes the subscribe request, and one callback to it."""
    with HostileService() as service:
        server.api("PUT", "workflows/secured", json={"client": "c", "trigger": "T"})
        url = server.api("GET", "workflows/secured")["trigger"]["callbackUrl"]
        subscribe = {
            "method": "POST",
            "uri": f"{service.url}echo",
            "body": {"callbackUrl": url, "pin": IN},
        }
        record = server.api(
            "PUT",
            "workflows/secured/trigger",
            json={"client": "c", "subscribe": subscribe, "secure": ["inputs", "outputs"]},
        )
        assert record["trigger"]["state"] == "Enabled"
        assert record["trigger"]["subscription"] == SECURED
        answer = httpx.post(
            f"{url}&q={CB}",
            content=json.dumps({"secret": CB}),
            headers={"Content-Type": "application/json", "X-Secret": CB},
            trust_env=False,
            timeout=30,
        )
        assert answer.status_code == 202
        yield {"url": url}


def test_the_page_shows_a_secure_trigger_s_callback_and_calls_as_secured(
    chromium: Browser, server: ServerProcess, seeded: dict[str, Any]
) -> None:
    view = Watched(chromium, server)
    try:
        page = view.page
        secured = page.locator('[data-role="callbacks"] [data-body-kind="secured"]')
        expect(secured).to_have_text(SECURED, timeout=WAIT_MS)
        card = page.locator('[data-role="callbacks"] article.callback')
        expect(card).to_contain_text("secure outputs")
        expect(card.locator("details")).to_have_count(0)  # no headers, no query
        # The trigger's subscribe call: its request is the text, its status code stays.
        expect(page.locator('[data-call-purpose="subscribe"]').first).to_contain_text(SECURED)
        expect(page.locator('[data-call-purpose="subscribe"]').first).to_contain_text("200")
        text = page.locator("body").inner_text()
        html = page.content()
        for secret in (IN, CB):
            assert secret not in text and secret not in html
        shot(page, "secure-trigger")
    finally:
        view.close()  # asserts no dialog, script error or CSP violation happened
