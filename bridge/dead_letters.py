"""Dead-letter records: the original record untouched, plus why it failed.

A record goes to ``<source topic>.dlq`` with its original key, value and
headers (bytes as they came, in order), followed by the ``dlq-*`` headers of
the contract. It keeps its source partition when the DLQ topic has that many
partitions (relayflow's do), so per-key order survives; otherwise the
producer partitions by key. ``send`` returns only once the broker acknowledged
the write (``acks=all``); any failure propagates, and the caller retries it
as transient: a source offset is never committed before its record is durable
somewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.consumed import ConsumedRecord, where
from bridge.failures import writing_to
from schemas.dead_letters import DlqReason
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)
from schemas.topics import dlq_topic

__all__ = ["MAX_ERROR_BYTES", "DeadLetterSink", "DeadLetters", "dlq_headers"]

log = logging.getLogger(__name__)

MAX_ERROR_BYTES = 2048
"""``dlq-error`` is cut to this many UTF-8 bytes: it explains, the original record proves."""


class DeadLetterSink(Protocol):
    """Takes records that can never be processed; ``DeadLetters`` in production."""

    async def send(self, record: ConsumedRecord, reason: DlqReason, error: str) -> tuple[int, int]:
        """Return (partition, offset) once the record is durable on the DLQ; raise otherwise."""
        ...


class _Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: Sequence[tuple[str, bytes | None]] | None = None,
                            ) -> Any: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


def dlq_headers(record: ConsumedRecord, reason: DlqReason, error: str,
                failed_at: datetime | None = None) -> list[tuple[str, bytes | None]]:
    """The original headers, untouched and in order, followed by the ``dlq-*`` headers.

    Args:
        record: The record being dead-lettered.
        reason: Machine-readable reason (``dlq-reason``).
        error: Human-readable detail, cut to ``MAX_ERROR_BYTES``.
        failed_at: When it failed (default: now), written as ISO-8601 UTC.
    """
    at = (failed_at or datetime.now(UTC)).astimezone(UTC)
    added = {
        DLQ_REASON: reason,
        DLQ_ERROR: error.encode()[:MAX_ERROR_BYTES].decode(errors="ignore"),
        DLQ_SOURCE_TOPIC: record.topic,
        DLQ_SOURCE_PARTITION: str(record.partition),
        DLQ_SOURCE_OFFSET: str(record.offset),
        DLQ_FAILED_AT: at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return [*record.headers, *((name, value.encode()) for name, value in added.items())]


class DeadLetters:
    """Writes records to ``<topic>.dlq`` and waits for the broker's acknowledgement.

    Args:
        producer: A started producer with ``acks="all"`` (and idempotence on,
            so a retried send does not duplicate).
    """

    def __init__(self, producer: _Producer) -> None:
        self._producer = producer
        self._partitions: dict[str, int] = {}

    async def send(self, record: ConsumedRecord, reason: DlqReason, error: str) -> tuple[int, int]:
        """Dead-letter one record; returns where it landed once the broker has it.

        Raises:
            Exception: Whatever the producer raised (``KafkaError``, timeouts);
                the caller treats it as transient.
        """
        topic = dlq_topic(record.topic)
        with writing_to(topic):
            if topic not in self._partitions:
                self._partitions[topic] = len(await self._producer.partitions_for(topic))
            partition = record.partition if record.partition < self._partitions[topic] else None
            sent = await self._producer.send_and_wait(
                topic, record.value, key=record.key, partition=partition,
                headers=dlq_headers(record, reason, error),
            )
        log.warning("dead-lettered %s to %s: %s: %s", where(record), topic, reason, error[:300])
        return sent.partition, sent.offset
