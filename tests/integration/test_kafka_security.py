"""Kafka over SASL_SSL with SCRAM-SHA-512, client certificates and ACLs, on a secured dev broker.

The broker is ``relayflow dev up --secure``'s, started for this module on free
ports (``tests.secured_kafka``); Temporal is the session's. Each process
connects as its own principal: the bridge as ``bridge``, the worker as
``worker``, the test itself as ``tools``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from devtools.secured_kafka import SecuredKafka
from devtools.toxiproxy import Toxiproxy
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.devstack.secure import ADMIN, GROUP, Acl, DevSecrets, create_acls, write_ca
from relayflow.kafka.clients import KafkaSecurityError
from relayflow.kafka.reads import start_group_at_end
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCompleted
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import running
from relayflow.runtime.clients import kafka_clients
from relayflow.testing import app_kafka
from schemas.topics import dlq_topic
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))


def _own_queue_and_group(secured: SecuredKafka) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    # The bridge's ACL covers groups starting with relayflow-bridge.
    return {"task_queue": f"sec-{suffix}", "kafka_consumer_group": f"relayflow-bridge-{suffix}"}


async def test_an_order_flows_over_sasl_ssl_with_a_principal_per_process(
        secured: SecuredKafka) -> None:
    own = _own_queue_and_group(secured)
    bridge = secured.as_principal("bridge", **own)
    worker = secured.as_principal("worker", **own)
    tools = secured.as_principal("tools", **own)
    # The bridge places its own group: tools may not commit it.
    await start_group_at_end(kafka_clients(bridge), bridge.kafka_consumer_group, APP.input_topics)
    async with running(bridge, APP, worker_settings=worker), app_kafka(tools, APP) as kafka:
        order = order_placed()
        await kafka.send(order)
        completed = await kafka.wait_for(OrderCompleted, key=order.order_id, timeout=60)
    assert completed.causation_id == str(order.event_id)


def _refused(settings: Settings, command: str, **env: str) -> tuple[int, str]:
    """Run ``relayflow <command>`` with ``settings`` (and ``env`` over them) until it exits."""
    result = subprocess.run(
        [RELAYFLOW, command], env={**os.environ, **settings.as_env(), **env},
        capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, result.stdout + result.stderr


def _lines_naming(output: str, setting: str) -> list[str]:
    return [line for line in output.splitlines() if setting in line]


def test_a_wrong_password_stops_the_bridge_at_once_with_one_line_naming_it(
        secured: SecuredKafka) -> None:
    bridge = secured.as_principal("bridge", **_own_queue_and_group(secured))
    code, output = _refused(bridge, "bridge", RELAYFLOW_KAFKA_SASL_PASSWORD="not-the-password")
    assert code == 2, output
    [line] = _lines_naming(output, "RELAYFLOW_KAFKA_SASL_PASSWORD")
    assert "authentication failed" in line
    assert "'bridge'" in line
    assert "Traceback" not in output
    assert "not-the-password" not in output


def test_an_untrusted_broker_certificate_stops_the_worker_with_one_line_naming_the_ca_file(
        secured: SecuredKafka, tmp_path: Path) -> None:
    write_ca(tmp_path, "some other CA")
    worker = secured.as_principal("worker", **_own_queue_and_group(secured))
    code, output = _refused(worker, "worker", RELAYFLOW_KAFKA_SSL_CA_FILE=str(tmp_path / "ca.pem"))
    assert code == 2, output
    [line] = _lines_naming(output, "RELAYFLOW_KAFKA_SSL_CA_FILE")
    assert "not trusted" in line
    assert str(tmp_path / "ca.pem") in line
    assert "Traceback" not in output


async def _committed(settings: Settings, tp: TopicPartition) -> int:
    async with kafka_clients(settings).started_admin() as admin:
        offsets = await admin.list_consumer_group_offsets(settings.kafka_consumer_group)
    return offsets[tp].offset if tp in offsets else -1


async def test_a_bridge_not_allowed_to_write_the_dlq_commits_nothing_and_loses_nothing(
        secured: SecuredKafka, caplog: pytest.LogCaptureFixture) -> None:
    own = _own_queue_and_group(secured)
    # tools may read the inputs but not write a dead-letter topic. It may not read
    # the bridge's groups either: this test lends it this one group, by its literal name.
    reader = secured.as_principal("tools", **own)
    bridge = secured.as_principal("bridge", **own)
    async with kafka_clients(secured.as_principal(ADMIN)).started_admin() as admin:
        await create_acls(admin, [Acl("tools", "READ", GROUP, reader.kafka_consumer_group)])
    await start_group_at_end(kafka_clients(reader), reader.kafka_consumer_group, APP.input_topics)
    async with app_kafka(reader, APP) as kafka:
        key = f"junk-{uuid.uuid4().hex[:8]}"
        bad = await kafka.send_bytes(ORDERS_EVENTS, b"\xc3\x01garbage", key=key)
        tp = TopicPartition(ORDERS_EVENTS, bad.partition)
        refusal = f"not authorized to write to {dlq_topic(ORDERS_EVENTS)}"
        with caplog.at_level(logging.WARNING, logger="bridge.consumer"):
            async with running(reader, APP, worker=False):
                async with asyncio.timeout(60):
                    while not any(refusal in r.getMessage()  # noqa: ASYNC110 - log records
                                  for r in caplog.records):
                        await asyncio.sleep(0.1)
        [warning] = [r.getMessage() for r in caplog.records if refusal in r.getMessage()]
        assert f"WRITE on topic {dlq_topic(ORDERS_EVENTS)}" in warning
        assert await _committed(reader, tp) <= bad.offset

        # The same group, now as the bridge's principal: the record was kept, not lost.
        async with running(bridge, APP, worker=False):
            dead = await kafka.wait_for_dead_letter(ORDERS_EVENTS, key=key, timeout=60)
            assert dead.value == b"\xc3\x01garbage"
            async with asyncio.timeout(30):
                while await _committed(reader, tp) <= bad.offset:  # noqa: ASYNC110 - remote
                    await asyncio.sleep(0.1)


async def _access_refused(settings: Settings) -> str:
    """The one line the access check stops a process with (``KafkaSecurityError``)."""
    with pytest.raises(KafkaSecurityError) as raised:
        await kafka_clients(settings).check_access()
    [line] = str(raised.value).splitlines()
    assert not any(word in line.lower() for word in (
        "check_hostname", "turn", " off", "disable", "insecure", "skip"))
    assert "PLAINTEXT" not in line
    return line


async def test_a_client_certificate_from_another_ca_is_refused_naming_the_cert_file(
        secured: SecuredKafka, tmp_path: Path) -> None:
    stranger = DevSecrets(tmp_path / "other")
    stranger.generate()  # another CA, and a client certificate it signed
    tools = secured.as_principal("tools").model_copy(update={
        "kafka_ssl_cert_file": stranger.client_cert, "kafka_ssl_key_file": stranger.client_key})
    line = await _access_refused(tools)
    assert line.startswith("RELAYFLOW_KAFKA_SSL_CERT_FILE: the broker at "
                           f"{tools.kafka_bootstrap_servers} refused the client certificate "
                           f"{stranger.client_cert} (")


def _loopback_name() -> tuple[str, str]:
    """This machine's name and the address it resolves to (neither is in the certificate)."""
    name = socket.gethostname()
    return name, socket.gethostbyname(name)


@pytest.mark.parametrize("named", [False, True], ids=["address", "name"])
async def test_a_broker_certificate_for_another_host_names_the_bootstrap_servers(
        secured: SecuredKafka, tmp_path: Path, named: bool) -> None:
    # The broker's certificate names 127.0.0.1 and localhost: reach the same broker
    # through a proxy at another loopback address, or at this machine's name.
    host, listen = _loopback_name() if named else ("127.0.0.2", "127.0.0.2")
    port = free_port()
    with Toxiproxy(secured.settings, tmp_path / "toxiproxy.log") as toxiproxy:
        toxiproxy.proxy("secured", secured.settings.kafka_bootstrap_servers,
                        listen=f"{listen}:{port}")
        line = await _access_refused(secured.as_principal(
            "tools", kafka_bootstrap_servers=f"{host}:{port}"))
    assert line.startswith(f"RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS: the certificate of the broker "
                           f"at {host}:{port} does not name that host (")
    assert ("Hostname mismatch" if named else "IP address mismatch") in line


def test_a_tls_client_on_a_plaintext_listener_stops_the_worker_naming_the_address(
        secured: SecuredKafka, relayflow_stack: Settings) -> None:
    # The session's broker listens without TLS; the broker drops a TLS client's
    # ClientHello and nothing else would tell the worker, which would retry for ever.
    plaintext = relayflow_stack.kafka_bootstrap_servers
    worker = secured.as_principal("worker", **_own_queue_and_group(secured))
    code, output = _refused(worker, "worker", RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS=plaintext)
    assert code == 2, output
    [line] = _lines_naming(output, f"the listener at {plaintext}")
    assert line.endswith(
        f"RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS: the listener at {plaintext} does not speak TLS "
        "(it answers Kafka without TLS), and RELAYFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "it; connect to the brokers' TLS listener")
    assert "Traceback" not in output
