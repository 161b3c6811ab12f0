"""A hot entity while processes die: a worker killed as the entity continues as new, a
bridge killed mid-burst. Afterwards the tally is exact: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

from relayflow.kafka.reads import start_group_at_end
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.stacks import ensure_app_topics
from tests.faults.rig import Rig, Service
from tests.helpers.tallies.app import APP
from tests.helpers.tallies.burst import produce_burst, runs_of, settled_view

pytestmark = [pytest.mark.timeout(420)]

BURST = 8_000
TALLIES = {"RELAYFLOW_APP": "tests.helpers.tallies.app:APP"}


async def _tallies(rig: Rig) -> None:
    """The rig's group reads the tallies topics from their current end."""
    await asyncio.to_thread(ensure_app_topics, rig.settings, APP.all_topics())
    await start_group_at_end(kafka_clients(rig.settings), rig.settings.kafka_consumer_group,
                             APP.input_topics)


def _start(rig: Rig, command: str, failpoints: str = "") -> Service:
    return rig.service(command, env=TALLIES).start(failpoints)


async def _exact(rig: Rig, tally: str, total: int) -> int:
    """Assert the tally applied the burst exactly once, in order; how many events arrived."""
    client = await connect_temporal(rig.settings)
    view = await settled_view(client, tally, BURST, within=300)
    assert view.state == {"total": total, "count": BURST, "last_seq": BURST - 1,
                          "out_of_order": 0}
    assert view.applied == BURST
    runs = await runs_of(client, tally)
    assert len(runs) >= 2, runs
    return sum(run.delivered for run in runs)


async def test_worker_killed_as_the_entity_continues_as_new(rig: Rig) -> None:
    await _tallies(rig)
    first = _start(rig, "worker", "entity.before-continue-as-new@2")
    _start(rig, "bridge")
    tally = f"{rig.prefix}-{uuid.uuid4().hex[:6]}"

    total = await produce_burst(rig.producer, tally, BURST)
    assert await first.died() == -signal.SIGKILL
    _start(rig, "worker")  # takes over the task the dead worker never completed

    await _exact(rig, tally, total)


@pytest.mark.parametrize("point", ["bridge.before-commit@3", "bridge.before-temporal@4"])
async def test_bridge_killed_mid_burst(rig: Rig, point: str) -> None:
    await _tallies(rig)
    _start(rig, "worker")
    first = _start(rig, "bridge", point)
    tally = f"{rig.prefix}-{uuid.uuid4().hex[:6]}"

    total = await produce_burst(rig.producer, tally, BURST)
    assert await first.died() == -signal.SIGKILL
    _start(rig, "bridge")  # what the dead bridge did not commit is redelivered here

    delivered = await _exact(rig, tally, total)
    if point.startswith("bridge.before-commit"):
        assert delivered > BURST  # signalled before the kill and again after: dropped once
