"""Helpers shared by the tests: events, bridge records and processors, a real-Kafka probe.

Test modules import these (and the fakes in ``tests.helpers.fakes``) instead of
importing each other.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord, RecordMetadata
from typer.testing import CliRunner, Result

from bridge.consumer import FetchProcessor
from bridge.decoding import Decoder
from bridge.retry import Backoff
from relayflow.cli.main import app
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.activities.store import Store
from relayflow.reference.app import APP, ROUTES
from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalTimedOut,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderLine,
    OrderPlaced,
)
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from schemas import Event
from schemas.framing import KafkaRecord, to_record
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, Record

__all__ = ["CODEC", "FAST", "NOW", "KafkaProbe", "cancelled", "decoder", "kafka_probe",
           "order_placed", "processor", "record", "samples"]

CODEC = APP.codec()
"""Knows every event of the contract."""
FAST = Backoff(initial=0.001, maximum=0.002)
"""A retry backoff short enough for unit tests."""
NOW = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)
"""A fixed instant (whole milliseconds, as Avro keeps it)."""


def order_placed(order_id: str | None = None, *, sku: str = "SKU-TEA", quantity: int = 2,
                 unit_price_cents: int = 1250, country: str = "DE", currency: str = "EUR",
                 approval_timeout_seconds: int | None = None) -> OrderPlaced:
    """A valid OrderPlaced with a fresh event id."""
    return OrderPlaced(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
        order_id=order_id or f"o-{uuid.uuid4().hex[:10]}", customer_id="c-1",
        items=(OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents),),
        amount_cents=quantity * unit_price_cents, currency=currency, shipping_country=country,
        approval_timeout_seconds=approval_timeout_seconds,
    )


def reference_store(settings: Settings) -> Store:
    """The reference app's store, as its worker running with ``settings`` opens it."""
    reference = ReferenceSettings.of(settings)
    return Store(reference.store_path, card_limit_cents=reference.card_limit_cents)


def samples() -> list[Event]:
    """One event of each order and approval type, fresh event ids."""
    return [
        order_placed("A-1"),
        OrderCancelled(event_id=uuid.uuid4(), occurred_at=NOW, order_id="A-1", reason="changed"),
        ApprovalDecided(event_id=uuid.uuid4(), occurred_at=NOW, approval_id="ap-1",
                        order_id="A-1", decision="REJECTED", decided_by="ann", comment=None),
        OrderCompleted(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                       causation_id="e", order_id="A-1", amount_cents=10, currency="EUR",
                       reservation_id="r", payment_id="p", shipment_id="s"),
        OrderFailed(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c", causation_id="e",
                    order_id="A-1", reason="payment_declined", failed_step="charge_payment",
                    compensations=("release_inventory",)),
        ApprovalRequested(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                          causation_id="e", order_id="A-1", approval_id="approval-A-1",
                          amount_cents=200_000, currency="EUR", approver="approvers",
                          deadline=NOW),
        ApprovalEscalated(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                          causation_id="e", order_id="A-1", approval_id="approval-A-1",
                          previous_approver="approvers", approver="managers", deadline=NOW),
        ApprovalTimedOut(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                         causation_id="e", order_id="A-1", approval_id="approval-A-1",
                         waited_seconds=172_800, last_approver="managers"),
        ApprovalDecisionRefused(event_id=uuid.uuid4(), occurred_at=NOW, correlation_id="c",
                                causation_id="e", order_id="A-1", approval_id="approval-A-1",
                                decided_by="mallory", decision="APPROVED",
                                reason="not-an-approver", approvers=("approvers",)),
    ]


def cancelled(order_id: str) -> OrderCancelled:
    """An OrderCancelled with a fresh event id."""
    return OrderCancelled(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), order_id=order_id)


def record(event: Event, offset: int = 0, *, partition: int = 0, key: bytes | None = None,
           headers: list[tuple[str, bytes | None]] | None = None,
           topic: str = ORDERS_EVENTS) -> Record:
    """``event`` as the bridge would fetch it (contract key and headers unless given)."""
    rec = to_record(event, CODEC)
    return Record(topic, partition, offset, rec.key if key is None else key, rec.value,
                  list(rec.headers) if headers is None else headers)


def decoder(limit: int = 4096) -> Decoder:
    """The bridge's decoder on relayflow's routes."""
    return Decoder(CODEC, ROUTES, max_payload_bytes=limit)


def processor(commands: FakeCommands, dlq: FakeDeadLetters | None = None, *,
              concurrency: int = 64) -> FetchProcessor:
    """A batch processor on the fakes, retrying fast."""
    return FetchProcessor(decoder(), commands, dlq or FakeDeadLetters(),
                          concurrency=concurrency, backoff=FAST)

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
        """Produce a record made by ``schemas.framing.to_record``."""
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
    kafka = KafkaClients(settings)
    producer = kafka.producer()
    await producer.start()
    consumer = kafka.consumer(enable_auto_commit=False)
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


async def cli(settings: Settings, *args: str, **env: str) -> Result:
    """Run ``relayflow *args`` with ``settings`` (commands call asyncio.run: another thread)."""
    environment = settings.as_env() | {"COLUMNS": "400"} | env
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=environment)


def as_json(result: Result) -> Any:
    """The command's standard output as JSON, once it exited 0."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
