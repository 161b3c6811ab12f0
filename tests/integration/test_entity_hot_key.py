"""A hot key through the real broker, bridge and worker: 20,000 events into one entity.

That is twice what Temporal lets one run take as signals; the bridge sends
consecutive records of the key as one signal and the entity continues as new
on its own, so the burst ends with the exact state, every event applied once
and in order, over several runs each within Temporal's limits.
"""

from __future__ import annotations

import time
import uuid

import pytest

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import kafka_clients
from tests.helpers.tallies.app import APP
from tests.helpers.tallies.burst import (
    HISTORY_LIMIT,
    SIGNAL_LIMIT,
    produce_burst,
    runs_of,
    settled_view,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BURST = 20_000


@pytest.fixture(scope="module")
def relayflow_app() -> Application:
    return APP


async def test_a_burst_on_one_key_is_applied_exactly_once_over_several_runs(
        relayflow_system: Settings) -> None:
    tally = f"hot-{uuid.uuid4().hex[:8]}"
    producer = kafka_clients(relayflow_system).producer(linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    began = time.monotonic()
    try:
        total = await produce_burst(producer, tally, BURST)
    finally:
        await producer.stop()
    client = await connect_temporal(relayflow_system)

    view = await settled_view(client, tally, BURST)
    took = time.monotonic() - began

    assert view.state == {"total": total, "count": BURST, "last_seq": BURST - 1,
                          "out_of_order": 0}
    assert view.applied == BURST
    runs = await runs_of(client, tally)
    assert len(runs) >= 3, runs
    assert sum(run.delivered for run in runs) >= BURST
    for run in runs:
        assert run.signals < SIGNAL_LIMIT, run
        assert run.events < HISTORY_LIMIT, run
    print(f"\n{BURST} events into one entity in {took:.1f}s ({BURST / took:.0f}/s): "  # noqa: T201
          f"{len(runs)} runs, {sum(r.signals for r in runs)} signals")
