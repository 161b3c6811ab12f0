"""Offset planning: never commit past an unfinished record, resume at the first one."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from bridge.offsets import KafkaOffsets, plan_offsets
from tests.helpers.fakes import Record

T = "orders.events"


def rec(partition: int, offset: int) -> Record:
    return Record(T, partition, offset, b"k", b"v")


def tp(partition: int) -> TopicPartition:
    return TopicPartition(T, partition)


def test_all_finished_commits_past_the_last_record_of_each_partition() -> None:
    plan = plan_offsets([rec(0, 3), rec(1, 8), rec(0, 4)], [True, True, True])
    assert plan.commit == {tp(0): 5, tp(1): 9}
    assert plan.rewind == {}


def test_commit_stops_at_the_first_unfinished_record_even_if_later_ones_finished() -> None:
    plan = plan_offsets([rec(0, 3), rec(0, 4), rec(0, 5), rec(0, 6)], [True, False, True, False])
    assert plan.commit == {tp(0): 4}
    assert plan.rewind == {tp(0): 4}


def test_a_partition_without_progress_commits_nothing() -> None:
    plan = plan_offsets([rec(0, 3), rec(0, 4), rec(1, 0)], [False, True, True])
    assert plan.commit == {tp(1): 1}
    assert plan.rewind == {tp(0): 3}


def test_offsets_may_have_gaps_and_arrive_in_any_order() -> None:
    # Compacted topics and transaction markers leave gaps; the plan uses offsets, not counts.
    plan = plan_offsets([rec(0, 20), rec(0, 10), rec(0, 15)], [True, True, False])
    assert plan.commit == {tp(0): 15}
    assert plan.rewind == {tp(0): 15}


def test_empty_batch_plans_nothing() -> None:
    plan = plan_offsets([], [])
    assert (plan.commit, plan.rewind) == ({}, {})


class PausingConsumer:
    """The part of ``AIOKafkaConsumer`` that pausing touches; refuses foreign partitions."""

    def __init__(self, owned: set[TopicPartition]) -> None:
        self.owned = owned
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def pause(self, partition: TopicPartition) -> None:
        assert partition in self.owned
        self.paused.add(partition)

    def resume(self, partition: TopicPartition) -> None:
        assert partition in self.owned  # aiokafka raises on a partition it does not own
        self.paused.discard(partition)


async def test_a_paused_partition_resumes_after_its_delay() -> None:
    consumer = PausingConsumer({tp(0), tp(1)})
    KafkaOffsets().pause(consumer, {tp(0): 0.01, tp(7): 0.01})  # tp(7) is not ours: ignored
    assert consumer.paused == {tp(0)}
    await asyncio.sleep(0.05)
    assert consumer.paused == set()


async def test_a_partition_lost_while_paused_is_not_resumed() -> None:
    consumer = PausingConsumer({tp(0)})
    KafkaOffsets().pause(consumer, {tp(0): 0.01})
    consumer.owned.clear()  # a rebalance took it away
    await asyncio.sleep(0.05)  # the resume must not touch it
    assert consumer.paused == {tp(0)}
