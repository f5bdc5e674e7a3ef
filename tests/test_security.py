"""Access keys, sender signatures, what a callback URL grants, and what reaches the logs."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import api, started_runs, until
from subscribers import Recorder
from tornado.httpclient import HTTPClientError

GITHUB_VECTOR = {
    # GitHub's published test vector (docs: "Validating webhook deliveries", "Testing the
    # webhook payload validation"): secret, payload and the X-Hub-Signature-256 they give.
    "secret": "It's a Secret to Everybody",
    "payload": b"Hello, World!",
    "signature": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
}
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's example secret


async def enabled_trigger(
    jp_fetch: Any, service: Recorder, name: str, **attach: Any
) -> dict[str, Any]:
    await api(
        jp_fetch, "workflows", name, method="PUT", body={"client": "c", "trigger": "T", **attach}
    )
    record = await api(
        jp_fetch,
        "workflows",
        name,
        "trigger",
        method="PUT",
        body={"client": "c", "subscribe": {"method": "POST", "uri": f"{service.url}s"}},
    )
    assert record["trigger"]["state"] == "Enabled"
    return record


async def runs_of(jp_fetch: Any, name: str) -> list[dict[str, Any]]:
    response = await jp_fetch("hooknb", "api", "runs", params={"workflow": name})
    return json.loads(response.body)["runs"]


# -- access keys ---------------------------------------------------------------------------


async def test_regenerating_a_key_kills_the_urls_it_signed(jp_fetch: Any) -> None:
    with Recorder() as service:
        old = (await enabled_trigger(jp_fetch, service, "k"))["trigger"]["callbackUrl"]
        second = (await enabled_trigger(jp_fetch, service, "k2", keyType="Secondary"))["trigger"]
        assert second["keyType"] == "secondary"
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.post(old, json={})).status_code == 202
            before = {k["keyType"]: k["created"] for k in (await api(jp_fetch, "keys"))["keys"]}
            rotated = await api(jp_fetch, "keys", "primary", "regenerate", method="POST")
            assert rotated["keyType"] == "primary"
            assert rotated["enabledTriggersToReEnable"] == ["k"]
            assert (await client.post(old, json={})).status_code == 404
            # the secondary-key trigger is untouched by a primary rotation
            assert (await client.post(second["callbackUrl"], json={})).status_code == 202
            # the trigger keeps its id; its URL is now signed with the new key
            new = (await api(jp_fetch, "workflows", "k"))["trigger"]["callbackUrl"]
            assert new != old and new.split("?")[0] == old.split("?")[0]
            assert (await client.post(new, json={})).status_code == 202
            await api(jp_fetch, "keys", "Secondary", "regenerate", method="POST")
            assert (await client.post(second["callbackUrl"], json={})).status_code == 404
        after = {k["keyType"]: k["created"] for k in (await api(jp_fetch, "keys"))["keys"]}
        assert after["primary"] > before["primary"] and after["secondary"] > before["secondary"]
        with pytest.raises(HTTPClientError) as info:
            await api(jp_fetch, "keys", "tertiary", "regenerate", method="POST")
        assert info.value.code == 400


async def test_a_callback_url_grants_nothing_else(jp_fetch: Any, server_url: str) -> None:
    with Recorder() as service:
        first = (await enabled_trigger(jp_fetch, service, "a"))["trigger"]["callbackUrl"]
        other = (await enabled_trigger(jp_fetch, service, "b"))["trigger"]["callbackUrl"]
    sig = first.split("sig=")[1]
    async with httpx.AsyncClient(trust_env=False) as client:
        for credential in ({"Authorization": f"token {sig}"}, {"Authorization": f"Bearer {sig}"}):
            response = await client.get(f"{server_url}hooknb/api/runs", headers=credential)
            assert response.status_code == 403
        assert (await client.get(f"{server_url}api/contents?token={sig}")).status_code == 403
        # a signature is bound to its id
        swapped = other.split("?")[0] + "?sig=" + sig
        assert (await client.post(swapped, json={})).status_code == 404
        assert (await client.get(first)).status_code == 405


# -- sender signatures ---------------------------------------------------------------------


async def test_github_signatures_with_the_published_vector(jp_fetch: Any) -> None:
    with Recorder() as service:
        record = await enabled_trigger(
            jp_fetch, service, "gh", verify={"type": "github", "secret": GITHUB_VECTOR["secret"]}
        )
    url = record["trigger"]["callbackUrl"]
    assert record["trigger"]["verify"] == {"type": "github", "tolerance": 300}
    assert GITHUB_VECTOR["secret"] not in json.dumps(record)
    headers = {"X-Hub-Signature-256": GITHUB_VECTOR["signature"], "X-GitHub-Delivery": "d-1"}
    async with httpx.AsyncClient(trust_env=False) as client:
        good = await client.post(url, content=GITHUB_VECTOR["payload"], headers=headers)
        assert good.status_code == 202
        again = await client.post(url, content=GITHUB_VECTOR["payload"], headers=headers)
        assert again.status_code == 202
        assert again.json() == {"run": good.json()["run"], "status": "Accepted", "duplicate": True}
        tampered = await client.post(url, content=b"Hello, World?", headers=headers)
        missing = await client.post(url, content=GITHUB_VECTOR["payload"])
        assert tampered.status_code == missing.status_code == 401
        assert "does not match" in tampered.json()["error"]
    assert [r["status"] for r in await runs_of(jp_fetch, "gh")] == ["Queued"]


async def test_standard_webhooks_signed_by_their_library(jp_fetch: Any) -> None:
    from standardwebhooks.webhooks import Webhook

    signer = Webhook(STANDARD_SECRET)
    with Recorder() as service:
        url = (
            await enabled_trigger(
                jp_fetch,
                service,
                "std",
                verify={"type": "standard-webhooks", "secret": STANDARD_SECRET},
            )
        )["trigger"]["callbackUrl"]

    def headers(msg_id: str, when: datetime, body: str) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signer.sign(msg_id, when, body),
            "content-type": "application/json",
        }

    body = '{"test": 2432232314}'
    now = datetime.now(UTC)
    async with httpx.AsyncClient(trust_env=False) as client:
        first = await client.post(url, content=body, headers=headers("msg_1", now, body))
        assert first.status_code == 202
        replay = await client.post(url, content=body, headers=headers("msg_1", now, body))
        assert replay.status_code == 202 and replay.json()["duplicate"] is True
        second = await client.post(url, content=body, headers=headers("msg_2", now, body))
        assert second.status_code == 202 and second.json()["run"] != first.json()["run"]
        stale = datetime.fromtimestamp(time.time() - 600, UTC)
        old = await client.post(url, content=body, headers=headers("msg_3", stale, body))
        assert old.status_code == 401 and "too old" in old.json()["error"]
        forged = headers("msg_4", now, body)
        forged["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
        assert (await client.post(url, content=body, headers=forged)).status_code == 401
        garbage = headers("msg_5", now, body)
        garbage["webhook-signature"] = "no-comma-at-all"
        assert (await client.post(url, content=body, headers=garbage)).status_code == 401
    assert len(await runs_of(jp_fetch, "std")) == 2


async def test_stripe_signatures_made_by_stripe_python(jp_fetch: Any) -> None:
    from stripe import WebhookSignature

    secret = "whsec_test_secret"
    with Recorder() as service:
        url = (
            await enabled_trigger(
                jp_fetch, service, "st", verify={"type": "stripe", "secret": secret}
            )
        )["trigger"]["callbackUrl"]
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"})
    async with httpx.AsyncClient(trust_env=False) as client:
        header = WebhookSignature.generate_signature_header(payload, secret)
        ok = await client.post(url, content=payload, headers={"Stripe-Signature": header})
        assert ok.status_code == 202
        replay = await client.post(url, content=payload, headers={"Stripe-Signature": header})
        assert replay.json()["duplicate"] is True  # same event id
        wrong = WebhookSignature.generate_signature_header(payload, "whsec_other")
        assert (
            await client.post(url, content=payload, headers={"Stripe-Signature": wrong})
        ).status_code == 401
        late = WebhookSignature.generate_signature_header(
            payload, secret, timestamp=int(time.time()) - 400
        )
        assert (
            await client.post(url, content=payload, headers={"Stripe-Signature": late})
        ).status_code == 401
    assert len(await runs_of(jp_fetch, "st")) == 1


async def test_an_action_can_require_a_sender_signature(jp_fetch: Any) -> None:
    started = await api(jp_fetch, "workflows", "w", "runs", method="POST", body={"client": "c"})
    wait = await api(
        jp_fetch,
        "runs",
        started["run"],
        "waits",
        method="POST",
        body={"step": "Approval", "client": "c", "verify": {"type": "github", "secret": "s3"}},
    )
    async with httpx.AsyncClient(trust_env=False) as client:
        unsigned = await client.post(wait["callbackUrl"], content=b"{}")
        assert unsigned.status_code == 401
        assert (await api(jp_fetch, "waits", wait["id"]))["state"] == "open"  # still waiting
        import hashlib
        import hmac

        signature = "sha256=" + hmac.new(b"s3", b"{}", hashlib.sha256).hexdigest()
        signed = await client.post(
            wait["callbackUrl"], content=b"{}", headers={"X-Hub-Signature-256": signature}
        )
        assert signed.status_code == 202
    assert (await api(jp_fetch, "waits", wait["id"]))["outcome"] == "Succeeded"


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ({"type": "hmac", "secret": "x"}, "verify.type"),
        ({"type": "github"}, "verify.secret"),
        ({"type": "github", "secret": "x", "tolerance": 0}, "verify.tolerance"),
        ({"type": "github", "secret": "x", "extra": 1}, "unknown field"),
        ({"type": "standard-webhooks", "secret": "not base64!"}, "Standard Webhooks secret"),
        ("github", "must be an object"),
    ],
)
async def test_bad_verify_settings_are_400(jp_fetch: Any, verify: Any, message: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await api(
            jp_fetch,
            "workflows",
            "v",
            method="PUT",
            body={"client": "c", "trigger": "T", "verify": verify},
        )
    assert info.value.code == 400
    assert message in json.loads(info.value.response.body)["error"]


# -- logs ----------------------------------------------------------------------------------


def test_no_secret_or_signature_reaches_the_logs(tmp_path: Path) -> None:
    from processes import ServerProcess

    server = ServerProcess(tmp_path, extra_args=("--ServerApp.log_level=DEBUG",)).start()
    try:
        with Recorder() as service:
            headers = {"Authorization": f"token {server.token}"}
            api_url = f"{server.url}hooknb/api/"
            with httpx.Client(trust_env=False, headers=headers, timeout=30) as client:
                client.put(
                    api_url + "workflows/logs",
                    json={
                        "client": "c",
                        "trigger": "T",
                        "verify": {"type": "github", "secret": "verify-secret-value"},
                    },
                ).raise_for_status()
                record = client.put(
                    api_url + "workflows/logs/trigger",
                    json={
                        "client": "c",
                        "subscribe": {
                            "method": "POST",
                            "uri": f"{service.url}s",
                            "headers": {"X-Api-Key": "header-secret-value"},
                            "authentication": {
                                "type": "Basic",
                                "username": "u",
                                "password": "basic-password-value",
                            },
                        },
                    },
                ).json()
            url = record["trigger"]["callbackUrl"]
            sig = url.split("sig=")[1]
            with httpx.Client(trust_env=False, timeout=30) as outside:
                outside.post(url, content=b"{}")  # 401: unsigned
                outside.post(url.replace(sig, sig[::-1]), content=b"{}")  # 404
                outside.get(url)  # 405
        log = server.log()
    finally:
        server.stop()
    assert "hooknb/callback/" in log  # the requests were logged...
    for secret in (sig, "verify-secret-value", "basic-password-value", "header-secret-value"):
        assert secret not in log  # ...without their secrets


async def test_the_python_api_sets_keys_and_signatures(hub: Any, jp_fetch: Any) -> None:
    import hashlib
    import hmac

    import hooknb

    def signed(body: bytes, secret: bytes) -> dict[str, str]:
        digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": "sha256=" + digest, "Content-Type": "application/json"}

    with Recorder() as service:

        @hooknb.workflow(
            trigger=hooknb.HttpWebhookTrigger(
                subscribe={"method": "POST", "uri": f"{service.url}s"},
                access_key_type="Secondary",
                verify={"type": "github", "secret": "trigger-secret"},
            ),
            hub=hub,
        )
        async def guarded(run: Any) -> Any:
            reply = await run.webhook(
                "Approval",
                subscribe={"method": "POST", "uri": f"{service.url}a"},
                verify={"type": "github", "secret": "action-secret"},
                timeout=30,
            )
            return reply.body

        await guarded.enable_async()
        record = await api(jp_fetch, "workflows", "guarded")
        assert record["trigger"]["keyType"] == "secondary"
        async with httpx.AsyncClient(trust_env=False) as client:
            body = b'{"n": 1}'
            assert (await client.post(guarded.callback_url, content=body)).status_code == 401
            ok = await client.post(
                guarded.callback_url, content=body, headers=signed(body, b"trigger-secret")
            )
            assert ok.status_code == 202
            run = (await started_runs(guarded, 1))[0]
            action = await until(
                lambda: (
                    "Approval" in run.actions
                    and run.actions["Approval"].status == "Waiting"
                    and run.actions["Approval"]
                )
            )
            reply = b'{"ok": true}'
            wrong = signed(reply, b"trigger-secret")  # the trigger's secret is not the action's
            assert (
                await client.post(action.callback_url, content=reply, headers=wrong)
            ).status_code == 401
            right = signed(reply, b"action-secret")
            assert (
                await client.post(action.callback_url, content=reply, headers=right)
            ).status_code == 202
        await run
        assert (run.status, run.result) == ("Succeeded", {"ok": True})
