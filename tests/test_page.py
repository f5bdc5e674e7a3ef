"""The run-history page (``GET <base_url>hooknb/``) on a real Jupyter server in strict-auth mode.

Data comes from the real kernel-side API and the demo service. What the page's script does with
it in a browser is tested in tests/browser/test_page_browser.py; here: auth, base_url, the
embedded data's escaping, and the JSON snapshot the page polls.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from test_engine import approval, started_runs, topic_trigger, waiting, withdraw
from tornado.httpclient import HTTPClientError

import hooknb
from hooknb.server.views import BODY_PREVIEW_BYTES

HOSTILE = "<img src=x onerror=alert(1)>"
BREAKOUT = "</script><script>alert(2)</script><!--"
_DATA = re.compile(r'<script type="application/json" id="hooknb-data">(.*?)</script>', re.S)


async def page(jp_fetch: Any, **params: str) -> tuple[Any, str]:
    response = await jp_fetch("hooknb/", params=params)
    return response, response.body.decode()


def embedded(html: str) -> dict[str, Any]:
    """The page's embedded config and snapshot (exactly one data block, and it parses)."""
    blocks = _DATA.findall(html)
    assert len(blocks) == 1
    return json.loads(blocks[0])


async def snapshot(jp_fetch: Any, **params: str) -> dict[str, Any]:
    response = await jp_fetch("hooknb/", params={"format": "json", **params})
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def test_page_needs_jupyter_auth(server_url: str, jp_base_url: str) -> None:
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
        # a person without a session is sent to the login page, under this server's base_url
        response = await client.get(f"{server_url}hooknb/")
        assert response.status_code == 302
        assert response.headers["Location"].startswith(f"{jp_base_url}login?next=")
        assert "hooknb-data" not in response.text
        # the page's poll gets a JSON 403, which the page can show, rather than a login page
        response = await client.get(f"{server_url}hooknb/", params={"format": "json"})
        assert response.status_code == 403
        assert "error" in response.json()
        response = await client.get(
            f"{server_url}hooknb/",
            params={"format": "json"},
            headers={"Authorization": "token wrong"},
        )
        assert response.status_code == 403


async def test_page_uses_base_url_sets_xsrf_cookie_and_loads_nothing_from_outside(
    jp_fetch: Any, jp_base_url: str
) -> None:
    assert jp_base_url != "/"  # pytest-jupyter's is /a%40b/: a missing prefix would show
    response, html = await page(jp_fetch)
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    config = embedded(html)["config"]
    assert config["api"] == f"{jp_base_url}hooknb/api/"
    assert config["page"] == f"{jp_base_url}hooknb/"
    assert f'action="{jp_base_url}hooknb/"' in html
    assert f'href="{jp_base_url}hooknb/api/status"' in html
    # the _xsrf cookie the page's POST/DELETE calls echo in X-XSRFToken
    cookies = response.headers.get_list("Set-Cookie")
    xsrf = [c for c in cookies if c.startswith("_xsrf=")]
    assert xsrf and f"Path={jp_base_url}" in xsrf[0]
    assert config["xsrf"]
    # everything is inline and nonced; no external script, style, font or image
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert html.count(f'nonce="{nonce}"') == 2
    markup = _DATA.sub("", html)  # the data block holds URLs as data (callback URLs)
    assert not re.search(r"<(script|img|link|iframe)[^>]*\ssrc=", markup)
    assert "<link" not in markup and "@import" not in markup and "url(" not in markup
    assert "https://" not in markup and "http://" not in markup


async def test_hostile_content_is_embedded_as_data_only(hub: Any, jp_fetch: Any) -> None:
    name = f"wf{HOSTILE}"

    @hooknb.workflow(hub=hub, name=name)
    async def hostile(run: Any) -> Any:
        return {"echo": run.trigger.body}

    run = await hostile.start_async(
        body={"html": HOSTILE, "breakout": BREAKOUT},
        headers={"X-Evil": HOSTILE, "X-Break": BREAKOUT},
        queries={"q": HOSTILE},
    )
    await run
    _, html = await page(jp_fetch)
    # nothing from outside appears as markup, and nothing can end the data block early
    assert "<img" not in html
    assert "alert(2)</script>" not in html and "<!--" not in html
    assert html.count("</script>") == 2  # the data block's and the script's own
    # ... yet the data is all there, exactly
    data = embedded(html)["snapshot"]
    assert data["workflowNames"] == [name]
    (shown,) = data["runs"]
    assert shown["workflow"] == name and shown["status"] == "Succeeded"
    assert json.loads(shown["result"]["text"]) == {"echo": {"html": HOSTILE, "breakout": BREAKOUT}}
    (callback,) = data["callbacks"]
    assert ["X-Evil", HOSTILE] in callback["headers"]
    assert ["X-Break", BREAKOUT] in callback["headers"]
    assert callback["queries"] == {"q": HOSTILE}
    assert json.loads(callback["body"]["text"]) == {"html": HOSTILE, "breakout": BREAKOUT}
    # a filter value from the address bar is data too
    _, html = await page(jp_fetch, workflow=HOSTILE)
    assert "<img" not in html
    assert embedded(html)["snapshot"]["filters"]["workflow"] == HOSTILE


async def test_snapshot_shows_triggers_waiting_runs_steps_and_callbacks(
    hub: Any, demo: Any, http: httpx.AsyncClient, jp_fetch: Any
) -> None:
    @hooknb.workflow(trigger=topic_trigger(demo), hub=hub)
    async def orders(run: Any) -> Any:
        reply = await run.webhook(
            "Approval",
            subscribe=approval(demo, f"Order {run.trigger.body['id']}"),
            unsubscribe=withdraw(demo),
            timeout="PT1M",
        )
        return reply.body

    await orders.enable_async()
    await http.post(f"{demo.url}topics/orders/events", json={"id": 7})
    (run,) = await started_runs(orders, 1)
    await waiting(run, "Approval")
    await hub.flush()  # the kernel's report of the pause has reached the server

    data = await snapshot(jp_fetch)
    assert data["status"]["openWaits"] == 1 and data["status"]["enabledTriggers"] == 1
    (wf,) = data["workflows"]
    trigger = wf["trigger"]
    assert wf["name"] == "orders" and wf["canDisable"]
    assert trigger["state"] == "Enabled" and trigger["callbackUrl"] == orders.callback_url
    assert trigger["lastSubscribe"]["statusCode"] == 201
    assert trigger["lastSubscribe"]["uri"] == f"{demo.url}topics/orders/subscriptions"
    assert trigger["lastUnsubscribe"] is None

    (shown,) = data["runs"]
    assert shown["id"] == run.id and shown["status"] == "Waiting"
    assert shown["canCancel"] and shown["canResubmit"] and shown["startedBy"] == "trigger"
    assert json.loads(shown["triggerInputs"]["body"]["text"]) == {"id": 7}
    (step,) = shown["steps"]
    assert step["name"] == "Approval" and step["status"] == "Waiting"
    assert step["wait"]["state"] == "waiting" and step["wait"]["deadline"] > step["start"]
    assert step["callbackUrl"] == run.actions["Approval"].callback_url
    assert step["wait"]["lastSubscribe"]["statusCode"] == 201

    (callback,) = data["callbacks"]
    assert callback["kind"] == "trigger" and callback["run"] == run.id
    assert callback["workflow"] == "orders" and callback["body"]["kind"] == "json"
    assert ["X-Demo-Topic", "orders"] in callback["headers"]

    # the approver decides: the action's callback is stored, the run ends, all without a page
    (pending,) = (await http.get(f"{demo.url}approvals")).json()
    await http.post(f"{demo.url}approvals/{pending['id']}/decision", json={"decision": "approve"})
    await run
    data = await snapshot(jp_fetch)
    (shown,) = data["runs"]
    assert shown["status"] == "Succeeded" and not shown["canCancel"]
    (step,) = shown["steps"]
    assert step["wait"]["outcome"] == "Succeeded" and step["statusCode"] == 200
    newest = data["callbacks"][0]
    assert newest["kind"] == "wait" and newest["step"] == "Approval"
    assert newest["workflow"] == "orders" and step["wait"]["callback"] == newest["id"]
    assert step["wait"]["lastUnsubscribe"]["method"] == "DELETE"

    await orders.disable_async()
    (wf,) = (await snapshot(jp_fetch))["workflows"]
    assert wf["trigger"]["state"] == "Disabled" and not wf["canDisable"]
    assert wf["trigger"]["lastUnsubscribe"]["statusCode"] == 200


async def test_bodies_are_previewed_large_cut_binary_summarised(hub: Any, jp_fetch: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def bodies(run: Any) -> Any:
        return None

    large = ("é" * 5000).encode()  # two-byte characters: the preview's cut falls inside one
    binary = bytes(range(256)) * 64
    for body, content_type in (
        (large, "text/plain; charset=utf-8"),
        (binary, "application/x-thing"),
        (b"", "application/x-nothing"),
    ):
        await (await bodies.start_async(body, content_type=content_type))

    previews = [c["body"] for c in (await snapshot(jp_fetch))["callbacks"]]
    empty, raw, text = previews
    assert empty["kind"] == "empty" and empty["size"] == 0
    assert raw == {"kind": "binary", "size": len(binary), "contentType": "application/x-thing"}
    assert text["kind"] == "text" and text["truncated"] and text["size"] == 10000
    assert text["text"] == "é" * (BODY_PREVIEW_BYTES // 2)


async def test_snapshot_filters_by_workflow_and_status(hub: Any, jp_fetch: Any) -> None:
    @hooknb.workflow(hub=hub)
    async def good(run: Any) -> Any:
        return 1

    @hooknb.workflow(hub=hub)
    async def bad(run: Any) -> Any:
        raise ValueError("no")

    for workflow in (good, bad, good):
        await (await workflow.start_async({}))

    data = await snapshot(jp_fetch)
    assert data["counts"] == {"Succeeded": 2, "Failed": 1}
    assert len(data["runs"]) == 3 and len(data["callbacks"]) == 3

    data = await snapshot(jp_fetch, workflow="good")
    assert [w["name"] for w in data["workflows"]] == ["good"]
    assert data["workflowNames"] == ["bad", "good"]  # the filter's choices stay complete
    assert {r["workflow"] for r in data["runs"]} == {"good"} and len(data["runs"]) == 2
    assert {c["workflow"] for c in data["callbacks"]} == {"good"}
    assert data["counts"] == {"Succeeded": 2}

    data = await snapshot(jp_fetch, status="Failed")
    (failed,) = data["runs"]
    assert failed["workflow"] == "bad" and "ValueError: no" in failed["error"]
    assert data["filters"] == {"workflow": "", "status": "Failed", "limit": 50}

    data = await snapshot(jp_fetch, limit="1")
    assert len(data["runs"]) == 1 and data["moreRuns"]

    with pytest.raises(HTTPClientError) as info:
        await snapshot(jp_fetch, status="Bogus")
    assert info.value.code == 400
    assert "status" in json.loads(info.value.response.body)["error"]


async def test_unchanged_snapshot_is_a_304(jp_fetch: Any) -> None:
    response = await jp_fetch("hooknb/", params={"format": "json"})
    etag = response.headers["Etag"]
    assert "no-cache" in response.headers["Cache-Control"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("hooknb/", params={"format": "json"}, headers={"If-None-Match": etag})
    assert info.value.code == 304


async def test_the_strict_csp_is_on_the_page_only(jp_fetch: Any) -> None:
    """Jupyter's own pages (its error page for a refused filter, a 404 under the base URL)
    keep Jupyter's policy, under which their own stylesheets and scripts load."""
    response, _ = await page(jp_fetch)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in response.headers["Content-Security-Policy"]
    for path, params in [
        ("hooknb/", {"status": "Bogus"}),  # Jupyter's HTML error page, rendered by our handler
        ("hooknb/nothing-here", {}),
        ("no-such-page", {}),
    ]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch(path, params=params)
        assert refused.value.code in (400, 404)
        csp = refused.value.response.headers["Content-Security-Policy"]
        assert "nonce-" not in csp and "default-src 'none'" not in csp, path
        assert "frame-ancestors 'self'" in csp  # Jupyter's own policy is still there
