"""The in-memory harness itself (``relayflow.testing.memory``): its topics and its deliveries."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.partitioner import DefaultPartitioner
from temporalio.testing import WorkflowEnvironment

from examples.tickets.app import APP
from examples.tickets.events import TicketAnswered, TicketResolved
from examples.tickets.topics import TICKETS_EVENTS
from relayflow import DlqReason
from relayflow.testing.memory import MemoryTopics, app_memory

pytestmark = [pytest.mark.timeout(120)]


def answered(ticket_id: str) -> TicketAnswered:
    return TicketAnswered(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          ticket_id=ticket_id, answered_by="grace")


async def test_records_land_where_kafkas_default_partitioner_puts_their_key() -> None:
    topics = MemoryTopics(APP.all_topics())
    partitioner = DefaultPartitioner()
    for n in range(20):
        key = f"T-{n}".encode()
        sent = await topics.send_and_wait(TICKETS_EVENTS, b"v", key=key)
        assert sent.partition == partitioner(key, [0, 1, 2], [0, 1, 2])
        log = topics.log(TopicPartition(TICKETS_EVENTS, sent.partition))
        assert (log[-1].offset, log[-1].key) == (sent.offset, key) == (len(log) - 1, key)
    assert len({r.partition for r in topics.records}) == 3


async def test_a_topic_the_app_does_not_have_is_refused() -> None:
    topics = MemoryTopics(APP.all_topics())
    with pytest.raises(UnknownTopicOrPartitionError, match=r"no topic 'tickets\.typo'"):
        await topics.send_and_wait("tickets.typo", b"v", key=b"k")
    with pytest.raises(UnknownTopicOrPartitionError, match="has no partition 3"):
        await topics.send_and_wait(TICKETS_EVENTS, b"v", key=b"k", partition=3)


async def test_a_held_signal_is_delivered_again_until_its_hold_ends(
        relayflow_time_skipping: WorkflowEnvironment) -> None:
    async with app_memory(APP, env=relayflow_time_skipping, signal_hold_seconds=0.5) as memory:
        started = time.monotonic()
        await memory.send(answered("T-early"))
        assert time.monotonic() - started >= 0.5
        [dead] = memory.dead_letters(TICKETS_EVENTS)
        assert (dead.key, dead.reason) == (b"T-early", DlqReason.TARGET_NOT_FOUND)


async def test_a_record_left_unfinished_too_long_fails_the_send(
        relayflow_time_skipping: WorkflowEnvironment) -> None:
    async with app_memory(APP, env=relayflow_time_skipping, signal_hold_seconds=60,
                          redeliver_seconds=0.3) as memory:
        with pytest.raises(AssertionError, match=r"left tickets.events\[\d\]@0 unfinished"):
            await memory.send(answered("T-never"))
        assert memory.dead_letters() == []


async def test_waiting_for_what_never_comes_lists_what_did(
        relayflow_time_skipping: WorkflowEnvironment) -> None:
    async with app_memory(APP, env=relayflow_time_skipping) as memory:
        await memory.send_bytes(TICKETS_EVENTS, b"", key="T-empty")
        with pytest.raises(AssertionError) as failure:
            await memory.wait_for(TicketResolved, key="T-empty", timeout=0.2)
    message = str(failure.value)
    assert "no TicketResolved (tickets.events.TicketResolved) with key 'T-empty'" in message
    assert "key='T-empty'" in message
    assert "dlq-reason=empty" in message
