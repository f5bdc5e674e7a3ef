"""Where callback URLs point (JupyterHub's variables, templates) and what reaches the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hooknb.server import log_scrub
from hooknb.server.public_urls import (
    Identity,
    check_template,
    internal_host,
    public_base,
    reachability,
)

OWN = "http://127.0.0.1:51234/user/alice/"
ALICE = Identity(user="alice", server="", prefix="/user/alice/")
HUB_ENV = {"JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"}


@pytest.mark.parametrize(
    ("configured", "env", "expected", "source"),
    [
        # JupyterHub.public_url set: JUPYTERHUB_PUBLIC_URL is the server's full public URL,
        # prefix included (the old code added the prefix again: /user/alice/user/alice/).
        (
            "",
            {"JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/user/alice/"},
            "https://hub.example.org/user/alice/",
            "JUPYTERHUB_PUBLIC_URL",
        ),
        # With subdomains the Hub's host is known without a public URL.
        (
            "",
            {"JUPYTERHUB_PUBLIC_URL": "", "JUPYTERHUB_HOST": "https://alice.hub.example.org"},
            "https://alice.hub.example.org/user/alice/",
            "the Hub's public host",
        ),
        ("", {"JUPYTERHUB_PUBLIC_URL": ""}, OWN, "the server's own address"),
        # One template for every user (in c.Spawner.environment or a shared config file).
        (
            "https://hooks.example.org{prefix}",
            {"JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/user/alice/"},
            "https://hooks.example.org/user/alice/",
            "public_url",
        ),
        ("https://{user}.hooks.example.org", {}, "https://alice.hooks.example.org/", "public_url"),
    ],
)
def test_public_base_under_jupyterhub(
    configured: str, env: dict[str, str], expected: str, source: str
) -> None:
    assert public_base(configured, ALICE, OWN, env) == (expected, source)


def test_template_fields_are_quoted_and_checked() -> None:
    odd = Identity(user="a b/c", server="gpu", prefix="/user/a%20b%2Fc/gpu/")
    base, _ = public_base("https://h.example/{user}/{server}/", odd, OWN, {})
    assert base == "https://h.example/a%20b%2Fc/gpu/"
    with pytest.raises(ValueError, match=r"unknown field \{username\}"):
        check_template("https://h.example/{username}/")


def test_outside_jupyterhub_the_servers_own_url_is_used() -> None:
    plain = Identity.from_env("/", env={})
    assert not plain.under_jupyterhub
    assert public_base("", plain, "http://127.0.0.1:8888/", {}) == (
        "http://127.0.0.1:8888/",
        "the server's own address",
    )


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ("http://127.0.0.1:8000/x/", "127.0.0.1"),
        ("http://[::1]:8000/", "::1"),
        ("http://10.2.3.4/", "10.2.3.4"),
        ("http://192.168.1.9/", "192.168.1.9"),
        ("http://localhost:8888/", "localhost"),
        ("http://jupyter-alice:8888/", "jupyter-alice"),
        ("http://hub.hub.svc/", "hub.hub.svc"),
        ("https://hub.example.org/", None),
        ("https://8.8.8.8/", None),
    ],
)
def test_internal_addresses(url: str, internal: str | None) -> None:
    assert internal_host(url) == internal


def test_reachability_warnings() -> None:
    assert reachability("https://hub.example.org/user/alice/hooknb/callback/", "x", ALICE) is None
    own = reachability(OWN + "hooknb/callback/", "the server's own address", ALICE)
    assert own and "loopback" in own and "changes at every spawn" in own
    assert "public_url" in own


# -- logs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST /hooknb/callback/abc?sig=S3cr3t-_x (1.2.3.4)", "?sig=[secret] (1.2.3.4)"),
        ("/cb/1?sp=run&sig=S3cr3t&x=1", "&sig=[secret]&x=1"),
        ('{"callbackUrl": "https://h/cb?sig=S3cr3t"}', '?sig=[secret]"}'),
        ("callbackUrl=https%3A%2F%2Fh%2Fcb%3Fsig%3DS3cr3t&y=2", "%3Fsig%3D[secret]&y=2"),
        ("a signature= is not a query parameter", "a signature= is not a query parameter"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    scrubbed = log_scrub.scrub(text)
    assert expected in scrubbed and "S3cr3t" not in scrubbed


def test_the_filter_scrubs_every_record_a_handler_gets(caplog: Any) -> None:
    """Messages with arguments, child loggers' records and exception texts alike."""
    logger = logging.getLogger("hooknb.test.scrub")
    handler = caplog.handler
    log_scrub.install(logging.getLogger())  # the root logger's handlers include caplog's
    try:
        with caplog.at_level(logging.INFO):
            logger.info("%d %s", 202, "POST /cb/x?sig=AAAA1111")
            logging.getLogger("hooknb.test.scrub.child").warning("GET /cb?sig=BBBB2222")
            try:
                raise RuntimeError("failed for url 'http://h/cb?sig=CCCC3333'")
            except RuntimeError:
                logger.exception("outbound call failed")
        text = caplog.text
        assert "sig=[secret]" in text
        for secret in ("AAAA1111", "BBBB2222", "CCCC3333"):
            assert secret not in text
    finally:
        for f in [f for f in handler.filters if isinstance(f, log_scrub.ScrubSignatures)]:
            handler.removeFilter(f)


# -- on a server -----------------------------------------------------------------------------


async def test_status_says_when_outside_services_cannot_reach_callback_urls(jp_fetch: Any) -> None:
    from helpers import api

    status = await api(jp_fetch, "status")
    assert status["callbackBase"] == status["publicBase"] + "hooknb/callback/"
    assert status["reachable"] is False and "is a loopback" in status["warning"]
    assert status["receiver"] is None


@pytest.mark.parametrize("hooknb_config", [{"public_url": "https://hooks.example.org{base_url}"}])
async def test_a_public_url_template(jp_fetch: Any, jp_base_url: str, hooknb_config: Any) -> None:
    from helpers import api

    status = await api(jp_fetch, "status")
    assert status["publicBase"] == f"https://hooks.example.org{jp_base_url}"
    assert status["reachable"] is True and status["warning"] is None


def test_a_receiver_needs_jupyterhub(tmp_path: Any) -> None:
    """c.HookNB.receiver_url outside JupyterHub is a configuration error, said at start."""
    from helpers import wait_for
    from processes import ServerProcess

    server = ServerProcess(tmp_path, extra_args=("--HookNB.receiver_url=https://h/services/x/",))
    try:
        # jupyter_server runs on without the failed extension: its routes never answer.
        with pytest.raises(RuntimeError, match="did not start"):
            server.start(timeout=2)
        wait_for(lambda: "c.HookNB.receiver_url needs JupyterHub" in server.log(), 60, "refusal")
    finally:
        server.stop()
    assert not server.store.exists()  # refused before anything was opened
