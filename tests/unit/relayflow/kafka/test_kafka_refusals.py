"""What a refused Kafka connection is classified as: the setting to fix, never a weaker TLS.

The errors are real ones: TLS handshakes in memory between the client's own
context and a server holding the dev broker's certificate, and connections
to a local socket that drops a TLS client as a plaintext Kafka listener does.
The Kafka broker's own refusals are in ``tests/integration/test_kafka_security.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from relayflow.config.settings import Settings
from relayflow.devstack.secure import DevSecrets
from relayflow.kafka.clients import KafkaClients, KafkaSecurityError, security_problem

ADDRESS = "k1:9093"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> DevSecrets:
    """The dev broker's CA, its certificate (127.0.0.1 and localhost) and a client's."""
    made = DevSecrets(tmp_path_factory.mktemp("kafka") / "secrets")
    made.generate()
    return made


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevSecrets:
    """Another CA and a client certificate it signed."""
    made = DevSecrets(tmp_path_factory.mktemp("other") / "secrets")
    made.generate()
    return made


def _ssl(secrets: DevSecrets, **fields: Any) -> Settings:
    return Settings.model_validate({"kafka_bootstrap_servers": ADDRESS,
                                    "kafka_security_protocol": "SSL",
                                    "kafka_ssl_ca_file": secrets.ca_file} | fields)


def _broker_context(secrets: DevSecrets) -> ssl.SSLContext:
    """The server side of a broker whose listener requires client certificates of its CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(secrets.broker_keystore)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(secrets.ca_file)
    return context


def _client_error(settings: Settings, broker: ssl.SSLContext, host: str) -> ssl.SSLError:
    """What the client side of an in-memory handshake (then a first read) raises."""
    wires = ssl.MemoryBIO(), ssl.MemoryBIO()  # to the client, to the server
    client = KafkaClients(settings).connection()["ssl_context"].wrap_bio(
        wires[0], wires[1], server_hostname=host)
    server = broker.wrap_bio(wires[1], wires[0], server_side=True)
    try:
        for _ in range(10):
            with contextlib.suppress(ssl.SSLWantReadError):
                client.do_handshake()
            with contextlib.suppress(ssl.SSLError):  # the server's own failure; its alert follows
                server.do_handshake()
        # TLS 1.3: the broker judges the client's certificate after the client's handshake
        # is done; its alert is what the client reads next.
        client.read(1)
    except ssl.SSLError as error:
        return error
    raise AssertionError("the handshake and a first read succeeded")


def _refused(problem: KafkaSecurityError | None, setting: str, *said: str) -> str:
    """Assert ``problem`` names ``setting`` and says ``said``, and never suggests weaker TLS."""
    assert problem is not None
    assert problem.setting == setting
    message = str(problem)
    assert message.startswith(f"{setting}: ")
    for text in said:
        assert text in message
    assert not any(word in message.lower() for word in (
        "check_hostname", "check off", "turn", " off", "disable", "insecure", "skip"))
    assert "PLAINTEXT" not in message
    return message


def test_a_client_certificate_from_another_ca_is_refused_by_name(
        secrets: DevSecrets, stranger: DevSecrets) -> None:
    settings = _ssl(secrets, kafka_ssl_cert_file=stranger.client_cert,
                    kafka_ssl_key_file=stranger.client_key)
    error = _client_error(settings, _broker_context(secrets), "localhost")
    assert error.reason == "TLSV1_ALERT_UNKNOWN_CA"
    _refused(security_problem(error, settings, ADDRESS), "RELAYFLOW_KAFKA_SSL_CERT_FILE",
             f"the broker at {ADDRESS} refused the client certificate {stranger.client_cert}",
             "TLSV1_ALERT_UNKNOWN_CA", "issued by a CA the broker trusts")


def test_no_client_certificate_where_one_is_required_says_none_is_set(
        secrets: DevSecrets) -> None:
    settings = _ssl(secrets)
    error = _client_error(settings, _broker_context(secrets), "localhost")
    assert error.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    _refused(security_problem(error, settings, ADDRESS), "RELAYFLOW_KAFKA_SSL_CERT_FILE",
             "requires a client certificate", "none is set")


@pytest.mark.parametrize("reason", ["SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                                    "SSLV3_ALERT_BAD_CERTIFICATE"])
def test_the_kafka_brokers_own_alerts_are_client_certificate_refusals(
        secrets: DevSecrets, stranger: DevSecrets, reason: str) -> None:
    # What Kafka's JVM answers (certificate from another CA; none), as aiokafka raises it:
    # the connection closed, the alert as its cause. OpenSSL servers never send these.
    alert = ssl.SSLError(1, f"[SSL: {reason}] ({reason.lower()})")
    alert.reason = reason
    error = KafkaConnectionError(f"Connection at {ADDRESS} closed")
    error.__cause__ = alert  # ``raise ... from alert``
    settings = _ssl(secrets, kafka_ssl_cert_file=stranger.client_cert,
                    kafka_ssl_key_file=stranger.client_key)
    _refused(security_problem(error, settings, ADDRESS), "RELAYFLOW_KAFKA_SSL_CERT_FILE",
             f"refused the client certificate {stranger.client_cert} ({reason})")


@pytest.mark.parametrize(("host", "mismatch"), [
    ("kafka.example.org", "Hostname mismatch"), ("127.0.0.2", "IP address mismatch")])
def test_a_broker_certificate_for_another_host_names_the_address_to_fix(
        secrets: DevSecrets, host: str, mismatch: str) -> None:
    # The broker's certificate names 127.0.0.1 and localhost, and its chain is trusted.
    settings = _ssl(secrets, kafka_ssl_cert_file=secrets.client_cert,
                    kafka_ssl_key_file=secrets.client_key)
    error = _client_error(settings, _broker_context(secrets), host)
    assert isinstance(error, ssl.SSLCertVerificationError)
    _refused(security_problem(error, settings, f"{host}:9093"),
             "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS",
             f"the certificate of the broker at {host}:9093 does not name that host", mismatch,
             "connect by a name the certificate holds")


def test_a_broker_certificate_from_an_untrusted_ca_names_the_ca_file(
        secrets: DevSecrets, stranger: DevSecrets) -> None:
    # The control of the mismatch above: a chain the client does not trust is not a name.
    settings = _ssl(stranger, kafka_ssl_cert_file=secrets.client_cert,
                    kafka_ssl_key_file=secrets.client_key)
    error = _client_error(settings, _broker_context(secrets), "localhost")
    _refused(security_problem(error, settings, ADDRESS), "RELAYFLOW_KAFKA_SSL_CA_FILE",
             f"is not trusted by {stranger.ca_file}")


@contextlib.asynccontextmanager
async def _dropping(reset: bool) -> AsyncIterator[int]:
    """A local port that reads a client's first bytes and drops it, as a plaintext listener
    does a TLS client (Kafka reads the ClientHello as an oversized request): reset, or closed.
    """
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4)
        if reset:
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _tls_connect(settings: Settings, port: int) -> BaseException:
    context = KafkaClients(settings).connection()["ssl_context"]
    try:
        await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except OSError as error:
        return error
    raise AssertionError(f"a TLS connection to 127.0.0.1:{port} succeeded")


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_a_tls_client_dropped_by_a_listener_that_answers_plain_kafka_is_told_so(
        secrets: DevSecrets, reset: bool) -> None:
    sasl = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "bridge", "kafka_sasl_password": "pw"}
    for settings in (_ssl(secrets), _ssl(secrets, **sasl)):
        protocol = settings.kafka_security_protocol
        async with _dropping(reset) as port:
            error = await _tls_connect(settings, port)
        address = f"127.0.0.1:{port}"
        _refused(security_problem(error, settings, address, answers_without_tls=True),
                 "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS",
                 f"the listener at {address} does not speak TLS (it answers Kafka without TLS)",
                 f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={protocol} needs it",
                 "connect to the brokers' TLS listener")
        # Without that answer, a dropped connection is a broker going away: the clients wait.
        assert security_problem(error, settings, address) is None


async def test_a_refused_connection_is_not_a_listener_without_tls(secrets: DevSecrets) -> None:
    async with _dropping(reset=True) as port:
        pass  # closed: nothing listens on the port any more
    settings = _ssl(secrets)
    error = await _tls_connect(settings, port)
    assert isinstance(error, ConnectionRefusedError)
    assert security_problem(error, settings, f"127.0.0.1:{port}",
                            answers_without_tls=True) is None


async def test_a_dropped_connection_without_tls_configured_is_not_about_tls(
        secrets: DevSecrets) -> None:
    async with _dropping(reset=True) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x00\x00\x01x")
        with pytest.raises(ConnectionResetError) as dropped:
            await reader.read(1)
        writer.close()
    plaintext = Settings.model_validate({
        "kafka_bootstrap_servers": ADDRESS, "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "bridge",
        "kafka_sasl_password": "pw"})
    assert security_problem(dropped.value, plaintext, ADDRESS, answers_without_tls=True) is None


async def test_the_access_check_waits_out_a_dropping_port_that_does_not_answer_kafka(
        secrets: DevSecrets) -> None:
    # It drops plaintext too: no Kafka listener, so not a settings problem (the clients retry).
    async with _dropping(reset=True) as port:
        clients = KafkaClients(_ssl(secrets, kafka_bootstrap_servers=f"127.0.0.1:{port}"))
        await clients.check_access()


def _answered(data: bytes) -> ssl.SSLError:
    """What the client's handshake raises when the other end answers ``data``."""
    wires = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(wires[0], wires[1], server_hostname="k1")
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    wires[0].write(data)
    with pytest.raises(ssl.SSLError) as raised:
        client.do_handshake()
    return raised.value


@pytest.mark.parametrize(("data", "reason"), [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "WRONG_VERSION_NUMBER"),
    (b"\x16\x03\x03\xff\xff" + bytes(64), "PACKET_LENGTH_TOO_LONG"),  # a record too large
])
def test_a_listener_answering_bytes_that_are_not_tls_is_named(
        secrets: DevSecrets, data: bytes, reason: str) -> None:
    error = _answered(data)
    assert error.reason == reason
    _refused(security_problem(error, _ssl(secrets), ADDRESS),
             "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", f"does not speak TLS (it answered {reason})")


def test_openssl_32s_name_for_a_broken_record_is_not_tls_either(secrets: DevSecrets) -> None:
    error = ssl.SSLError(1, "[SSL: RECORD_LAYER_FAILURE] record layer failure")
    error.reason = "RECORD_LAYER_FAILURE"  # OpenSSL 3.2+ wraps the two above in it
    _refused(security_problem(error, _ssl(secrets), ADDRESS),
             "RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS", "does not speak TLS")


def test_another_tls_alert_is_not_guessed_at(secrets: DevSecrets) -> None:
    # handshake_failure: no common cipher or version, nothing about certificates.
    error = _answered(b"\x15\x03\x03\x00\x02\x02\x28")
    assert error.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert security_problem(error, _ssl(secrets), ADDRESS, answers_without_tls=True) is None
