"""Processes die at the worst moments; afterwards nothing is lost and no effect is doubled.

Each test runs real ``relayflow bridge`` / ``relayflow worker`` processes
against the real Kafka and Temporal, makes one of them die at a failpoint
(SIGKILL, like ``kill -9``) or stops it, starts a replacement, and ends with
the checks of ``relayflow verify`` on the test's own orders.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from schemas.topics import ORDERS_EVENTS
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig

pytestmark = [pytest.mark.timeout(420)]


@pytest.mark.parametrize("point", ["bridge.before-commit@1", "bridge.before-temporal@25"])
async def test_bridge_killed_mid_stream(rig: Rig, point: str) -> None:
    rig.worker()
    first = rig.bridge(failpoints=point)
    await rig.produce(ORDERS_EVENTS, orders(rig, 80))
    assert await first.died() == -signal.SIGKILL
    rig.bridge()  # what the dead bridge did not commit is redelivered to this one
    assert_clean(await rig.settled(), 80)


@pytest.mark.parametrize("point", ["activity.charge-payment.after-store@5",
                                   "activity.refund-payment.after-store@1",
                                   "activity.publish-outcome.after-send@4"])
async def test_worker_killed_mid_activity(rig: Rig, point: str) -> None:
    first = rig.worker(failpoints=point)
    rig.bridge()
    await rig.produce(ORDERS_EVENTS, orders(rig, 30))
    assert await first.died() == -signal.SIGKILL
    rig.worker()  # Temporal retries the dead worker's activity here, after its timeout
    report = await rig.settled()
    assert_clean(report, 30)
    if point.startswith("activity.publish-outcome"):
        # The outcome reached Kafka before the crash and again on the retry, with the
        # same event id: subscribers drop it, verify counts it once.
        assert report.duplicate_publishes >= 1


async def test_sigterm_mid_stream_commits_what_is_done_and_exits(rig: Rig) -> None:
    rig.worker()
    first = rig.bridge()
    await first.logged("bridge consuming")  # its signal handlers are in place
    await rig.produce(ORDERS_EVENTS, orders(rig, 150))
    await asyncio.sleep(0.5)  # some records started, most not yet
    assert first.terminate() == 0
    rig.bridge()
    assert_clean(await rig.settled(), 150)


async def test_worker_sigterm_mid_stream_drains_and_a_new_worker_finishes(rig: Rig) -> None:
    first = rig.worker()
    await first.logged("worker polling")
    rig.bridge()
    await rig.produce(ORDERS_EVENTS, orders(rig, 100))
    await asyncio.sleep(1.0)  # sagas in flight on the first worker
    assert first.terminate() == 0
    rig.worker()
    assert_clean(await rig.settled(), 100)


async def test_two_bridges_and_two_workers_through_a_rebalance(rig: Rig) -> None:
    rig.worker()
    rig.worker()
    first = rig.bridge()
    await rig.produce(ORDERS_EVENTS, orders(rig, 100))
    rig.bridge()  # joins the group mid-stream: partitions move
    await rig.produce(ORDERS_EVENTS, orders(rig, 200)[100:])
    first.kill()  # and move again
    assert_clean(await rig.settled(), 200)
