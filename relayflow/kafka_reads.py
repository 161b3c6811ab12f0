"""Reading topics from their beginning to their current end, and placing consumer groups.

For operator tools, checks, fault tests and benchmarks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from relayflow.kafka_clients import KafkaClients
from relayflow.settings import Settings
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_TYPE,
)
from schemas.topics import INPUT_TOPICS

__all__ = [
    "StoredRecord",
    "commit_group",
    "committed_to_end",
    "end_offsets",
    "partition_counts",
    "partitions_of",
    "read_records",
    "start_group_at_end",
]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as it is stored in a topic.

    Attributes:
        topic: The topic.
        partition: Its partition.
        offset: Its offset.
        key: The key.
        value: The value.
        headers: Every header with a value, in order.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        """A header as text ('' when absent; the first occurrence counts)."""
        for found, raw in self.headers:
            if found == name:
                return raw.decode(errors="replace")
        return ""

    @property
    def reason(self) -> str:
        """``dlq-reason`` (dead letters)."""
        return self.header(DLQ_REASON)

    @property
    def error(self) -> str:
        """``dlq-error`` (dead letters)."""
        return self.header(DLQ_ERROR)

    @property
    def source(self) -> tuple[str, int, int]:
        """(topic, partition, offset) a dead letter was read from."""
        return (self.header(DLQ_SOURCE_TOPIC), int(self.header(DLQ_SOURCE_PARTITION) or -1),
                int(self.header(DLQ_SOURCE_OFFSET) or -1))

    @property
    def failed_at(self) -> str:
        """``dlq-failed-at`` (ISO-8601 UTC, dead letters)."""
        return self.header(DLQ_FAILED_AT)

    @property
    def event_type(self) -> str:
        """The ``event-type`` header, if any."""
        return self.header(EVENT_TYPE)

    @property
    def coordinates(self) -> str:
        """``<topic>/<partition>/<offset>``."""
        return f"{self.topic}/{self.partition}/{self.offset}"


async def partition_counts(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists."""
    async with KafkaClients(settings).started_admin() as admin:
        described = await admin.describe_topics(topics)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


async def partitions_of(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of each of ``topics`` that exists."""
    counts = await partition_counts(settings, list(topics))
    return [TopicPartition(topic, p) for topic, count in counts.items() for p in range(count)]


async def end_offsets(settings: Settings,
                      partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """The current log-end offset of each partition."""
    wanted = list(partitions)
    if not wanted:
        return {}  # a consumer started and stopped with nothing to do trips over itself
    async with KafkaClients(settings).started_consumer() as consumer:
        return dict(await consumer.end_offsets(wanted))


async def read_records(settings: Settings, topics: Iterable[str], *,
                       partition: int | None = None, from_offset: int = 0,
                       ) -> list[StoredRecord]:
    """Every record now in ``topics``, read without a consumer group.

    Args:
        settings: Where Kafka is.
        topics: The topics.
        partition: Only this partition of each.
        from_offset: Start here (with ``partition``; otherwise from the beginning).

    Returns:
        Records ordered by topic, partition and offset, up to the end offsets
        at the time of the call.
    """
    wanted = [tp for tp in await partitions_of(settings, topics)
              if partition is None or tp.partition == partition]
    if not wanted:
        return []
    async with KafkaClients(settings).started_consumer(enable_auto_commit=False) as consumer:
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        for tp in wanted:
            consumer.seek(tp, from_offset if partition is not None else 0)
        found: list[StoredRecord] = []
        while [tp for tp in wanted if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [
                    StoredRecord(tp.topic, tp.partition, r.offset, r.key, r.value,
                                 tuple((n, v) for n, v in r.headers if v is not None))
                    for r in records if r.offset < ends[tp]
                ]
        return sorted(found, key=lambda d: (d.topic, d.partition, d.offset))


async def commit_group(settings: Settings, group: str,
                       offsets: Mapping[TopicPartition, int]) -> None:
    """Commit these offsets for ``group`` (which must have no running member)."""
    async with KafkaClients(settings).started_consumer(group_id=group,
                                                       enable_auto_commit=False) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(at, "") for tp, at in offsets.items()})


async def start_group_at_end(settings: Settings, group: str,
                             topics: Iterable[str] = INPUT_TOPICS) -> None:
    """Commit the current end of every partition of ``topics`` for a new ``group``.

    The group then reads only what arrives from now on, not the topics' history.
    """
    await commit_group(settings, group,
                       await end_offsets(settings, await partitions_of(settings, topics)))


async def committed_to_end(settings: Settings, group: str,
                           partitions: Iterable[TopicPartition] | None = None) -> None:
    """Return once ``group`` has committed each partition up to its end at the time of the call.

    Args:
        settings: Where Kafka is.
        group: The consumer group.
        partitions: Default: every partition of the input topics.

    Waits as long as it takes; bound it with ``asyncio.timeout``.
    """
    wanted = list(partitions) if partitions is not None \
        else await partitions_of(settings, INPUT_TOPICS)
    ends = {tp: end for tp, end in (await end_offsets(settings, wanted)).items() if end}
    async with KafkaClients(settings).started_admin() as admin:
        while True:
            done = await admin.list_consumer_group_offsets(group)
            if all(tp in done and done[tp].offset >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.02)
