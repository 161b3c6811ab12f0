"""Helpers for tests that talk to a real Kafka: produce events, wait for records."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata

from relayflow.settings import Settings
from schemas import OrderLine, OrderPlaced
from schemas.records import KafkaRecord

__all__ = ["KafkaProbe", "kafka_probe", "order_placed"]


def order_placed(order_id: str | None = None, *, sku: str = "SKU-TEA", quantity: int = 2,
                 unit_price_cents: int = 1250, country: str = "DE",
                 approval_timeout_seconds: int | None = None) -> OrderPlaced:
    """A valid OrderPlaced with a fresh event id."""
    return OrderPlaced(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
        order_id=order_id or f"o-{uuid.uuid4().hex[:10]}", customer_id="c-1",
        items=(OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents),),
        amount_cents=quantity * unit_price_cents, shipping_country=country,
        approval_timeout_seconds=approval_timeout_seconds,
    )


class KafkaProbe:
    """Produces records and collects what appears on watched topics from now on."""

    def __init__(self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        self.producer = producer
        self._consumer = consumer
        self.seen: list[ConsumerRecord[bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes,
                   headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        """Produce one record and wait for the broker's ack."""
        return await self.producer.send_and_wait(topic, value, key=key, headers=headers or [])

    async def send_record(self, topic: str, record: KafkaRecord) -> RecordMetadata:
        """Produce a record made by ``schemas.records.to_record``."""
        return await self.send(topic, record.value, record.key, record.headers)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Current log-end offsets."""
        return dict(await self._consumer.end_offsets(partitions))

    async def wait_for(self, predicate: Callable[[ConsumerRecord[bytes, bytes]], bool], *,
                       count: int = 1, wait_seconds: float = 60.0,
                       ) -> list[ConsumerRecord[bytes, bytes]]:
        """Records matching ``predicate`` once ``count`` of them arrived (bounded wait)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            matched = [r for r in self.seen if predicate(r)]
            if len(matched) >= count or time.monotonic() > deadline:
                return matched
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.seen.extend(records)

    async def caught_up(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Everything seen so far once every watched partition was read to its end as of now."""
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        while [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.seen.extend(records)
        return self.seen


@asynccontextmanager
async def kafka_probe(settings: Settings, watch: list[str]) -> AsyncIterator[KafkaProbe]:
    """A probe watching ``watch`` from their current end."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                enable_idempotence=True)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t in watch
                         for p in sorted(await producer.partitions_for(t))])
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)
        yield KafkaProbe(producer, consumer)
    finally:
        await consumer.stop()
        await producer.stop()
        await asyncio.sleep(0)
