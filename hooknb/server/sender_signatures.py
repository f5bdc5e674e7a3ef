"""Optional sender-signature verification of callbacks: Standard Webhooks, GitHub, Stripe.

A callback URL's own signature proves the sender was given the URL; these prove the request
came from the service holding a shared secret, and carry a delivery id that makes retries and
replays idempotent. Standard Webhooks and Stripe are checked with their maintainers' own
libraries (``standardwebhooks``, ``stripe``; the ``signatures`` extra); GitHub publishes no
library, so its documented HMAC check is done here, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import jsonsafe

KINDS = ("standard-webhooks", "github", "stripe")
DEFAULT_TOLERANCE = 300  # seconds; Standard Webhooks and Stripe both use 5 minutes
_GITHUB_ID_RETENTION = 86400  # GitHub deliveries carry no timestamp; remember ids a day


class VerificationFailed(Exception):
    """The request's sender signature is missing, wrong, or too old/new."""


@dataclass(frozen=True)
class Verified:
    """A verified request: its delivery id (for idempotency) and how long to remember it."""

    delivery_id: str | None
    remember_for: float


class Verifier:
    """Checks one kind of sender signature with one secret."""

    def __init__(self, kind: str, secret: str, tolerance: int) -> None:
        self.kind = kind
        self.secret = secret
        self.tolerance = tolerance

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "secret": self.secret, "tolerance": self.tolerance}

    def describe(self) -> dict[str, Any]:
        """The configuration without its secret (for the API and logs)."""
        return {"type": self.kind, "tolerance": self.tolerance}

    def verify(self, headers: list[tuple[str, str]], body: bytes) -> Verified:
        """Raise :class:`VerificationFailed`, or return the verified delivery id."""
        lowered = {name.lower(): value for name, value in headers}
        try:
            if self.kind == "standard-webhooks":
                return self._standard(lowered, body)
            if self.kind == "github":
                return self._github(lowered, body)
            return self._stripe(lowered, body)
        except VerificationFailed:
            raise
        except Exception as exc:
            # The libraries raise assorted errors on malformed headers; all mean "not verified".
            reason = f"malformed signature headers ({type(exc).__name__})"
            raise VerificationFailed(reason) from None

    def _standard(self, headers: Mapping[str, str], body: bytes) -> Verified:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(self.secret).verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as exc:
            raise VerificationFailed(str(exc)) from None
        # The library's tolerance is fixed at 5 minutes; ids are kept a little longer than that.
        return Verified(headers["webhook-id"], 2 * DEFAULT_TOLERANCE)

    def _github(self, headers: Mapping[str, str], body: bytes) -> Verified:
        given = headers.get("x-hub-signature-256", "")
        if not given.startswith("sha256="):
            raise VerificationFailed("missing X-Hub-Signature-256 header")
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), given.encode("ascii", "replace")):
            raise VerificationFailed("X-Hub-Signature-256 does not match")
        return Verified(headers.get("x-github-delivery"), _GITHUB_ID_RETENTION)

    def _stripe(self, headers: Mapping[str, str], body: bytes) -> Verified:
        stripe_webhook = importlib.import_module("stripe._webhook")
        stripe_error = importlib.import_module("stripe._error")
        try:
            stripe_webhook.WebhookSignature.verify_header(
                body, headers.get("stripe-signature"), self.secret, self.tolerance
            )
        except stripe_error.SignatureVerificationError as exc:
            reason = exc.user_message or "Stripe-Signature does not match"
            raise VerificationFailed(reason) from None
        event_id = None
        try:
            event = jsonsafe.loads(body)
            if isinstance(event, dict) and isinstance(event.get("id"), str):
                event_id = event["id"]
        except ValueError:
            pass
        return Verified(event_id, 2 * self.tolerance)


def make_verifier(config: Any) -> Verifier | None:
    """Validate a ``verify`` setting (``None`` for none); raise ValueError naming what is wrong."""
    if config is None or config == {}:
        return None
    if not isinstance(config, Mapping):
        raise ValueError("verify must be an object like {'type': 'github', 'secret': '...'}")
    unknown = set(config) - {"type", "secret", "tolerance"}
    if unknown:
        raise ValueError(f"verify: unknown field(s) {', '.join(sorted(unknown))}")
    kind = str(config.get("type", "")).lower().replace("_", "-").replace(" ", "-")
    if kind in ("standardwebhooks", "standard"):
        kind = "standard-webhooks"
    if kind not in KINDS:
        raise ValueError(f"verify.type: {config.get('type')!r} is not one of {', '.join(KINDS)}")
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ValueError("verify.secret is required (a non-empty string)")
    tolerance = config.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tolerance, int) or isinstance(tolerance, bool) or not 1 <= tolerance <= 86400:
        raise ValueError("verify.tolerance must be a number of seconds between 1 and 86400")
    if kind == "standard-webhooks" and tolerance != DEFAULT_TOLERANCE:
        raise ValueError("verify.tolerance: Standard Webhooks' tolerance is fixed at 300 seconds")
    module = {"standard-webhooks": "standardwebhooks", "stripe": "stripe"}.get(kind)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(
                f"verify.type {kind!r} needs the {module!r} package:"
                " pip install 'hooknb[signatures]'"
            ) from None
    if kind == "standard-webhooks":
        from standardwebhooks.webhooks import Webhook

        try:
            Webhook(secret)
        except Exception:
            raise ValueError(
                "verify.secret is not a Standard Webhooks secret (whsec_<base64>)"
            ) from None
    return Verifier(kind, secret, tolerance)
