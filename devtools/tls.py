"""A TLS terminator that demands client certificates, and the throwaway PKI it uses.

Temporal's dev server speaks plaintext gRPC only, so tests of relayflow's
Temporal TLS settings put nginx (Debian's ``nginx-light``, installed by
``make tls-tools``) in front of it: nginx ends the TLS session, requires a
client certificate signed by our CA, and passes the calls on as plaintext
HTTP/2 (``grpc_pass``), the way a TLS-terminating load balancer in front of a
Temporal frontend does.

Why not stunnel: the SDK's client (tonic over rustls) refuses a TLS session
that did not negotiate ALPN ``h2`` (``H2NotNegotiated``), and Debian's stunnel
(5.68) negotiates no ALPN. nginx's ``listen ... ssl http2`` does.

The certificates are made with ``cryptography``: a CA, a server certificate
for ``localhost`` and ``127.0.0.1``, a client certificate from the same CA, and
one from a second CA the terminator does not trust.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relayflow.devstack import free_port
from relayflow.devstack.process import port_open

__all__ = ["NGINX", "CertificateAuthority", "Credentials", "Pki", "TlsTerminator", "make_pki"]

NGINX = "nginx"
SERVER_NAME = "localhost"
"""The name the server certificate is issued to (with the address 127.0.0.1)."""
_VALID = dt.timedelta(days=2)


class TerminatorError(RuntimeError):
    """nginx is missing or did not start."""


@dataclass(frozen=True)
class Credentials:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


class CertificateAuthority:
    """A throwaway CA that issues short-lived certificates into ``folder``.

    Args:
        folder: Where its certificate (``<name>.crt``) and what it issues go.
        name: Its common name and file stem.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self._folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self.cert = folder / f"{name}.crt"
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256()))
        self.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> Credentials:
        """A certificate for ``name``: a server's (``localhost``, ``127.0.0.1``) or a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName(SERVER_NAME), x509.IPAddress(IPv4Address("127.0.0.1"))]),
                critical=False)
        credentials = Credentials(self._folder / f"{name}.crt", self._folder / f"{name}.key")
        credentials.cert.write_bytes(
            builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        credentials.key.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        credentials.key.chmod(0o600)
        return credentials


@dataclass(frozen=True)
class Pki:
    """What a TLS test needs: the CA, the server's and a client's credentials, and a stranger's.

    Attributes:
        ca: The CA's certificate (the client's ``server_root_ca_cert``, the terminator's).
        server: The terminator's certificate, for ``localhost`` and ``127.0.0.1``.
        client: A client certificate the terminator trusts.
        stranger: A client certificate from another CA, which the terminator refuses.
        other_ca: That other CA's certificate, which did not sign the server's.
    """

    ca: Path
    server: Credentials
    client: Credentials
    stranger: Credentials
    other_ca: Path


def make_pki(folder: Path) -> Pki:
    """Generate a CA with server and client certificates, and a foreign client's, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(folder, "relayflow-test-ca")
    other = CertificateAuthority(folder, "someone-elses-ca")
    return Pki(ca=ca.cert, server=ca.issue("temporal-frontend", server=True),
               client=ca.issue("relayflow-client", server=False),
               stranger=other.issue("stranger-client", server=False), other_ca=other.cert)


def _nginx_binary() -> str:
    found = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin")
    if found is None:
        raise TerminatorError("nginx is missing: `make tls-tools` installs it "
                              "(apt-get install nginx-light)")
    return found


# Refusals are answered the gRPC way, UNAUTHENTICATED, as nginx documents for gRPC
# errors (HTTP's 400 page would reach the client as a protocol error): 495 and 496 for
# a client certificate that is not trusted or missing, 401 for a wrong API key.
_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx.log info;
events {{ worker_connections 1024; }}
http {{
    log_format calls '$ssl_client_s_dn $request_uri $status';
    access_log {folder}/access.log calls;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client {verify_client};
        client_max_body_size 0;
        keepalive_requests 1000000;
        # Temporal's long polls last up to about 70 s.
        grpc_read_timeout 300s;
        grpc_send_timeout 300s;
        error_page 495 496 = /client-certificate-refused;
        error_page 401 = /api-key-refused;
        location / {{
            {key_check}
            grpc_pass grpc://{upstream};
        }}
        location = /client-certificate-refused {{
            internal;
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "client certificate missing or not trusted" always;
            return 204;
        }}
        location = /api-key-refused {{
            internal;
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "API key missing or not valid" always;
            return 204;
        }}
    }}
}}
"""


class TlsTerminator:
    """nginx listening with TLS on a free port, forwarding plaintext gRPC to ``upstream``.

    It requires a client certificate signed by ``pki.ca`` (mTLS), or, given
    ``api_key``, that key as ``authorization: Bearer <key>`` instead (Temporal
    Cloud's two ways). Its access log (``access.log``) has a line per call: the
    client certificate's subject, the method, the HTTP status. Stopped (by pid)
    on exit.

    Args:
        pki: The certificates (``make_pki``).
        upstream: ``host:port`` of the plaintext gRPC service.
        folder: Where its configuration and logs go.
        api_key: Demand this API key rather than a client certificate.
    """

    def __init__(self, pki: Pki, upstream: str, folder: Path, *,
                 api_key: str | None = None) -> None:
        self._binary = _nginx_binary()
        self.port = free_port()
        self.folder = folder
        self.log = folder / "nginx.log"
        self._config = folder / "nginx.conf"
        folder.mkdir(parents=True, exist_ok=True)
        self._config.write_text(_CONFIG.format(
            folder=folder.resolve(), port=self.port, upstream=upstream,
            cert=pki.server.cert.resolve(), key=pki.server.key.resolve(), ca=pki.ca.resolve(),
            verify_client="off" if api_key else "on",
            key_check=f'if ($http_authorization != "Bearer {api_key}") {{ return 401; }}'
            if api_key else ""))
        self.access_log = folder / "access.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        """Start nginx and wait until it accepts connections."""
        with (self.folder / "stdout.log").open("ab") as out:
            # -e: nginx opens its error log before it reads the configuration.
            self._proc = subprocess.Popen(
                [self._binary, "-p", str(self.folder.resolve()), "-e", str(self.log.resolve()),
                 "-c", str(self._config.resolve())], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self._proc.poll() is None:
            if port_open(self.port):
                return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise TerminatorError(f"nginx did not listen on {self.port}; see {self.log}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        """Kill nginx (by pid; one process, no workers)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
