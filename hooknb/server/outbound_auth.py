"""Credentials for outbound subscribe/unsubscribe calls: Basic and Raw headers, client
certificates, Microsoft Entra ID and managed identity tokens (the Logic Apps authentication types,
validated by :mod:`hooknb.http_model.authentication`).

Secrets arrive in plain text inside the request spec (Logic Apps takes them from secure
parameters). Nothing in this module logs them, writes them to disk unencrypted, or puts them in
an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import secrets
import ssl
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

__all__ = [
    "AuthError",
    "LoadedPfx",
    "TokenProvider",
    "aad_client_assertion",
    "basic_header",
    "client_cert_ssl_context",
    "load_pfx",
    "make_verify_context",
]

# Refresh cached tokens this long before they expire.
TOKEN_REFRESH_MARGIN = 300.0

# Azure VM instance metadata service; used only when HOOKNB_MSI_IMDS=1 (never probed otherwise:
# a request to a link-local address can hang for the whole timeout where it does not exist).
_IMDS_URL = "http://169.254.169.254/metadata/identity/oauth2/token"


class AuthError(Exception):
    """Credentials could not be obtained. ``transient`` errors may succeed on a retry."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class LoadedPfx:
    """The parts of a PKCS#12 bundle we use."""

    key: Any  # a cryptography private key
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def x5t(self) -> str:
        """Base64url SHA-1 thumbprint of the certificate (JWT ``x5t`` header)."""
        digest = self.cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is defined as SHA-1
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pfx_cache_key(pfx: str, password: str | None) -> str:
    """A digest identifying one certificate+password (never the secrets themselves)."""
    return hashlib.sha256(f"{pfx}\0{password or ''}".encode()).hexdigest()


def load_pfx(pfx_b64: str, password: str | None, what: str = "pfx") -> LoadedPfx:
    """Decode and open a base64 PKCS#12 bundle; AuthError with a clear reason on failure."""
    try:
        data = base64.b64decode("".join(pfx_b64.split()), validate=True)
    except (ValueError, TypeError):
        raise AuthError(f"{what}: not valid base64 (expected a base64-encoded PFX)") from None
    # An absent password and an empty one are different things in PKCS#12; exports from tools
    # that say "no password" use either, so try both.
    candidates = [password.encode()] if password else [None, b""]
    for candidate in candidates:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, candidate)
        except ValueError:
            continue  # cryptography's message is vague ("Invalid password or PKCS12 data")
        if key is None or cert is None:
            raise AuthError(f"{what}: the PFX holds no private key and certificate pair")
        return LoadedPfx(key, cert, tuple(extra or ()))
    reason = "wrong password" if password else "a password is needed"
    raise AuthError(f"{what}: could not open the PFX ({reason}, or the data is not a PKCS#12 file)")


def make_verify_context(verify: bool | str) -> ssl.SSLContext:
    """An SSLContext that verifies servers like httpx does (``verify`` = bool or CA path)."""
    if verify is True:
        return httpx.create_ssl_context(verify=True, trust_env=True)
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path holding ``data`` that lives as briefly as possible and is readable only by us.

    On Linux an anonymous memory file (memfd) is used, so nothing touches the disk at all;
    elsewhere a 0600 temporary file that is removed right after use.
    """
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd("hooknb-client-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="hooknb-", suffix=".pem")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def client_cert_ssl_context(pfx: LoadedPfx, verify: bool | str) -> ssl.SSLContext:
    """An SSLContext presenting ``pfx`` as the TLS client certificate.

    ``load_cert_chain`` only reads files, so the key is written encrypted with a random
    one-time password (see :func:`_private_file`); the plain key never leaves memory.
    """
    ctx = make_verify_context(verify)
    one_time = secrets.token_urlsafe(32).encode()
    pem = pfx.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    for cert in (pfx.cert, *pfx.chain):
        pem += cert.public_bytes(serialization.Encoding.PEM)
    try:
        with _private_file(pem) as path:
            ctx.load_cert_chain(path, password=one_time)
    except (ssl.SSLError, OSError) as exc:
        raise AuthError(f"the client certificate could not be loaded into TLS: {exc}") from None
    return ctx


def aad_client_assertion(pfx: LoadedPfx, client_id: str, token_url: str) -> str:
    """The RS256 JWT that proves possession of the certificate to Azure AD."""
    if not isinstance(pfx.key, rsa.RSAPrivateKey):
        raise AuthError("ActiveDirectoryOAuth certificate: Azure AD needs an RSA key in the PFX")
    now = int(time.time())
    claims = {
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, pfx.key, algorithm="RS256", headers={"x5t": pfx.x5t})


# --------------------------------------------------------------------------- tokens


@dataclass
class _CachedToken:
    token: str
    refresh_at: float  # time.time() after which we fetch a new one


def _expiry(payload: Mapping[str, Any], now: float) -> float | None:
    """Absolute expiry (epoch s) from ``expires_on`` (epoch or MSI 2017 date) or ``expires_in``."""
    expires_on = payload.get("expires_on")
    if expires_on is not None:
        try:
            return float(expires_on)
        except (TypeError, ValueError):
            pass
        with contextlib.suppress(TypeError, ValueError):
            # MSI api-version 2017-09-01: "09/14/2017 00:00:00 PM +00:00"
            return datetime.strptime(str(expires_on), "%m/%d/%Y %I:%M:%S %p %z").timestamp()
    expires_in = payload.get("expires_in")
    if expires_in is not None:
        with contextlib.suppress(TypeError, ValueError):
            return now + float(expires_in)
    return None


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class TokenProvider:
    """Fetches and caches bearer tokens for ActiveDirectoryOAuth and ManagedServiceIdentity."""

    timeout: float = 120.0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    _cache: dict[tuple[str, ...], _CachedToken] = field(default_factory=dict)
    _locks: dict[tuple[str, ...], asyncio.Lock] = field(default_factory=dict)

    def clear(self) -> None:
        self._cache.clear()

    async def _cached(
        self, key: tuple[str, ...], fetch: Callable[[], Awaitable[tuple[str, float | None]]]
    ) -> str:
        # One fetch per key at a time: concurrent calls wait for the first token.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is not None and time.time() < hit.refresh_at:
                return hit.token
            token, expires_at = await fetch()
            self.log.debug(
                "hooknb: got a %s token (expires in %s s)",
                key[0],
                "?" if expires_at is None else round(expires_at - time.time()),
            )
            if expires_at is not None and expires_at - TOKEN_REFRESH_MARGIN > time.time():
                self._cache[key] = _CachedToken(token, expires_at - TOKEN_REFRESH_MARGIN)
            else:
                self._cache.pop(key, None)
            return token

    async def _token_request(
        self, client: httpx.AsyncClient, label: str, method: str, url: str, **kwargs: Any
    ) -> tuple[str, float | None]:
        """Perform a token request; AuthError (transient when worth retrying) on failure."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.request(method, url, timeout=self.timeout, **kwargs)
        except (TimeoutError, httpx.TimeoutException):
            raise AuthError(f"{label}: the token request timed out", transient=True) from None
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            raise AuthError(f"{label}: token request failed: {detail}", transient=True) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        status = response.status_code
        if not 200 <= status <= 299 or not isinstance(payload.get("access_token"), str):
            error = payload.get("error")
            if isinstance(error, dict):  # MSI endpoints nest it: {"error": {"code", "message"}}
                description = error.get("message", "")
                error = error.get("code")
            else:
                description = payload.get("error_description", "")
            if error or description:
                reason = f"{error}: {_first_line(str(description))}" if description else error
            elif 200 <= status <= 299:
                reason = "the response holds no access_token"
            else:
                reason = _first_line(response.text, 200) or response.reason_phrase
            transient = status in (408, 429) or status >= 500
            raise AuthError(f"{label}: HTTP {status}: {reason}", transient=transient)
        return payload["access_token"], _expiry(payload, time.time())

    async def aad_token(
        self,
        client: httpx.AsyncClient,
        auth: Mapping[str, Any],
    ) -> str:
        """A client-credentials token from Azure AD v1 (``{authority}/{tenant}/oauth2/token``)."""
        token_url = f"{auth['authority'].rstrip('/')}/{quote(auth['tenant'], safe='')}/oauth2/token"
        cert = auth["credentialType"] == "Certificate"
        credential = pfx_cache_key(auth["pfx"], auth.get("password")) if cert else auth["secret"]
        # The credential's digest is part of the key so a token obtained with one secret is
        # never handed to a spec that carries a different (say, wrong) one.
        key = (
            "aad",
            auth["authority"].rstrip("/").lower(),
            auth["tenant"].lower(),
            auth["clientId"],
            auth["audience"],
            hashlib.sha256(credential.encode()).hexdigest(),
        )
        label = f"ActiveDirectoryOAuth token for client {auth['clientId']} from {token_url}"

        async def fetch() -> tuple[str, float | None]:
            form = {
                "grant_type": "client_credentials",
                "client_id": auth["clientId"],
                "resource": auth["audience"],
            }
            if cert:
                pfx = load_pfx(auth["pfx"], auth.get("password"), "ActiveDirectoryOAuth pfx")
                form["client_assertion_type"] = (
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                )
                form["client_assertion"] = aad_client_assertion(pfx, auth["clientId"], token_url)
            else:
                form["client_secret"] = auth["secret"]
            return await self._token_request(
                client, label, "POST", token_url, data=form, headers={"Accept": "application/json"}
            )

        return await self._cached(key, fetch)

    async def msi_token(self, client: httpx.AsyncClient, auth: Mapping[str, Any]) -> str:
        """A managed-identity token from the endpoint the hosting environment provides."""
        audience = auth["audience"]
        identity = auth.get("identity")
        url, params, headers = _msi_endpoint(audience, identity)
        key = ("msi", url, audience, identity or "")
        label = f"ManagedServiceIdentity token for {audience} from {url}"

        async def fetch() -> tuple[str, float | None]:
            return await self._token_request(
                client, label, "GET", url, params=params, headers=headers
            )

        return await self._cached(key, fetch)


def _msi_endpoint(
    audience: str, identity: str | None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """Where and how to ask for a managed-identity token in this environment."""
    env = os.environ
    if env.get("IDENTITY_ENDPOINT") and env.get("IDENTITY_HEADER"):
        # App Service / Functions / Container Apps (api-version 2019-08-01)
        params = {"resource": audience, "api-version": "2019-08-01"}
        if identity:
            params["mi_res_id"] = identity
        return env["IDENTITY_ENDPOINT"], params, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
    if env.get("MSI_ENDPOINT") and env.get("MSI_SECRET"):
        # Older App Service (2017-09-01) only knows user-assigned identities by client id.
        if identity:
            raise AuthError(
                "ManagedServiceIdentity: a user-assigned identity given by resource id needs "
                "IDENTITY_ENDPOINT/IDENTITY_HEADER; this environment only has the older "
                "MSI_ENDPOINT/MSI_SECRET"
            )
        params = {"resource": audience, "api-version": "2017-09-01"}
        return env["MSI_ENDPOINT"], params, {"Secret": env["MSI_SECRET"]}
    if env.get("HOOKNB_MSI_IMDS", "").strip().lower() in ("1", "true", "yes"):
        params = {"resource": audience, "api-version": "2018-02-01"}
        if identity:
            params["mi_res_id"] = identity
        return _IMDS_URL, params, {"Metadata": "true"}
    raise AuthError(
        "ManagedServiceIdentity: no managed identity endpoint is available in this environment "
        "(neither IDENTITY_ENDPOINT/IDENTITY_HEADER nor MSI_ENDPOINT/MSI_SECRET is set; on an "
        "Azure VM set HOOKNB_MSI_IMDS=1 to use the instance metadata service)"
    )
