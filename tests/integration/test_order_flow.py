"""The whole flow on a real Kafka and a real Temporal: bridge + worker in this process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from temporalio.client import WorkflowExecutionStatus

from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.operate.dlq import parked_keys, read_dead_letters, release, replay
from relayflow.reference.app import APP
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalRequested,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
)
from relayflow.reference.pending_approvals import pending_approvals
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.runtime.bootstrap import connect_temporal
from schemas.framing import to_record
from schemas.headers import (
    CAUSATION_ID,
    CORRELATION_ID,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_ID,
)
from schemas.topics import dlq_topic
from tests.helpers.approver_keys import signed
from tests.helpers.support import KafkaProbe, kafka_probe, order_placed, reference_store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""

CODEC = APP.codec()


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    watched = [ORDERS_OUTCOMES, dlq_topic(ORDERS_EVENTS), dlq_topic(APPROVALS_DECISIONS)]
    async with kafka_probe(system, watched) as p:
        yield p


def _for_order(order_id: str, topic: str = ORDERS_OUTCOMES):  # type: ignore[no-untyped-def]
    return lambda r: r.topic == topic and r.key == order_id.encode()


async def test_order_placed_completes_with_correlated_outcome(probe: KafkaProbe) -> None:
    order = order_placed()
    record = to_record(order, CODEC, correlation_id="corr-123")
    await probe.send_record(ORDERS_EVENTS, record)

    [outcome] = await probe.wait_for(_for_order(order.order_id))
    event = CODEC.decode(outcome.value)
    headers = dict(outcome.headers)
    assert isinstance(event, OrderCompleted)
    assert event.correlation_id == "corr-123"
    assert event.causation_id == str(order.event_id)
    assert headers[CORRELATION_ID] == b"corr-123"
    assert headers[CAUSATION_ID] == str(order.event_id).encode()
    assert headers[EVENT_ID] == str(event.event_id).encode()


async def test_failure_outcome_lists_compensations(probe: KafkaProbe, system: Settings) -> None:
    order = order_placed(country="XX")  # no carrier: fails at the last step
    record = to_record(order, CODEC)
    await probe.send_record(ORDERS_EVENTS, record)

    [outcome] = await probe.wait_for(_for_order(order.order_id))
    event = CODEC.decode(outcome.value)
    assert isinstance(event, OrderFailed)
    assert (event.reason, event.failed_step) == ("shipment_failed", "create_shipment")
    assert event.compensations == ("refund_payment", "release_inventory")
    store = reference_store(system)
    [payment] = store.rows("payments", order.order_id)
    assert payment["status"] == "refunded"


async def test_duplicate_event_runs_one_saga_and_charges_once(
    probe: KafkaProbe, system: Settings
) -> None:
    order = order_placed()
    record = to_record(order, CODEC)
    for _ in range(3):
        await probe.send_record(ORDERS_EVENTS, record)

    await probe.wait_for(_for_order(order.order_id))
    # Give a second saga, if one were (wrongly) started, the time to report too.
    later = order_placed()
    rec2 = to_record(later, CODEC)
    await probe.send_record(ORDERS_EVENTS, rec2)
    await probe.wait_for(_for_order(later.order_id))

    outcomes = [r for r in probe.seen if _for_order(order.order_id)(r)]
    assert len(outcomes) == 1
    client = await connect_temporal(system)
    runs = [w async for w in client.list_workflows(f"WorkflowId = 'order-{order.order_id}'")]
    assert len(runs) == 1
    assert runs[0].status == WorkflowExecutionStatus.COMPLETED
    store = reference_store(system)
    assert len(store.rows("payments", order.order_id)) == 1


async def test_undecodable_record_goes_to_dlq_parks_its_key_and_replay_releases_it(
    probe: KafkaProbe, system: Settings
) -> None:
    key = f"junk-{uuid.uuid4().hex[:8]}".encode()
    original_headers = [("event-type", b"relayflow.orders.OrderPlaced"), ("x-trace", b"\xff\x00")]
    await probe.send(ORDERS_EVENTS, b"\xc3\x01garbage", key, original_headers)
    # Same key afterwards: parked (to the DLQ, in order), never processed ahead of it.
    good = order_placed(order_id=key.decode())
    record = to_record(good, CODEC)
    await probe.send_record(ORDERS_EVENTS, record)
    # Another key flows meanwhile.
    other = order_placed()
    other_record = to_record(other, CODEC)
    await probe.send_record(ORDERS_EVENTS, other_record)

    dead, parked = await probe.wait_for(_for_order(key.decode(), dlq_topic(ORDERS_EVENTS)),
                                        count=2)
    headers = dict(dead.headers)
    assert dead.value == b"\xc3\x01garbage"
    assert list(dead.headers)[:2] == original_headers
    assert headers[DLQ_REASON] == b"truncated"
    assert headers[DLQ_SOURCE_TOPIC] == ORDERS_EVENTS.encode()
    assert int(headers[DLQ_SOURCE_PARTITION]) == dead.partition
    assert int(headers[DLQ_SOURCE_OFFSET]) >= 0
    assert dict(parked.headers)[DLQ_REASON] == b"parked"
    assert parked.value == record.value
    await probe.wait_for(_for_order(other.order_id))
    assert (ORDERS_EVENTS, key) in await parked_keys(system)

    # The operator skips the poison record and replays the rest; replay is idempotent.
    first = await replay(system, ORDERS_EVENTS, key, parked_only=True)
    assert first.status == "replaying"
    assert [d.reason for d in first.copied] == ["parked"]
    [completed] = await probe.wait_for(_for_order(key.decode()))
    assert isinstance(CODEC.decode(completed.value), OrderCompleted)
    for _ in range(100):  # the bridge releases the key after the replay's last record
        if (ORDERS_EVENTS, key) not in await parked_keys(system):
            break
        await asyncio.sleep(0.2)
    assert (ORDERS_EVENTS, key) not in await parked_keys(system)
    assert (await replay(system, ORDERS_EVENTS, key)).status == "not-parked"
    letters = await read_dead_letters(system, [ORDERS_EVENTS])
    assert [d.reason for d in letters if d.key == key] == ["truncated", "parked"]


async def test_a_released_key_flows_again(probe: KafkaProbe, system: Settings) -> None:
    order_id = f"rel-{uuid.uuid4().hex[:8]}"
    cancel = to_record(OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                      order_id=order_id), CODEC)
    await probe.send_record(ORDERS_EVENTS, cancel)  # nothing to cancel
    [dead] = await probe.wait_for(_for_order(order_id, dlq_topic(ORDERS_EVENTS)))
    assert dict(dead.headers)[DLQ_REASON] == b"target-not-found"
    released = await release(system, ORDERS_EVENTS, order_id.encode())
    assert released is not None
    assert released.reason == "target-not-found"
    placed = to_record(order_placed(order_id=order_id), CODEC)
    await probe.send_record(ORDERS_EVENTS, placed)
    [completed] = await probe.wait_for(_for_order(order_id))
    assert isinstance(CODEC.decode(completed.value), OrderCompleted)
    assert await release(system, ORDERS_EVENTS, order_id.encode()) is None


async def test_offset_is_committed_after_the_record_was_processed(
    probe: KafkaProbe, system: Settings
) -> None:
    order = order_placed()
    record = to_record(order, CODEC)
    sent = await probe.send_record(ORDERS_EVENTS, record)
    await probe.wait_for(_for_order(order.order_id))
    tp = TopicPartition(ORDERS_EVENTS, sent.partition)

    admin = KafkaClients(system).admin()
    await admin.start()
    try:
        committed = -1
        for _ in range(100):  # the batch acks right after its last record; bounded wait
            offsets = await admin.list_consumer_group_offsets(system.kafka_consumer_group)
            committed = offsets[tp].offset if tp in offsets else -1
            if committed > sent.offset:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    assert committed > sent.offset
    ends = await probe.end_offsets([tp])
    assert committed <= ends[tp]


def _decision(request: ApprovalRequested, verdict: str = "APPROVED") -> ApprovalDecided:
    return signed(ApprovalDecided(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                  approval_id=request.approval_id, order_id=request.order_id,
                                  decision=verdict,  # type: ignore[arg-type]
                                  decided_by=f"{request.approver}/it-approver"))


async def test_approval_round_trip_through_kafka(probe: KafkaProbe, system: Settings) -> None:
    order = order_placed(quantity=1, unit_price_cents=REFERENCE.approval_threshold_cents)
    record = to_record(order, CODEC)
    await probe.send_record(ORDERS_EVENTS, record)

    [asked] = await probe.wait_for(_for_order(order.order_id))
    request = CODEC.decode(asked.value)
    assert isinstance(request, ApprovalRequested)
    assert request.approver == REFERENCE.approver
    # This system's sagas: another task queue's, without a worker, would keep the query waiting.
    pending = await pending_approvals(await connect_temporal(system), task_queue=system.task_queue)
    assert f"order-{order.order_id}" in {p.workflow_id for p in pending}

    answer = to_record(_decision(request), CODEC, correlation_id=request.correlation_id)
    await probe.send_record(APPROVALS_DECISIONS, answer)
    outcomes = await probe.wait_for(_for_order(order.order_id), count=2)
    assert isinstance(CODEC.decode(outcomes[1].value), OrderCompleted)
    # The outcome is published just before the saga closes; a decision in between would
    # reach the open saga (ignored there as a second decision), so wait for the close.
    client = await connect_temporal(system)
    await client.get_workflow_handle(f"order-{order.order_id}").result()

    # A decision for a finished order is stale: dead-lettered with the reason, nothing breaks.
    stale = to_record(_decision(request, "REJECTED"), CODEC)
    await probe.send_record(APPROVALS_DECISIONS, stale)
    [dead] = await probe.wait_for(_for_order(order.order_id, dlq_topic(APPROVALS_DECISIONS)))
    assert dict(dead.headers)[DLQ_REASON] == b"target-closed"
    assert dead.value == stale.value
