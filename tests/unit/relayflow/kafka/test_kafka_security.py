"""Kafka security settings: validation at start, and what every client is built with."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from aiokafka.conn import SaslPlainAuthenticator
from aiokafka.protocol.admin import SaslAuthenticateRequest, SaslAuthenticateRequest_v1
from aiokafka.protocol.metadata import MetadataRequest_v5
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from typer.testing import CliRunner

from examples.tickets.app import APP as TICKETS
from relayflow.cli.main import app
from relayflow.config.settings import SettingError, Settings, load_settings
from relayflow.devstack import kafka_nodes, render_server_properties
from relayflow.devstack.secure import (
    PRINCIPALS,
    DevSecrets,
    acl_plan,
    input_producers,
    principals,
    write_ca,
)
from relayflow.kafka.clients import KafkaClients, KafkaSecurityError
from relayflow.reference.app import APP
from relayflow.reference.topics import APPROVALS_DECISIONS, TOPICS
from schemas.topics import PARKED_KEYS, dlq_topic
from tests.helpers.counters.app import APP as COUNTERS

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> DevSecrets:
    """A generated CA, broker and client certificates and passwords (no broker)."""
    generated = DevSecrets(tmp_path_factory.mktemp("kafka") / "secrets")
    generated.generate()
    return generated


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in Settings().as_env():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _settings(**fields: Any) -> Settings:
    return Settings(kafka_bootstrap_servers="k1:9093", **fields)


def _sasl_ssl(secrets: DevSecrets, **fields: Any) -> Settings:
    return _settings(**{"kafka_security_protocol": "SASL_SSL",
                        "kafka_sasl_mechanism": "SCRAM-SHA-512",
                        "kafka_sasl_username": "bridge", "kafka_sasl_password": PASSWORD,
                        "kafka_ssl_ca_file": secrets.ca_file} | fields)


@pytest.mark.parametrize(("env", "named"), [
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RELAYFLOW_KAFKA_SASL_USERNAME": "u",
      "RELAYFLOW_KAFKA_SASL_PASSWORD": PASSWORD}, "RELAYFLOW_KAFKA_SASL_MECHANISM is required"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "RELAYFLOW_KAFKA_SASL_MECHANISM": "PLAIN", "RELAYFLOW_KAFKA_SASL_USERNAME": "u"},
     "RELAYFLOW_KAFKA_SASL_PASSWORD is required"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RELAYFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
      "RELAYFLOW_KAFKA_SASL_PASSWORD": PASSWORD}, "RELAYFLOW_KAFKA_SASL_USERNAME is required"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "RELAYFLOW_KAFKA_SASL_MECHANISM": "PLAIN", "RELAYFLOW_KAFKA_SASL_USERNAME": "u",
      "RELAYFLOW_KAFKA_SASL_PASSWORD": PASSWORD},
     ("RELAYFLOW_KAFKA_SASL_MECHANISM=PLAIN with RELAYFLOW_KAFKA_SECURITY_PROTOCOL="
      "SASL_PLAINTEXT sends the password in clear")),
    ({"RELAYFLOW_KAFKA_SASL_MECHANISM": "PLAIN"},
     "RELAYFLOW_KAFKA_SASL_MECHANISM is set, but RELAYFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "RELAYFLOW_KAFKA_SASL_MECHANISM": "MD5",
      "RELAYFLOW_KAFKA_SASL_USERNAME": "u", "RELAYFLOW_KAFKA_SASL_PASSWORD": PASSWORD},
     "RELAYFLOW_KAFKA_SASL_MECHANISM: Input should be 'PLAIN', 'SCRAM-SHA-256' or"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "TLS"}, "RELAYFLOW_KAFKA_SECURITY_PROTOCOL: Input"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
      "RELAYFLOW_KAFKA_SSL_CA_FILE": "/no/such/ca.pem"},
     "RELAYFLOW_KAFKA_SSL_CA_FILE: cannot read /no/such/ca.pem: No such file or directory"),
    # A folder cannot be read as a file (a mode-000 file can, by root: CI runs as root).
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "RELAYFLOW_KAFKA_SSL_CERT_FILE": "{cert}",
      "RELAYFLOW_KAFKA_SSL_KEY_FILE": "{tmp}"},
     "RELAYFLOW_KAFKA_SSL_KEY_FILE: cannot read {tmp}: Is a directory"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "RELAYFLOW_KAFKA_SSL_CA_FILE": "{tmp}/a.der"},
     "RELAYFLOW_KAFKA_SSL_CA_FILE: {tmp}/a.der is not a PEM file"),
    ({"RELAYFLOW_KAFKA_SSL_CA_FILE": "{ca}"},
     ("RELAYFLOW_KAFKA_SSL_CA_FILE is set, but RELAYFLOW_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses "
      "no TLS")),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "RELAYFLOW_KAFKA_SSL_KEY_FILE": "{key}"},
     "RELAYFLOW_KAFKA_SSL_KEY_FILE is set without RELAYFLOW_KAFKA_SSL_CERT_FILE"),
    ({"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SSL", "RELAYFLOW_KAFKA_SSL_KEY_PASSWORD": PASSWORD},
     "RELAYFLOW_KAFKA_SSL_KEY_PASSWORD is set without a client key"),
])
def test_a_bad_kafka_setting_is_one_line_naming_it(
        environment: pytest.MonkeyPatch, secrets: DevSecrets, tmp_path: Path,
        env: dict[str, str], named: str) -> None:
    (tmp_path / "a.der").write_bytes(b"\x30\x82")
    paths = {"ca": secrets.ca_file, "cert": secrets.client_cert, "key": secrets.client_key,
             "tmp": tmp_path}
    for name, value in env.items():
        environment.setenv(name, value.format(**paths))
    with pytest.raises(SettingError) as raised:
        load_settings()
    [line] = str(raised.value).splitlines()
    assert line.startswith(named.format(**paths))
    assert PASSWORD not in line


def test_passwords_never_show_in_a_repr_but_reach_a_child_process(secrets: DevSecrets) -> None:
    settings = _sasl_ssl(secrets, kafka_ssl_cert_file=secrets.client_cert,
                         kafka_ssl_key_file=secrets.client_key,
                         kafka_ssl_key_password=PASSWORD + "-key")
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())
    env = settings.as_env()
    assert env["RELAYFLOW_KAFKA_SASL_PASSWORD"] == PASSWORD
    assert env["RELAYFLOW_KAFKA_SSL_KEY_PASSWORD"] == PASSWORD + "-key"


def test_plaintext_clients_get_only_the_bootstrap_servers() -> None:
    kafka = KafkaClients(_settings())
    assert kafka.connection() == {"bootstrap_servers": "k1:9093"}
    assert kafka.security() is None


def test_every_bootstrap_server_of_a_list_reaches_the_bridges_broker() -> None:
    # FastStream takes a string as one address: "a,b,c" would be a host named so.
    kafka = KafkaClients(Settings(kafka_bootstrap_servers="127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3"))
    consumer = kafka.broker().config.broker_config.builder
    assert isinstance(consumer, functools.partial)
    assert consumer.keywords["bootstrap_servers"] == ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]


def test_sasl_plaintext_clients_get_the_mechanism_and_credentials_and_no_tls() -> None:
    kafka = KafkaClients(_settings(kafka_security_protocol="SASL_PLAINTEXT",
                                   kafka_sasl_mechanism="SCRAM-SHA-256",
                                   kafka_sasl_username="worker", kafka_sasl_password=PASSWORD))
    assert kafka.connection() == {
        "bootstrap_servers": "k1:9093", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "worker",
        "sasl_plain_password": PASSWORD}
    security = kafka.security()
    assert isinstance(security, SASLScram256)
    assert (security.username, security.password, security.use_ssl) == ("worker", PASSWORD, False)


def test_ssl_clients_verify_the_broker_with_the_ca_file_and_present_the_client_certificate(
        secrets: DevSecrets) -> None:
    kafka = KafkaClients(_settings(kafka_security_protocol="SSL",
                                   kafka_ssl_ca_file=secrets.ca_file,
                                   kafka_ssl_cert_file=secrets.client_cert,
                                   kafka_ssl_key_file=secrets.client_key))
    options = kafka.connection()
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "k1:9093", "security_protocol": "SSL"}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    [ca] = context.get_ca_certs()
    assert "relayflow dev CA" in str(ca["subject"])
    security = kafka.security()
    assert type(security) is BaseSecurity
    assert security.ssl_context is context


@pytest.mark.parametrize(("mechanism", "kind"), [
    ("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)])
def test_every_client_and_the_broker_share_one_tls_context_and_the_credentials(
        secrets: DevSecrets, mechanism: str, kind: type[BaseSecurity]) -> None:
    kafka = KafkaClients(_sasl_ssl(secrets, kafka_sasl_mechanism=mechanism,
                                   kafka_ssl_check_hostname=False))
    options = kafka.connection()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("bridge",
                                                                                PASSWORD)
    assert not options["ssl_context"].check_hostname
    assert options["ssl_context"].verify_mode is ssl.CERT_REQUIRED  # the chain is still checked
    security = kafka.security()
    assert type(security) is kind
    assert security.ssl_context is options["ssl_context"]
    # What FastStream hands its aiokafka consumers:
    consumer = kafka.broker().config.broker_config.builder
    assert isinstance(consumer, functools.partial)
    for name in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                 "sasl_plain_password", "ssl_context"):
        assert consumer.keywords[name] == options[name], name


def test_a_key_that_does_not_fit_the_certificate_names_the_key_file(
        secrets: DevSecrets, tmp_path: Path) -> None:
    write_ca(tmp_path, "another CA")
    with pytest.raises(KafkaSecurityError, match=r"^RELAYFLOW_KAFKA_SSL_KEY_FILE: cannot use"):
        KafkaClients(_settings(kafka_security_protocol="SSL",
                               kafka_ssl_cert_file=secrets.client_cert,
                               kafka_ssl_key_file=tmp_path / "ca-key.pem"))


def _plain_without_tls(environment: pytest.MonkeyPatch) -> None:
    for name, value in {"RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                        "RELAYFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
                        "RELAYFLOW_KAFKA_SASL_USERNAME": "bridge",
                        "RELAYFLOW_KAFKA_SASL_PASSWORD": PASSWORD}.items():
        environment.setenv(name, value)


def test_sasl_plain_over_plaintext_stops_a_process_at_start_unless_allowed(
        environment: pytest.MonkeyPatch) -> None:
    _plain_without_tls(environment)
    # The bridge stops before it builds a client: nothing ever reaches a broker.
    result = CliRunner().invoke(app, ["bridge"])
    assert result.exit_code == 2
    assert result.output == (
        "relayflow: RELAYFLOW_KAFKA_SASL_MECHANISM=PLAIN with RELAYFLOW_KAFKA_SECURITY_PROTOCOL="
        "SASL_PLAINTEXT sends the password in clear; use SASL_SSL or a SCRAM mechanism "
        "(RELAYFLOW_KAFKA_SASL_PLAIN_WITHOUT_TLS=true allows it)\n")
    assert PASSWORD not in result.output

    environment.setenv("RELAYFLOW_KAFKA_SASL_PLAIN_WITHOUT_TLS", "true")
    security = KafkaClients(load_settings()).security()
    assert isinstance(security, SASLPlaintext)
    assert not security.use_ssl


def test_the_cli_prints_a_bad_setting_as_one_line_and_exits_2(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("RELAYFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    environment.setenv("RELAYFLOW_KAFKA_SASL_MECHANISM", "PLAIN")
    environment.setenv("RELAYFLOW_KAFKA_SASL_PASSWORD", PASSWORD)
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 2
    assert result.output == ("relayflow: RELAYFLOW_KAFKA_SASL_USERNAME is required with "
                             "RELAYFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n")


def test_dev_secrets_are_owner_only_and_give_each_principal_its_settings(
        secrets: DevSecrets) -> None:
    assert stat.S_IMODE(secrets.folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in secrets.folder.iterdir()} == {0o600}
    passwords = secrets.users()
    assert set(passwords) == set(PRINCIPALS)
    assert len(set(passwords.values())) == len(PRINCIPALS)
    bridge = secrets.client_settings(Settings(), "bridge")
    assert bridge.kafka_sasl_username == "bridge"
    assert bridge.kafka_sasl_password is not None
    assert bridge.kafka_sasl_password.get_secret_value() == passwords["bridge"]
    assert KafkaClients(bridge).connection()["ssl_context"].get_ca_certs()


def test_the_secured_broker_demands_sasl_ssl_client_certificates_and_acls(
        secrets: DevSecrets, tmp_path: Path) -> None:
    text = render_server_properties(Settings(kafka_port=9192, kafka_controller_port=9193),
                                    tmp_path, secrets)
    props = {name: value for name, _, value in (line.partition("=") for line in text.splitlines())}
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["listener.name.sasl_ssl.ssl.client.auth"] == "required"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,PLAIN"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:admin;User:ANONYMOUS"
    assert props["ssl.truststore.location"] == str(secrets.ca_file)


def test_each_node_of_a_secured_cluster_listens_securely_on_its_own_ports(
        secrets: DevSecrets, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka_port=9192, kafka_controller_port=9193,
                        kafka_dev_brokers=3, kafka_dev_node_ports="9194/9195,9196/9197")
    nodes = kafka_nodes(settings)
    text = render_server_properties(settings, tmp_path, secrets, node=nodes[2], cluster=nodes)
    props = {name: value for name, _, value in (line.partition("=") for line in text.splitlines())}
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9196,CONTROLLER://127.0.0.1:9197"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:9196"
    assert props["inter.broker.listener.name"] == "SASL_SSL"  # replication authenticated too
    assert props["node.id"] == "3"


def _writers(plan: set[str], topic: str) -> set[str]:
    return {acl.split(":")[0] for acl in plan if acl.endswith(f"WRITE topic {topic}")}


def test_an_application_declares_the_producers_of_its_inputs_and_they_become_principals() -> None:
    # The reference declares ``approvals`` for its decisions; without a declaration
    # (the tickets example), ``tools`` writes every input topic and no one else does.
    assert input_producers(APP) == {APPROVALS_DECISIONS: "approvals"}
    assert principals(input_producers(APP)) == (*PRINCIPALS, "approvals")
    assert input_producers(TICKETS) == {}
    assert principals({}) == PRINCIPALS
    plan = {str(acl) for acl in acl_plan(TICKETS.all_topics(), "relayflow-bridge")}
    assert _writers(plan, "tickets.events") == {"tools"}
    assert _writers(plan, "tickets.outcomes") == {"worker"}
    undeclared = {str(acl) for acl in acl_plan(TOPICS, "relayflow-bridge")}
    assert _writers(undeclared, APPROVALS_DECISIONS) == {"tools"}


def test_the_acl_plan_gives_each_principal_only_what_it_needs() -> None:
    plan = {str(acl) for acl in acl_plan(TOPICS, "relayflow-bridge", input_producers(APP))}

    def writers(topic: str) -> set[str]:
        return _writers(plan, topic)

    assert writers(APPROVALS_DECISIONS) == {"approvals"}
    assert writers("orders.events") == {"tools"}
    assert writers("orders.outcomes") == writers("batches.outcomes") == {"worker"}
    assert writers(dlq_topic("orders.events")) == {"bridge"}
    assert writers(PARKED_KEYS) == {"bridge", "tools"}
    assert {acl for acl in plan if acl.startswith("bridge: READ")} == {
        "bridge: READ topic orders.events", "bridge: READ topic approvals.decisions",
        "bridge: READ topic batches.requests", f"bridge: READ topic {PARKED_KEYS}",
        "bridge: READ group prefixed relayflow-bridge"}
    assert not any(acl.startswith(("worker: READ", "approvals: READ")) for acl in plan)
    # tools reads without a group and may only describe the bridge's: joining it
    # would let tools commit past records the bridge never handled.
    assert {acl for acl in plan if acl.startswith("tools:") and " group " in acl} == {
        "tools: DESCRIBE group prefixed relayflow-bridge"}


def test_dev_status_says_the_stack_is_secured_and_shows_no_secret(
        environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = DevSecrets(tmp_path / "kafka" / "secrets")
    secrets.generate()
    environment.setenv("RELAYFLOW_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["dev", "status"])
    assert result.exit_code == 0, result.output
    assert ("Kafka secured: SASL_SSL with SCRAM-SHA-512 (or PLAIN) and client certificates"
            in result.output)
    assert not [p for p in secrets.users().values() if p in result.output]


async def test_aiokafka_debug_lines_never_show_the_sasl_exchange(
        caplog: pytest.LogCaptureFixture) -> None:
    plain = SaslPlainAuthenticator(loop=asyncio.get_running_loop(), sasl_plain_username="tools",
                                   sasl_plain_password=PASSWORD)
    step = await plain.step(None)
    assert step is not None
    sasl = SaslAuthenticateRequest(step[0]).build(SaslAuthenticateRequest_v1)
    assert PASSWORD in str(sasl)  # PLAIN's first message: the password in clear
    other = MetadataRequest_v5(topics=["orders.events"], allow_auto_topic_creation=False)
    with caplog.at_level(logging.DEBUG, logger="aiokafka.conn"):
        for request in (sasl, other):  # as aiokafka's connection logs each request it sends
            logging.getLogger("aiokafka.conn").debug("Request to %s:%d %d: %s", "127.0.0.1",
                                                     9093, 3, request)
    hidden, shown = caplog.messages
    assert hidden == "Request to 127.0.0.1:9093 3: SaslAuthenticateRequest_v1(<hidden>)"
    assert shown == f"Request to 127.0.0.1:9093 3: {other}"


def test_the_bridge_alone_writes_reply_topics_and_no_outcome_topic() -> None:
    plan = {str(acl) for acl in acl_plan(COUNTERS.all_topics(), "relayflow-bridge")}
    assert _writers(plan, "counters.replies") == _writers(plan, "counters.replies.mobile") == {
        "bridge"}
    assert _writers(plan, "counters.outcomes") == {"worker"}
