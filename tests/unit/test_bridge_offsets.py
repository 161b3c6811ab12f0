"""Offset planning: never commit past an unfinished record, resume at the first one."""

from __future__ import annotations

from aiokafka import TopicPartition

from bridge.offsets import plan_offsets
from tests.unit.test_bridge import Record

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
