"""A certificate authority made per test and a CONNECT proxy on loopback (the HTTP fence)."""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertAuthority:
    """A certificate authority made for one test, and a server certificate it signed."""

    ca_cert: Path  # the bundle a client trusts (pip's `cert`)
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(directory: Path, label: str) -> CertAuthority:
    """A CA (``label``) and a certificate for 127.0.0.1 and localhost that it signed."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"wheelhouse test CA {label}"))
        .issuer_name(_name(f"wheelhouse test CA {label}"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = CertAuthority(
        ca_cert=directory / f"{label}-ca.pem",
        server_cert=directory / f"{label}-server.pem",
        server_key=directory / f"{label}-server.key",
    )
    found.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    found.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


@dataclass
class ProxyLog:
    """What the proxy was asked: (method, target, Proxy-Authorization) per request."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    # When set, a request without exactly this Proxy-Authorization is answered 407.
    required_auth: str | None = None


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    log: ProxyLog


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy (absolute-URL GETs) and a CONNECT tunnel, to loopback only."""

    server: _ProxyServer
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _admitted(self) -> bool:
        auth = self.headers.get("Proxy-Authorization")
        self.server.log.requests.append((self.command, self.path, auth))
        required = self.server.log.required_auth
        if required is not None and auth != required:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def _loopback(self, host: str | None) -> bool:
        # The proxy must never reach past this machine, whatever a test gets wrong.
        if host not in ("127.0.0.1", "localhost"):
            self.send_error(403, "this test proxy only reaches loopback")
            return False
        return True

    def do_CONNECT(self) -> None:
        if not self._admitted():
            return
        host, _, port = self.path.rpartition(":")
        if not self._loopback(host):
            return
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            _relay(self.connection, upstream)

    def do_GET(self) -> None:
        if not self._admitted():
            return
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not self._loopback(parts.hostname):
            self.send_error(400, "absolute http:// URL to loopback expected")
            return
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as upstream:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = "".join(
                f"{k}: {v}\r\n"
                for k, v in self.headers.items()
                if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")
            )
            upstream.sendall(
                f"GET {target} HTTP/1.0\r\n{headers}Connection: close\r\n\r\n".encode("latin-1")
            )
            self.close_connection = True
            while chunk := upstream.recv(65536):
                self.wfile.write(chunk)


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 10)
        if broken or not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (upstream if sock is client else client).sendall(data)


@dataclass(frozen=True)
class Proxy:
    """A proxy on 127.0.0.1 (``url``), and what it was asked."""

    url: str
    log: ProxyLog
