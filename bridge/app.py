"""Wiring of the bridge: the FastStream app, its dependencies, one batch subscriber.

Connected clients (Temporal, the DLQ producer) and the codec are handed in by
the composition root; the app's lifespan builds the consumer's objects from
them and hands them to the handler through FastStream's context, never globals.
Every input topic of the routing table is read by one batch subscriber (one
consumer-group member per process): manual acknowledgement, so
FastStream never commits, and raw bytes, so FastStream never decodes a body;
``bridge.consumer`` commits explicit per-partition offsets instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer, TopicPartition
from faststream import AckPolicy, Context, ContextRepo, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter, Topic
from opentelemetry.trace import Tracer
from temporalio.client import Client

from bridge.commands import PayloadSizes, TemporalCommands
from bridge.config import (
    MAX_POLL_INTERVAL_MS,
    SESSION_TIMEOUT_S,
    BridgeConfig,
    KafkaClientFactory,
)
from bridge.consumed import ConsumedRecord
from bridge.consumer import FetchConsumer, FetchProcessor
from bridge.dead_letters import DeadLetters
from bridge.decoding import Decoder
from bridge.metrics import BridgeMetrics
from bridge.observing import RecordObserver
from bridge.offsets import KafkaOffsets, Offsets
from bridge.parking import CatchUpOnAssign, ParkingLot
from bridge.retry import Backoff
from bridge.routes import RouteTable
from bridge.updates import UpdateCommands
from schemas.formats import EventCodec

__all__ = ["BRIDGE", "BridgeStatus", "bridge_dependencies", "build_broker", "consume_fetch",
           "create_app", "serve"]

log = logging.getLogger(__name__)

BRIDGE = "relayflow_bridge"
"""Context key of the handler's ``FetchConsumer`` (no dots: FastStream reads dots as attributes)."""

_FETCH_WAIT_MS = 100  # how long a poll waits to fill a fetch; keeps latency low when idle
_HEARTBEAT_MS = 3000  # aiokafka's default heartbeat interval


class BridgeStatus:
    """A running bridge as health checks and metric scrapes see it.

    ``create_app`` fills it in; the composition root reads it.

    Args:
        metrics: The bridge's metrics.

    Attributes:
        metrics: The bridge's metrics.
        broker: The app's broker, once built.
        fetch: The fetch consumer while the app runs.
    """

    def __init__(self, metrics: BridgeMetrics | None = None) -> None:
        self.metrics = metrics or BridgeMetrics()
        self.broker: KafkaBroker | None = None
        self.fetch: FetchConsumer | None = None

    @property
    def consumer(self) -> Any:
        """The subscriber's ``AIOKafkaConsumer`` while it runs, else None."""
        if self.broker is None:
            return None
        return next((getattr(s, "consumer", None) for s in self.broker.subscribers), None)

    @property
    def assigned(self) -> set[TopicPartition]:
        """The partitions the group assigned to this bridge now."""
        consumer = self.consumer
        return set(consumer.assignment()) if consumer is not None else set()

    def outages(self) -> dict[str, float]:
        """Seconds each failing dependency has held records back (only those failing)."""
        if self.fetch is None:
            return {}
        processor = self.fetch.processor
        return {health.dependency: health.outage_seconds
                for health in (processor.temporal, processor.dlq, processor.registry)
                if health.degraded}

    async def observe(self) -> None:
        """Bring the scrape-time metrics (lag, paused partitions) up to date."""
        consumer = self.consumer
        if consumer is not None:
            await self.metrics.observe(consumer)


def _printable(value: bytes | None) -> bytes:
    if value is None:
        return b""
    try:
        value.decode()
    except UnicodeDecodeError:
        return value.decode(errors="replace").encode()
    return value


def _parser(config: BridgeConfig) -> Callable[[Sequence[Any], Callable[..., Awaitable[Any]]],
                                               Awaitable[Any]]:
    """FastStream's batch parser, given sanitized headers and none past the header limits."""
    def within(headers: Sequence[tuple[str, bytes | None]]) -> bool:
        # The first place the bridge sees a record (aiokafka has built its header
        # list by then): past a limit, the record is dead-lettered undecoded
        # (bridge.decoding), so FastStream gets none of its headers to decode,
        # copy and collect into a dict first.
        if len(headers) > config.max_header_count:
            return False
        size = 0
        for name, value in headers:
            size += len(name) + len(value or b"")
            if size > config.max_header_bytes:
                return False
        return True

    def safe(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
        if not within(headers):
            return []
        return [(name, _printable(value)) for name, value in headers]

    async def parse(records: Sequence[Any], original: Callable[..., Awaitable[Any]]) -> Any:
        # FastStream's parser UTF-8-decodes every header and would fail the whole batch
        # on one bad byte (or a null header), before our handler. Give it a sanitized
        # copy, then hand the untouched records to the handler: bad headers are a
        # dead-letter matter, and the DLQ keeps the original bytes. The usual fetch
        # (every header within the limits and decodable) needs no copy: the sanitized
        # one would be equal, and copying cost ~5 µs a record (BENCHMARKS.md).
        fetched = tuple(records)
        message = None
        if all(within(record.headers) for record in fetched):
            with contextlib.suppress(UnicodeDecodeError, AttributeError):  # bad or null value
                message = await original(fetched)
        if message is None:
            message = await original(tuple(dataclasses.replace(r, headers=safe(r.headers))
                                           for r in fetched))
        message.raw_message = fetched
        return message

    return parse


async def _raw(message: Any) -> Any:
    # Values are decoded by our codec, per record; FastStream must not try
    # (a bogus content-type would fail the batch before the handler).
    return message.body


async def consume_fetch(message: KafkaMessage, bridge: FetchConsumer = Context(BRIDGE)) -> None:
    """The subscriber: one fetch of records in, explicit offset commits out."""
    records: Sequence[ConsumedRecord] = message.raw_message
    await bridge.consume(records, message.consumer)


class _GroupTimeouts(NamedTuple):
    """The consumer's group timeouts for a session timeout (10 s: aiokafka's own defaults).

    Heartbeats a third of the session apart, as Kafka advises, at most aiokafka's
    3 s. The rebalance timeout (how long the coordinator waits for a live member
    to rejoin) is never shorter than aiokafka's default of 10 s: a short session
    is for noticing a dead bridge sooner, not for evicting a busy one.
    """

    session_timeout_ms: int
    heartbeat_interval_ms: int
    rebalance_timeout_ms: int

    @classmethod
    def of(cls, session_seconds: float) -> _GroupTimeouts:
        session_ms = round(session_seconds * 1000)
        return cls(session_ms, min(_HEARTBEAT_MS, session_ms // 3),
                   max(session_ms, round(SESSION_TIMEOUT_S * 1000)))


def build_broker(config: BridgeConfig, routes: RouteTable, kafka: KafkaClientFactory,
                 listener: CatchUpOnAssign | None = None) -> KafkaBroker:
    """A broker with one batch subscriber (one group member) for every input topic of the routes.

    Args:
        config: Consumer group, fetch size, shutdown time.
        routes: The routing table; its topics are subscribed.
        kafka: Builds the broker, connected like every other client.
        listener: Catches up on parked keys when partitions are assigned.
    """
    # Per-fetch consume logs go to DEBUG; the bridge logs what matters itself.
    broker = kafka.broker(logger=log, log_level=logging.DEBUG,
                          graceful_timeout=config.shutdown_seconds)
    # One consumer for every input topic: a process is one group member, so starting or
    # stopping a bridge costs one rebalance, not one per topic.
    router = KafkaRouter()
    group = _GroupTimeouts.of(config.session_timeout_seconds)
    router.subscriber(
        # The topics are the deployment's to create (with the contract's partition counts);
        # FastStream would try on every start, and need the CREATE ACL to stay quiet.
        *(Topic(name, declare=False) for name in routes.topics),
        batch=True,
        max_records=config.fetch_max_records,
        batch_timeout_ms=_FETCH_WAIT_MS,
        group_id=config.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,  # auto-commit off; we commit explicit offsets
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        session_timeout_ms=group.session_timeout_ms,
        heartbeat_interval_ms=group.heartbeat_interval_ms,
        rebalance_timeout_ms=group.rebalance_timeout_ms,
        # What one fetch may cost before anything is decoded (as stored; see the config).
        fetch_max_bytes=config.fetch_max_bytes,
        max_partition_fetch_bytes=config.max_partition_fetch_bytes,
        listener=listener,
        parser=_parser(config),
        decoder=_raw,
    )(consume_fetch)
    broker.include_router(router)
    return broker


@contextlib.asynccontextmanager
async def bridge_dependencies(config: BridgeConfig, routes: RouteTable, codec: EventCodec, *,
                              temporal: Client, producer: AIOKafkaProducer,
                              kafka: KafkaClientFactory, backoff: Backoff | None = None,
                              listener: CatchUpOnAssign | None = None,
                              tracer: Tracer | None = None,
                              metrics: BridgeMetrics | None = None,
                              offsets: Offsets | None = None,
                              ) -> AsyncIterator[FetchConsumer]:
    """Build the consumer's objects on the clients handed in; stop what it started.

    Args:
        config: The bridge's limits.
        routes: The routing table.
        codec: Decodes record values.
        temporal: Connected Temporal client (pydantic data converter).
        producer: Started producer (``acks="all"``, idempotent) for dead letters and parks.
        kafka: Builds the parked-keys follower.
        backoff: Retry schedule of transient failures.
        listener: The subscriber's rebalance listener; gets the parking lot.
        tracer: Makes a consume span per record (``bridge.observing``); None: no spans.
        metrics: What the consumer's objects count into.
        offsets: Commits and rewinds the consumer's offsets (default: on the
            ``AIOKafkaConsumer`` itself; the in-memory test harness keeps its own).

    Yields:
        The fetch consumer the subscriber hands its fetches to.
    """
    backoff = backoff or Backoff()
    call = timedelta(seconds=config.temporal_call_seconds)
    metrics = metrics or BridgeMetrics()
    metrics.topics(routes.topics)
    lot = None
    if config.park_keys:
        follower = kafka.consumer(enable_auto_commit=False, fetch_max_wait_ms=100,
                                  isolation_level="read_committed")
        lot = ParkingLot(follower, producer, topic=config.parked_keys_topic, metrics=metrics)
    try:
        if lot is not None:
            await lot.start()
            if listener is not None:
                listener.lot = lot
        processor = FetchProcessor(
            Decoder(codec, routes, max_payload_bytes=config.max_payload_bytes,
                    max_header_count=config.max_header_count,
                    max_header_bytes=config.max_header_bytes),
            TemporalCommands(temporal, config.task_queue, rpc_timeout=call, metrics=metrics),
            DeadLetters(producer),
            updates=UpdateCommands(temporal, config.task_queue, codec, producer,
                                   routes.reply_topics, rpc_timeout=call, metrics=metrics),
            concurrency=config.concurrency,
            backoff=backoff,
            signal_hold=config.signal_hold_seconds,
            parking=lot,
            observer=RecordObserver(tracer, group=config.consumer_group),
            metrics=metrics,
            sizes=PayloadSizes(temporal.data_converter),
        )
        yield FetchConsumer(processor, offsets or KafkaOffsets(),
                            budget=config.fetch_budget_seconds, backoff=backoff)
    finally:
        if lot is not None:
            await lot.stop()


def create_app(config: BridgeConfig, routes: RouteTable, codec: EventCodec, *,
               temporal: Client, producer: AIOKafkaProducer,
               kafka: KafkaClientFactory, tracer: Tracer | None = None,
               status: BridgeStatus | None = None) -> FastStream:
    """The bridge as a FastStream app, on clients the caller connected and will close.

    Args:
        config: The bridge's settings.
        routes: The routing table.
        codec: Decodes record values (both framings).
        temporal: Connected Temporal client (pydantic data converter).
        producer: Started producer (``acks="all"``, idempotent) for dead letters and parks.
        kafka: Builds the broker and the parked-keys follower.
        tracer: Makes a consume span per record; None (tracing off): no spans.
        status: Filled in for health checks and metrics (its metrics are counted into).
    """
    running: list[FetchConsumer] = []
    listener = CatchUpOnAssign()
    status = status or BridgeStatus()

    @contextlib.asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        async with bridge_dependencies(config, routes, codec, temporal=temporal,
                                       producer=producer, kafka=kafka,
                                       listener=listener, tracer=tracer,
                                       metrics=status.metrics) as bridge:
            context.set_global(BRIDGE, bridge)
            running.append(bridge)
            status.fetch = bridge
            try:
                yield
            finally:
                running.remove(bridge)
                status.fetch = None

    status.broker = build_broker(config, routes, kafka, listener)
    app = FastStream(status.broker, lifespan=lifespan, logger=log)

    @app.on_shutdown
    def drain() -> None:
        # Runs before the broker stops its subscribers (which wait up to the graceful
        # timeout for the fetch in flight): that fetch starts no more records, lets
        # in-flight Temporal calls finish, commits what is done and leaves the rest.
        for bridge in running:
            bridge.stop()

    return app


async def serve(app: FastStream, stop: asyncio.Event, *, description: str = "bridge") -> None:
    """Run a bridge app until ``stop`` is set.

    Stopping drains the fetch in flight (``create_app``'s shutdown hook) and
    closes the consumer; what did not finish is redelivered later, which is
    harmless. Setting ``stop`` while the app is still starting (Kafka not
    answering yet) returns at once.

    Args:
        app: From ``create_app``.
        stop: Set it to stop gracefully.
        description: What runs, logged once it does.
    """
    serving = asyncio.Event()

    async def run() -> None:
        async with app.lifespan_context():
            await app.start()
            # What start-up built lives as long as the process: frozen, it is left out of
            # every later full collection, which otherwise walks all of it again each
            # time (a few per 10,000 records, tens of milliseconds each: BENCHMARKS.md).
            gc.collect()
            gc.freeze()
            serving.set()
            log.info("%s", description)
            try:
                await stop.wait()
            finally:
                await app.stop()
                log.info("bridge stopped")

    server = asyncio.create_task(run(), name="bridge")
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.is_set() and not server.done():
            server.cancel()  # still starting: nothing to drain
        with contextlib.suppress(asyncio.CancelledError):
            await server
    finally:
        stopped.cancel()
