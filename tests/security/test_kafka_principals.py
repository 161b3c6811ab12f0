"""Attacks on the secured dev broker's ACLs as the ``tools`` principal.

``tools`` holds the credentials operators and tests use (``relayflow tail``,
``dlq list``, ``top``, DLQ replay). Were it allowed to READ the bridge's
consumer group, it could join that group or commit offsets past records the
bridge never handled: those records would be skipped for good. The broker is
``relayflow dev up --secure``'s (SASL_SSL, SCRAM, client certificates, the
``acl_plan`` ACLs), the session's (``secured``, shared with the integration
tests: each test has a group and task queue of its own); Temporal is the
session's. Each attack asserts the broker's refusal and that the group's
committed offsets did not move; the operator commands ``tools`` runs still
work (the positive control).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError

from devtools.secured_kafka import SecuredKafka
from relayflow.config.settings import Settings
from relayflow.kafka.reads import commit_group, end_offsets, start_group_at_end
from relayflow.reference.app import APP
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.clients import kafka_clients
from relayflow.testing import app_kafka
from schemas.topics import dlq_topic
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RELAYFLOW = str(Path(sys.executable).with_name("relayflow"))


async def _committed(settings: Settings) -> dict[TopicPartition, int]:
    """The group's committed offsets, read as ``settings``' principal (DESCRIBE on the group)."""
    async with kafka_clients(settings).started_admin() as admin:
        found = await admin.list_consumer_group_offsets(settings.kafka_consumer_group)
    return {tp: at.offset for tp, at in found.items()}


def _relayflow(settings: Settings, *args: str, status: int = 0) -> str:
    """``relayflow <args>`` as ``settings``' principal; its output (it must exit ``status``)."""
    result = subprocess.run([RELAYFLOW, *args], env={**os.environ, **settings.as_env()},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == status, result.stdout + result.stderr
    return result.stdout


async def test_tools_cannot_join_or_commit_the_bridges_group_but_its_commands_work(
        secured: SecuredKafka) -> None:
    group = {"kafka_consumer_group": f"relayflow-bridge-{uuid.uuid4().hex[:8]}",
             "task_queue": f"sec-{uuid.uuid4().hex[:8]}"}
    bridge = secured.as_principal("bridge", **group)
    tools = secured.as_principal("tools", **group)
    # The bridge places its group at the end; then records arrive it has not handled yet.
    await start_group_at_end(kafka_clients(bridge), bridge.kafka_consumer_group, APP.input_topics)
    async with app_kafka(tools, APP) as kafka:
        orders = [order_placed() for _ in range(3)]
        sent = [await kafka.send(order) for order in orders]
    pending = {TopicPartition(ORDERS_EVENTS, d.partition) for d in sent}
    before = await _committed(tools)  # tools may read the offsets (DESCRIBE): lag
    ends = await end_offsets(kafka_clients(tools), pending)
    assert all(before[tp] < ends[tp] for tp in pending), (before, ends)

    # Attack 1: commit the bridge's group past the records it has not handled.
    with pytest.raises(GroupAuthorizationFailedError):
        await commit_group(kafka_clients(tools), tools.kafka_consumer_group, ends)

    # Attack 2: join the group as a member (then the records would be tools' to take).
    async with kafka_clients(tools).started_consumer(
            group_id=tools.kafka_consumer_group, enable_auto_commit=False) as member:
        member.subscribe([ORDERS_EVENTS])
        with pytest.raises(GroupAuthorizationFailedError):
            async with asyncio.timeout(60):
                await member.getmany(timeout_ms=30_000)

    assert await _committed(tools) == before
    assert await _committed(bridge) == before

    # The operator commands tools runs still work, reading without a group. They only
    # read, so they run at once (each process spends a second or two importing).
    with ThreadPoolExecutor(3) as pool:
        listed = pool.submit(_relayflow, tools, "dlq", "list", "-o", "json")
        tailed = pool.submit(_relayflow, tools, "tail", ORDERS_EVENTS, "--last", "3", "-o",
                             "json")
        # No bridge or worker runs here: top exits 3 for their silent metrics endpoints
        # (where its lag gauge comes from), and reads Kafka's dead letters and parked keys.
        topped = pool.submit(_relayflow, tools, "top", "--once", "-o", "json", "--timeout",
                             "10", status=3)
    listing = json.loads(listed.result())
    assert dlq_topic(ORDERS_EVENTS) in listing["topics"]  # answered: no ACL refusal
    keys = {order.order_id for order in orders}
    tail = tailed.result()
    assert keys <= {json.loads(line)["key"] for line in tail.splitlines()}
    frame = json.loads(topped.result())
    assert all("metrics endpoint" in line for line in frame["unanswered"]), frame["unanswered"]
    assert dlq_topic(ORDERS_EVENTS) in frame["dead_letters"]
    assert frame["parked_keys"] is not None
    assert await _committed(bridge) == before
