"""``EntityWorkflow`` in Temporal's time-skipping environment: dedup across continue-as-new,
continue-as-new only once handlers finished, the state query, the idle expiry's outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outcomes import PublishOutcomeInput, PublishOutcomeResult
from relayflow import ENTITY_QUERY, ENTITY_SIGNAL, EntityCarry, EntityEnd, EntityView
from tests.helpers.tallies.events import TallyAdded, TallyIdled, added, batch
from tests.helpers.tallies.workflows import TALLIES_OUTCOMES, HoldingTally, TallyEntity
from tests.helpers.workflow_env import start_time_skipping_environment

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def workflow_env() -> AsyncIterator[WorkflowEnvironment]:
    """An environment of this module's own: its entities live on (idle timers of an hour)
    after their workers stop, and would hold a shared environment's virtual clock."""
    async with await start_time_skipping_environment() as env:
        yield env


@pytest.fixture
def published() -> list[PublishOutcomeInput]:
    return []


@pytest.fixture
async def task_queue(workflow_env: WorkflowEnvironment,
                     published: list[PublishOutcomeInput]) -> object:
    @activity.defn(name="publish_outcome")
    async def publish(request: PublishOutcomeInput) -> PublishOutcomeResult:
        published.append(request)
        return PublishOutcomeResult(topic=request.topic, partition=0, offset=0,
                                    event_id=str(request.event["event_id"]))

    queue = f"entities-{uuid.uuid4()}"
    async with Worker(workflow_env.client, task_queue=queue,
                      workflows=[TallyEntity, HoldingTally], activities=[publish]):
        yield queue


async def _start(client: Client, workflow: str, queue: str,
                 *events: TallyAdded) -> WorkflowHandle[Any, Any]:
    """What the bridge's signal-with-start of a batched route does."""
    return await client.start_workflow(
        workflow, id=f"tally-{uuid.uuid4().hex[:8]}", task_queue=queue,
        start_signal=ENTITY_SIGNAL, start_signal_args=[batch(*events)])


async def _view(handle: WorkflowHandle[Any, Any]) -> EntityView:
    view: EntityView = await handle.query(ENTITY_QUERY, result_type=EntityView)
    return view


async def _until(handle: WorkflowHandle[Any, Any],
                 check: Callable[[EntityView], bool]) -> EntityView:
    async with asyncio.timeout(30):
        while not check(view := await _view(handle)):  # noqa: ASYNC110 - polling a query
            await asyncio.sleep(0.05)
    return view


async def test_redeliveries_after_continue_as_new_are_dropped(
        workflow_env: WorkflowEnvironment, task_queue: str) -> None:
    e = [added("t", seq) for seq in range(5)]
    handle = await _start(workflow_env.client, "HoldingTally", task_queue, e[0], e[1])
    await handle.signal(ENTITY_SIGNAL, batch(e[2]))  # the second signal: continue as new
    await _until(handle, lambda v: v.runs == 1)

    await handle.signal(ENTITY_SIGNAL, batch(e[1], e[2], e[3]))  # e1, e2 redelivered

    view = await _until(handle, lambda v: v.state["count"] >= 4)
    assert view.state == {"total": 4, "count": 4, "last_seq": 3, "out_of_order": 0}
    assert (view.applied, view.duplicates, view.remembered) == (4, 2, 3)


async def test_the_dedup_memory_is_bounded(workflow_env: WorkflowEnvironment,
                                           task_queue: str) -> None:
    e = [added("t", seq) for seq in range(5)]
    handle = await _start(workflow_env.client, "HoldingTally", task_queue, *e)
    view = await _until(handle, lambda v: v.applied == 5)
    assert view.remembered == 3  # HoldingTally remembers three ids, the most recent


async def test_continue_as_new_waits_for_running_handlers(
        workflow_env: WorkflowEnvironment, task_queue: str) -> None:
    handle = await _start(workflow_env.client, "HoldingTally", task_queue, added("t", 0))
    hold = await handle.start_update("hold", wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                                     result_type=int)
    await handle.signal(ENTITY_SIGNAL, batch(added("t", 1)))  # continue-as-new is due now
    await asyncio.sleep(0.5)
    assert (await _view(handle)).runs == 0  # not while ``hold`` runs

    await handle.signal("release")

    assert await hold.result() == 2  # it finished in the first run, with both events
    view = await _until(handle, lambda v: v.runs == 1)
    assert view.state["count"] == 2


async def test_an_idle_entity_publishes_its_outcome_and_ends(
        workflow_env: WorkflowEnvironment, task_queue: str,
        published: list[PublishOutcomeInput]) -> None:
    e = [added("t", seq, amount=10) for seq in range(3)]
    handle = await _start(workflow_env.client, "TallyEntity", task_queue, *e)
    assert (await _until(handle, lambda v: v.applied == 3)).state["total"] == 30

    end = EntityEnd.model_validate(await handle.result())  # time skips past the idle time

    assert (end.applied, end.runs, end.state["total"]) == (3, 1, 30)
    [outcome] = published
    assert (outcome.topic, outcome.event_type) == (TALLIES_OUTCOMES, TallyIdled.avro_name)
    idled = TallyIdled.model_validate(outcome.event)
    assert (idled.total, idled.count, idled.causation_id) == (30, 3, str(e[2].event_id))
    assert idled.tally_id == handle.id.removeprefix("tally-")


async def test_signals_of_a_runs_first_task_are_applied_after_the_carried_state(
        workflow_env: WorkflowEnvironment, task_queue: str) -> None:
    # The next run's first task holds the carried state and, often, signals that came
    # during the switch: they must add to the carried state, not be overwritten by it.
    e = [added("t", seq) for seq in range(4)]
    carried = EntityCarry(state={"total": 2, "count": 2, "last_seq": 1, "out_of_order": 0},
                          seen=[str(e[0].event_id), str(e[1].event_id)], applied=2, runs=1)
    handle = await workflow_env.client.start_workflow(
        "HoldingTally", carried, id=f"tally-{uuid.uuid4().hex[:8]}", task_queue=task_queue,
        start_signal=ENTITY_SIGNAL, start_signal_args=[batch(e[1], e[2], e[3])])

    view = await _until(handle, lambda v: v.applied >= 4)

    assert view.state == {"total": 4, "count": 4, "last_seq": 3, "out_of_order": 0}
    assert (view.applied, view.duplicates, view.runs) == (4, 1, 1)
