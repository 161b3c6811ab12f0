"""Records and events of a given size, for the payload-size and claim-check tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bridge.commands import TEMPORAL_PAYLOAD_LIMIT, PayloadSizes
from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import BatchRequested, OrderLine, OrderPlaced
from relayflow.reference.topics import BATCHES_REQUESTS
from relayflow.runtime.clients import kafka_clients
from schemas import Event, EventMeta, Inbound
from schemas.framing import to_record

__all__ = ["LARGE_LIMIT", "batch_of", "five_mib_batch", "five_mib_order", "large_records",
           "largest_accepted", "send_large", "topic_limit"]

CODEC = APP.codec()


def batch_of(size: int, char: str = "\x01") -> Inbound[BatchRequested]:
    """A batch request whose one item holds ``size`` characters (control characters
    are 1 byte in Avro and 6 in JSON: ``\\u0001``)."""
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id="b-size", items=(char * size,))
    meta = EventMeta(event_type=event.avro_name, event_id=str(event.event_id),
                     correlation_id=str(event.event_id))
    return Inbound[BatchRequested](event=event, meta=meta)


async def largest_accepted(sizes: PayloadSizes, char: str = "x") -> int:
    """The item length whose encoded argument is exactly at the limit (binary search)."""
    low, high = 0, TEMPORAL_PAYLOAD_LIMIT
    while low < high:
        middle = (low + high + 1) // 2
        if await sizes.measure(batch_of(middle, char)) <= TEMPORAL_PAYLOAD_LIMIT:
            low = middle
        else:
            high = middle - 1
    return low


LARGE_LIMIT = 8 * 1024 * 1024
"""``max.message.bytes`` of ``batches.requests`` and ``max_payload_bytes`` here: a 5 MiB
record is under every Kafka limit, so only Temporal's is tested."""


@contextlib.asynccontextmanager
async def topic_limit(settings: Settings, topic: str, limit: int) -> AsyncIterator[None]:
    """``topic``'s ``max.message.bytes`` is ``limit`` while the block runs (then the default)."""
    async with kafka_clients(settings).started_admin() as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  {"max.message.bytes": str(limit)})])
    try:
        yield
    finally:
        async with kafka_clients(settings).started_admin() as admin:
            await admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})])


def large_records(settings: Settings) -> contextlib.AbstractAsyncContextManager[None]:
    """``batches.requests`` takes records up to ``LARGE_LIMIT`` while the block runs."""
    return topic_limit(settings, BATCHES_REQUESTS, LARGE_LIMIT)


async def send_large(settings: Settings, event: Event, topic: str = BATCHES_REQUESTS) -> int:
    """Produce ``event`` with a producer that takes records up to ``LARGE_LIMIT``; its size."""
    record = to_record(event, CODEC)
    producer = kafka_clients(settings).producer(max_request_size=LARGE_LIMIT + 4096)
    await producer.start()
    try:
        await producer.send_and_wait(topic, record.value, key=record.key,
                                     headers=record.headers)
    finally:
        await producer.stop()
    return len(record.value)


def five_mib_batch(batch_id: str) -> BatchRequested:
    """A batch request of 5 MiB and more: 10,000 item ids of 530 characters."""
    return BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), batch_id=batch_id,
                          items=tuple(f"item-{i:05d}-" + "x" * 519 for i in range(10_000)))


def five_mib_order(order_id: str) -> OrderPlaced:
    """An ``OrderPlaced`` record of 5 MiB and more: 26,000 lines of 200-character SKUs.

    No valid order is that large (at most 1000 lines of bounded ids, about 210 KB
    in Avro), so it is built without validation; decoding it fails validation.
    """
    lines = tuple(OrderLine.model_construct(sku=f"sku-{i:06d}-" + "x" * 189, quantity=1,
                                            unit_price_cents=1) for i in range(26_000))
    return OrderPlaced.model_construct(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), order_id=order_id,
        customer_id="c-large", items=lines, amount_cents=len(lines), currency="EUR",
        shipping_country="DE", approval_timeout_seconds=None)
