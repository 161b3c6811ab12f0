"""Record this release's workflow histories for ``tests/unit/relayflow/reference/test_replay.py``.

Run after a release, on the released commit::

    .venv/bin/python -m tests.histories.record

Each scenario runs the real ``OrderSaga``, ``BatchWorkflow``,
``ChunkWorkflow`` and the ending sweep's ``relayflow.SweepEndings`` and
``relayflow.EndExecution`` in Temporal's time-skipping test server with the
same-named fake activities of ``tests.helpers.workflow_fakes`` (the sweep's
real ``build_terminal_event``, with the reference endings), checks that it
ended the way its name says, and writes every run's history (``WorkflowHistory.to_json()``) into
``tests/histories/release-<version>/``, the version read from pyproject.toml.
A folder that already holds histories is left alone unless ``--replace`` is
given: re-recording an old release from newer code would bless the newer
code instead of checking it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.endings import EndingSweep, SweepInput, ending_workflow_id
from activities.outcomes import PublishOutcomeInput
from relayflow.reference.endings import REFERENCE_ENDINGS, order_ended
from relayflow.reference.events import BatchRequested, OrderFailed, OrderPlaced
from relayflow.reference.workflows.approval import APPROVAL_SIGNAL
from relayflow.reference.workflows.batch import (
    BatchCarry,
    BatchResult,
    BatchRun,
    BatchWorkflow,
    ChunkWorkflow,
)
from relayflow.reference.workflows.order_saga import OrderSaga, OrderSagaResult
from tests.helpers.approver_keys import MALLORY
from tests.helpers.support import order_placed
from tests.helpers.workflow_env import start_time_skipping_environment
from tests.helpers.workflow_fakes import (
    FakeBatchActivities,
    FakeOrderActivities,
    FakeSweep,
    closed_order,
    decision,
    inbound,
    wait_for_approval,
)
from tests.histories import HISTORIES, history_file_name
from workflows.endings import EndExecution, SweepEndings

__all__ = ["Recorder", "Scenario", "StartEnvironment", "main", "record", "release_version"]

ROOT = HISTORIES.parent.parent
BIG = 2_000
"""Units of 100 cents: 200,000 cents, above the fake policy's 100,000 approval threshold."""

SagaHandle = WorkflowHandle[OrderSaga, OrderSagaResult]
StartSaga = Callable[[OrderPlaced], Awaitable[SagaHandle]]
BatchHandle = WorkflowHandle[Any, BatchResult]
StartBatch = Callable[[BatchRequested, BatchCarry | None], Awaitable[BatchHandle]]


def release_version() -> str:
    """The version in pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


@dataclass
class Recorder:
    """Runs scenarios in one test server and writes their histories to ``folder``."""

    env: WorkflowEnvironment
    folder: Path
    written: list[Path] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def orders(self, fakes: FakeOrderActivities) -> AsyncIterator[StartSaga]:
        """A worker for ``OrderSaga`` on a task queue of its own; yields a starter."""
        task_queue = f"record-{uuid.uuid4()}"

        async def start(order: OrderPlaced) -> SagaHandle:
            return await self.env.client.start_workflow(
                OrderSaga.run, inbound(order), id=f"order-{order.order_id}",
                task_queue=task_queue)

        async with Worker(self.env.client, task_queue=task_queue, workflows=[OrderSaga],
                          activities=fakes.all()):
            yield start

    @contextlib.asynccontextmanager
    async def batches(self, fakes: FakeBatchActivities) -> AsyncIterator[StartBatch]:
        """A worker for ``BatchWorkflow`` and ``ChunkWorkflow``; yields a starter.

        Without carry the argument is the bridge's plain ``Inbound[BatchRequested]``
        (no ``carry`` key), started by type name as the bridge does.
        """
        task_queue = f"record-{uuid.uuid4()}"

        async def start(request: BatchRequested, carry: BatchCarry | None) -> BatchHandle:
            envelope = inbound(request, correlation_id="corr-b")
            argument = envelope if carry is None else BatchRun(inbound=envelope, carry=carry)
            return await self.env.client.start_workflow(
                "BatchWorkflow", argument, id=f"batch-{request.batch_id}",
                task_queue=task_queue, result_type=BatchResult)

        async with Worker(self.env.client, task_queue=task_queue,
                          workflows=[BatchWorkflow, ChunkWorkflow], activities=fakes.all()):
            yield start

    @contextlib.asynccontextmanager
    async def endings(self, fakes: FakeSweep) -> AsyncIterator[str]:
        """A worker for the ending sweep's workflows; yields its task queue."""
        task_queue = f"record-{uuid.uuid4()}"
        builder = EndingSweep(self.env.client, task_queue, REFERENCE_ENDINGS)
        async with Worker(self.env.client, task_queue=task_queue,
                          workflows=[SweepEndings, EndExecution],
                          activities=[*fakes.all(), builder.build_terminal_event]):
            yield task_queue

    async def save(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Write every run of the workflow (following continue-as-new) and of its children."""
        client = self.env.client
        first = handle.first_execution_run_id or handle.run_id  # the handle follows the last run
        runs = [await client.get_workflow_handle(handle.id, run_id=first).fetch_history()]
        while (next_run := _continued_as(runs[-1])) is not None:
            runs.append(await client.get_workflow_handle(handle.id, run_id=next_run)
                        .fetch_history())
        for number, history in enumerate(runs, start=1):
            self._write(history, number if len(runs) > 1 else None)
            for child_id, child_run in _children(history):
                self._write(await client.get_workflow_handle(child_id, run_id=child_run)
                            .fetch_history(), None)

    def _write(self, history: WorkflowHistory, run: int | None) -> None:
        path = self.folder / history_file_name(history.workflow_id, run)
        if path in self.written:
            raise RuntimeError(f"two histories for {path.name}")
        path.write_text(history.to_json() + "\n", encoding="utf-8")
        self.written.append(path)


def _continued_as(history: WorkflowHistory) -> str | None:
    last = history.events[-1]
    if last.HasField("workflow_execution_continued_as_new_event_attributes"):
        return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return None


def _children(history: WorkflowHistory) -> list[tuple[str, str]]:
    return [(e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id,
             e.child_workflow_execution_started_event_attributes.workflow_execution.run_id)
            for e in history.events
            if e.HasField("child_workflow_execution_started_event_attributes")]


async def _cancelled(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait for the workflow's end and check it ended cancelled."""
    cause: BaseException | None = None
    try:
        await handle.result()
    except WorkflowFailureError as error:
        cause = error.cause
    assert isinstance(cause, CancelledError), f"{handle.id} ended with {cause!r}"
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED


async def order_completed(rec: Recorder) -> None:
    """A small order: no approval, every step, ``OrderCompleted``."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        handle = await start(order_placed("completed"))
        assert (await handle.result()).outcome == "OrderCompleted"
    await rec.save(handle)


async def order_payment_declined(rec: Recorder) -> None:
    """charge_payment refuses: refund (a no-op) and release run in reverse, ``OrderFailed``."""
    fakes = FakeOrderActivities(fail_at="charge_payment")
    async with rec.orders(fakes) as start:
        handle = await start(order_placed("payment-declined"))
        result = await handle.result()
    assert (result.reason, result.compensations) == ("payment_declined", ["release_inventory"])
    assert fakes.calls == ["reserve_inventory", "charge_payment", "refund_payment",
                           "release_inventory", "publish_outcome"]
    await rec.save(handle)


async def order_approved(rec: Recorder) -> None:
    """A big order: ``ApprovalRequested``, approved while waiting, ``OrderCompleted``."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        order = order_placed("approval-approved", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await wait_for_approval(handle)
        await handle.signal(APPROVAL_SIGNAL, inbound(decision(order.order_id, "APPROVED")))
        assert (await handle.result()).outcome == "OrderCompleted"
    assert fakes.published_types() == ["ApprovalRequested", "OrderCompleted"]
    await rec.save(handle)


async def order_rejected(rec: Recorder) -> None:
    """A big order rejected while waiting: release_inventory, ``OrderFailed`` rejected."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        order = order_placed("approval-rejected", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await wait_for_approval(handle)
        await handle.signal(APPROVAL_SIGNAL,
                            inbound(decision(order.order_id, "REJECTED", by="approvers/bob")))
        result = await handle.result()
    assert (result.reason, result.compensations) == ("rejected", ["release_inventory"])
    await rec.save(handle)


async def order_escalated_approved(rec: Recorder) -> None:
    """No decision within the first timeout: ``ApprovalEscalated``, then approved."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        order = order_placed("approval-escalated-approved", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await wait_for_approval(handle)
        await rec.env.sleep(fakes.policy.timeout_seconds + 1)
        await wait_for_approval(handle, escalated=True)
        await handle.signal(APPROVAL_SIGNAL,
                            inbound(decision(order.order_id, "APPROVED", by="managers/boss")))
        assert (await handle.result()).outcome == "OrderCompleted"
    assert fakes.published_types() == ["ApprovalRequested", "ApprovalEscalated", "OrderCompleted"]
    await rec.save(handle)


async def order_timed_out(rec: Recorder) -> None:
    """No decision at all: escalated, then ``ApprovalTimedOut``, release, ``OrderFailed``."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        handle = await start(order_placed("approval-timed-out", quantity=BIG,
                                          unit_price_cents=100))
        result = await handle.result()
    assert result.reason == "approval_timed_out"
    assert fakes.published_types() == ["ApprovalRequested", "ApprovalEscalated",
                                       "ApprovalTimedOut", "OrderFailed"]
    await rec.save(handle)


async def order_cancelled_during_a_step(rec: Recorder) -> None:
    """Cancelled while create_shipment runs: every undo in reverse, ``OrderFailed``, cancelled."""
    fakes = FakeOrderActivities(block_at="create_shipment")
    async with rec.orders(fakes) as start:
        handle = await start(order_placed("cancelled-during-step"))
        await asyncio.wait_for(fakes.blocked.wait(), timeout=30)
        await handle.cancel()
        await _cancelled(handle)
    assert fakes.calls == ["reserve_inventory", "charge_payment", "create_shipment",
                           "cancel_shipment", "refund_payment", "release_inventory",
                           "publish_outcome"]
    assert fakes.published[0].event["reason"] == "cancelled"
    await rec.save(handle)


async def order_cancelled_awaiting_approval(rec: Recorder) -> None:
    """Cancelled while waiting for a decision: release_inventory, ``OrderFailed``, cancelled."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        handle = await start(order_placed("cancelled-awaiting-approval", quantity=BIG,
                                          unit_price_cents=100))
        await wait_for_approval(handle)
        await handle.cancel()
        await _cancelled(handle)
    assert fakes.published_types() == ["ApprovalRequested", "OrderFailed"]
    assert fakes.calls[-2:] == ["release_inventory", "publish_outcome"]
    await rec.save(handle)


async def order_early_decision(rec: Recorder) -> None:
    """The decision arrives while reserve_inventory still runs; the saga asks, finds it, goes on."""
    fakes = FakeOrderActivities(block_at="reserve_inventory")
    async with rec.orders(fakes) as start:
        order = order_placed("early-decision", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await asyncio.wait_for(fakes.blocked.wait(), timeout=30)
        await handle.signal(APPROVAL_SIGNAL, inbound(decision(order.order_id, "APPROVED")))
        fakes.release.set()
        assert (await handle.result()).outcome == "OrderCompleted"
    assert fakes.published_types() == ["ApprovalRequested", "OrderCompleted"]
    await rec.save(handle)


async def order_duplicate_decisions(rec: Recorder) -> None:
    """An approval, its redelivery, a late rejection, a foreign approval id: one effect."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        order = order_placed("duplicate-decisions", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await wait_for_approval(handle)
        approved = inbound(decision(order.order_id, "APPROVED"))
        for signal in (approved, approved,
                       inbound(decision(order.order_id, "REJECTED", by="eve")),
                       inbound(decision(order.order_id, "REJECTED",
                                        approval_id="approval-other"))):
            await handle.signal(APPROVAL_SIGNAL, signal)
        assert (await handle.result()).outcome == "OrderCompleted"
        assert len((await handle.query(OrderSaga.approval)).ignored) == 2
    await rec.save(handle)


async def order_refused_decisions(rec: Recorder) -> None:
    """Decisions from people not asked (early, then waiting) are refused; escalated, approved."""
    fakes = FakeOrderActivities(block_at="reserve_inventory")
    async with rec.orders(fakes) as start:
        order = order_placed("refused-decisions", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await asyncio.wait_for(fakes.blocked.wait(), timeout=30)
        await handle.signal(APPROVAL_SIGNAL,
                            inbound(decision(order.order_id, "APPROVED", by="mallory")))
        fakes.release.set()
        await wait_for_approval(handle)
        await handle.signal(APPROVAL_SIGNAL,
                            inbound(decision(order.order_id, "APPROVED", by="managers/boss")))
        await rec.env.sleep(fakes.policy.timeout_seconds + 1)
        await wait_for_approval(handle, escalated=True)
        await handle.signal(APPROVAL_SIGNAL,
                            inbound(decision(order.order_id, "APPROVED", by="managers/boss")))
        assert (await handle.result()).outcome == "OrderCompleted"
        assert len((await handle.query(OrderSaga.approval)).refused) == 2
    assert fakes.published_types() == ["ApprovalRequested", "ApprovalDecisionRefused",
                                       "ApprovalDecisionRefused", "ApprovalEscalated",
                                       "OrderCompleted"]
    await rec.save(handle)


async def order_unproven_decisions(rec: Recorder) -> None:
    """Unsigned, for another order, another's key: refused with why; then a signed approval."""
    fakes = FakeOrderActivities()
    async with rec.orders(fakes) as start:
        order = order_placed("unproven-decisions", quantity=BIG, unit_price_cents=100)
        handle = await start(order)
        await wait_for_approval(handle)
        for signal in (decision(order.order_id, "APPROVED", key=None),
                       decision("another-order", "APPROVED"),
                       decision(order.order_id, "APPROVED", by="approvers/ann", key=MALLORY)):
            await handle.signal(APPROVAL_SIGNAL, inbound(signal))
        await handle.signal(APPROVAL_SIGNAL, inbound(decision(order.order_id, "APPROVED")))
        assert (await handle.result()).outcome == "OrderCompleted"
        refused = (await handle.query(OrderSaga.approval)).refused
        assert [r.code for r in refused] == ["unsigned", "wrong-order", "key-not-for-approver"]
    await rec.save(handle)


def _batch(batch_id: str, **fields: Any) -> BatchRequested:
    return BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                          batch_id=batch_id, **fields)


async def batch_with_failures(rec: Recorder) -> None:
    """3 chunks in a window of 2, 2 items failing: progress after each chunk, then completed."""
    fakes = FakeBatchActivities()
    items = ["i-0", "i-1", "bad-2", "i-3", "i-4", "i-5", "bad-6", "i-7"]
    async with rec.batches(fakes) as start:
        handle = await start(_batch("with-failures", items=items, chunk_size=3,
                                    max_concurrent_children=2, progress_every_chunks=1), None)
        result = await handle.result()
    assert (result.succeeded, result.failed, result.runs) == (6, 2, 1)
    assert sorted(fakes.failures) == ["bad-2", "bad-6"]
    await rec.save(handle)


async def batch_continued_as_new(rec: Recorder) -> None:
    """6 chunks, 2 per run: the batch continues as new twice, carrying its counts.

    A history limit of 8 events lets each run start its first window of 2
    chunks (its history has 3 events then) and no more: by the time a chunk
    finished the history has at least 10.
    """
    fakes = FakeBatchActivities()
    async with rec.batches(fakes) as start:
        handle = await start(_batch("continued-as-new", item_count=12, seed=1, fail_every=5,
                                    chunk_size=2, max_concurrent_children=2,
                                    progress_every_chunks=2),
                             BatchCarry(history_event_limit=8))
        result = await handle.result()
    assert (result.runs, result.succeeded, result.failed) == (3, 9, 3), result
    await rec.save(handle)


async def batch_cancelled(rec: Recorder) -> None:
    """Cancelled while one chunk still runs: that chunk is cancelled, the others counted."""
    fakes = FakeBatchActivities(block_item="i-3")
    async with rec.batches(fakes) as start:
        handle = await start(_batch("cancelled", items=[f"i-{n}" for n in range(6)],
                                    chunk_size=2, max_concurrent_children=2,
                                    progress_every_chunks=1), None)
        await asyncio.wait_for(fakes.blocked.wait(), timeout=30)
        for _ in range(500):  # until the other two chunks are counted (time does not skip)
            if (await handle.query(BatchWorkflow.progress)).chunks_done == 2:
                break
            await asyncio.sleep(0.01)
        await handle.cancel()
        await _cancelled(handle)
    [completed] = [p.event for p in fakes.published if p.event_type.endswith("BatchCompleted")]
    assert (completed["cancelled"], completed["chunks_done"]) == (True, 2), completed
    await rec.save(handle)


async def ending_compensated(rec: Recorder) -> None:
    """A terminated order's ending: compensation, then the built ``OrderFailed`` published."""
    fakes = FakeSweep()
    closed = closed_order(order_id="ending-compensated")
    async with rec.endings(fakes) as task_queue:
        handle = await rec.env.client.start_workflow(
            EndExecution.run, closed, task_queue=task_queue,
            id=ending_workflow_id(closed.workflow_id, closed.run_id))
        published = await handle.result()
    assert fakes.calls == ["compensate_ended_order", "publish_outcome"]
    failed = OrderFailed.model_validate(published.event)
    assert (failed.reason, failed.compensations) == ("terminated", ("release_inventory",))
    await rec.save(handle)


async def ending_republished(rec: Recorder) -> None:
    """A run closed mid-publication: its unfinished terminal event is sent again, unchanged."""
    fakes = FakeSweep()
    unfinished = PublishOutcomeInput(topic="orders.outcomes", event_type=OrderFailed.avro_name,
                                     event=order_ended(closed_order()).model_dump(mode="json"))
    closed = closed_order(order_id="ending-republished", unfinished=unfinished)
    async with rec.endings(fakes) as task_queue:
        handle = await rec.env.client.start_workflow(
            EndExecution.run, closed, task_queue=task_queue,
            id=ending_workflow_id(closed.workflow_id, closed.run_id))
        assert await handle.result() == unfinished
    assert fakes.calls == ["publish_outcome"]
    await rec.save(handle)


async def sweep_endings(rec: Recorder) -> None:
    """A sweep starts an ending per closed run; a second sweep finds them taken, starts none."""
    fakes = FakeSweep(found=[closed_order(order_id="swept-terminated"),
                             closed_order("timed_out", order_id="swept-timed-out")])
    async with rec.endings(fakes) as task_queue:
        sweeps = []
        for sweep_id in ("sweep-endings", "sweep-endings-again"):
            handle = await rec.env.client.start_workflow(
                SweepEndings.run, SweepInput(), id=sweep_id, task_queue=task_queue)
            summary = await handle.result()
            for ending_id in summary.started:  # abandoned: they finish on their own
                await rec.env.client.get_workflow_handle(ending_id).result()
            sweeps.append((handle, summary))
    [(first, started), (again, taken)] = sweeps
    assert (len(started.started), taken.started, taken.already_ended) == (2, [], 2)
    assert len(fakes.published) == 2
    await rec.save(first)
    await rec.save(again)


Scenario = Callable[[Recorder], Awaitable[None]]

SCENARIOS: tuple[Scenario, ...] = (
    order_completed, order_payment_declined, order_approved, order_rejected,
    order_escalated_approved, order_timed_out, order_cancelled_during_a_step,
    order_cancelled_awaiting_approval, order_early_decision, order_duplicate_decisions,
    order_refused_decisions, order_unproven_decisions, batch_with_failures,
    batch_continued_as_new, batch_cancelled, ending_compensated, ending_republished,
    sweep_endings,
)


StartEnvironment = Callable[[], Awaitable[WorkflowEnvironment]]
"""Starts the server a scenario runs in (default: Temporal's time-skipping test server)."""


async def record(folder: Path, scenarios: Sequence[Scenario] = SCENARIOS,
                 start: StartEnvironment = start_time_skipping_environment) -> list[Path]:
    """Run ``scenarios`` (default: every one) and write their histories into ``folder``.

    Each scenario gets a test server of its own: the server skips no time while
    an activity runs, and a scenario may leave one running (a saga cancelled
    during a step whose fake never hears of the cancel, as it does not
    heartbeat, runs until its start-to-close timeout, which the stopped clock
    never reaches); sharing a server, every later ``env.sleep`` then waited in
    real time until its call timed out (``order_refused_decisions`` after
    ``order_cancelled_during_a_step``).
    """
    written: list[Path] = []
    for scenario in scenarios:
        async with await start() as env:
            await scenario(Recorder(env, folder, written))
    return written


def main(scenarios: Sequence[Scenario] = SCENARIOS, root: Path = HISTORIES,
         start: StartEnvironment = start_time_skipping_environment,
         description: str | None = None) -> None:
    """Command line: record into ``<root>/release-<version>/`` (root: ``tests/histories``).

    Args:
        scenarios: The scenarios ``--scenario`` chooses from (default: the reference's).
        root: The folder of the release folders (an application's own, for another app).
        start: Starts each scenario's server.
        description: The command's description (default: this module's).
    """
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n", 1)[0])
    parser.add_argument("--release", default=release_version(),
                        help="release the folder is named for (default: pyproject's version)")
    parser.add_argument("--replace", action="store_true",
                        help="replace histories already stored for this release")
    parser.add_argument("--output", type=Path, default=None,
                        help="write into this folder instead of the release's (a trial run)")
    by_name = {scenario.__name__: scenario for scenario in scenarios}
    parser.add_argument("--scenario", action="append", choices=sorted(by_name),
                        help="record only this scenario (repeatable; default: every one)")
    args = parser.parse_args()
    chosen = [by_name[name] for name in args.scenario] if args.scenario else scenarios
    # Fakes fail activities on purpose; their tracebacks would bury the report.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    folder = args.output or root / f"release-{args.release}"
    stored = sorted(folder.glob("*.json"))
    if stored and not args.replace:
        parser.exit(1, f"{folder} already holds {len(stored)} histories; they record what "
                       "that release ran. Give --replace only to re-record the same code.\n")
    folder.mkdir(parents=True, exist_ok=True)
    for path in stored:
        path.unlink()
    for path in asyncio.run(record(folder, chosen, start)):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)  # noqa: T201


if __name__ == "__main__":
    main()
