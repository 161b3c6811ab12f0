"""Processes die at the worst moments; afterwards nothing is lost and no effect is doubled.

Each test runs real ``relayflow bridge`` / ``relayflow worker`` processes
against the real Kafka and Temporal, makes one of them die at a failpoint
(SIGKILL, like ``kill -9``) or stops it, starts a replacement, and ends with
the checks of ``relayflow verify`` on the test's own orders.
"""

from __future__ import annotations

import asyncio
import re
import signal

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from temporalio.api.enums.v1 import TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client

from devtools.toxiproxy import Toxiproxy
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.runtime.bootstrap import connect_temporal
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig
from tests.helpers.support import kafka_probe

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


async def _committed(settings: Settings) -> dict[TopicPartition, int]:
    """The group's committed offsets on ``orders.events``."""
    async with KafkaClients(settings).started_admin() as admin:
        offsets = await admin.list_consumer_group_offsets(settings.kafka_consumer_group)
    return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == ORDERS_EVENTS}


async def _committed_since(settings: Settings, baseline: dict[TopicPartition, int]) -> int:
    """Records of ``orders.events`` the group committed since ``baseline``."""
    now = await _committed(settings)
    return sum(now[tp] - baseline[tp] for tp in baseline)


async def _started(client: Client, rig: Rig) -> int:
    """Workflows started on the rig's task queue."""
    return (await client.count_workflows(f"TaskQueue = '{rig.settings.task_queue}'")).count


START_TO_CLOSE = TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
_DRAIN = re.compile(r"shutting down: (\d+) of (\d+) records of the fetch in flight finished; "
                    r"committing those, the rest is redelivered")


async def test_sigterm_mid_stream_commits_what_is_done_and_exits(rig: Rig) -> None:
    rig.worker()
    client = await connect_temporal(rig.settings)
    baseline = await _committed(rig.settings)
    # The whole stream is there before the bridge starts, so it fetches it in one poll,
    # and it reaches Temporal through 50 ms of latency each way (Toxiproxy), 4 calls at a
    # time: the fetch takes seconds, and a commit comes only at its end.
    await rig.produce(ORDERS_EVENTS, orders(rig, 150))
    with Toxiproxy(rig.settings, rig.logs / "toxiproxy.log") as toxiproxy:
        link = toxiproxy.proxy("temporal", rig.settings.temporal_address)
        for stream in ("upstream", "downstream"):
            link.latency(50, stream=stream)
        first = rig.bridge(env={"RELAYFLOW_TEMPORAL_ADDRESS": link.listen,
                                "RELAYFLOW_BRIDGE_CONCURRENCY": "4"})
        async with asyncio.timeout(120):  # mid-stream: Temporal acknowledged some records
            while not await _started(client, rig):  # noqa: ASYNC110 - polling Temporal
                await asyncio.sleep(0.05)
        before = await _committed_since(rig.settings, baseline)
        assert before < 150
        code = await asyncio.to_thread(first.terminate)  # the link stays up for the drain
    assert code == 0

    # The drain: the fetch started no more records, let the calls in flight finish, and
    # committed exactly the records it reports finished; the rest waits for redelivery.
    [(finished, fetched)] = [(int(n), int(m)) for n, m in _DRAIN.findall(first.log.read_text())]
    assert 0 < finished < fetched <= 150
    after = await _committed_since(rig.settings, baseline)
    assert after - before == finished
    assert after < 150
    rig.bridge()  # the rest is redelivered to this one
    assert_clean(await rig.settled(), 150)


async def _retried_activities(client: Client, task_queue: str) -> list[tuple[str, Failure]]:
    """(workflow id, last failure) of every activity attempt after the first, on the queue."""
    found = []
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        for event in (await handle.fetch_history()).events:
            if event.HasField("activity_task_started_event_attributes"):
                started = event.activity_task_started_event_attributes
                if started.attempt > 1:
                    found.append((execution.id, started.last_failure))
    return found


async def test_worker_sigterm_mid_stream_drains_and_a_new_worker_finishes(rig: Rig) -> None:
    first = rig.worker()
    await first.logged("worker polling")
    rig.bridge()
    async with kafka_probe(rig.settings, [ORDERS_OUTCOMES]) as probe:
        def mine(record: ConsumerRecord[bytes, bytes]) -> bool:
            return (record.key or b"").startswith(f"{rig.prefix}-".encode())

        await rig.produce(ORDERS_EVENTS, orders(rig, 100))
        done = await probe.wait_for(mine, count=1)  # the first sagas finished
        assert 1 <= len(done) < 100
        assert await asyncio.to_thread(first.terminate) == 0
        log = first.log.read_text()
        # Temporal's worker drained (stopped polling, waited for running activities) and
        # then the process wound down by itself.
        assert log.index("Beginning worker shutdown") < log.index("worker stopped")
        # Mid-stream indeed: with the first worker gone, some sagas had not finished.
        assert len({r.key for r in await probe.caught_up() if mine(r)}) < 100
    rig.worker()
    assert_clean(await rig.settled(), 100)
    # No activity was cut short by the shutdown. A task handed to a poll that the
    # shutdown cancelled is retried after its start-to-close timeout (README,
    # Guarantees: "what it abandons is retried elsewhere"); any other failure of a
    # first attempt (e.g. an activity cancelled by the shutdown) would show here.
    retried = await _retried_activities(await connect_temporal(rig.settings),
                                        rig.settings.task_queue)
    assert [(wid, failure) for wid, failure in retried
            if failure.timeout_failure_info.timeout_type != START_TO_CLOSE] == []


async def test_two_bridges_and_two_workers_through_a_rebalance(rig: Rig) -> None:
    rig.worker()
    rig.worker()
    first = rig.bridge()
    await rig.produce(ORDERS_EVENTS, orders(rig, 100))
    # As the group's coordinator reports it: the first bridge holds every partition.
    alone = await rig.members(lambda found: len(found) == 1 and all(found.values()))
    [(member, everything)] = alone.items()
    rig.bridge()  # joins the group mid-stream: partitions move
    await rig.produce(ORDERS_EVENTS, orders(rig, 200)[100:])
    shared = await rig.members(lambda found: len(found) == 2 and all(found.values()))
    [held] = [partitions for joined, partitions in shared.items() if joined != member]
    # The first bridge is still in the group, and gave some of its partitions away.
    assert shared[member] | held == everything
    assert not shared[member] & held
    first.kill()  # and move again
    assert_clean(await rig.settled(), 200)
