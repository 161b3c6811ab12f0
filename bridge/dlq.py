"""Dead-letter records: the original record untouched, plus why it failed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from relayflow.topics import dlq_topic
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)

__all__ = ["MAX_ERROR_BYTES", "DeadLetters", "InboundRecord", "dlq_headers"]

log = logging.getLogger(__name__)

MAX_ERROR_BYTES = 4096
"""``dlq-error`` is cut to this size: it explains, the original record is the evidence."""


class InboundRecord(Protocol):
    """The fields of an aiokafka ``ConsumerRecord`` the bridge reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class _Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> Any: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


def dlq_headers(record: InboundRecord, reason: str, error: str,
                failed_at: datetime | None = None) -> list[tuple[str, bytes]]:
    """The original headers, untouched and in order, followed by the ``dlq-*`` headers."""
    at = (failed_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    added = [
        (DLQ_REASON, reason),
        (DLQ_ERROR, error.encode()[:MAX_ERROR_BYTES].decode(errors="ignore")),
        (DLQ_SOURCE_TOPIC, record.topic),
        (DLQ_SOURCE_PARTITION, str(record.partition)),
        (DLQ_SOURCE_OFFSET, str(record.offset)),
        (DLQ_FAILED_AT, at),
    ]
    return [*list(record.headers or ()), *((name, value.encode()) for name, value in added)]


class DeadLetters:
    """Writes records to ``<topic>.dlq`` and waits for the broker's acknowledgement.

    The record keeps its partition when the DLQ topic has as many partitions
    as the source (it does for relayflow's topics), so per-key order survives.

    Args:
        producer: A started producer with ``acks="all"``.
    """

    def __init__(self, producer: _Producer) -> None:
        self._producer = producer
        self._partitions: dict[str, int] = {}

    async def send(self, record: InboundRecord, reason: str, error: str) -> None:
        """Dead-letter one record; raises if the broker did not take it."""
        topic = dlq_topic(record.topic)
        if topic not in self._partitions:
            self._partitions[topic] = len(await self._producer.partitions_for(topic))
        partition = record.partition if record.partition < self._partitions[topic] else None
        await self._producer.send_and_wait(
            topic, record.value, key=record.key, partition=partition,
            headers=dlq_headers(record, reason, error),
        )
        log.warning("dead-lettered %s[%d]@%d to %s: %s: %s", record.topic, record.partition,
                    record.offset, topic, reason, error[:200])
