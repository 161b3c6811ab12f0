"""Fan-out: a large batch through BatchWorkflow vs the same activity in one flat loop.

* fan-out: a ``BatchRequested`` on ``batches.requests`` goes through relayflow's
  bridge and worker (in this process) to ``BatchWorkflow``; timed until its
  ``BatchCompleted`` is read back from ``batches.outcomes``. Reported: items/s
  and the largest history of any workflow involved (parent runs and chunks).
* flat loop: one workflow awaiting ``process_item`` once per item, in order,
  on one worker: the shape that does not scale. Its history grows by several
  events per item; for 10,000 items it would pass Temporal's 10,240-event
  warning (and approach the 51,200 limit), so it runs ``--flat-items`` and
  the table projects its history to the batch size.

    python -m bench.fanout [--items 10000] [--chunk 100] [--window 8] [--flat-items 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.common import bench_stack, record, start_at_end, table
from relayflow.config.settings import Settings
from relayflow.reference.activities.batches import BatchActivities, ProcessItemInput
from relayflow.reference.activities.store import Store
from relayflow.reference.app import APP
from relayflow.reference.events import BatchCompleted, BatchRequested
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import BATCHES_OUTCOMES, BATCHES_REQUESTS
from relayflow.runtime.bootstrap import connect_temporal, running
from relayflow.runtime.clients import kafka_clients
from schemas.framing import to_record

CODEC = APP.codec()
HISTORY_WARNING = 10_240


class FlatInput(BaseModel):
    """Input of the flat loop."""

    batch_id: str
    item_ids: list[str]


@workflow.defn(name="BenchFlatLoop")
class BenchFlatLoop:
    """Every item's activity, one after the other, in one workflow."""

    @workflow.run
    async def run(self, request: FlatInput) -> int:
        """Process the items in order; returns how many."""
        for item_id in request.item_ids:
            await workflow.execute_activity_method(
                BatchActivities.process_item,
                ProcessItemInput(idempotency_key=f"flat-{request.batch_id}/{item_id}",
                                 batch_id=request.batch_id, item_id=item_id),
                start_to_close_timeout=timedelta(seconds=30))
        return len(request.item_ids)


async def _completed(settings: Settings, batch_id: str) -> BatchCompleted:
    consumer = kafka_clients(settings).consumer(BATCHES_OUTCOMES, auto_offset_reset="earliest",
                                               enable_auto_commit=False)
    await consumer.start()
    try:
        async for message in consumer:
            event = CODEC.decode(message.value or b"")
            if isinstance(event, BatchCompleted) and event.batch_id == batch_id:
                return event
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


async def _largest_history(client: Client, batch_id: str) -> tuple[int, int]:
    """(largest history length, number of workflow runs) of one batch."""
    lengths = [execution.history_length async for execution in client.list_workflows(
        "WorkflowType = 'BatchWorkflow' OR WorkflowType = 'ChunkWorkflow'")
        if execution.id.startswith(f"batch-{batch_id}")]
    return max(lengths), len(lengths)


async def fan_out(settings: Settings, items: int, chunk: int, window: int) -> dict[str, float]:
    """Run one batch through Kafka, the bridge and the worker; its figures."""
    batch_id = f"bench-{uuid.uuid4().hex[:6]}"
    request = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                             batch_id=batch_id, item_count=items, seed=1, chunk_size=chunk,
                             max_concurrent_children=window, progress_every_chunks=10)
    async with running(settings), kafka_clients(settings).started_producer() as producer:
        waiting = asyncio.create_task(_completed(settings, batch_id))
        started = time.perf_counter()
        out = to_record(request, CODEC)
        await producer.send_and_wait(BATCHES_REQUESTS, out.value, key=out.key,
                                     headers=out.headers)
        done = await asyncio.wait_for(waiting, 1800)
        seconds = time.perf_counter() - started
    largest, runs = await _largest_history(await connect_temporal(settings), batch_id)
    return {"items": items, "seconds": seconds, "items_per_s": items / seconds,
            "largest_history": largest, "workflow_runs": runs,
            "succeeded": done.succeeded, "failed": done.failed}


async def flat_loop(settings: Settings, items: int) -> dict[str, float]:
    """The same activity for ``items`` items in one workflow on one worker; its figures."""
    client = await connect_temporal(settings)
    reference = ReferenceSettings.of(settings)
    store = Store(reference.store_path, card_limit_cents=reference.card_limit_cents)
    batch_id = f"flat-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(client, task_queue=f"{settings.task_queue}-flat", workflows=[BenchFlatLoop],
                        activities=[BatchActivities(store).process_item],
                        activity_executor=executor,
                        workflow_runner=UnsandboxedWorkflowRunner())
        async with worker:
            started = time.perf_counter()
            handle = await client.start_workflow(
                BenchFlatLoop.run, FlatInput(batch_id=batch_id,
                                             item_ids=[f"i-{n}" for n in range(items)]),
                id=batch_id, task_queue=f"{settings.task_queue}-flat")
            await handle.result()
            seconds = time.perf_counter() - started
    history = (await handle.describe()).raw_description.workflow_execution_info.history_length
    return {"items": items, "seconds": seconds, "items_per_s": items / seconds,
            "largest_history": history, "history_per_item": history / items}


async def main(args: argparse.Namespace) -> str:
    with bench_stack() as base:
        run = uuid.uuid4().hex[:6]
        settings = base.model_copy(update={"task_queue": f"bench-fanout-{run}",
                                           "kafka_consumer_group": f"bench-fanout-{run}"})
        await start_at_end(settings, settings.kafka_consumer_group)
        fan = await fan_out(settings, args.items, args.chunk, args.window)
        flat = await flat_loop(settings, args.flat_items)
    projected = int(flat["history_per_item"] * args.items)
    ratios = {"items/s fan-out/flat": fan["items_per_s"] / flat["items_per_s"],
              "largest history fan-out/flat (projected to the batch)":
                  fan["largest_history"] / projected}
    record("fanout", vars(args), {"fan_out": fan, "flat": flat, "flat_projected_history":
                                  projected, "ratios": ratios})
    rows = [("fan-out (BatchWorkflow)", fan["items"], fan["seconds"], fan["items_per_s"],
             fan["largest_history"], fan["workflow_runs"]),
            ("flat loop (one workflow)", flat["items"], flat["seconds"], flat["items_per_s"],
             flat["largest_history"], 1),
            (f"flat loop, projected to {args.items}", args.items, "-", "-", projected, 1)]
    verdict = "under" if fan["largest_history"] < HISTORY_WARNING else "OVER"
    return "\n".join([
        table("Fan-out (items per second, largest workflow history in events)",
              ["shape", "items", "seconds", "items/s", "largest history", "workflow runs"],
              rows), "",
        *(f"{name}: {value:.2f}x" for name, value in ratios.items()),
        (f"largest fan-out history {fan['largest_history']} is {verdict} Temporal's "
         f"{HISTORY_WARNING}-event warning (chunk {args.chunk}, window {args.window}); "
         f"succeeded {fan['succeeded']}, failed {fan['failed']}"),
    ])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--flat-items", type=int, default=1000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(asyncio.run(main(parse())))
