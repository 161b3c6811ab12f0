"""The one place that builds Kafka clients.

Every Kafka client relayflow runs is built here: the bridge's FastStream
broker and parked-keys follower, its dead-letter producer, the worker's
outcome producer, admin clients, and the operator tools' readers. Connection
options (bootstrap servers, TLS, SASL) are therefore decided once, and a
client built anywhere else is a bug.

Security: one ``ssl.SSLContext`` per ``KafkaClients`` (the CA file, the
client certificate for mTLS, hostname checking) and the SASL credentials go
to every aiokafka client (``connection()``) and, as FastStream's security
object, to the broker (``broker()``). Before the first client of a secured
``KafkaClients`` starts, one connection checks that the brokers accept the
certificates and credentials (``check_access``): a refusal stops the process
with one line naming the setting, instead of clients retrying a refusal that
no retry can fix. A TLS handshake cut short proves nothing by itself (a broker
going down does that too), so the check then asks the same address a
plaintext Kafka question: an answer means a listener without TLS. No message
suggests weakening TLS: the fix named is the address or the certificates.

aiokafka logs every request and response at DEBUG, the SASL exchange too,
and PLAIN's first message is the password in clear: importing this module
hides that exchange from aiokafka's log records (``SaslExchangeHidden``).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from relayflow.config.settings import SettingError, Settings

__all__ = ["KafkaClients", "KafkaSecurityError", "SaslExchangeHidden", "security_problem"]

T = TypeVar("T")

_DURABLE = {"acks": "all", "enable_idempotence": True}
"""Producer defaults: acknowledged by every in-sync replica, no duplicates on retry."""

_CHECK_TIMEOUT_MS = 10_000
"""How long the access check waits for a broker's answer."""

_FASTSTREAM_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256,
                    "SCRAM-SHA-512": SASLScram512}

# OpenSSL's reasons when the broker refuses the client's certificate (or gets none):
# Kafka's JVM sends certificate_unknown for one it does not trust, bad_certificate
# for none; OpenSSL servers send unknown_ca and certificate_required.
_CLIENT_CERT_REFUSED = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
})
# ...and when what answers sends bytes that are not TLS.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})
_TLS = frozenset({"SSL", "SASL_SSL"})
# A Kafka listener without TLS sends nothing back: it drops the connection.
_CUT = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError)
# X509_V_ERR_HOSTNAME_MISMATCH (a name) and X509_V_ERR_IP_ADDRESS_MISMATCH (an address).
_NAME_MISMATCH = frozenset({62, 64})


_SASL_AUTHENTICATE = 36
"""Kafka's API key of SaslAuthenticate, on aiokafka's request and response structs."""


class SaslExchangeHidden(logging.Filter):
    """Hides the SASL messages aiokafka's connections log at DEBUG.

    PLAIN's ``SaslAuthenticate`` request carries the password in clear (SCRAM's
    carry proofs and salts), and aiokafka logs each request and response with
    its bytes. The record stays, with those arguments replaced by their type's name.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace SASL request and response arguments; keep every record."""
        if isinstance(record.args, tuple) and any(
                getattr(arg, "API_KEY", None) == _SASL_AUTHENTICATE for arg in record.args):
            record.args = tuple(
                f"{type(arg).__name__}(<hidden>)"
                if getattr(arg, "API_KEY", None) == _SASL_AUTHENTICATE else arg
                for arg in record.args)
        return True


logging.getLogger("aiokafka.conn").addFilter(SaslExchangeHidden())


class KafkaSecurityError(SettingError):
    """Kafka refused the certificates or credentials, or they cannot be used.

    Attributes:
        setting: The ``RELAYFLOW_*`` variable to look at.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of every client: verifies the brokers, presents the client certificate."""
    try:
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None)
    except ssl.SSLError as error:
        raise KafkaSecurityError("RELAYFLOW_KAFKA_SSL_CA_FILE",
                                 f"no CA certificate in {settings.kafka_ssl_ca_file} "
                                 f"({error.reason or error})") from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_cert_file is not None:
        key_password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file,
                key_password.get_secret_value() if key_password else None)
        except ssl.SSLError as error:
            key = settings.kafka_ssl_key_file or settings.kafka_ssl_cert_file
            raise KafkaSecurityError(
                "RELAYFLOW_KAFKA_SSL_KEY_FILE" if settings.kafka_ssl_key_file
                else "RELAYFLOW_KAFKA_SSL_CERT_FILE",
                f"cannot use the client certificate {settings.kafka_ssl_cert_file} with the key "
                f"in {key} ({error.reason or error}; wrong key, or "
                f"RELAYFLOW_KAFKA_SSL_KEY_PASSWORD wrong or missing)") from None
    return context


def security_problem(error: BaseException, settings: Settings, address: str, *,
                     answers_without_tls: bool = False) -> KafkaSecurityError | None:
    """What a failed connection says about the security settings, or None when it says nothing.

    Args:
        error: What connecting to a broker raised.
        settings: The settings it connected with.
        address: ``host:port`` of the broker.
        answers_without_tls: A plaintext Kafka request to ``address`` was
            answered (``check_access`` asks when a TLS handshake was cut short).

    Returns:
        The error naming the setting to fix; None for failures that are not
        about security (refused, timed out, cut: the broker may just be down).
    """
    tls = _cause(error, ssl.SSLError)
    problem = _tls_problem(tls, settings, address) if tls is not None else None
    if (problem is None and answers_without_tls and _handshake_cut(error)
            and settings.kafka_security_protocol in _TLS):
        problem = _not_tls(address, settings, "it answers Kafka without TLS")
    return problem or _sasl_problem(error, settings, address)


def _handshake_cut(error: BaseException) -> bool:
    """The peer dropped the connection without a TLS answer (reset, or closed mid-handshake)."""
    return any(isinstance(seen, _CUT) for seen in _chain(error))


def _not_tls(address: str, settings: Settings, evidence: str) -> KafkaSecurityError:
    # The fix is the address of a TLS listener, never a protocol without TLS.
    return KafkaSecurityError(
        "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS",
        f"the listener at {address} does not speak TLS ({evidence}), and "
        f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs it; "
        "connect to the brokers' TLS listener")


def _tls_problem(error: ssl.SSLError, settings: Settings,
                 address: str) -> KafkaSecurityError | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        if error.verify_code in _NAME_MISMATCH:
            # The fix is the address (or the certificate), never a weaker check.
            return KafkaSecurityError(
                "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS",
                f"the certificate of the broker at {address} does not name that host "
                f"({error.verify_message}); connect by a name the certificate holds, "
                "or have the broker's certificate issued for this name")
        trusted = settings.kafka_ssl_ca_file or "the system's trust store (no CA file set)"
        return KafkaSecurityError(
            "RELAYFLOW_KAFKA_SSL_CA_FILE",
            f"the certificate of the broker at {address} is not trusted by {trusted} "
            f"(certificate verify failed: {error.verify_message})")
    if error.reason in _CLIENT_CERT_REFUSED:
        given = settings.kafka_ssl_cert_file
        if given is None:
            return KafkaSecurityError(
                "RELAYFLOW_KAFKA_SSL_CERT_FILE",
                f"the broker at {address} requires a client certificate ({error.reason}) and "
                "none is set: set it and RELAYFLOW_KAFKA_SSL_KEY_FILE")
        return KafkaSecurityError(
            "RELAYFLOW_KAFKA_SSL_CERT_FILE",
            f"the broker at {address} refused the client certificate {given} "
            f"({error.reason}); present one issued by a CA the broker trusts, for client "
            "authentication, not expired")
    if error.reason in _NOT_TLS:
        return _not_tls(address, settings, f"it answered {error.reason}")
    return None


def _sasl_problem(error: BaseException, settings: Settings,
                  address: str) -> KafkaSecurityError | None:
    refused = _cause(error, SaslAuthenticationFailed) or _cause(error, AuthenticationFailedError)
    if refused is not None:
        return KafkaSecurityError(
            "RELAYFLOW_KAFKA_SASL_PASSWORD",
            f"authentication failed at {address} for user {settings.kafka_sasl_username!r} "
            f"with {settings.kafka_sasl_mechanism} (check RELAYFLOW_KAFKA_SASL_USERNAME and "
            f"RELAYFLOW_KAFKA_SASL_PASSWORD): {_said(refused)}")
    mechanism = _cause(error, UnsupportedSaslMechanismError) or _cause(error,
                                                                       IllegalSaslStateError)
    if mechanism is not None:
        return KafkaSecurityError(
            "RELAYFLOW_KAFKA_SASL_MECHANISM",
            f"the broker at {address} does not take {settings.kafka_sasl_mechanism}: "
            f"{_said(mechanism)}")
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from, in turn."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _cause(error: BaseException, kind: type[T]) -> T | None:
    """``error`` or the first exception it was raised from that is a ``kind``."""
    return next((seen for seen in _chain(error) if isinstance(seen, kind)), None)


def _said(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


async def _answers_without_tls(host: str, port: int) -> bool:
    """A Kafka listener at ``host:port`` answers a plaintext ApiVersions request."""
    from aiokafka.conn import create_conn  # noqa: PLC0415 - only after a cut handshake

    try:
        # create_conn asks the broker's API versions: connected means answered.
        connection = await create_conn(host, port, request_timeout_ms=_CHECK_TIMEOUT_MS)
    except Exception:  # noqa: BLE001 - any failure: not a plaintext Kafka listener
        return False
    connection.close()
    return True


class KafkaClients:
    """Builds Kafka clients connected as the settings say.

    Implements the bridge's ``KafkaClientFactory``. Clients come back not
    started (the caller owns them); the ``started_*`` context managers check
    access once (secured settings only), start them, and close them afterwards.

    Args:
        settings: Where Kafka is and how to authenticate.

    Raises:
        KafkaSecurityError: The CA file or the client certificate and key
            cannot be loaded.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        protocol = settings.kafka_security_protocol
        self._ssl = _ssl_context(settings) if protocol in _TLS else None
        self._checked = protocol == "PLAINTEXT"  # nothing to refuse but the connection itself

    @property
    def bootstrap_servers(self) -> str:
        """The brokers these clients bootstrap from (for messages; no credentials)."""
        return self._settings.kafka_bootstrap_servers

    def connection(self) -> dict[str, Any]:
        """The connection options every aiokafka client gets (includes the SASL password)."""
        s = self._settings
        options: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap_servers}
        if s.kafka_security_protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = s.kafka_security_protocol
        if self._ssl is not None:
            options["ssl_context"] = self._ssl
        if s.kafka_sasl_password is not None:  # the settings ensure SASL has all three
            options |= {"sasl_mechanism": s.kafka_sasl_mechanism,
                        "sasl_plain_username": s.kafka_sasl_username,
                        "sasl_plain_password": s.kafka_sasl_password.get_secret_value()}
        return options

    def security(self) -> BaseSecurity | None:
        """FastStream's security object for these settings (None for PLAINTEXT)."""
        s = self._settings
        if s.kafka_security_protocol == "PLAINTEXT":
            return None
        if s.kafka_sasl_password is None or s.kafka_sasl_mechanism is None:
            return BaseSecurity(ssl_context=self._ssl)  # SSL
        sasl = _FASTSTREAM_SASL[s.kafka_sasl_mechanism]
        return sasl(str(s.kafka_sasl_username), s.kafka_sasl_password.get_secret_value(),
                    ssl_context=self._ssl, use_ssl=self._ssl is not None)

    def broker(self, **options: Any) -> KafkaBroker:
        """A FastStream broker (the bridge's consumer)."""
        # FastStream takes a string as one address; aiokafka would split it at commas.
        servers = [s.strip() for s in self._settings.kafka_bootstrap_servers.split(",")
                   if s.strip()]
        return KafkaBroker(servers, security=self.security(), **options)

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        """A consumer of ``topics`` (none: assign partitions yourself).

        Its fetches are bounded by ``max_fetch_bytes`` and
        ``max_partition_fetch_bytes`` unless ``options`` say otherwise.
        """
        limits = {"fetch_max_bytes": self._settings.max_fetch_bytes,
                  "max_partition_fetch_bytes": self._settings.max_partition_fetch_bytes}
        return AIOKafkaConsumer(*topics, **self.connection(), **(limits | options))

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """A producer; ``acks="all"`` and idempotence unless ``options`` say otherwise."""
        return AIOKafkaProducer(**self.connection(), **(_DURABLE | options))

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        """An admin client."""
        return AIOKafkaAdminClient(**self.connection(), **options)

    async def check_access(self) -> None:
        """Connect once and authenticate; raise if the brokers refuse the settings.

        Done once per ``KafkaClients`` with secured settings, before its first
        ``started_*`` client starts. Failures that are not about security
        (connection refused, timeouts) are left to the clients, which report
        or retry them as they always do.

        Raises:
            KafkaSecurityError: TLS or SASL refused; names the setting.
        """
        if self._checked:
            return
        from aiokafka.conn import create_conn  # noqa: PLC0415 - only for secured settings

        options = self.connection()
        del options["bootstrap_servers"]
        for address in self._settings.kafka_bootstrap_servers.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                connection = await create_conn(host, int(port),
                                               request_timeout_ms=_CHECK_TIMEOUT_MS, **options)
            except Exception as error:  # noqa: BLE001 - classified; the rest is the clients'
                plain = (self._ssl is not None and _handshake_cut(error)
                         and await _answers_without_tls(host, int(port)))
                problem = security_problem(error, self._settings, address.strip(),
                                           answers_without_tls=plain)
                if problem is not None:
                    raise problem from None
                continue
            connection.close()
            self._checked = True
            return

    def started_producer(self, **options: Any) -> AbstractAsyncContextManager[AIOKafkaProducer]:
        """A started producer (see ``producer``), stopped afterwards."""
        return self._started(lambda: self.producer(**options), lambda p: p.stop())

    def started_consumer(self, *topics: str,
                         **options: Any) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        """A started consumer (see ``consumer``), stopped afterwards."""
        return self._started(lambda: self.consumer(*topics, **options), lambda c: c.stop())

    def started_admin(self, **options: Any) -> AbstractAsyncContextManager[AIOKafkaAdminClient]:
        """A started admin client, closed afterwards."""
        return self._started(lambda: self.admin(**options), lambda a: a.close())

    @asynccontextmanager
    async def _started(self, build: Callable[[], T],
                       close: Callable[[T], Awaitable[object]]) -> AsyncIterator[T]:
        await self.check_access()  # before building: a refused client is never left unclosed
        client = build()
        try:
            await client.start()  # type: ignore[attr-defined]  # every aiokafka client has start()
        except BaseException:
            await close(client)  # a client that failed to start still holds its connections
            raise
        try:
            yield client
        finally:
            await close(client)
