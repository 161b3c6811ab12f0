"""Services go away under load and come back; records are redelivered; keys get hot.

Restarting Kafka or Temporal needs the project's own local stack (it owns
those processes): a test restarts only the service under test, and only when
the session's local dev stack runs it at the address under test; with
testcontainers, an external stack or anything else there, it skips.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from aiokafka import TopicPartition

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.kafka.reads import commit_group, committed_to_end
from relayflow.observability.monitoring import KAFKA_REACHABLE
from relayflow.operate.dlq import read_dead_letters
from relayflow.reference.events import ApprovalDecided
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import APPROVALS_DECISIONS, ORDERS_EVENTS
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.stacks import restart_refusal
from schemas import Event
from tests.faults.checks import assert_clean, orders
from tests.faults.rig import Rig, Service
from tests.helpers.approver_keys import signed
from tests.helpers.readiness import Ready, metric, readiness_until
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.timeout(480)]

KAFKA_GRACE_S = 2.0
"""The readiness grace of the Kafka restart test's processes."""

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""


def _restartable(rig: Rig, service: str) -> Settings:
    """The rig's settings, if the test may restart ``service`` under them; else skip."""
    refusal = restart_refusal(rig.settings, service)
    if refusal is not None:
        pytest.skip(f"restarting {service} needs the session's local dev stack: {refusal}")
    return rig.settings


def test_only_the_service_under_test_of_the_sessions_own_stack_is_restartable(
    stack: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if restart_refusal(stack, "kafka") is not None:
        pytest.skip("the session's stack is not a local dev stack: nothing is restartable")
    assert restart_refusal(stack, "temporal") is None
    # Another address under test (a second stack, a proxy): the recorded broker is not it.
    elsewhere = stack.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    assert "serves" in str(restart_refusal(elsewhere, "kafka"))
    assert restart_refusal(elsewhere, "temporal") is None  # Temporal is still the one under test
    # A dev stack runs in the folder, at the addresses under test, but this session did not
    # start it (e.g. an external stack pointed at a demo's): not ours.
    monkeypatch.setattr("relayflow.testing.stacks.LOCAL_STACKS", set())
    for service in ("kafka", "temporal"):
        assert "not part of a local dev stack" in str(restart_refusal(stack, service))


async def _loaded(rig: Rig, count: int, env: dict[str, dict[str, str]] | None = None,
                  ) -> tuple[Service, Service]:
    """Worker and bridge running, ``count`` orders produced; returns both.

    ``env``: each one's own variables, by command (``worker``, ``bridge``).
    """
    env = env or {}
    worker = rig.worker(env=env.get("worker"))
    bridge = rig.bridge(env=env.get("bridge"))
    await worker.logged("worker polling")
    await bridge.logged("bridge consuming")
    await rig.produce(ORDERS_EVENTS, orders(rig, count))
    return worker, bridge


async def test_bridge_and_worker_started_while_kafka_is_down_wait_for_it(rig: Rig) -> None:
    local = _restartable(rig, "kafka")
    await asyncio.to_thread(devstack.stop_kafka, local)
    worker, bridge = rig.worker(), rig.bridge()
    for service in (worker, bridge):
        await service.logged("unavailable")  # Kafka's: both met the outage at start
    await asyncio.to_thread(devstack.start_kafka, local)
    await worker.logged("worker polling")
    await bridge.logged("bridge consuming")
    await rig.produce(ORDERS_EVENTS, orders(rig, 20))
    assert_clean(await rig.settled(), 20)
    assert worker.alive
    assert bridge.alive
    for service in (worker, bridge):
        log = service.log.read_text()
        assert "Kafka at" in log
        assert "available after" in log


async def test_temporal_down_for_a_while_under_load(rig: Rig) -> None:
    local = _restartable(rig, "temporal")
    _, bridge = await _loaded(rig, 30)
    await asyncio.to_thread(devstack.stop_temporal, local)
    await rig.produce(ORDERS_EVENTS, orders(rig, 60)[30:])  # intake waits, nothing committed
    await bridge.logged("Temporal unavailable")  # the bridge met the outage
    await asyncio.to_thread(devstack.start_temporal, local)
    assert_clean(await rig.settled(), 60)
    assert bridge.alive
    log = bridge.log.read_text()
    assert "Temporal unavailable" in log
    assert "Temporal available again" in log
    assert log.count("Temporal unavailable") <= 3  # once per outage, not once per retry


def _kafka_failing(service: str) -> Callable[[Ready], bool]:
    def failing(answer: Ready) -> bool:
        checks = answer[1]["checks"]
        assert isinstance(checks, dict)
        return answer[0] == 503 and str(checks[service]).startswith("kafka failing for ")
    return failing


async def test_kafka_restarted_under_load(rig: Rig) -> None:
    local = _restartable(rig, "kafka")
    ports = {"bridge": free_port(), "worker": free_port()}
    env = {command: {f"RELAYFLOW_{command.upper()}_HTTP_PORT": str(port),
                     "RELAYFLOW_READY_OUTAGE_GRACE_SECONDS": str(KAFKA_GRACE_S)}
           for command, port in ports.items()}
    _, bridge = await _loaded(rig, 30, env)
    async with aiohttp.ClientSession() as session:
        for service, port in ports.items():  # the control: both ready, Kafka reached
            assert await readiness_until(session, port, lambda answer: answer[0] == 200) == \
                (200, {"ready": True, "checks": {service: "ok"}})
            assert await metric(session, port, KAFKA_REACHABLE, {"service": service}) == 1
        await asyncio.to_thread(devstack.stop_kafka, local)
        try:
            # Both met the outage, and say so: not ready once it outlasts the grace.
            for service, port in ports.items():
                await readiness_until(session, port, _kafka_failing(service))
                assert await metric(session, port, KAFKA_REACHABLE, {"service": service}) == 0
                async with session.get(f"http://127.0.0.1:{port}/health/live") as live:
                    assert live.status == 200  # alive all along: restarting would not help
        finally:
            restarted = bridge.mark()
            await asyncio.to_thread(devstack.start_kafka, local)
        for service, port in ports.items():  # ready again once Kafka answers
            await readiness_until(session, port, lambda answer: answer[0] == 200)
            assert await metric(session, port, KAFKA_REACHABLE, {"service": service}) == 1
    # The bridge's consumer found its group's coordinator again (a Kafka it had not seen).
    await bridge.logged("Discovered coordinator", since=restarted)
    await rig.produce(ORDERS_EVENTS, orders(rig, 60)[30:])
    assert_clean(await rig.settled(), 60)
    assert bridge.alive


async def test_a_whole_partition_redelivered_from_offset_zero(rig: Rig) -> None:
    rig.worker()
    bridge = rig.bridge()
    landed = await rig.produce(ORDERS_EVENTS, orders(rig, 30))
    before = await rig.settled()
    assert_clean(before, 30)
    assert bridge.terminate() == 0
    # The partition of the test's first order: one that holds some of its orders, whichever.
    partition = TopicPartition(ORDERS_EVENTS, landed[0].partition)
    await commit_group(kafka_clients(rig.settings), rig.settings.kafka_consumer_group,
                       {partition: 0})
    again = rig.bridge()  # reads that partition again from its very first record
    await again.logged("bridge consuming")
    async with asyncio.timeout(120):  # every record of the partition went through again
        await committed_to_end(kafka_clients(rig.settings), rig.settings.kafka_consumer_group,
                               [partition])
    after = await rig.settled()
    assert_clean(after, 30)
    assert after.duplicate_publishes == before.duplicate_publishes  # no second outcome
    assert after.settled == before.settled


def _decision(rig: Rig, order_id: str, event_id: uuid.UUID, verdict: str = "APPROVED",
              ) -> Event:
    approver = REFERENCE.approver  # only the approver asked decides
    return signed(ApprovalDecided(event_id=event_id, occurred_at=datetime.now(UTC),
                                  approval_id=f"approval-{order_id}", order_id=order_id,
                                  decision=verdict,  # type: ignore[arg-type]
                                  decided_by=f"{approver}/fault-test"))


async def test_a_hot_key_with_early_duplicate_and_conflicting_decisions(rig: Rig) -> None:
    rig.worker()
    rig.bridge()
    order_id = rig.order_id(0)
    first = uuid.uuid4()
    # Decisions before the order exists (held by the bridge), the same one many times,
    # then contradicting ones: one decision counts, once.
    await rig.produce(APPROVALS_DECISIONS, [_decision(rig, order_id, first) for _ in range(30)])
    big = order_placed(order_id, quantity=1, unit_price_cents=REFERENCE.approval_threshold_cents)
    await rig.produce(ORDERS_EVENTS, [big])
    await rig.produce(APPROVALS_DECISIONS,
                      [_decision(rig, order_id, uuid.uuid4(), "REJECTED") for _ in range(30)])
    report = await rig.settled()
    assert report.ok, report.summary()
    assert (report.workflows["OrderSaga"], report.settled["OrderCompleted"],
            report.settled["OrderFailed"]) == (1, 1, 0), report.summary()

    # A decision for the finished order: dead-lettered as stale, nothing else changes.
    stale = uuid.uuid4()
    await rig.produce(APPROVALS_DECISIONS, [_decision(rig, order_id, stale, "REJECTED")])
    for _ in range(300):
        letters = await read_dead_letters(rig.settings, [APPROVALS_DECISIONS])
        # target-closed, or parked behind an earlier late rejection that was.
        if any(d.header("event-id") == str(stale) and d.reason in {"target-closed", "parked"}
               for d in letters):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the stale decision never reached the DLQ")
    after = await rig.settled()
    assert after.ok, after.summary()
    assert (after.settled["OrderCompleted"], after.duplicate_publishes) == \
        (1, report.duplicate_publishes)
