"""Dead-letter records: the original record untouched, plus why it failed.

A record goes to ``<source topic>.dlq`` with its original key, value and
headers (bytes as they came, in order), followed by the ``dlq-*`` headers of
the contract. It keeps its source partition when the DLQ topic has that many
partitions (relayflow's do), so per-key order survives; otherwise the
producer partitions by key. ``send`` returns only once the broker acknowledged
the write (``acks=all``): a source offset is never committed before its record
is durable somewhere.

A record too large to copy whole (the producer's ``max_request_size`` or the
DLQ topic's ``max.message.bytes`` refuses it) must not hold its partition
forever, so it is copied bounded instead: the first ``TRUNCATED_VALUE_BYTES``
of its value, the original headers that fit in ``TRUNCATED_HEADER_BYTES``,
and ``dlq-truncated`` / ``dlq-value-bytes`` / ``dlq-value-sha256`` saying what
was cut and identifying the whole value. Should the DLQ refuse even that, a
last copy keeps only the key and the ``dlq-*`` headers. Each copy is sent
once: a refused record (``bridge.failures.REFUSED_RECORD``) is never retried
as it was; every other failure propagates, and the caller retries it as
transient.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from bridge.consumed import ConsumedRecord, where
from bridge.failures import refused, writing_to
from schemas.dead_letters import DlqReason
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DLQ_TRUNCATED,
    DLQ_VALUE_BYTES,
    DLQ_VALUE_SHA256,
)
from schemas.topics import dlq_topic

__all__ = ["MAX_ERROR_BYTES", "TRUNCATED_HEADER_BYTES", "TRUNCATED_VALUE_BYTES",
           "DeadLetterRefused", "DeadLetterSink", "DeadLetters", "bounded_copy", "dlq_headers"]

log = logging.getLogger(__name__)

MAX_ERROR_BYTES = 2048
"""``dlq-error`` is cut to this many UTF-8 bytes: it explains, the original record proves."""
TRUNCATED_VALUE_BYTES = 8 * 1024
"""A bounded copy keeps this much of the value: enough to see what it was."""
TRUNCATED_HEADER_BYTES = 8 * 1024
"""A bounded copy keeps the original headers, in order, while their names and values fit this."""

Headers = list[tuple[str, bytes | None]]


class DeadLetterRefused(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The DLQ topic refused even the smallest copy of a record (key and ``dlq-*`` headers).

    A configuration fault (a ``max.message.bytes`` of a few hundred bytes, a
    compacted DLQ topic and no key): retried as transient like a missing ACL,
    so fixing the topic lets the bridge carry on without a restart.
    """


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


def bounded_copy(record: ConsumedRecord, headers: Headers, *, value_bytes: int,
                 header_bytes: int) -> tuple[bytes, Headers]:
    """A dead-letter copy of bounded size: what fits of the value and headers, and what was cut.

    Args:
        record: The record being dead-lettered.
        headers: Its dead-letter headers (``dlq_headers``): the original ones, then ``dlq-*``.
        value_bytes: Most bytes of the value kept.
        header_bytes: Most bytes (names and values) of original headers kept.

    Returns:
        The value and headers to send: the original headers that fit, in order,
        then the ``dlq-*`` ones, then ``dlq-truncated`` (``value``, ``headers``),
        ``dlq-value-bytes`` and ``dlq-value-sha256`` of the whole value.
    """
    value = record.value or b""
    original = len(record.headers)
    kept: Headers = []
    size = 0
    for name, raw in record.headers:
        size += len(name.encode("utf-8", "surrogatepass")) + len(raw or b"")
        if size > header_bytes:
            break
        kept.append((name, raw))
    cut = [part for part, whole in (("value", len(value) <= value_bytes),
                                    ("headers", len(kept) == original)) if not whole]
    added = [(DLQ_TRUNCATED, ",".join(cut).encode()),
             (DLQ_VALUE_BYTES, str(len(value)).encode()),
             (DLQ_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode())]
    return value[:value_bytes], [*kept, *headers[original:], *added]


class DeadLetters:
    """Writes records to ``<topic>.dlq`` and waits for the broker's acknowledgement.

    Args:
        producer: A started producer with ``acks="all"`` (and idempotence on,
            so a retried send does not duplicate).
        value_bytes: Most bytes of the value a bounded copy keeps.
        header_bytes: Most bytes of original headers a bounded copy keeps.
    """

    def __init__(self, producer: _Producer, *, value_bytes: int = TRUNCATED_VALUE_BYTES,
                 header_bytes: int = TRUNCATED_HEADER_BYTES) -> None:
        self._producer = producer
        self._value_bytes = value_bytes
        self._header_bytes = header_bytes
        self._partitions: dict[str, int] = {}

    async def send(self, record: ConsumedRecord, reason: DlqReason, error: str) -> tuple[int, int]:
        """Dead-letter one record; returns where it landed once the broker has it.

        Tries the whole record, then a bounded copy, then the key and
        ``dlq-*`` headers alone, each once, stepping down only when the
        producer or the broker refuses the record itself.

        Raises:
            DeadLetterRefused: Even the smallest copy was refused.
            Exception: Whatever else the producer raised (``KafkaError``,
                timeouts); the caller treats it as transient.
        """
        topic = dlq_topic(record.topic)
        with writing_to(topic):
            if topic not in self._partitions:
                self._partitions[topic] = len(await self._producer.partitions_for(topic))
            partition = record.partition if record.partition < self._partitions[topic] else None
            for copy, (value, headers) in self._copies(record, reason, error):
                try:
                    sent = await self._producer.send_and_wait(
                        topic, value, key=record.key, partition=partition, headers=headers)
                except KafkaError as refusal:
                    if not refused(refusal):
                        raise
                    log.warning("%s refused the %s copy of %s (%s: %s); sending a smaller one",
                                topic, copy, where(record), type(refusal).__name__, refusal)
                    continue
                break
            else:
                raise DeadLetterRefused(
                    f"{topic} refused even the key and dlq-* headers of {where(record)}: "
                    f"check its max.message.bytes and cleanup.policy")
        log.warning("dead-lettered %s to %s (%s copy): %s: %s", where(record), topic, copy,
                    reason, error[:300])
        return sent.partition, sent.offset

    def _copies(self, record: ConsumedRecord, reason: DlqReason,
                error: str) -> Iterator[tuple[str, tuple[bytes | None, Headers]]]:
        # Lazily: the bounded copies cost a digest of the value, only paid when needed.
        headers = dlq_headers(record, reason, error)
        yield "whole", (record.value, headers)
        yield "bounded", bounded_copy(record, headers, value_bytes=self._value_bytes,
                                      header_bytes=self._header_bytes)
        yield "minimal", bounded_copy(record, headers, value_bytes=0, header_bytes=0)
