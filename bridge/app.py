"""Wiring of the bridge: the FastStream app, its dependencies, one batch subscriber.

Dependencies (Temporal client, DLQ producer, codec) are built in the app's
lifespan and reach the handler through FastStream's context, never globals.
Every input topic of the routing table is read by one batch subscriber (one
consumer-group member per process): manual acknowledgement, so
FastStream never commits, and raw bytes, so FastStream never decodes a body;
``bridge.consumer`` commits explicit per-partition offsets instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream import AckPolicy, Context, ContextRepo, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bridge.commands import TemporalCommands
from bridge.consumer import Backoff, BatchConsumer, BatchProcessor
from bridge.decoding import Decoder
from bridge.dlq import DeadLetters
from bridge.offsets import KafkaOffsets
from bridge.parking import CatchUpOnAssign, ParkingLot
from bridge.records import InboundRecord
from bridge.routes import ROUTES, RouteTable
from relayflow.settings import Settings
from relayflow.temporal import connect

__all__ = [
    "BATCH_BUDGET_S",
    "BRIDGE",
    "MAX_POLL_INTERVAL_MS",
    "bridge_dependencies",
    "build_broker",
    "consume_batch",
    "create_app",
    "run_bridge",
]

log = logging.getLogger(__name__)

BRIDGE = "relayflow_bridge"
"""Context key of the handler's ``BatchConsumer`` (no dots: FastStream reads dots as attributes)."""

MAX_POLL_INTERVAL_MS = 300_000
"""Kafka's default: a member that does not poll for this long is dropped from its group."""

BATCH_BUDGET_S = 120.0
"""A batch stops starting records after this long. Under ``MAX_POLL_INTERVAL_MS`` with
room for the calls still in flight (bounded by their own timeouts), so the consumer
polls again in time even while Temporal is down."""

_NOT_UP_YET = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})
_BATCH_WAIT_MS = 100  # how long a poll waits to fill a batch; keeps latency low when idle


def _printable(value: bytes | None) -> bytes:
    if value is None:
        return b""
    try:
        value.decode()
    except UnicodeDecodeError:
        return value.decode(errors="replace").encode()
    return value


async def _parse(records: Sequence[Any], original: Callable[..., Awaitable[Any]]) -> Any:
    # FastStream's parser UTF-8-decodes every header and would fail the whole batch
    # on one bad byte (or a null header), before our handler. Give it a sanitized
    # copy, then hand the untouched records to the handler: bad headers are a
    # dead-letter matter, and the DLQ keeps the original bytes.
    safe = tuple(dataclasses.replace(r, headers=[(k, _printable(v)) for k, v in r.headers])
                 for r in records)
    message = await original(safe)
    message.raw_message = tuple(records)
    return message


async def _raw(message: Any) -> Any:
    # Values are decoded by our codec, per record; FastStream must not try
    # (a bogus content-type would fail the batch before the handler).
    return message.body


async def consume_batch(message: KafkaMessage, bridge: BatchConsumer = Context(BRIDGE)) -> None:
    """The subscriber: one fetched batch in, explicit offset commits out."""
    records: Sequence[InboundRecord] = message.raw_message
    await bridge.consume(records, message.consumer)


def build_broker(settings: Settings, routes: RouteTable = ROUTES,
                 listener: CatchUpOnAssign | None = None) -> KafkaBroker:
    """A broker with one batch subscriber (one group member) for every input topic of the routes.

    Args:
        settings: Bootstrap servers, consumer group, batch size.
        routes: The routing table; its topics are subscribed.
        listener: Catches up on parked keys when partitions are assigned.
    """
    # Per-batch consume logs go to DEBUG; the bridge logs what matters itself.
    broker = KafkaBroker(settings.kafka_bootstrap_servers, logger=log, log_level=logging.DEBUG,
                         graceful_timeout=settings.bridge_shutdown_seconds)
    # One consumer for every input topic: a process is one group member, so starting or
    # stopping a bridge costs one rebalance, not one per topic.
    router = KafkaRouter()
    router.subscriber(
        *routes.topics,
        batch=True,
        max_records=settings.bridge_batch_size,
        batch_timeout_ms=_BATCH_WAIT_MS,
        group_id=settings.kafka_consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # auto-commit off; we commit explicit offsets
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        listener=listener,
        parser=_parse,
        decoder=_raw,
    )(consume_batch)
    broker.include_router(router)
    return broker


async def _connect_temporal(settings: Settings, backoff: Backoff) -> Client:
    """Connect, waiting (with backoff) while Temporal is not up yet.

    Raises:
        RPCError: Temporal answers but refuses, e.g. the namespace does not
            exist: a configuration error, so the bridge does not start.
    """
    failures = 0
    while True:
        try:
            client = await connect(settings, retries=False)
            # Connecting does not check the namespace; an unknown one would block every record.
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace))
        except (RuntimeError, RPCError) as error:
            # The SDK raises RuntimeError when it cannot connect at all.
            if isinstance(error, RPCError) and error.status not in _NOT_UP_YET:
                raise
            failures += 1
            if failures == 1:
                log.warning("Temporal at %s unavailable (%s); retrying with backoff",
                            settings.temporal_address, error)
            await asyncio.sleep(backoff.delay(failures))
            continue
        if failures:
            log.warning("Temporal at %s available after %d attempts", settings.temporal_address,
                        failures + 1)
        return client


@contextlib.asynccontextmanager
async def bridge_dependencies(settings: Settings, routes: RouteTable = ROUTES,
                              listener: CatchUpOnAssign | None = None,
                              ) -> AsyncIterator[BatchConsumer]:
    """Build the bridge's real objects and close them afterwards.

    Args:
        settings: Where Kafka and Temporal are, and the bridge's limits.
        routes: The routing table.
        listener: The subscriber's rebalance listener; gets the parking lot.

    Yields:
        The batch consumer the subscribers hand their batches to.
    """
    backoff = Backoff()
    client = await _connect_temporal(settings, backoff)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", enable_idempotence=True)
    await producer.start()
    lot = ParkingLot(settings.kafka_bootstrap_servers, producer) if settings.bridge_park_keys \
        else None
    try:
        if lot is not None:
            await lot.start()
            if listener is not None:
                listener.lot = lot
        processor = BatchProcessor(
            Decoder(settings.codec(), routes,
                    max_payload_bytes=settings.max_payload_bytes),
            TemporalCommands(client, settings.task_queue),
            DeadLetters(producer),
            concurrency=settings.bridge_concurrency,
            backoff=backoff,
            signal_hold=settings.bridge_signal_hold_seconds,
            parking=lot,
        )
        yield BatchConsumer(processor, KafkaOffsets(), budget=BATCH_BUDGET_S, backoff=backoff)
    finally:
        if lot is not None:
            await lot.stop()
        await producer.stop()


def create_app(settings: Settings | None = None, routes: RouteTable = ROUTES) -> FastStream:
    """The bridge as a FastStream app (also ``faststream run --factory bridge.app:create_app``).

    Args:
        settings: Kafka, Temporal and bridge settings (default: from the environment).
        routes: The routing table.
    """
    settings = settings or Settings()
    running: list[BatchConsumer] = []
    listener = CatchUpOnAssign()

    @contextlib.asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        async with bridge_dependencies(settings, routes, listener) as bridge:
            context.set_global(BRIDGE, bridge)
            running.append(bridge)
            try:
                yield
            finally:
                running.remove(bridge)

    app = FastStream(build_broker(settings, routes, listener), lifespan=lifespan, logger=log)

    @app.on_shutdown
    def drain() -> None:
        # Runs before the broker stops its subscribers (which wait up to the graceful
        # timeout for the batch in flight): that batch starts no more records, lets
        # in-flight Temporal calls finish, commits what is done and leaves the rest.
        for bridge in running:
            bridge.stop()

    return app


async def run_bridge(settings: Settings, *, stop: asyncio.Event | None = None,
                     routes: RouteTable = ROUTES) -> None:
    """Run the bridge until ``stop`` is set (or forever); for ``relayflow bridge`` / ``run``.

    Stopping closes the consumers: a batch in flight is abandoned uncommitted
    and redelivered later, which is harmless. Setting ``stop`` while still
    waiting for Temporal to come up returns at once.

    Args:
        settings: Kafka, Temporal and bridge settings.
        stop: Set it to stop gracefully.
        routes: The routing table.
    """
    stop = stop or asyncio.Event()
    app = create_app(settings, routes)
    serving = asyncio.Event()

    async def serve() -> None:
        async with app.lifespan_context():
            await app.start()
            serving.set()
            log.info("bridge consuming %s as group %s", ", ".join(routes.topics),
                     settings.kafka_consumer_group)
            try:
                await stop.wait()
            finally:
                await app.stop()
                log.info("bridge stopped")

    server = asyncio.create_task(serve(), name="bridge")
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.is_set() and not server.done():
            server.cancel()  # still waiting for a dependency: nothing to drain
        with contextlib.suppress(asyncio.CancelledError):
            await server
    finally:
        stopped.cancel()
