"""Operating the dead-letter topics: list, show, replay and release parked keys.

``relayflow dlq`` is built on these functions. A dead letter is the original
record, untouched, plus ``dlq-*`` headers (``bridge.dlq``); a parked key is an
entry of the compacted ``relayflow.parked-keys`` topic (``bridge.parking``).

Replay copies the dead letters of one parked key, from the one that parked
it on, back to their source topic and partition, in order, with the
``dlq-*`` headers removed and ``dlq-replay-id`` / ``dlq-replay-of`` (and
``dlq-replay-last`` on the last) added; the bridge lets exactly those
records pass the parked key and releases it after the last one. Replay is
idempotent: a key with a replay in progress, or no longer parked, is left
alone, and replayed events keep their event ids, so workflows and
activities give a record replayed twice one effect.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bridge.parking import PARKED, ParkEntry, ParkingLot
from relayflow.settings import Settings
from relayflow.topics import TOPICS, dlq_topic
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_REPLAY_ID,
    DLQ_REPLAY_LAST,
    DLQ_REPLAY_OF,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_TYPE,
)

__all__ = [
    "DeadLetter",
    "ReplayResult",
    "parked_keys",
    "read_dead_letters",
    "release",
    "replay",
]

_DLQ_PREFIX = "dlq-"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic.

    Attributes:
        topic: The DLQ topic.
        partition: Its partition.
        offset: Its offset.
        key: The original key.
        value: The original value, untouched.
        headers: Every header (the original ones, then ``dlq-*``).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        """A header as text ('' when absent)."""
        for found, raw in self.headers:
            if found == name:
                return raw.decode(errors="replace")
        return ""

    @property
    def reason(self) -> str:
        """``dlq-reason``."""
        return self.header(DLQ_REASON)

    @property
    def error(self) -> str:
        """``dlq-error``."""
        return self.header(DLQ_ERROR)

    @property
    def source(self) -> tuple[str, int, int]:
        """(topic, partition, offset) the record was read from."""
        return (self.header(DLQ_SOURCE_TOPIC), int(self.header(DLQ_SOURCE_PARTITION) or -1),
                int(self.header(DLQ_SOURCE_OFFSET) or -1))

    @property
    def failed_at(self) -> str:
        """``dlq-failed-at`` (ISO-8601 UTC)."""
        return self.header(DLQ_FAILED_AT)

    @property
    def event_type(self) -> str:
        """The original ``event-type`` header, if any."""
        return self.header(EVENT_TYPE)

    @property
    def coordinates(self) -> str:
        """``<dlq topic>/<partition>/<offset>``."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def input_topics() -> list[str]:
    """The topics that have a DLQ."""
    return [t.name for t in TOPICS if t.inbound]


async def read_dead_letters(settings: Settings, topics: Iterable[str] | None = None, *,
                            partition: int | None = None, from_offset: int = 0,
                            ) -> list[DeadLetter]:
    """Every dead letter now on the DLQs of ``topics`` (default: every input topic).

    Args:
        settings: Where Kafka is.
        topics: Source topics whose DLQs to read.
        partition: Only this partition (of each DLQ).
        from_offset: Start here (with ``partition``).

    Returns:
        Dead letters ordered by DLQ topic, partition and offset.
    """
    counts = await _partition_counts(settings, [dlq_topic(s) for s in topics or input_topics()])
    wanted = [TopicPartition(dlq, p) for dlq, count in counts.items() for p in range(count)
              if partition is None or p == partition]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        if not wanted:
            return []
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        for tp in wanted:
            consumer.seek(tp, from_offset if partition is not None else 0)
        letters: list[DeadLetter] = []
        while [tp for tp in wanted if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                letters += [
                    DeadLetter(tp.topic, tp.partition, r.offset, r.key, r.value,
                               tuple((n, v) for n, v in r.headers if v is not None))
                    for r in records if r.offset < ends[tp]
                ]
        return sorted(letters, key=lambda d: (d.topic, d.partition, d.offset))
    finally:
        await consumer.stop()


async def _partition_counts(settings: Settings, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


@asynccontextmanager
async def _lot(settings: Settings) -> AsyncIterator[tuple[ParkingLot, AIOKafkaProducer]]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", enable_idempotence=True)
    await producer.start()
    lot = ParkingLot(settings.kafka_bootstrap_servers, producer)
    try:
        await lot.start()
        yield lot, producer
    finally:
        await lot.stop()
        await producer.stop()


async def parked_keys(settings: Settings) -> dict[tuple[str, bytes], ParkEntry]:
    """Every parked (source topic, key) with its entry."""
    async with _lot(settings) as (lot, _):
        return dict(lot.entries)


async def release(settings: Settings, topic: str, key: bytes) -> ParkEntry | None:
    """Release a parked key without replaying: its dead letters stay on the DLQ.

    Returns:
        The entry that was released, or None when the key was not parked.
    """
    async with _lot(settings) as (lot, _):
        entry = lot.get(topic, key)
        if entry is not None:
            await lot.put(topic, key, None)
        return entry


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What ``replay`` did.

    Attributes:
        status: ``replaying`` (records copied; the bridge releases the key after
            the last), ``released`` (nothing to copy, key released),
            ``not-parked`` or ``in-progress`` (nothing done).
        replay_id: The replay's id (``replaying`` / ``in-progress``).
        copied: The dead letters copied back, in order.
    """

    status: str
    replay_id: str | None = None
    copied: tuple[DeadLetter, ...] = ()


async def replay(settings: Settings, topic: str, key: bytes, *,
                 parked_only: bool = False) -> ReplayResult:
    """Copy a parked key's dead letters back to ``topic`` so the bridge processes them again.

    Args:
        settings: Where Kafka is.
        topic: The source topic of the parked key.
        key: The key.
        parked_only: Skip the record that parked the key (it is bad for good) and
            replay only those dead-lettered after it as ``parked``.

    Returns:
        What was done.
    """
    async with _lot(settings) as (lot, producer):
        entry = lot.get(topic, key)
        if entry is None:
            return ReplayResult("not-parked")
        if entry.replay_id is not None:
            return ReplayResult("in-progress", entry.replay_id)
        letters = [
            d for d in await read_dead_letters(settings, [topic], partition=entry.dlq_partition,
                                               from_offset=entry.dlq_offset)
            if d.key == key and d.source[0] == topic
            and (d.reason == PARKED or not parked_only)
        ]
        if not letters:
            await lot.put(topic, key, None)
            return ReplayResult("released")
        replay_id = uuid.uuid4().hex
        # Mark first: from here only this replay's records pass the key.
        await lot.put(topic, key, entry.model_copy(update={"replay_id": replay_id}))
        for index, letter in enumerate(letters):
            headers = [(n, v) for n, v in letter.headers if not n.startswith(_DLQ_PREFIX)]
            headers += [(DLQ_REPLAY_ID, replay_id.encode()),
                        (DLQ_REPLAY_OF, letter.coordinates.encode())]
            if index == len(letters) - 1:
                headers.append((DLQ_REPLAY_LAST, b"1"))
            await producer.send_and_wait(topic, letter.value, key=letter.key,
                                         partition=letter.source[1], headers=headers)
        return ReplayResult("replaying", replay_id, tuple(letters))
