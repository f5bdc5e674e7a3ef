"""Callback-URL capabilities: random ids signed with server keys kept in the store.

A callback URL is ``<public base>hooknb/callback/<id>?sig=<signature>``: the id is 128 random
bits, the signature an HMAC-SHA256 of the id under one of the server's two access keys
(primary and secondary, as Logic Apps has). The Jupyter token never appears in a callback URL,
and a URL grants nothing but posting to its own callback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Mapping

KEY_TYPES = ("primary", "secondary")
_SIGNED_PREFIX = b"hooknb-callback-v1:"


def normalize_key_type(value: object) -> str:
    """``'Primary'``/``'Secondary'`` (Logic Apps' accessKeyType, any case) to a key type."""
    key_type = str(value or "primary").lower()
    if key_type not in KEY_TYPES:
        raise ValueError(f"access key type must be Primary or Secondary, got {value!r}")
    return key_type


def new_callback_id() -> str:
    """An unguessable callback id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Signer:
    """Signs and verifies callback ids with the store's access keys."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = dict(keys)
        # Keyed HMAC states with the prefix already absorbed: each signature is a copy + update
        # (the callback path checks two of them per request).
        self._macs = {key_type: self._keyed(value) for key_type, value in self._keys.items()}

    @staticmethod
    def _keyed(key: bytes) -> hmac.HMAC:
        return hmac.new(key, _SIGNED_PREFIX, "sha256")

    @classmethod
    def load_or_create(cls, conn: sqlite3.Connection) -> Signer:
        """Read the keys from the ``meta`` table, creating missing ones (writer connection)."""
        keys: dict[str, bytes] = {}
        for key_type in KEY_TYPES:
            name = f"key:{key_type}"
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            if row is None:
                value = secrets.token_bytes(32)
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (name, value))
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (f"{name}:created", time.time()),
                )
            else:
                value = bytes(row[0])
            keys[key_type] = value
        return cls(keys)

    @staticmethod
    def regenerate(conn: sqlite3.Connection, key_type: str) -> bytes:
        """Replace one access key (writer connection); URLs signed with the old one stop working."""
        if key_type not in KEY_TYPES:
            raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}, got {key_type!r}")
        value = secrets.token_bytes(32)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"key:{key_type}", value)
        )
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (f"key:{key_type}:created", time.time()),
        )
        return value

    def export(self) -> dict[str, str]:
        """The key values, base64url: only for a hooknb receiver that checks this server's
        signatures on its behalf (:mod:`hooknb.server.receiver_link`)."""
        return {key_type: _b64(value) for key_type, value in self._keys.items()}

    @classmethod
    def from_export(cls, keys: Mapping[str, object]) -> Signer:
        """A signer with the keys of :meth:`export`; ValueError if they are malformed."""
        if not isinstance(keys, Mapping) or set(keys) != set(KEY_TYPES):
            raise ValueError(f"keys must be an object with {' and '.join(KEY_TYPES)}")
        decoded = {}
        for key_type, text in keys.items():
            if not isinstance(text, str) or not 40 <= len(text) <= 90:
                raise ValueError(f"the {key_type} key must be 32 to 64 bytes in base64url")
            try:
                value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except ValueError:
                raise ValueError(f"the {key_type} key is not base64url") from None
            if not 32 <= len(value) <= 64:
                raise ValueError(f"the {key_type} key must be 32 to 64 bytes in base64url")
            decoded[key_type] = value
        return cls(decoded)

    def replace_key(self, key_type: str, value: bytes) -> None:
        """Use a regenerated key from now on."""
        self._keys[key_type] = value
        self._macs[key_type] = self._keyed(value)

    def sign(self, callback_id: str, key_type: str = "primary") -> str:
        """The signature of ``callback_id`` under the given access key."""
        return _b64(self._digest(callback_id, key_type))

    def _digest(self, callback_id: str, key_type: str) -> bytes:
        mac = self._macs[key_type].copy()
        mac.update(callback_id.encode())
        return mac.digest()

    def verify(self, callback_id: str, signature: str) -> bool:
        """Whether ``signature`` is valid for ``callback_id`` under either access key.

        Both keys are always checked, with constant-time comparisons, so timing does not tell
        which key (if any) matched.
        """
        if not signature or len(signature) > 128:
            return False
        # The canonical text is compared (not decoded bytes: lenient base64 decoding would
        # accept many spellings of one signature).
        given = signature.encode("ascii", "replace")
        matched = False
        for key_type in KEY_TYPES:
            expected = _b64(self._digest(callback_id, key_type)).encode("ascii")
            matched |= hmac.compare_digest(expected, given)
        return matched


def fingerprint(body: bytes, headers: list[tuple[str, str]]) -> str:
    """Identity of a callback request for duplicate detection: body plus end-to-end headers.

    Transport headers that a retrying sender or a proxy may change (``Host``,
    ``Content-Length``, ``Date``, ``X-Forwarded-*`` ...) are left out.
    """
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(body).digest())
    for name, value in sorted((n.lower(), v) for n, v in headers):
        if name in _HOP_HEADERS or name.startswith("x-forwarded-"):
            continue
        digest.update(name.encode("latin-1", "replace") + b"\x00")
        digest.update(value.encode("latin-1", "replace") + b"\x00")
    return digest.hexdigest()


_HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
        "te",
        "date",
        "accept-encoding",
        "forwarded",
        "via",
        "x-real-ip",
    }
)
