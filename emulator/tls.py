"""TLS material for the emulator: a private CA and a server certificate it signs.

Owns: creating (once per state dir) a CA key + certificate and a server certificate
whose SANs are IP 127.0.0.1 and DNS localhost (plus any extra host asked for), and
building the server-side ``ssl.SSLContext``. Invariant: ``ca.pem`` under the state dir
is the exact CA that signed the certificate being served, so clients can pass it as
their CA bundle (``verify=ca_bundle``).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """Paths of the PEM files written under the state directory."""

    ca_cert: str
    server_cert: str
    server_key: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Outlook Sync emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write(path: str, data: bytes, private: bool = False) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
    if private:
        os.chmod(path, 0o600)


def _sans(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    if host not in ("127.0.0.1", "localhost", "", "0.0.0.0"):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def ensure_tls(state_dir: str, host: str = "127.0.0.1") -> TlsMaterial:
    """Create (or reuse) the CA and the server certificate under ``state_dir/tls``."""
    tls_dir = os.path.join(state_dir, "tls")
    os.makedirs(tls_dir, exist_ok=True)
    material = TlsMaterial(
        ca_cert=os.path.join(tls_dir, "ca.pem"),
        server_cert=os.path.join(tls_dir, "server.pem"),
        server_key=os.path.join(tls_dir, "server-key.pem"),
    )
    if all(os.path.exists(p) for p in (material.ca_cert, material.server_cert, material.server_key)):
        return material

    now = _dt.datetime.now(_dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Outlook Sync emulator local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(_sans(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(material.server_key, key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), private=True)
    _write(material.server_cert, cert.public_bytes(pem))
    _write(material.ca_cert, ca_cert.public_bytes(pem))
    return material


def server_context(material: TlsMaterial) -> ssl.SSLContext:
    """The server-side TLS context serving ``material``'s certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(material.server_cert, material.server_key)
    return ctx
