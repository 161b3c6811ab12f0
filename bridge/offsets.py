"""Which offsets a processed fetch may commit, and where each partition resumes.

Kafka's committed offset of a partition means "everything before it is
done". After a fetch, each partition may therefore commit up to its first
record that is not finished (or past its last record when all are), and must
resume reading at that first unfinished record, so it is fetched again
instead of being skipped by a later commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from bridge.consumed import ConsumedRecord

__all__ = ["KafkaOffsets", "OffsetPlan", "Offsets", "plan_offsets"]


@dataclass(frozen=True, slots=True)
class OffsetPlan:
    """What to do with the offsets after a fetch.

    Attributes:
        commit: Per partition, the offset to commit (the next one to read);
            only partitions that made progress.
        rewind: Per partition, the offset to fetch again from (its first
            unfinished record); only partitions with unfinished records.
    """

    commit: dict[TopicPartition, int] = field(default_factory=dict)
    rewind: dict[TopicPartition, int] = field(default_factory=dict)


def plan_offsets(records: Sequence[ConsumedRecord], finished: Sequence[bool]) -> OffsetPlan:
    """Plan commits and rewinds for a fetch.

    Args:
        records: The records, as fetched.
        finished: Per record (same order): done with Temporal or on the DLQ.

    Returns:
        The commits and rewinds; a partition never commits past a record that
        is not finished, whatever finished after it.
    """
    # Keyed by (topic, partition) tuples while counting: a TopicPartition per record
    # cost more than the rest of the loop; one per partition is made at the end.
    first: dict[tuple[str, int], int] = {}
    end: dict[tuple[str, int], int] = {}
    unfinished: dict[tuple[str, int], int] = {}
    for record, done in zip(records, finished, strict=True):
        tp, offset = (record.topic, record.partition), record.offset
        seen = first.get(tp)
        if seen is None:
            first[tp], end[tp] = offset, offset + 1
        else:
            first[tp], end[tp] = min(seen, offset), max(end[tp], offset + 1)
        if not done and offset < unfinished.get(tp, offset + 1):
            unfinished[tp] = offset
    plan = OffsetPlan(rewind={TopicPartition(*tp): offset for tp, offset in unfinished.items()})
    for tp, start in first.items():
        upto = unfinished.get(tp, end[tp])
        if upto > start:
            plan.commit[TopicPartition(*tp)] = upto
    return plan


class Offsets(Protocol):
    """Commits, rewinds and pauses a consumer's partitions; ``KafkaOffsets`` in production."""

    async def commit(self, consumer: Any, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit exactly these offsets for the consumer's group."""
        ...

    def rewind(self, consumer: Any, positions: Mapping[TopicPartition, int]) -> None:
        """Make the consumer fetch these partitions again from these offsets."""
        ...

    def pause(self, consumer: Any, delays: Mapping[TopicPartition, float]) -> None:
        """Stop fetching these partitions for this many seconds; the others keep flowing."""
        ...


class KafkaOffsets:
    """``Offsets`` on an ``AIOKafkaConsumer``, limited to the partitions it still owns.

    After a rebalance took a partition away mid-fetch, its records are the new
    owner's to redeliver; committing or seeking it here would fail or interfere.
    """

    async def commit(self, consumer: Any, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit explicit per-partition offsets (never the consumer's whole position)."""
        owned = consumer.assignment()
        mine = {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items() if tp in owned}
        if mine:
            await consumer.commit(mine)

    def rewind(self, consumer: Any, positions: Mapping[TopicPartition, int]) -> None:
        """Seek owned partitions back; aiokafka drops what it prefetched past them."""
        owned = consumer.assignment()
        for tp, offset in positions.items():
            if tp in owned:
                consumer.seek(tp, offset)

    def pause(self, consumer: Any, delays: Mapping[TopicPartition, float]) -> None:
        """Pause owned partitions and resume each after its delay (if still owned then)."""
        owned = consumer.assignment()
        loop = asyncio.get_running_loop()
        for tp, delay in delays.items():
            if tp in owned:
                consumer.pause(tp)
                loop.call_later(delay, _resume, consumer, tp)


def _resume(consumer: Any, tp: TopicPartition) -> None:
    # A rebalance in between may have taken the partition away (or handed it back
    # unpaused); aiokafka refuses to resume what it does not own.
    if tp in consumer.assignment():
        consumer.resume(tp)
