"""Requests in memory: an application's update routes under ``relayflow_memory``.

The counters test application's real bridge and worker on in-memory topics and
Temporal's time-skipping test server: a team tests its request/response routes
without Kafka or a Temporal server.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from relayflow import Application, RequestFailed
from relayflow.testing import AppMemory
from tests.helpers.counters.app import APP
from tests.helpers.counters.events import CounterAdded, OpenAndAdd

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


def open_and_add(counter_id: str, amount: int) -> OpenAndAdd:
    return OpenAndAdd(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                      counter_id=counter_id, amount=amount)


async def test_a_request_and_a_rejected_one_are_answered(relayflow_memory: AppMemory) -> None:
    counter = f"C-{uuid.uuid4().hex[:8]}"
    await relayflow_memory.send(open_and_add(counter, 3), correlation_id="basket-1")
    added = await relayflow_memory.wait_for(CounterAdded, key=counter)
    assert (added.total, added.correlation_id) == (3, "basket-1")

    await relayflow_memory.send(open_and_add(counter, -1))
    refused = await relayflow_memory.wait_for(RequestFailed, key=counter)
    assert (refused.reason, refused.error_type) == ("rejected", "NotPositive")
