"""Batches through the real stack: BatchRequested in, BatchProgress/BatchCompleted out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import (
    BatchCancelled,
    BatchCompleted,
    BatchProgress,
    BatchRequested,
)
from relayflow.reference.topics import BATCHES_OUTCOMES, BATCHES_REQUESTS
from relayflow.runtime.bootstrap import connect_temporal
from schemas import Event
from schemas.framing import to_record
from schemas.topics import dlq_topic
from tests.helpers.support import KafkaProbe, kafka_probe, reference_store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CODEC = APP.codec()


@pytest.fixture
async def probe(system: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(system, [BATCHES_OUTCOMES, dlq_topic(BATCHES_REQUESTS)]) as p:
        yield p


def requested(**fields: Any) -> BatchRequested:
    return BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          batch_id=f"b-{uuid.uuid4().hex[:10]}", **fields)


async def send(probe: KafkaProbe, event: BatchRequested | BatchCancelled) -> None:
    record = to_record(event, CODEC)
    await probe.send_record(BATCHES_REQUESTS, record)


def of_batch(batch_id: str, kind: type[Event]) -> Any:
    def match(record: ConsumerRecord[bytes, bytes]) -> bool:
        return bool(record.topic == BATCHES_OUTCOMES and record.key == batch_id.encode()
                    and dict(record.headers).get("event-type") == kind.avro_name.encode())
    return match


async def test_thousand_item_batch_counts_match(probe: KafkaProbe, system: Settings) -> None:
    event = requested(item_count=1000, seed=3, fail_every=50, chunk_size=50,
                      max_concurrent_children=4, progress_every_chunks=5)
    await send(probe, event)

    [done] = await probe.wait_for(of_batch(event.batch_id, BatchCompleted), wait_seconds=180)
    completed = CODEC.decode(done.value)
    assert isinstance(completed, BatchCompleted)
    assert (completed.total, completed.succeeded, completed.failed) == (1000, 980, 20)
    assert (completed.chunks_done, completed.chunks_total) == (20, 20)
    assert sorted(completed.failed_item_ids) == sorted(f"bad-3-{i}" for i in range(0, 1000, 50))
    assert completed.failed_items_ref == f"store:batch_failures/{event.batch_id}"
    assert completed.causation_id == str(event.event_id)

    progress = [CODEC.decode(r.value) for r in probe.seen
                if of_batch(event.batch_id, BatchProgress)(r)]
    assert [p.chunks_done for p in progress] == [5, 10, 15, 20]  # type: ignore[attr-defined]

    # Every count is backed by the store: each item processed once, each failure kept.
    store = reference_store(system)
    assert store.processed_items(event.batch_id) == 980
    assert len(store.failed_items(event.batch_id)) == 20

    # No history near the 10,240-event limit; child ids are deterministic.
    client = await connect_temporal(system)
    children = [w async for w in client.list_workflows(
        f"WorkflowId STARTS_WITH 'batch-{event.batch_id}-chunk-'")]
    assert sorted(w.id for w in children) == sorted(
        f"batch-{event.batch_id}-chunk-{n}" for n in range(20))
    parent = await client.get_workflow_handle(f"batch-{event.batch_id}").fetch_history()
    assert len(parent.events) < 1000


async def test_batch_cancelled_by_event_reports_what_finished(probe: KafkaProbe) -> None:
    event = requested(item_count=5000, chunk_size=10, max_concurrent_children=1,
                      progress_every_chunks=2)
    await send(probe, event)
    await probe.wait_for(of_batch(event.batch_id, BatchProgress))
    await send(probe, BatchCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                                     batch_id=event.batch_id, reason="test"))

    [done] = await probe.wait_for(of_batch(event.batch_id, BatchCompleted), wait_seconds=120)
    completed = CODEC.decode(done.value)
    assert isinstance(completed, BatchCompleted)
    assert completed.cancelled
    assert 2 <= completed.chunks_done < completed.chunks_total == 500
    assert completed.succeeded == completed.chunks_done * 10
    assert completed.failed == 0


async def test_invalid_batch_request_goes_to_dlq(probe: KafkaProbe) -> None:
    # Valid Avro, invalid for the model: both an item list and a count.
    event = requested(item_count=10)
    record = to_record(event, CODEC)
    bad = CODEC.encode(event.model_copy(update={"items": ("a", "b")}))
    await probe.send(BATCHES_REQUESTS, bad, record.key, record.headers)
    [dead] = await probe.wait_for(
        lambda r: r.topic == dlq_topic(BATCHES_REQUESTS) and r.key == record.key)
    assert dict(dead.headers)["dlq-reason"] == b"invalid-event"
    assert dead.value == bad
