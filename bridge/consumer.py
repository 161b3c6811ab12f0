"""Processing a fetched batch of records: concurrent across keys, in order within a key.

Commit discipline: FastStream's ``ack()`` on Kafka commits the consumer's
position on *every* partition it holds, i.e. everything fetched so far. The
bridge therefore consumes in batches and acks once per batch, only after
every record of the batch is either acknowledged by Temporal or safely on
the dead-letter topic. If anything is left undone (shutdown, a crash, a
rebalance) nothing is committed and Kafka redelivers; workflow ids from
business keys and idempotent workflows make the redelivery harmless.

Within a batch, records are grouped by (partition, key): groups run
concurrently (bounded), records of one group strictly in order, so one
slow Temporal round trip never holds up other keys.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from aiokafka.errors import KafkaError

from bridge.commands import PermanentFailure, TransientFailure
from bridge.dlq import InboundRecord
from bridge.routes import Route, RouteTable
from schemas import Event, EventMeta, Inbound
from schemas.codec import AvroCodec, DecodeError
from schemas.headers import EventHeaders

__all__ = ["Backoff", "BatchProcessor", "CommandSink", "DeadLetterSink", "Outcome"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class CommandSink(Protocol):
    """Executes a routed event (``TemporalCommands`` in production)."""

    async def execute(self, route: Route, inbound: Inbound[Event]) -> str:
        """Return once acknowledged; raise Transient/PermanentFailure otherwise."""
        ...


class DeadLetterSink(Protocol):
    """Dead-letters a record (``DeadLetters`` in production)."""

    async def send(self, record: InboundRecord, reason: str, error: str) -> None:
        """Return once the record is durable on the dead-letter topic."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter.

    Attributes:
        initial: First delay, seconds.
        maximum: Cap, seconds.
        multiplier: Growth per attempt.
    """

    initial: float = 0.2
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        # Full jitter spreads retries of many bridges after a shared outage.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - not cryptographic


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one record.

    Attributes:
        record: Kafka coordinates ``topic[partition]@offset``.
        result: Temporal's answer (``started``, ...) or ``dlq:<reason>``.
    """

    record: str
    result: str


class BatchProcessor:
    """Decides and executes what each record of a batch means.

    Args:
        routes: The routing table.
        codec: Decodes record values.
        commands: Executes commands against Temporal.
        dead_letters: Takes records that can never be processed.
        max_payload_bytes: Larger values are dead-lettered undecoded.
        concurrency: Key groups processed at once.
        backoff: Retry schedule for transient failures.
    """

    def __init__(self, routes: RouteTable, codec: AvroCodec, commands: CommandSink,
                 dead_letters: DeadLetterSink, *, max_payload_bytes: int,
                 concurrency: int = 64, backoff: Backoff | None = None) -> None:
        self._routes = routes
        self._codec = codec
        self._commands = commands
        self._dead_letters = dead_letters
        self._max_payload = max_payload_bytes
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff = backoff or Backoff()
        self._degraded = False

    async def process(self, records: Sequence[InboundRecord]) -> list[Outcome]:
        """Process a batch; returns only when every record is done or dead-lettered.

        Raises:
            asyncio.CancelledError: On shutdown; nothing of the batch may be committed.
        """
        groups: dict[tuple[str, int, bytes | None], list[InboundRecord]] = {}
        for record in records:
            groups.setdefault((record.topic, record.partition, record.key), []).append(record)
        results = await asyncio.gather(*(self._run_group(group) for group in groups.values()))
        return [outcome for group in results for outcome in group]

    async def _run_group(self, group: list[InboundRecord]) -> list[Outcome]:
        async with self._slots:
            return [await self._handle(record) for record in group]

    async def _handle(self, record: InboundRecord) -> Outcome:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            route, inbound = self._decide(record)
            result = await self._retrying(lambda: self._commands.execute(route, inbound), where)
        except PermanentFailure as failure:
            reason, error = failure.reason, str(failure)
            await self._retrying(lambda: self._dead_letters.send(record, reason, error), where)
            return Outcome(where, f"dlq:{reason}")
        return Outcome(where, result)

    def _decide(self, record: InboundRecord) -> tuple[Route, Inbound[Event]]:
        """Validate and route a record; pure, so every rule is unit-testable."""
        value = record.value or b""
        if len(value) > self._max_payload:
            raise PermanentFailure("oversize", f"{len(value)} bytes > {self._max_payload}")
        try:
            key = (record.key or b"").decode("utf-8")
        except UnicodeDecodeError as error:
            raise PermanentFailure("bad-key", f"key is not UTF-8: {error}") from error
        try:
            event = self._codec.decode(value)
        except DecodeError as error:
            raise PermanentFailure(error.reason, str(error)) from error
        headers = EventHeaders.from_kafka(record.headers or ())
        if headers.event_type and headers.event_type != event.avro_name:
            message = f"event-type {headers.event_type!r} but value is {event.avro_name}"
            raise PermanentFailure("header-mismatch", message)
        if headers.event_id and headers.event_id != str(event.event_id):
            raise PermanentFailure(
                "header-mismatch", f"event-id {headers.event_id!r} but value has {event.event_id}"
            )
        if key != event.key:
            raise PermanentFailure("bad-key", f"key {key!r} but the event's key is {event.key!r}")
        route = self._routes.lookup(record.topic, event.avro_name)
        if route is None:
            raise PermanentFailure("no-route", f"no route for {event.avro_name} on {record.topic}")
        meta = EventMeta(
            event_type=event.avro_name,
            event_id=str(event.event_id),
            correlation_id=headers.correlation_id or str(event.event_id),
            causation_id=headers.causation_id,
            traceparent=headers.traceparent,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        # Parametrize with the concrete class: pydantic serializes by the declared
        # type, and Inbound[Event] would drop every field of the subclass.
        envelope: Any = Inbound[type(event)]  # type: ignore[misc]
        return route, cast("Inbound[Event]", envelope(event=event, meta=meta))

    async def _retrying(self, call: Callable[[], Awaitable[T]], where: str) -> T:
        attempt = 0
        while True:
            try:
                result = await call()
            except (TransientFailure, KafkaError, OSError, TimeoutError) as failure:
                # Temporal unavailable, or Kafka refusing the dead-letter write.
                attempt += 1
                if not self._degraded:
                    # Log once per state change, not once per retry.
                    log.warning("transient failure at %s, retrying with backoff: %r",
                                where, failure)
                    self._degraded = True
                await asyncio.sleep(self._backoff.delay(attempt))
                continue
            if self._degraded:
                log.warning("recovered at %s after %d retries", where, attempt)
                self._degraded = False
            return result
