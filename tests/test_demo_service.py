"""The demo service over real loopback HTTP: a DemoService plus a tiny callback receiver."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from hooknb.demo import DemoService, make_app
from hooknb.demo.service import MAX_BODY_BYTES

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------------------
# A real callback receiver
# --------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every request; ``/status/N`` answers N, ``/slow`` waits, others 202 JSON."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                call = Call("POST", self.path, dict(self.headers.items()), body)
                if self.path.startswith("/slow"):
                    time.sleep(0.5)
                status = 202
                if m := re.fullmatch(r"/status/(\d+)", self.path):
                    status = int(m.group(1))
                answer = json.dumps({"received": self.path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                with receiver._cond:
                    receiver.calls.append(call)
                    receiver._cond.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Call]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= n, timeout):
                raise AssertionError(f"expected {n} callback(s), got {len(self.calls)}")
            return list(self.calls)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def service() -> Iterator[DemoService]:
    with DemoService() as svc:
        yield svc


@pytest.fixture
def client(service: DemoService) -> Iterator[httpx.Client]:
    # trust_env=False: a proxy from the environment must not intercept loopback calls.
    with httpx.Client(base_url=service.url, trust_env=False, timeout=10) as c:
        yield c


def new_approval(client: httpx.Client, callback: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/approvals", json={"callbackUrl": callback, "subject": "Ship it?", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def approval(client: httpx.Client, approval_id: str) -> dict[str, Any]:
    r = client.get(f"/approvals/{approval_id}")
    assert r.status_code == 200
    return r.json()


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def test_service_starts_reports_url_and_stops() -> None:
    svc = DemoService().start()
    try:
        assert svc.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", svc.url)
        assert svc.url.endswith(f":{svc.port}/")
        assert httpx.get(svc.url + "health", trust_env=False).json() == {"ok": True}
        with pytest.raises(RuntimeError):
            svc.start()
    finally:
        svc.stop()
    assert not svc.running
    svc.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(svc.url + "health", trust_env=False)


def test_port_in_use_raises_from_start(service: DemoService) -> None:
    with pytest.raises(OSError):
        DemoService(port=service.port).start()


def test_make_app_rejects_negative_auto_approve() -> None:
    with pytest.raises(ValueError):
        make_app(auto_approve_after=-1)


def test_serve_runs_until_sigterm() -> None:
    port = int(dead_url().split(":")[2].split("/")[0])
    code = f"from hooknb.demo import serve; serve(port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        assert httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).json()["ok"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------
# Topics (webhook trigger)
# --------------------------------------------------------------------------------------


def test_subscribe_with_object_body_keeps_fields(client: httpx.Client, receiver: Receiver) -> None:
    cb = receiver.url + "/trigger"
    r = client.post("/topics/orders/subscriptions", json={"callbackUrl": cb, "filter": "big"})
    assert r.status_code == 201
    sub = r.json()
    assert sub["topic"] == "orders"
    assert sub["callbackUrl"] == cb
    assert sub["fields"] == {"filter": "big"}
    assert r.headers["Location"] == f"{client.base_url}topics/orders/subscriptions/{sub['id']}"
    assert client.get(r.headers["Location"]).json()["id"] == sub["id"]
    listed = client.get("/topics/orders/subscriptions").json()
    assert [s["id"] for s in listed] == [sub["id"]]
    assert client.get("/topics/other/subscriptions").json() == []
    topics = client.get("/topics").json()
    assert topics[0]["topic"] == "orders"
    assert len(topics[0]["subscriptions"]) == 1


def test_subscribe_with_bare_string_body(client: httpx.Client, receiver: Receiver) -> None:
    # Logic Apps' sample subscriber binds `[FromBody] string callbackUrl`.
    cb = receiver.url + "/bare"
    r = client.post("/topics/orders/subscriptions", json=cb)
    assert r.status_code == 201
    assert r.json()["callbackUrl"] == cb


def test_publish_posts_exact_json_and_headers_to_every_subscriber(
    client: httpx.Client, receiver: Receiver
) -> None:
    ids = [
        client.post("/topics/orders/subscriptions", json={"callbackUrl": receiver.url + p}).json()[
            "id"
        ]
        for p in ("/a", "/b")
    ]
    raw = b'{"order": 42, "items": ["x", "\xc3\xa9"], "nested": {"ok": true}}'
    r = client.post(
        "/topics/orders/events", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    result = r.json()
    calls = receiver.wait_for(2)
    assert sorted(c.path for c in calls) == ["/a", "/b"]
    for call in calls:
        assert call.body == raw
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["X-Demo-Topic"] == "orders"
        assert call.headers["X-Demo-Event-Id"] == result["event_id"]
    assert sorted(d["subscription"] for d in result["deliveries"]) == sorted(ids)
    for d in result["deliveries"]:
        assert d["status"] == 202
        assert d["error"] is None
        assert d["response"]["received"] in ("/a", "/b")

    second = client.post("/topics/orders/events", json={"n": 2}).json()
    assert second["event_id"] != result["event_id"]
    later = {c.headers["X-Demo-Event-Id"] for c in receiver.wait_for(4)[2:]}
    assert later == {second["event_id"]}


def test_publish_delivers_concurrently(client: httpx.Client, receiver: Receiver) -> None:
    for p in ("/slow/1", "/slow/2", "/slow/3"):
        client.post("/topics/t/subscriptions", json={"callbackUrl": receiver.url + p})
    start = time.monotonic()
    r = client.post("/topics/t/events", json={})
    elapsed = time.monotonic() - start
    assert [d["status"] for d in r.json()["deliveries"]] == [202, 202, 202]
    assert elapsed < 1.2  # three 0.5 s callbacks one after another would take 1.5 s


def test_publish_reports_failed_deliveries(client: httpx.Client, receiver: Receiver) -> None:
    client.post("/topics/t/subscriptions", json={"callbackUrl": receiver.url + "/status/500"})
    client.post("/topics/t/subscriptions", json={"callbackUrl": dead_url()})
    deliveries = client.post("/topics/t/events", json={"x": 1}).json()["deliveries"]
    assert deliveries[0]["status"] == 500
    assert "500" in deliveries[0]["error"]
    assert deliveries[1]["status"] is None
    assert deliveries[1]["error"]
    assert client.post("/topics/empty/events", json={}).json()["deliveries"] == []


def test_unsubscribe_by_id(client: httpx.Client, receiver: Receiver) -> None:
    sub = client.post("/topics/t/subscriptions", json={"callbackUrl": receiver.url + "/x"}).json()
    assert client.delete(f"/topics/t/subscriptions/{sub['id']}").status_code == 204
    assert client.get("/topics/t/subscriptions").json() == []
    assert client.post("/topics/t/events", json={}).json()["deliveries"] == []
    again = client.delete(f"/topics/t/subscriptions/{sub['id']}")
    assert again.status_code == 404
    assert "error" in again.json()
    assert client.delete(f"/topics/other/subscriptions/{sub['id']}").status_code == 404


def test_unsubscribe_by_callback_url(client: httpx.Client, receiver: Receiver) -> None:
    keep = receiver.url + "/keep"
    drop = receiver.url + "/drop"
    client.post("/topics/t/subscriptions", json={"callbackUrl": keep})
    a = client.post("/topics/t/subscriptions", json={"callbackUrl": drop}).json()["id"]
    b = client.post("/topics/t/subscriptions", json=drop).json()["id"]
    r = client.post("/topics/t/unsubscribe", json={"callbackUrl": drop})
    assert r.status_code == 200
    assert sorted(r.json()["removed"]) == sorted([a, b])
    assert [s["callbackUrl"] for s in client.get("/topics/t/subscriptions").json()] == [keep]
    # Idempotent, and the bare-string form works too.
    r = client.post("/topics/t/unsubscribe", json=drop)
    assert (r.status_code, r.json()["removed"]) == (200, [])
    assert client.post("/topics/t/unsubscribe", json=keep).json()["removed"] != []


# --------------------------------------------------------------------------------------
# Approvals (webhook action)
# --------------------------------------------------------------------------------------


def test_approval_created_and_decided_via_api(client: httpx.Client, receiver: Receiver) -> None:
    r = client.post(
        "/approvals",
        json={
            "callbackUrl": receiver.url + "/resume",
            "subject": "Deploy v2?",
            "details": {"env": "prod"},
            "requester": "notebook",
        },
    )
    assert r.status_code == 201
    created = r.json()
    aid = created["id"]
    assert created["status"] == "Pending"
    assert created["url"] == f"{client.base_url}approvals/{aid}/view"
    assert r.headers["Location"] == f"{client.base_url}approvals/{aid}"
    assert receiver.calls == []

    r = client.post(
        f"/approvals/{aid}/decision", json={"decision": "approve", "comment": "lgtm", "by": "ann"}
    )
    assert r.status_code == 200
    answer = r.json()
    assert answer["status"] == "Approved"
    assert answer["callback"]["status"] == 202
    assert answer["callback"]["body"] == {"received": "/resume"}

    (call,) = receiver.wait_for(1)
    assert call.path == "/resume"
    assert call.headers["Content-Type"] == "application/json"
    payload = call.json()
    assert payload["id"] == aid
    assert payload["subject"] == "Deploy v2?"
    assert payload["decision"] == "Approved"
    assert payload["comment"] == "lgtm"
    assert payload["by"] == "ann"
    assert payload["decidedAt"].endswith("Z")

    (item,) = client.get("/approvals").json()
    assert item["id"] == aid
    assert item["status"] == "Approved"
    assert item["details"] == {"env": "prod"}
    assert item["requester"] == "notebook"
    assert item["created"] and item["decided"]
    assert item["callback"]["status"] == 202
    assert item["callback"]["error"] is None


def test_reject_via_api(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/r")["id"]
    r = client.post(f"/approvals/{aid}/decision", json={"decision": "reject"})
    assert r.json()["status"] == "Rejected"
    assert receiver.wait_for(1)[0].json()["decision"] == "Rejected"


def test_deciding_twice_is_409(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/r")["id"]
    assert client.post(f"/approvals/{aid}/decision", json={"decision": "approve"}).is_success
    r = client.post(f"/approvals/{aid}/decision", json={"decision": "reject"})
    assert r.status_code == 409
    assert "Approved" in r.json()["error"]
    assert approval(client, aid)["status"] == "Approved"
    assert len(receiver.wait_for(1)) == 1


def test_concurrent_decisions_only_one_wins(client: httpx.Client, receiver: Receiver) -> None:
    # The callback is slow, so the second decision arrives while the first is in flight.
    aid = new_approval(client, receiver.url + "/slow")["id"]
    statuses: list[int] = []

    def decide(decision: str) -> None:
        with httpx.Client(base_url=client.base_url, trust_env=False, timeout=10) as c:
            r = c.post(f"/approvals/{aid}/decision", json={"decision": decision})
            statuses.append(r.status_code)

    threads = [threading.Thread(target=decide, args=(d,)) for d in ("approve", "reject")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert len(receiver.wait_for(1)) == 1


def test_decide_via_html_form_follows_303(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/form", requester="bob")["id"]
    page = client.get("/").text
    row = re.search(rf'<tr data-approval-id="{aid}".*?</tr>', page, re.S)
    assert row is not None
    assert '<button type="submit" data-action="approve">Approve</button>' in row.group(0)
    assert '<button type="submit" data-action="reject">Reject</button>' in row.group(0)
    action = re.search(r'<form[^>]*action="([^"]+/reject)"', row.group(0))
    assert action is not None and action.group(1) == f"/approvals/{aid}/reject"

    r = client.post(
        action.group(1), data={"comment": "not today", "next": "/"}, follow_redirects=True
    )
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [303]
    assert r.url.path == "/"
    assert "text/html" in r.headers["Content-Type"]
    decided = re.search(rf'<tr data-approval-id="{aid}" data-status="Rejected">', r.text)
    assert decided is not None

    payload = receiver.wait_for(1)[0].json()
    assert payload["decision"] == "Rejected"
    assert payload["comment"] == "not today"
    assert payload["by"] == "demo page"
    assert approval(client, aid)["decidedVia"] == "page"

    # A second click (double submit, stale page) goes back to the page without a callback.
    again = client.post(f"/approvals/{aid}/approve", data={}, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["Location"] == "/"
    time.sleep(0.1)
    assert len(receiver.calls) == 1
    assert approval(client, aid)["status"] == "Rejected"


def test_form_redirect_stays_on_site(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/f")["id"]
    r = client.post(f"/approvals/{aid}/approve", data={"next": "//evil.example/x"})
    assert r.status_code == 303
    assert r.headers["Location"] == "/"


def test_approval_page_for_one_item(client: httpx.Client, receiver: Receiver) -> None:
    created = new_approval(client, receiver.url + "/v", details={"amount": 120})
    page = client.get(created["url"])
    assert page.status_code == 200
    assert f'data-approval-id="{created["id"]}"' in page.text
    assert "120" in page.text
    view = f"/approvals/{created['id']}/view"
    assert f'name="next" value="{view}"' in page.text
    r = client.post(
        f"/approvals/{created['id']}/approve", data={"next": view}, follow_redirects=True
    )
    assert r.url.path == view
    assert 'data-status="Approved"' in r.text
    assert client.get("/approvals/nope/view").status_code == 404


def test_delete_withdraws_pending_approval(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/w")["id"]
    assert client.delete(f"/approvals/{aid}").status_code == 204
    item = approval(client, aid)
    assert item["status"] == "Withdrawn"
    assert item["unsubscribed"]
    assert item["callback"] is None
    r = client.post(f"/approvals/{aid}/decision", json={"decision": "approve"})
    assert r.status_code == 409
    assert client.delete(f"/approvals/{aid}").status_code == 204  # idempotent
    assert client.delete("/approvals/apr_unknown").status_code == 404
    assert receiver.calls == []
    page = client.get("/").text
    assert f'<tr data-approval-id="{aid}" data-status="Withdrawn">' in page


def test_delete_after_decision_keeps_outcome(client: httpx.Client, receiver: Receiver) -> None:
    # Logic Apps unsubscribes after the action's callback succeeded: that is not a withdrawal.
    aid = new_approval(client, receiver.url + "/d")["id"]
    client.post(f"/approvals/{aid}/decision", json={"decision": "approve"})
    assert client.delete(f"/approvals/{aid}").status_code == 204
    item = approval(client, aid)
    assert item["status"] == "Approved"
    assert item["unsubscribed"]


@pytest.mark.parametrize("target", ["status", "dead"])
def test_callback_failure_is_reported_and_decision_stands(
    client: httpx.Client, receiver: Receiver, target: str
) -> None:
    url = receiver.url + "/status/503" if target == "status" else dead_url()
    aid = new_approval(client, url)["id"]
    r = client.post(f"/approvals/{aid}/decision", json={"decision": "approve"})
    assert r.status_code == 200
    cb = r.json()["callback"]
    if target == "status":
        assert cb["status"] == 503
        assert "503" in cb["error"]
    else:
        assert cb["status"] is None
        assert cb["error"]
    item = approval(client, aid)
    assert item["status"] == "Approved"
    assert item["callback"]["error"] == cb["error"]
    assert 'class="err"' in client.get("/").text


def test_auto_approve(receiver: Receiver) -> None:
    with (
        DemoService(auto_approve_after=0.05) as svc,
        httpx.Client(base_url=svc.url, trust_env=False) as c,
    ):
        aid = new_approval(c, receiver.url + "/auto")["id"]
        payload = receiver.wait_for(1)[0].json()
        assert payload["id"] == aid
        assert payload["decision"] == "Approved"
        assert payload["comment"] == "auto-approved by the demo service"
        item = approval(c, aid)
        assert item["status"] == "Approved"
        assert item["decidedVia"] == "auto"


def test_auto_approve_skips_withdrawn_and_decided(receiver: Receiver) -> None:
    with (
        DemoService(auto_approve_after=0.3) as svc,
        httpx.Client(base_url=svc.url, trust_env=False) as c,
    ):
        withdrawn = new_approval(c, receiver.url + "/withdrawn")["id"]
        rejected = new_approval(c, receiver.url + "/rejected")["id"]
        c.delete(f"/approvals/{withdrawn}")
        c.post(f"/approvals/{rejected}/decision", json={"decision": "reject"})
        time.sleep(0.5)
        assert [call.path for call in receiver.calls] == ["/rejected"]
        assert approval(c, withdrawn)["status"] == "Withdrawn"
        assert approval(c, rejected)["status"] == "Rejected"


# --------------------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------------------


def test_request_log_records_subscribe_unsubscribe_event_decision(
    client: httpx.Client, receiver: Receiver
) -> None:
    hdr = {"x-ms-workflow-operation-name": "Wait_for_approval"}
    sub = client.post(
        "/topics/t/subscriptions", json={"callbackUrl": receiver.url + "/t"}, headers=hdr
    ).json()
    client.post("/topics/t/events", json={"n": 1})
    client.delete(f"/topics/t/subscriptions/{sub['id']}", headers=hdr)
    aid = new_approval(client, receiver.url + "/a")["id"]
    client.post(f"/approvals/{aid}/decision", json={"decision": "approve", "by": "me"})
    client.delete(f"/approvals/{aid}", headers=hdr)
    client.post("/approvals", content=b"{broken")
    client.get("/approvals")  # reads are not recorded

    log = client.get("/requests").json()
    assert [(e["method"], e["kind"], e["resource"], e["status"]) for e in log] == [
        ("POST", "subscribe", "topic", 201),
        ("POST", "event", "topic", 200),
        ("DELETE", "unsubscribe", "topic", 204),
        ("POST", "subscribe", "approval", 201),
        ("POST", "decision", "approval", 200),
        ("DELETE", "unsubscribe", "approval", 204),
        ("POST", "subscribe", "approval", 400),
    ]
    assert log[0]["path"] == "/topics/t/subscriptions"
    assert log[0]["body"] == {"callbackUrl": receiver.url + "/t"}
    assert log[0]["headers"]["X-Ms-Workflow-Operation-Name"] == "Wait_for_approval"
    assert log[2]["path"] == f"/topics/t/subscriptions/{sub['id']}"
    assert log[4]["body"] == {"decision": "approve", "by": "me"}
    assert log[5]["path"] == f"/approvals/{aid}"
    assert log[6]["body"] == "{broken"
    assert all(e["time"].endswith("Z") for e in log)
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)

    unsubscribed = client.get("/requests", params={"kind": "unsubscribe"}).json()
    assert [e["path"] for e in unsubscribed] == [log[2]["path"], log[5]["path"]]

    assert client.delete("/requests").status_code == 204
    assert client.get("/requests").json() == []


def test_request_log_records_form_posts(client: httpx.Client, receiver: Receiver) -> None:
    aid = new_approval(client, receiver.url + "/a")["id"]
    client.post(f"/approvals/{aid}/approve", data={"comment": "ok", "next": "/"})
    entry = client.get("/requests", params={"kind": "decision"}).json()[0]
    assert entry["body"] == {"comment": "ok", "next": "/"}
    assert entry["status"] == 303


def test_request_log_is_capped(client: httpx.Client) -> None:
    from hooknb.demo.service import REQUEST_LOG_LIMIT

    for _ in range(REQUEST_LOG_LIMIT + 5):
        client.post("/approvals", json={})
    log = client.get("/requests").json()
    assert len(log) == REQUEST_LOG_LIMIT
    assert log[-1]["seq"] == REQUEST_LOG_LIMIT + 5


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

CB = "http://127.0.0.1:9/cb"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/approvals", b"{not json", 400),
        ("POST", "/approvals", b"", 400),
        ("POST", "/approvals", b"[1, 2]", 400),
        ("POST", "/approvals", b'{"subject": "x", "callbackUrl": NaN}', 400),
        ("POST", "/approvals", b"[" * 100_000, 400),
        ("POST", "/approvals", json.dumps({"subject": "x"}).encode(), 400),
        ("POST", "/approvals", json.dumps({"subject": "x", "callbackUrl": 5}).encode(), 400),
        (
            "POST",
            "/approvals",
            json.dumps({"subject": "x", "callbackUrl": "ftp://h/x"}).encode(),
            400,
        ),
        ("POST", "/approvals", json.dumps({"subject": "x", "callbackUrl": "/rel"}).encode(), 400),
        (
            "POST",
            "/approvals",
            json.dumps({"subject": "x", "callbackUrl": "http://h:99999/"}).encode(),
            400,
        ),
        ("POST", "/approvals", json.dumps({"callbackUrl": CB}).encode(), 400),
        ("POST", "/approvals", json.dumps({"callbackUrl": CB, "subject": "  "}).encode(), 400),
        ("POST", "/approvals", json.dumps({"callbackUrl": CB, "subject": 3}).encode(), 400),
        (
            "POST",
            "/approvals",
            json.dumps({"callbackUrl": CB, "subject": "s", "requester": 1}).encode(),
            400,
        ),
        ("POST", "/topics/t/subscriptions", b"{}", 400),
        ("POST", "/topics/t/subscriptions", b"42", 400),
        ("POST", "/topics/t/subscriptions", b'"not a url"', 400),
        ("POST", "/topics/bad%20topic/subscriptions", json.dumps(CB).encode(), 400),
        ("POST", "/topics/t/unsubscribe", b"{}", 400),
        ("POST", "/topics/t/events", b"{oops", 400),
        ("POST", "/topics/t/events", b"", 400),
        ("POST", "/approvals/apr_nope/decision", b'{"decision": "approve"}', 404),
        ("POST", "/approvals/apr_nope/approve", b"", 404),
        ("GET", "/approvals/apr_nope", b"", 404),
        ("DELETE", "/topics/t/subscriptions/sub_nope", b"", 404),
        ("GET", "/no/such/route", b"", 404),
        ("GET", "/topics/t/subscriptions/x/y", b"", 404),
        ("PUT", "/approvals", b"{}", 405),
        ("POST", "/approvals", b"x" * (MAX_BODY_BYTES + 1), 413),
        ("POST", "/topics/t/events", b" " * (MAX_BODY_BYTES + 1), 413),
    ],
)
def test_bad_input_gets_json_error(
    client: httpx.Client, method: str, path: str, body: bytes, status: int
) -> None:
    r = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()
    assert isinstance(error["error"], str) and error["error"]
    assert "Traceback" not in r.text


def test_bad_decision_value(client: httpx.Client) -> None:
    aid = new_approval(client, CB)["id"]
    for body in ({"decision": "maybe"}, {}, {"decision": "approve", "comment": 5}):
        r = client.post(f"/approvals/{aid}/decision", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]
    assert approval(client, aid)["status"] == "Pending"


# --------------------------------------------------------------------------------------
# HTML page
# --------------------------------------------------------------------------------------


def test_page_escapes_user_text_and_is_self_contained(client: httpx.Client) -> None:
    evil = "<script>alert(1)</script>"
    new_approval(client, CB)
    client.post(
        "/approvals",
        json={
            "callbackUrl": CB,
            "subject": evil,
            "details": {"<b>k</b>": evil, "n": [1, evil]},
            "requester": '"><img src=x onerror=alert(1)>',
        },
    )
    client.post("/topics/t/subscriptions", json="http://127.0.0.1:9/<i>x</i>")
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert "<title>hooknb demo service</title>" in page
    assert "<script" not in page
    assert "<img" not in page
    assert "<i>x</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;k&lt;/b&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # No external resources: nothing is loaded from anywhere.
    assert "<link" not in page
    assert not re.search(r"\bsrc=", page.replace("&lt;img src=x", ""))
    assert "http-equiv" not in page
    assert len(re.findall(r"<tr data-approval-id=", page)) == 2


def test_page_refresh_option(client: httpx.Client) -> None:
    assert '<meta http-equiv="refresh" content="3">' in client.get("/?refresh=3").text
    assert "http-equiv" not in client.get("/?refresh=abc").text
    assert "http-equiv" not in client.get("/?refresh=0").text


def test_page_shows_topics_and_subscriptions(client: httpx.Client) -> None:
    sub = client.post("/topics/orders/subscriptions", json=CB).json()
    page = client.get("/").text
    assert 'data-topic="orders"' in page
    assert f'data-subscription-id="{sub["id"]}"' in page
    assert "Nothing is waiting for a decision." in page
