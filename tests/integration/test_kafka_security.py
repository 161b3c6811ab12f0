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
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from devtools.secured_kafka import SecuredKafka
from relayflow.config.settings import Settings
from relayflow.devstack.secure import ADMIN, GROUP, Acl, create_acls, write_ca
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
