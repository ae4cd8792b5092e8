"""Credentials for the NATS login tests, made on the spot: nkey pairs, a decentralised-auth
setup (operator, account and user JWTs, a ``.creds`` file), and a private CA with a server
and a client certificate (with the ``cryptography`` package, else the ``openssl`` tool)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys


def nkey(prefix: int) -> tuple[str, str]:
    """A fresh nkey pair: ``(seed, public key)``; ``prefix`` is an ``nkeys.PREFIX_BYTE_*``."""
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed.decode(), pair.public_key.decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(issuer_seed: str, subject: str, name: str, nats: dict[str, Any]) -> str:
    issuer = nkeys.from_seed(bytearray(issuer_seed.encode()))
    claims: dict[str, Any] = {
        "jti": "",
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = issuer.sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{_b64(signature)}"


def operator_setup(directory: Path) -> tuple[str, Path]:
    """A nats-server configuration for decentralised auth (an operator, one account with
    JetStream, a memory resolver) and a ``.creds`` file of a user of that account."""
    op_seed, op_pub = nkey(nkeys.PREFIX_BYTE_OPERATOR)
    acc_seed, acc_pub = nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user_pub = nkey(nkeys.PREFIX_BYTE_USER)
    unlimited = {"subs": -1, "data": -1, "payload": -1, "conn": -1, "leaf": -1}
    jetstream = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    operator_jwt = _jwt(op_seed, op_pub, "genevent-test", {"type": "operator"})
    account_jwt = _jwt(
        op_seed,
        acc_pub,
        "app",
        {
            "type": "account",
            "limits": {**unlimited, "imports": -1, "exports": -1, "wildcards": True, **jetstream},
            "default_permissions": {"pub": {}, "sub": {}},
        },
    )
    user_jwt = _jwt(acc_seed, user_pub, "me", {"type": "user", "pub": {}, "sub": {}, **unlimited})
    _, sys_pub = nkey(nkeys.PREFIX_BYTE_ACCOUNT)  # JetStream wants a system account
    system_jwt = _jwt(op_seed, sys_pub, "SYS", {"type": "account", "limits": unlimited})
    creds = directory / "me.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n"
    )
    config = (
        f"operator: {operator_jwt}\n"
        f"system_account: {sys_pub}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{\n  {acc_pub}: {account_jwt}\n  {sys_pub}: {system_jwt}\n}}\n"
    )
    return config, creds


@dataclass(frozen=True)
class Certificates:
    """PEM files: the private CA, the server's certificate (for 127.0.0.1) and a client's."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates | str:
    """A private CA and two certificates in ``directory``, or why they cannot be made here."""
    try:
        import cryptography  # noqa: F401, PLC0415 - optional: the openssl tool otherwise
    except ImportError:
        if shutil.which("openssl") is None:
            return "neither the cryptography package nor the openssl tool is available"
        return _with_openssl(directory)
    return _with_cryptography(directory)


def _with_cryptography(directory: Path) -> Certificates:
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)

    def write_key(key: Any, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("genevent test CA"))
        .issuer_name(name("genevent test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(common: str, usage: Any, stem: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        )
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, directory / f"{stem}-key.pem")

    leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, "server")
    leaf("genevent test client", ExtendedKeyUsageOID.CLIENT_AUTH, "client")
    return _files(directory)


def _with_openssl(directory: Path) -> Certificates:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        "req", "-x509", *new_key, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=genevent test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for stem, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        (directory / f"{stem}.ext").write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            f"extendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"
        )
        run(
            "req", "-new", *new_key, "-keyout", f"{stem}-key.pem", "-subj", f"/CN={stem}",
            "-out", f"{stem}.csr",
        )  # fmt: skip
        run(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "1", "-extfile", f"{stem}.ext", "-out", f"{stem}.pem",
        )  # fmt: skip
    return _files(directory)


def _files(directory: Path) -> Certificates:
    return Certificates(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
