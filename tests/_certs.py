"""Test PKI: a throw-away CA, a loopback server certificate and client certificates (PFX)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*objs: object) -> bytes:
    out = b""
    for obj in objs:
        if isinstance(obj, x509.Certificate):
            out += obj.public_bytes(serialization.Encoding.PEM)
        else:
            out += obj.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    return out


@dataclass
class ClientIdentity:
    """A client certificate as Logic Apps takes it: base64 PFX + password."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    pfx_b64: str
    password: str | None


@dataclass
class PKI:
    """Files and identities for TLS tests; ``ca_path`` is what the client trusts."""

    ca_path: str
    server_chain_path: str  # server cert + key, for load_cert_chain
    client: ClientIdentity  # issued by the test CA
    client_no_password: ClientIdentity
    stranger: ClientIdentity  # issued by a different CA the server does not trust

    def server_context(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_chain_path)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_path)
        return ctx


def _client(
    cn: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey, password: str | None
) -> ClientIdentity:
    # RSA because Azure AD client assertions are RS256.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert(cn, key, issuer, issuer_key, client=True)
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    pfx = pkcs12.serialize_key_and_certificates(cn.encode(), key, cert, None, encryption)
    return ClientIdentity(key, cert, base64.b64encode(pfx).decode("ascii"), password)


def make_pki(directory: Path) -> PKI:
    """Generate everything under ``directory`` (EC keys where RSA is not needed: faster)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("hooknb test CA")
    ca_cert = _cert("hooknb test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _cert("127.0.0.1", server_key, ca_name, ca_key, server=True)

    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = _name("some other CA")

    ca_path = directory / "ca.pem"
    ca_path.write_bytes(_pem(ca_cert))
    chain_path = directory / "server.pem"
    chain_path.write_bytes(_pem(server_key, server_cert))
    return PKI(
        ca_path=str(ca_path),
        server_chain_path=str(chain_path),
        client=_client("hooknb-test-client", ca_name, ca_key, "pfx-pässword"),
        client_no_password=_client("hooknb-test-client-2", ca_name, ca_key, None),
        stranger=_client("stranger", other_name, other_key, "x"),
    )
