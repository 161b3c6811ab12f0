"""How relayflow's Temporal client proves who it is: TLS, client certificates, an API key.

``relayflow.runtime.bootstrap.connect_temporal`` builds every Temporal client relayflow
makes (bridge, worker, CLI commands, the dev stack's probe); it takes its
connection options from ``temporal_credentials`` and explains a refused
connection with ``refusal``. Both answer with a ``SettingError``: one line
that starts with the setting to fix. The API key never appears in either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from relayflow.config.settings import SettingError, Settings

__all__ = ["TemporalCredentials", "refusal", "temporal_credentials"]

_CA = "RELAYFLOW_TEMPORAL_TLS_CA_FILE"
_CERT = "RELAYFLOW_TEMPORAL_TLS_CERT_FILE"
_KEY = "RELAYFLOW_TEMPORAL_TLS_KEY_FILE"
_SERVER_NAME = "RELAYFLOW_TEMPORAL_TLS_SERVER_NAME"
_API_KEY = "RELAYFLOW_TEMPORAL_API_KEY"
_TLS = "RELAYFLOW_TEMPORAL_TLS"
_ADDRESS = "RELAYFLOW_TEMPORAL_ADDRESS"


@dataclass(frozen=True)
class TemporalCredentials:
    """The SDK's connection options for TLS and authentication.

    Attributes:
        tls: ``Client.connect``'s ``tls``: False (plaintext), True (TLS trusting
            the system's roots) or a ``TLSConfig`` (its client key hidden in ``repr``).
        api_key: Sent as ``authorization: Bearer <key>``; hidden in ``repr``.
    """

    tls: TLSConfig | bool
    api_key: str | None = None

    def __repr__(self) -> str:
        """What is configured; the client's private key and the API key only as ``<hidden>``."""
        tls: object = self.tls
        if isinstance(tls, TLSConfig) and tls.client_private_key is not None:
            # TLSConfig's own repr shows the key's PEM.
            tls = replace(tls, client_private_key=b"<hidden>")
        api_key = None if self.api_key is None else "<hidden>"
        return f"TemporalCredentials(tls={tls!r}, api_key={api_key})"


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SettingError(f"{setting}: cannot read {path}: {error.strerror or error}") from None


def _certificates(setting: str, path: Path) -> tuple[bytes, list[x509.Certificate]]:
    pem = _read(setting, path)
    try:
        return pem, x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise SettingError(f"{setting}: no PEM certificate in {path}") from None


def _client_identity(cert_file: Path, key_file: Path) -> tuple[bytes, bytes]:
    """The client certificate and key as PEM, checked to parse and to belong together."""
    cert_pem, chain = _certificates(_CERT, cert_file)
    key_pem = _read(_KEY, key_file)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise SettingError(f"{_KEY}: {key_file} is encrypted; the Temporal SDK needs an "
                           "unencrypted PEM key") from None
    except ValueError:
        raise SettingError(f"{_KEY}: no PEM private key in {key_file}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != chain[0].public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise SettingError(f"{_KEY}: {key_file} is not the key of the certificate in "
                           f"{_CERT} ({cert_file})")
    return cert_pem, key_pem


def _api_key(settings: Settings) -> str | None:
    if settings.temporal_api_key is None:
        return None
    key = settings.temporal_api_key.get_secret_value()
    if not key:
        raise SettingError(f"{_API_KEY}: empty (unset it to connect without an API key)")
    if any(c.isspace() or not c.isprintable() for c in key):
        # A gRPC header value cannot carry them; usually a newline read from a file.
        raise SettingError(f"{_API_KEY}: contains whitespace or control characters")
    return key


def temporal_credentials(settings: Settings) -> TemporalCredentials:
    """The TLS configuration and API key ``settings`` ask for, every file read and checked.

    Raises:
        SettingError: A file is missing, unreadable or not what it should be, a
            client certificate comes without its key (or the other way round),
            or the API key cannot be sent.
    """
    api_key = _api_key(settings)
    if not settings.temporal_uses_tls:
        return TemporalCredentials(tls=False, api_key=api_key)
    cert_file, key_file = settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    if (cert_file is None) != (key_file is None):
        missing, given = (_KEY, _CERT) if key_file is None else (_CERT, _KEY)
        raise SettingError(f"{missing}: required with {given} (mTLS needs both)")
    if settings.temporal_tls_server_name == "":
        raise SettingError(f"{_SERVER_NAME}: empty (unset it to use the address's host)")
    ca = (None if settings.temporal_tls_ca_file is None
          else _certificates(_CA, settings.temporal_tls_ca_file)[0])
    cert, key = (None, None) if cert_file is None or key_file is None else (
        _client_identity(cert_file, key_file))
    if ca is None and cert is None and settings.temporal_tls_server_name is None:
        return TemporalCredentials(tls=True, api_key=api_key)
    return TemporalCredentials(
        tls=TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key,
                      domain=settings.temporal_tls_server_name),
        api_key=api_key)


_STATUS = re.compile(r'code: (?P<code>\w+), message: "(?P<message>[^"]*)"')
_CERTIFICATE = re.compile(r"InvalidCertificate\((?P<why>\w+)")
_REFUSED = frozenset({RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED})


def _credentials_refused(settings: Settings, text: str) -> str | None:
    status = _STATUS.search(text)
    if status is None or status["code"] not in {"Unauthenticated", "PermissionDenied"}:
        return None
    named = [name for name, value in ((_CERT, settings.temporal_tls_cert_file),
                                      (_API_KEY, settings.temporal_api_key)) if value is not None]
    blamed = " / ".join(named) or f"{_CERT} / {_API_KEY} (neither is set)"
    return (f"{blamed}: Temporal at {settings.temporal_address} refused the client's "
            f"credentials ({status['code']}: {status['message']})")


def _server_not_trusted(settings: Settings, text: str) -> str | None:
    bad = _CERTIFICATE.search(text)
    if bad is None:
        return None
    where = f"Temporal at {settings.temporal_address}"
    if bad["why"].startswith("NotValidForName"):
        return (f"{_SERVER_NAME}: the certificate of {where} is not issued to "
                f"{settings.temporal_tls_server_name or 'its host'}")
    signer = f"the CA in {_CA}" if settings.temporal_tls_ca_file else "a system root CA"
    return f"{_CA}: {where} presented a certificate not signed by {signer} ({bad['why']})"


def _tls_mismatch(settings: Settings, text: str) -> str | None:
    where = f"Temporal at {settings.temporal_address}"
    if "PrivateKeyParseError" in text:
        return f"{_KEY}: the Temporal SDK cannot use the key in {settings.temporal_tls_key_file}"
    if "H2NotNegotiated" in text:
        return (f"{_ADDRESS}: the TLS endpoint {settings.temporal_address} does not offer "
                "HTTP/2 (ALPN h2), so it is no gRPC frontend")
    if "InvalidContentType" in text:
        return f"{_TLS}: {where} does not speak TLS"
    if "FRAME_SIZE_ERROR" in text and not settings.temporal_uses_tls:
        # What a TLS endpoint's first answer looks like when read as an HTTP/2 frame.
        return f"{_TLS}: {where} does not speak plaintext HTTP/2; does it want TLS?"
    return None


def refusal(settings: Settings, error: Exception) -> SettingError | None:
    """The setting to blame when Temporal refused ``error``'s connection or call, else None.

    None means the error may pass (Temporal not up yet, the network): callers
    retry those. Refusals do not pass by waiting: the credentials, the CA, the
    server name or TLS itself is wrong.

    Args:
        settings: The settings the client was built from.
        error: What ``Client.connect`` (RuntimeError) or a call (RPCError) raised.
    """
    if isinstance(error, RPCError):
        if error.status not in _REFUSED:
            return None
        # The words Core uses for a refused connect, so one check reads both.
        code = "Unauthenticated" if error.status == RPCStatusCode.UNAUTHENTICATED else (
            "PermissionDenied")
        text = f'code: {code}, message: "{error.message}"'
    else:
        text = str(error)
    for explain in (_credentials_refused, _server_not_trusted, _tls_mismatch):
        message = explain(settings, text)
        if message is not None:
            return SettingError(message)
    return None
