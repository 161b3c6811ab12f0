"""A batch that continues as new, on the real stack, because ``batch_history_event_limit`` says so.

Its own module: it runs relayflow with a lowered history limit, and a second
bridge on ``batches.requests`` (the ``system`` fixture of the other batch tests)
would race this one to start the same ``batch-<id>`` on its own task queue,
with the default limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHistory

from relayflow.config.settings import Settings
from relayflow.reference.app import APP
from relayflow.reference.events import (
    BatchCompleted,
    BatchProgress,
    BatchRequested,
)
from relayflow.reference.topics import BATCHES_OUTCOMES, BATCHES_REQUESTS
from relayflow.reference.workflows.batch import BatchRun, BatchWorkflow, chunk_item_ids
from relayflow.runtime.bootstrap import connect_temporal
from schemas import Event
from schemas.framing import to_record
from tests.helpers.support import KafkaProbe, kafka_probe, reference_store
from tests.integration.running import relayflow_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CODEC = APP.codec()
T = TypeVar("T")

LIMIT = 100
"""``batch_history_event_limit`` of this module's worker: the smallest the setting allows."""

# Parent history events one chunk in flight can still add after the last check
# that allowed starting chunks (every event in its own workflow task, the worst case):
CHILD_EVENTS = 3
"""StartChildWorkflowExecutionInitiated, ChildWorkflowExecutionStarted, ...Completed."""
TASK_EVENTS = 3
"""WorkflowTaskScheduled, ...Started, ...Completed: one per wake-up."""
CHUNK_EVENTS = CHILD_EVENTS + 2 * TASK_EVENTS
"""The child's own events, and a workflow task woken by its start and one by its end."""
REPORT_EVENTS = 3 + TASK_EVENTS
"""A BatchProgress publish: ActivityTaskScheduled, ...Started, ...Completed, and the wake-up."""
RUN_END_EVENTS = 2
"""WorkflowTaskCompleted of the task whose check (at its WorkflowTaskStarted, so at most
LIMIT events) last let chunks start, and the closing WorkflowExecutionContinuedAsNew."""


def history_margin(max_concurrent_children: int, progress_every_chunks: int) -> int:
    """Most events a run adds once past the limit.

    Past the limit the window starts nothing and waits for the chunks in flight
    (at most ``max_concurrent_children``), which report progress every
    ``progress_every_chunks`` finished chunks.
    """
    reports = math.ceil(max_concurrent_children / progress_every_chunks)
    return max_concurrent_children * CHUNK_EVENTS + reports * REPORT_EVENTS + RUN_END_EVENTS


@pytest.fixture(scope="module")
async def limited(stack: Settings) -> AsyncIterator[Settings]:
    """Bridge and worker whose batches continue as new past ``LIMIT`` history events."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("RELAYFLOW_BATCH_HISTORY_EVENT_LIMIT", str(LIMIT))
        async with relayflow_running(stack) as settings:
            yield settings


@pytest.fixture
async def probe(limited: Settings) -> AsyncIterator[KafkaProbe]:
    async with kafka_probe(limited, [BATCHES_OUTCOMES]) as p:
        yield p


def of_batch(batch_id: str, kind: type[Event]) -> Callable[[ConsumerRecord[bytes, bytes]], bool]:
    def match(record: ConsumerRecord[bytes, bytes]) -> bool:
        return bool(record.topic == BATCHES_OUTCOMES and record.key == batch_id.encode()
                    and dict(record.headers).get("event-type") == kind.avro_name.encode())
    return match


async def eventually(check: Callable[[], Awaitable[T | None]], *, wait_seconds: float = 30.0,
                     ) -> T:
    """The first non-None result of ``check``, polled until a deadline (visibility lags)."""
    deadline = time.monotonic() + wait_seconds
    while (result := await check()) is None:
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)
    return result


async def assert_one_completed(probe: KafkaProbe, done: ConsumerRecord[bytes, bytes],
                               event: BatchRequested, bad: list[str]) -> None:
    """Exactly one BatchCompleted, with exact counts and the failed ids."""
    # The workflow has finished, so every outcome it published is in the partition:
    # read it to its end before counting.
    tp = TopicPartition(BATCHES_OUTCOMES, done.partition)
    end = (await probe.end_offsets([tp]))[tp]
    assert await probe.wait_for(lambda r: r.topic == tp.topic and r.partition == tp.partition
                                and r.offset >= end - 1)
    assert len([r for r in probe.seen if of_batch(event.batch_id, BatchCompleted)(r)]) == 1
    completed = CODEC.decode(done.value)
    assert isinstance(completed, BatchCompleted)
    chunks = math.ceil(event.total / event.chunk_size)
    assert (completed.total, completed.succeeded, completed.failed) == (
        event.total, event.total - len(bad), len(bad))
    assert (completed.chunks_done, completed.chunks_total) == (chunks, chunks)
    assert sorted(completed.failed_item_ids) == sorted(bad)
    assert not completed.failed_items_truncated
    assert completed.failed_items_ref == f"store:batch_failures/{event.batch_id}"
    assert not completed.cancelled
    assert completed.causation_id == str(event.event_id)

    # Progress numbering carries across runs: every step reported, none twice.
    progress = [CODEC.decode(r.value) for r in probe.seen
                if of_batch(event.batch_id, BatchProgress)(r)]
    distinct = {p.event_id: p for p in progress if isinstance(p, BatchProgress)}
    assert sorted(p.chunks_done for p in distinct.values()) == list(
        range(event.progress_every_chunks, chunks + 1, event.progress_every_chunks))


async def run_histories(client: Client, workflow_id: str, count: int,
                        ) -> list[tuple[WorkflowExecution, WorkflowHistory]]:
    """Every run of ``workflow_id`` (oldest first) with its history, once all ``count`` closed."""
    async def listed() -> list[WorkflowExecution] | None:
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        if len(runs) < count or any(w.close_time is None for w in runs):
            return None  # visibility lags behind the workflow's end
        return sorted(runs, key=lambda w: w.start_time)
    return [(run, await client.get_workflow_handle(workflow_id, run_id=run.run_id)
             .fetch_history()) for run in await eventually(listed)]


def assert_run_chain(runs: list[tuple[WorkflowExecution, WorkflowHistory]], bound: int) -> None:
    """ContinuedAsNew runs, each to the next, then one Completed; histories in (LIMIT, bound]."""
    assert [run.status for run, _ in runs] == (
        [WorkflowExecutionStatus.CONTINUED_AS_NEW] * (len(runs) - 1)
        + [WorkflowExecutionStatus.COMPLETED])
    lengths = [len(history.events) for _, history in runs]
    assert all(n <= bound for n in lengths), (lengths, bound)
    # Only a history past the limit makes a run wind down (the server's suggestion
    # comes near 10,240 events), so every continued run went past it.
    assert all(n > LIMIT for n in lengths[:-1]), (lengths, LIMIT)
    for (run, history), (after, _) in itertools.pairwise(runs):
        last = history.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, (
            run.run_id)
        attrs = last.workflow_execution_continued_as_new_event_attributes
        assert attrs.new_execution_run_id == after.run_id
    last = runs[-1][1].events[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def assert_limit_from_setting(client: Client,
                                    runs: list[tuple[WorkflowExecution, WorkflowHistory]],
                                    ) -> None:
    """The first run asked the ``batch_limits`` activity once; later runs carry its answer."""
    asked = [event.activity_task_scheduled_event_attributes.activity_type.name
             for _, history in runs for event in history.events
             if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert asked.count("batch_limits") == 1
    for _, history in runs[1:]:
        started = history.events[0].workflow_execution_started_event_attributes
        [carried] = await client.data_converter.decode(started.input.payloads, [BatchRun])
        assert isinstance(carried, BatchRun)
        assert carried.carry is not None
        assert carried.carry.history_event_limit == LIMIT


async def assert_chunks_started_once(client: Client, workflow_id: str, chunks: int) -> None:
    """One execution per chunk id, whichever run started it."""
    expected = sorted(f"{workflow_id}-chunk-{n}" for n in range(chunks))

    async def listed() -> list[str] | None:
        ids = sorted([w.id async for w in client.list_workflows(
            f"WorkflowId STARTS_WITH '{workflow_id}-chunk-'")])
        return ids if len(ids) >= chunks else None
    assert await eventually(listed) == expected


def assert_store(settings: Settings, batch_id: str, good: list[str], bad: list[str]) -> None:
    """Each good item processed exactly once, no bad one; every failure kept."""
    store = reference_store(settings)
    assert store.processed_items(batch_id) == len(good)
    with contextlib.closing(sqlite3.connect(f"file:{store.path}?mode=ro",
                                            uri=True)) as db:
        processed = [str(row[0]) for row in db.execute(
            "SELECT item_id FROM batch_items WHERE batch_id = ?", (batch_id,))]
    assert sorted(processed) == sorted(good)
    assert sorted(item for item, _ in store.failed_items(batch_id)) == sorted(bad)


async def test_batch_continues_as_new_at_the_configured_history_limit(
        probe: KafkaProbe, limited: Settings) -> None:
    # 60 chunks of 3 items, 3 at a time, every 7th item invalid.
    event = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=f"b-{uuid.uuid4().hex[:10]}", item_count=180, seed=7,
                           fail_every=7, chunk_size=3, max_concurrent_children=3,
                           progress_every_chunks=2)
    chunks = math.ceil(event.total / event.chunk_size)
    items = [item for n in range(chunks) for item in chunk_item_ids(event, n)]
    bad = [item for item in items if item.startswith("bad-")]
    good = [item for item in items if not item.startswith("bad-")]
    assert (chunks, len(items), len(bad)) == (60, 180, 26)  # bad: 0, 7, ..., 175
    # Large enough that two runs cannot hold it, however workflow tasks get batched:
    # each chunk adds at least its 3 child events and its share of the progress
    # reports (each one activity and the workflow task its end wakes; reports run
    # one after another), and no run may exceed the bound checked below.
    bound = LIMIT + history_margin(event.max_concurrent_children, event.progress_every_chunks)
    fewest = chunks * CHILD_EVENTS + chunks // event.progress_every_chunks * REPORT_EVENTS
    assert fewest > 2 * bound
    await probe.send_record(BATCHES_REQUESTS, to_record(event, CODEC))
    [done] = await probe.wait_for(of_batch(event.batch_id, BatchCompleted), wait_seconds=180)

    # The workflow's own account, following the runs to the last one.
    client = await connect_temporal(limited)
    workflow_id = f"batch-{event.batch_id}"
    result = await asyncio.wait_for(
        client.get_workflow_handle_for(BatchWorkflow.run, workflow_id).result(), timeout=60)
    assert (result.succeeded, result.failed, result.cancelled) == (len(good), len(bad), False)
    assert result.runs >= 3, result

    await assert_one_completed(probe, done, event, bad)
    runs = await run_histories(client, workflow_id, result.runs)
    assert len(runs) == result.runs
    assert_run_chain(runs, bound)
    await assert_limit_from_setting(client, runs)
    await assert_chunks_started_once(client, workflow_id, chunks)
    assert_store(limited, event.batch_id, good, bad)
