"""Payload size on the real stack: the bridge's measure is the server's, and what is over it
is dead-lettered as ``oversize`` before the call, never ``rejected`` by Temporal after it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from temporalio.service import RPCError, RPCStatusCode

from bridge.commands import TEMPORAL_PAYLOAD_LIMIT, PayloadSizes
from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import BatchRequested
from relayflow.reference.topics import BATCHES_REQUESTS, ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal
from schemas.framing import to_record
from schemas.headers import DLQ_ERROR, DLQ_REASON
from schemas.topics import dlq_topic
from tests.helpers.payload_sizes import (
    LARGE_LIMIT,
    batch_of,
    five_mib_batch,
    five_mib_order,
    large_records,
    largest_accepted,
    send_large,
    topic_limit,
)
from tests.helpers.support import KafkaProbe, kafka_probe
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_the_bridges_limit_is_the_servers(relayflow_stack: Settings) -> None:
    """Just under the measured limit the server accepts a start; one character more it refuses."""
    client = await connect_temporal(relayflow_stack)
    sizes = PayloadSizes(client.data_converter)
    at_limit = await largest_accepted(sizes)
    queue = f"size-{uuid.uuid4().hex[:8]}"  # nobody polls it: the start is all that is tested
    handle = await client.start_workflow("BatchWorkflow", batch_of(at_limit, "x"),
                                         id=f"size-under-{queue}", task_queue=queue)
    await handle.terminate("payload size test")
    with pytest.raises(RPCError) as refused:
        await client.start_workflow("BatchWorkflow", batch_of(at_limit + 1, "x"),
                                    id=f"size-over-{queue}", task_queue=queue)
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "Blob data size exceeds limit" in refused.value.message


@pytest.fixture(scope="module")
async def bridged(relayflow_stack: Settings) -> AsyncIterator[tuple[Settings, KafkaProbe]]:
    async with relayflow_running(relayflow_stack) as settings, kafka_probe(
            settings, [dlq_topic(BATCHES_REQUESTS)]) as probe:
        yield settings, probe


async def test_small_on_kafka_but_large_for_temporal_is_oversize_with_both_sizes(
        bridged: tuple[Settings, KafkaProbe]) -> None:
    settings, probe = bridged
    batch_id = f"size-{uuid.uuid4().hex[:8]}"
    # Control characters: one byte each in Avro, six in JSON (\u0001).
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=batch_id, items=("\x01" * 400_000,))
    record = to_record(event, APP.codec())
    assert len(record.value) < settings.max_payload_bytes
    await probe.send_record(BATCHES_REQUESTS, record)
    [dead] = await probe.wait_for(lambda r: r.key == batch_id.encode())
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"oversize"
    error = headers[DLQ_ERROR].decode()
    assert f"{len(record.value)} bytes on Kafka encode to " in error
    assert f"payload limit of {TEMPORAL_PAYLOAD_LIMIT} bytes" in error
    client = await connect_temporal(settings)
    assert [w async for w in client.list_workflows(f"WorkflowId = 'batch-{batch_id}'")] == []


async def test_a_five_mib_batch_is_oversize_without_the_claim_check(
        bridged: tuple[Settings, KafkaProbe]) -> None:
    settings, probe = bridged
    batch_id = f"size5-{uuid.uuid4().hex[:8]}"
    async with large_records(settings):
        size = await send_large(settings, five_mib_batch(batch_id))
        [dead] = await probe.wait_for(lambda r: r.key == batch_id.encode())
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"oversize"
    assert headers[DLQ_ERROR].decode() == f"{size} bytes > {settings.max_payload_bytes}"


async def test_a_five_mib_order_is_oversize_without_the_claim_check(
        bridged: tuple[Settings, KafkaProbe]) -> None:
    settings, _ = bridged
    order_id = f"size5o-{uuid.uuid4().hex[:8]}"
    async with topic_limit(settings, ORDERS_EVENTS, LARGE_LIMIT), kafka_probe(
            settings, [dlq_topic(ORDERS_EVENTS)]) as probe:
        size = await send_large(settings, five_mib_order(order_id), ORDERS_EVENTS)
        [dead] = await probe.wait_for(lambda r: r.key == order_id.encode())
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"oversize"
    assert headers[DLQ_ERROR].decode() == f"{size} bytes > {settings.max_payload_bytes}"
