"""The reference endings, and the sweep's workflows in Temporal's time-skipping test server.

The sweep's own activities that read Temporal (``find_ended_executions``) are
replaced by a same-named fake returning what a sweep would find; the builder
(``build_terminal_event``) is the real one, with the reference endings, and
``publish_outcome`` keeps what would have gone to Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.endings import ClosedExecution, EndingSweep, SweepInput
from activities.outcomes import PublishOutcomeInput
from relayflow.reference.activities.orders import OrderActivities
from relayflow.reference.activities.store import DEFAULT_STOCK, Store
from relayflow.reference.endings import REFERENCE_ENDINGS, batch_ended, order_ended
from relayflow.reference.events import BatchRequested, OrderFailed
from relayflow.reference.workflows.batch import BatchCarry
from tests.helpers.workflow_env import start_workflow_environment
from tests.helpers.workflow_fakes import CLOSED_AT, FakeSweep, closed_order, inbound
from workflows.endings import EndExecution, SweepEndings, SweepSummary
from workflows.outcomes import outcome_event_id


def test_a_terminated_saga_fails_with_what_was_undone_before_and_after() -> None:
    closed = closed_order(state={"step": "compensating", "completed_steps": [],
                                 "compensations": ["refund_payment"]},
                          compensations=["release_inventory"])
    failed = order_ended(closed)
    order = closed.input["event"]
    assert failed.event_id == outcome_event_id(closed.workflow_id, "failed")
    assert (failed.order_id, failed.reason, failed.failed_step) == (
        order["order_id"], "terminated", None)
    assert (failed.correlation_id, failed.causation_id) == ("corr-1", order["event_id"])
    assert failed.occurred_at == CLOSED_AT
    assert failed.error == "order saga terminated while compensating: stuck"
    assert failed.compensations == ("refund_payment", "release_inventory")


@pytest.mark.parametrize(("status", "reason"), [("timed_out", "timed_out"),
                                                 ("failed", "workflow_failed")])
def test_each_way_of_closing_has_its_reason(status: str, reason: str) -> None:
    failed = order_ended(closed_order(status))
    assert failed.reason == reason
    assert failed.error == f"order saga {status}: stuck"


@pytest.mark.parametrize(("status", "reason"), [("terminated", "terminated"),
                                                ("timed_out", "timed_out"),
                                                ("failed", "workflow_failed")])
def test_an_ended_batch_completes_cancelled_with_the_counts_it_reached_and_how_it_closed(
        status: str, reason: str) -> None:
    request = BatchRequested(event_id=uuid.uuid4(), occurred_at=CLOSED_AT, batch_id="b-1",
                             item_count=250, chunk_size=100)
    carry = BatchCarry(chunks_done=1, succeeded=99, failed=1, failed_item_ids=["bad-0"])
    completed = batch_ended(ClosedExecution(
        workflow_type="BatchWorkflow", workflow_id="batch-b-1", run_id="r", status=status,
        closed_at=CLOSED_AT, input=inbound(request).model_dump(mode="json"),
        state=carry.model_dump(mode="json")))
    assert completed.event_id == outcome_event_id("batch-b-1", "completed")
    assert (completed.cancelled, completed.reason) == (True, reason)
    assert (completed.total, completed.succeeded, completed.failed) == (250, 99, 1)
    assert (completed.chunks_done, completed.chunks_total) == (1, 3)
    assert completed.failed_item_ids == ("bad-0",)
    assert completed.failed_items_ref == "store:batch_failures/b-1"


def test_compensating_an_ended_order_releases_its_reservation_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", card_limit_cents=10**9)
    closed = closed_order()
    order_id = closed.input["event"]["order_id"]
    store.reserve(f"{closed.workflow_id}/reserve_inventory", order_id, [("SKU-TEA", 2)])
    assert store.available("SKU-TEA") == DEFAULT_STOCK - 2
    activities = OrderActivities(store)
    assert activities.compensate_ended_order(closed) == ["release_inventory"]
    assert store.available("SKU-TEA") == DEFAULT_STOCK
    assert activities.compensate_ended_order(closed) == []  # a retry undoes nothing twice


@dataclass
class Harness:
    client: Client
    fakes: FakeSweep
    task_queue: str

    async def sweep(self) -> SweepSummary:
        return await self.client.execute_workflow(
            SweepEndings.run, SweepInput(), id=f"sweep-{uuid.uuid4()}",
            task_queue=self.task_queue)

    async def end(self, closed: ClosedExecution) -> PublishOutcomeInput:
        return await self.client.execute_workflow(
            EndExecution.run, closed, id=f"end-{uuid.uuid4()}", task_queue=self.task_queue)


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    fakes = FakeSweep()
    task_queue = f"tq-{uuid.uuid4()}"
    env: WorkflowEnvironment
    async with await start_workflow_environment(request.config) as env:
        builder = EndingSweep(env.client, task_queue, REFERENCE_ENDINGS)
        async with Worker(env.client, task_queue=task_queue, workflows=[SweepEndings, EndExecution],
                          activities=[*fakes.all(), builder.build_terminal_event]):
            yield Harness(env.client, fakes, task_queue)


async def test_an_ending_compensates_then_publishes_the_built_event(harness: Harness) -> None:
    closed = closed_order()
    published = await harness.end(closed)
    assert harness.fakes.calls == ["compensate_ended_order", "publish_outcome"]
    assert harness.fakes.published == [published]
    assert published.topic == "orders.outcomes"
    failed = OrderFailed.model_validate(published.event)
    assert (failed.reason, failed.compensations) == ("terminated", ("release_inventory",))


async def test_an_unfinished_terminal_publication_is_sent_again_unchanged(
        harness: Harness) -> None:
    unfinished = PublishOutcomeInput(topic="orders.outcomes", event_type=OrderFailed.avro_name,
                                     event=order_ended(closed_order()).model_dump(mode="json"))
    assert await harness.end(closed_order(unfinished=unfinished)) == unfinished
    assert harness.fakes.calls == ["publish_outcome"]  # its own compensations ran already


async def test_a_second_sweep_finding_the_same_runs_starts_no_ending(harness: Harness) -> None:
    harness.fakes.found = [closed_order(), closed_order("timed_out")]
    first = await harness.sweep()
    assert len(first.started) == 2
    for ending_id in first.started:  # the abandoned children finish on their own
        await harness.client.get_workflow_handle(ending_id).result()
    second = await harness.sweep()  # finished, not only running: their ids stay taken
    assert (second.started, second.already_ended) == ([], 2)
    assert len(harness.fakes.published) == 2
