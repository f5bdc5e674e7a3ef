"""``hooknb.jupyterhub.configure(c)`` on a real traitlets config, as jupyterhub_config.py has it."""

from __future__ import annotations

import sys

import pytest
from traitlets.config import Config

import hooknb.jupyterhub


def test_defaults_work_on_one_machine() -> None:
    c = Config()
    c.JupyterHub.bind_url = "http://:8000/jhub/"
    c.JupyterHub.services = [{"name": "other", "api_token": "x"}]
    c.Spawner.environment = {"KEEP": "me"}
    hooknb.jupyterhub.configure(c)

    other, service = c.JupyterHub.services
    assert other["name"] == "other"
    assert service["name"] == "hooknb" and service["url"] == "http://127.0.0.1:8766"
    assert service["command"] == [sys.executable, "-m", "hooknb.jupyterhub"]
    env = service["environment"]
    assert env["HOOKNB_RECEIVER_DB"].startswith("sqlite:////")
    assert env["HOOKNB_PROXY_URL"] == "http://127.0.0.1:8000/"
    assert "HOOKNB_START_SERVERS" not in env
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["hooknb"]
    # Forwarding needs access to users' servers, never admin, and starting them only if asked.
    assert sorted(role["scopes"]) == ["access:servers", "read:servers", "read:users:name"]
    assert c.Spawner.environment["KEEP"] == "me"
    assert callable(c.Spawner.environment["HOOKNB_RECEIVER_URL"])  # resolved at each spawn
    assert "HOOKNB_KEEP_ALIVE" not in c.Spawner.environment
    console = c.JupyterHub.logging_config["handlers"]["console"]
    assert console["filters"] == ["hooknb_scrub"]


def test_options() -> None:
    c = Config()
    c.JupyterHub.logging_config = {"handlers": {"console": {"filters": ["mine"]}}}
    hooknb.jupyterhub.configure(
        c,
        name="hooks",
        db_url="postgresql://hooknb@db/hooknb",
        public_url="https://hub.example.org/services/hooks",
        proxy_url="http://proxy-public/",
        start_servers=True,
        keep_alive_while_waiting=True,
        managed=False,
        api_token="shared-by-replicas",
        url="http://hooks-lb:8766",
    )
    (service,) = c.JupyterHub.services
    assert "command" not in service and service["api_token"] == "shared-by-replicas"
    assert service["environment"]["HOOKNB_START_SERVERS"] == "1"
    assert "servers" in c.JupyterHub.load_roles[0]["scopes"]
    env = c.Spawner.environment
    assert env["HOOKNB_RECEIVER_URL"] == "https://hub.example.org/services/hooks/"
    assert env["HOOKNB_KEEP_ALIVE"] == "1"
    assert c.JupyterHub.logging_config["handlers"]["console"]["filters"] == [
        "mine",
        "hooknb_scrub",
    ]


def test_replicas_run_elsewhere_need_a_shared_token() -> None:
    with pytest.raises(ValueError, match="api_token"):
        hooknb.jupyterhub.configure(Config(), managed=False)
