"""Reading topics from their beginning to their current end, and placing consumer groups.

For operator tools, checks, fault tests and benchmarks. Each function is handed
the ``KafkaClients`` to read with (``relayflow.runtime.clients.kafka_clients``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from activities.claim_check import BlobStore, stored_value
from relayflow.kafka.clients import KafkaClients
from schemas.headers import (
    DLQ_ERROR,
    DLQ_FAILED_AT,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    EVENT_TYPE,
    ClaimCheckReference,
)

__all__ = [
    "StoredRecord",
    "beginning_offsets",
    "commit_group",
    "committed_to_end",
    "end_offsets",
    "partition_counts",
    "partitions_of",
    "read_key",
    "read_records",
    "record_counts",
    "resolved",
    "resolved_if_found",
    "start_group_at_end",
    "stored",
    "stream_records",
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
        timestamp: The record's timestamp (ms since the epoch), when read with it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None = None

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


async def partition_counts(kafka: KafkaClients, topics: list[str]) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists."""
    async with kafka.started_admin() as admin:
        described = await admin.describe_topics(topics)
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


async def partitions_of(kafka: KafkaClients, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of each of ``topics`` that exists."""
    counts = await partition_counts(kafka, list(topics))
    return [TopicPartition(topic, p) for topic, count in counts.items() for p in range(count)]


async def beginning_offsets(kafka: KafkaClients,
                            partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """The current log-start offset of each partition (records before it were deleted)."""
    wanted = list(partitions)
    if not wanted:
        return {}
    async with kafka.started_consumer() as consumer:
        return dict(await consumer.beginning_offsets(wanted))


async def record_counts(kafka: KafkaClients, topics: Iterable[str]) -> dict[str, int]:
    """How many records each of ``topics`` holds now (log end minus log start, summed).

    Exact for topics that are not compacted; a topic that does not exist is left out.
    """
    partitions = await partitions_of(kafka, topics)
    counts = dict.fromkeys(dict.fromkeys(tp.topic for tp in partitions), 0)
    if not partitions:
        return counts
    async with kafka.started_consumer() as consumer:
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        counts[tp.topic] += ends[tp] - firsts[tp]
    return counts


async def end_offsets(kafka: KafkaClients,
                      partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """The current log-end offset of each partition."""
    wanted = list(partitions)
    if not wanted:
        return {}  # a consumer started and stopped with nothing to do trips over itself
    async with kafka.started_consumer() as consumer:
        return dict(await consumer.end_offsets(wanted))


async def read_records(kafka: KafkaClients, topics: Iterable[str], *,
                       partition: int | None = None, from_offset: int = 0,
                       ) -> list[StoredRecord]:
    """Every record now in ``topics``, read without a consumer group.

    Args:
        kafka: The clients of the Kafka to read.
        topics: The topics.
        partition: Only this partition of each.
        from_offset: Start here (with ``partition``; otherwise from the beginning).

    Returns:
        Records ordered by topic, partition and offset, up to the end offsets
        at the time of the call.
    """
    wanted = [tp for tp in await partitions_of(kafka, topics)
              if partition is None or tp.partition == partition]
    if not wanted:
        return []
    async with kafka.started_consumer(enable_auto_commit=False) as consumer:
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        starts = dict.fromkeys(wanted, from_offset if partition is not None else 0)
        found = [r async for r in stream_records(consumer, starts, until=ends)]
        return sorted(found, key=lambda d: (d.topic, d.partition, d.offset))


async def read_key(kafka: KafkaClients, topics: Iterable[str], key: bytes, *,
                   since_ms: int | None = None) -> list[StoredRecord]:
    """The records with ``key`` now in ``topics``, reading one partition of each.

    Only the partition Kafka's default partitioner (murmur2, every client's
    default, relayflow's producers' too) puts ``key`` in is read.

    Args:
        kafka: The clients of the Kafka to read.
        topics: The topics.
        key: The record key.
        since_ms: Start at the first record of this time (ms since the epoch) or later.

    Returns:
        Records ordered by topic and offset.
    """
    counts = await partition_counts(kafka, list(topics))
    wanted = [TopicPartition(topic, DefaultPartitioner()(key, list(range(count)), []))
              for topic, count in counts.items()]
    if not wanted:
        return []
    async with kafka.started_consumer(enable_auto_commit=False) as consumer:
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        starts = dict(await consumer.beginning_offsets(wanted))
        if since_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(wanted, since_ms))
            # None: nothing that new; start at the end.
            starts = {tp: ends[tp] if at is None else at.offset for tp, at in found.items()}
        return sorted([r async for r in stream_records(consumer, starts, until=ends)
                       if r.key == key], key=lambda r: (r.topic, r.offset))


def resolved(record: StoredRecord, blobs: BlobStore | None) -> StoredRecord:
    """``record`` with the value its ``claim-check-*`` headers name, fetched and checked.

    A record without them is returned as it is. Blocking (the store's I/O).

    Raises:
        ValueError: Bad ``claim-check-*`` headers, or the stored bytes are not the ones named.
        FileNotFoundError: No store configured, or the value is not in it (swept after
            its retention, or another store).
    """
    reference = ClaimCheckReference.from_kafka(record.headers)
    if reference is None:
        return record
    if blobs is None:
        raise FileNotFoundError(f"the value is in the claim-check store as {reference.key} "
                                f"({reference.size} bytes); no store configured to fetch it")
    try:
        value = stored_value(blobs, reference)
    except FileNotFoundError:
        raise FileNotFoundError(f"claim check {reference.key}: not in the store (swept after "
                                "its retention, or another store)") from None
    return dataclasses.replace(record, value=value)


def resolved_if_found(record: StoredRecord, blobs: BlobStore | None) -> StoredRecord:
    """``resolved``, or ``record`` as it is when its value cannot be fetched.

    For readers that count records (``relayflow verify``, test helpers): the
    empty value of a reference that cannot be resolved decodes to nothing, so
    the event is reported missing rather than the read failing.
    """
    try:
        return resolved(record, blobs)
    except (OSError, ValueError):
        return record


def stored(tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> StoredRecord:
    """A consumed record as a ``StoredRecord`` (headers without a value left out)."""
    return StoredRecord(tp.topic, tp.partition, record.offset, record.key, record.value,
                        tuple((n, v) for n, v in record.headers if v is not None),
                        record.timestamp)


async def stream_records(consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int], *,
                         until: Mapping[TopicPartition, int] | None = None,
                         poll_ms: int = 500) -> AsyncIterator[StoredRecord]:
    """Records of ``consumer``'s assigned partitions from ``starts``, as they are fetched.

    The consumer has no group (nothing is committed); it must be assigned
    ``starts``' partitions.

    Args:
        consumer: A started consumer, assigned.
        starts: The offset to start at in each partition.
        until: Stop once each partition reaches this offset (its end at some
            moment); None: follow for ever (stop by closing the iterator).
        poll_ms: Longest wait of one fetch.

    Yields:
        Records in offset order within each partition.
    """
    for tp, offset in starts.items():
        consumer.seek(tp, offset)

    async def open_partitions() -> list[TopicPartition]:
        return [tp for tp in starts if until is None or await consumer.position(tp) < until[tp]]

    while await open_partitions():
        for tp, records in (await consumer.getmany(timeout_ms=poll_ms)).items():
            for record in records:
                if until is None or record.offset < until[tp]:
                    yield stored(tp, record)


async def commit_group(kafka: KafkaClients, group: str,
                       offsets: Mapping[TopicPartition, int]) -> None:
    """Commit these offsets for ``group`` (which must have no running member)."""
    async with kafka.started_consumer(group_id=group,
                                                       enable_auto_commit=False) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(at, "") for tp, at in offsets.items()})


async def start_group_at_end(kafka: KafkaClients, group: str, topics: Iterable[str]) -> None:
    """Commit the current end of every partition of ``topics`` for a new ``group``.

    The group then reads only what arrives from now on, not the topics' history.

    Args:
        kafka: The clients of the Kafka to use.
        group: The consumer group.
        topics: The topics (an application's ``input_topics``, say).
    """
    await commit_group(kafka, group,
                       await end_offsets(kafka, await partitions_of(kafka, topics)))


async def committed_to_end(kafka: KafkaClients, group: str,
                           partitions: Iterable[TopicPartition]) -> None:
    """Return once ``group`` has committed each partition up to its end at the time of the call.

    Args:
        kafka: The clients of the Kafka to read.
        group: The consumer group.
        partitions: The partitions to wait for.

    Waits as long as it takes; bound it with ``asyncio.timeout``.
    """
    ends = {tp: end for tp, end in (await end_offsets(kafka, list(partitions))).items() if end}
    async with kafka.started_admin() as admin:
        while True:
            done = await admin.list_consumer_group_offsets(group)
            if all(tp in done and done[tp].offset >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.02)
