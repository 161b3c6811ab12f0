"""Wiring of the bridge: the FastStream app, its dependencies, one subscriber per input topic.

Dependencies (Temporal client, DLQ producer, codec) are built in the app's
lifespan and reach the handler through FastStream's context, never globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy, Context, ContextRepo, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter

from bridge.commands import TemporalCommands
from bridge.consumer import BatchProcessor
from bridge.dlq import DeadLetters
from bridge.routes import ROUTES, RouteTable
from relayflow.settings import Settings
from relayflow.temporal import connect
from schemas import EVENT_TYPES
from schemas.codec import AvroCodec

__all__ = ["build_broker", "create_app", "run_bridge"]

log = logging.getLogger(__name__)

PROCESSOR = "processor"


def _printable(value: bytes | None) -> bytes:
    if value is None:
        return b""
    try:
        value.decode()
    except UnicodeDecodeError:
        return value.decode(errors="replace").encode()
    return value


async def _parse(records: tuple[Any, ...], original: Callable[..., Awaitable[Any]]) -> Any:
    # FastStream's parser UTF-8-decodes every header and fails the whole batch on
    # one bad byte, outside our handler. Give it a sanitized copy, then hand the
    # untouched records to the handler (bad headers are a DLQ matter, not a crash).
    safe = tuple(
        dataclasses.replace(r, headers=[(k, _printable(v)) for k, v in (r.headers or ())])
        for r in records
    )
    message = await original(safe)
    message.raw_message = records
    return message


async def _raw(message: Any) -> Any:
    # Bodies are decoded by our codec, per record; FastStream must not try
    # (a bogus content-type would make it fail before the handler and skip the record).
    return message.body


async def _consume(message: KafkaMessage, processor: BatchProcessor = Context(PROCESSOR)) -> None:
    records = message.raw_message if isinstance(message.raw_message, tuple) else (
        message.raw_message,)
    try:
        await processor.process(records)
    except BaseException:
        # Rewind to the batch's first records so nothing past them is ever committed.
        await message.nack()
        raise
    await message.ack()


def build_broker(settings: Settings, routes: RouteTable = ROUTES) -> KafkaBroker:
    """A broker with one batch subscriber (manual ack) per input topic of the routes."""
    broker = KafkaBroker(settings.kafka_bootstrap_servers, logger=log)
    for topic in routes.topics:
        router = KafkaRouter()
        router.subscriber(
            topic,
            batch=True,
            max_records=settings.bridge_batch_size,
            batch_timeout_ms=100,
            group_id=settings.kafka_consumer_group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            parser=_parse,
            decoder=_raw,
            max_poll_interval_ms=10 * 60 * 1000,
        )(_consume)
        broker.include_router(router)
    return broker


@contextlib.asynccontextmanager
async def _dependencies(settings: Settings, routes: RouteTable) -> AsyncIterator[BatchProcessor]:
    client = await connect(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        yield BatchProcessor(
            routes,
            AvroCodec(EVENT_TYPES.values()),
            TemporalCommands(client, settings.task_queue),
            DeadLetters(producer),
            max_payload_bytes=settings.max_payload_bytes,
            concurrency=settings.bridge_concurrency,
        )
    finally:
        await producer.stop()


def create_app(settings: Settings, routes: RouteTable = ROUTES) -> FastStream:
    """The bridge as a FastStream app (``faststream run`` compatible).

    Args:
        settings: Kafka, Temporal and bridge settings.
        routes: The routing table.
    """

    @contextlib.asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        async with _dependencies(settings, routes) as processor:
            context.set_global(PROCESSOR, processor)
            yield

    return FastStream(build_broker(settings, routes), lifespan=lifespan)


async def run_bridge(settings: Settings, *, stop: asyncio.Event | None = None,
                     routes: RouteTable = ROUTES) -> None:
    """Run the bridge until ``stop`` is set (or forever).

    Stopping closes the consumers: a batch in flight is abandoned uncommitted
    and will be redelivered, which is harmless.
    """
    app = create_app(settings, routes)
    async with app.lifespan_context():
        await app.start()
        log.info("bridge consuming %s as group %s", ", ".join(routes.topics),
                 settings.kafka_consumer_group)
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await app.stop()
            log.info("bridge stopped")
