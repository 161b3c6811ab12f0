"""Readiness and lag say "not ready" and "behind" when they should, not only "ok" and 0.

Each test first shows the healthy answer (the control), then breaks one thing
and asserts the answer names it, so a check that always answers ready, or a
gauge stuck at 0, fails here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.metrics import WorkerMetrics
from activities.outcomes import OutcomePublisher, PublishOutcomeInput
from bridge.app import BridgeStatus, build_broker
from bridge.consumer import FetchConsumer
from bridge.metrics import BridgeMetrics
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.observability.monitoring import WorkerProbe, bridge_readiness
from relayflow.reference.app import ROUTES
from relayflow.reference.events import OrderCompleted
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from relayflow.runtime.bootstrap import bridge_config
from tests.helpers.fakes import FakeCommands, FakeOffsets, FakeProducer
from tests.helpers.support import CODEC, processor

TP0, TP1 = TopicPartition(ORDERS_EVENTS, 0), TopicPartition(ORDERS_EVENTS, 1)


def _outcome() -> PublishOutcomeInput:
    event = OrderCompleted(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), correlation_id="c",
        causation_id="c", order_id="A-1", amount_cents=100, currency="EUR",
        reservation_id="r", payment_id="p", shipment_id="s")
    return PublishOutcomeInput(topic=ORDERS_OUTCOMES, event_type=event.avro_name,
                               event=event.model_dump(mode="json"), traceparent="")


async def _polling(worker: Worker) -> None:
    async with asyncio.timeout(10):
        # It runs once Temporal accepted its namespace; the SDK sets no event for that.
        while not worker.is_running:  # noqa: ASYNC110 - the SDK's flag
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(("grace", "not_ready_while_failing"), [(0.0, True), (3600.0, False)])
async def test_the_worker_is_not_ready_while_outcome_publishes_fail(
        workflow_env: WorkflowEnvironment, grace: float, not_ready_while_failing: bool) -> None:
    metrics = WorkerMetrics()
    publisher = OutcomePublisher(FakeProducer(failures=1), CODEC, metrics=metrics)
    probe = WorkerProbe(grace)
    probe.client, probe.metrics = workflow_env.client, metrics
    assert await probe() == "not polling"
    async with Worker(workflow_env.client, task_queue=f"readiness-{uuid.uuid4()}",
                      activities=[publisher.publish_outcome]) as worker:
        probe.worker = worker
        await _polling(worker)
        assert await probe() is None  # polling, Temporal answering, nothing failed yet
        publish = ActivityEnvironment()
        with pytest.raises(Exception, match="Timeout"):
            await publish.run(publisher.publish_outcome, _outcome())
        failing = await probe()
        if not_ready_while_failing:
            assert failing is not None
            assert failing.startswith("kafka failing for ")
        else:
            assert failing is None  # within the grace: one failed publish is no outage yet
        await publish.run(publisher.publish_outcome, _outcome())
        assert await probe() is None  # a publish that reaches Kafka ends the outage


@pytest.fixture
async def status() -> AsyncIterator[BridgeStatus]:
    """A bridge's status as the running app fills it: a fetch consumer, a Kafka consumer."""
    found = BridgeStatus()
    found.broker = build_broker(bridge_config(Settings()), ROUTES, KafkaClients(Settings()))
    assert bridge_readiness(found, grace=0) == "starting"
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started: no I/O
    [subscriber] = found.broker.subscribers
    subscriber.consumer = consumer  # type: ignore[attr-defined] # held while it runs
    found.fetch = FetchConsumer(processor(FakeCommands()), FakeOffsets(), budget=30)
    try:
        yield found
    finally:
        await consumer.stop()


async def test_a_bridge_without_partitions_is_not_ready(status: BridgeStatus) -> None:
    assert bridge_readiness(None, grace=0) == "waiting for Temporal"
    assert bridge_readiness(status, grace=0) == "no partitions assigned"
    status.consumer.assign([TP0])  # the group gave it a partition
    assert bridge_readiness(status, grace=0) is None
    status.consumer.assign([])  # a rebalance took it away (another bridge has them all)
    assert bridge_readiness(status, grace=0) == "no partitions assigned"


class PositionedConsumer:
    """What ``BridgeMetrics.observe`` reads of an ``AIOKafkaConsumer``: assignment, ends, positions.

    A real consumer's high watermarks and positions come only from fetching from
    a broker; the integration test ``tests/integration/test_metrics.py`` reads
    the gauge of a real one.
    """

    def __init__(self, ends: dict[TopicPartition, int | None],
                 positions: dict[TopicPartition, int]) -> None:
        self.ends, self.positions = ends, positions

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def paused(self) -> set[TopicPartition]:
        return set()


def _lag(metrics: BridgeMetrics) -> dict[int, float]:
    return {int(sample.labels["partition"]): sample.value
            for family in metrics.registry.collect() for sample in family.samples
            if sample.name == "relayflow_bridge_consumer_lag"}


async def test_the_lag_gauge_is_the_records_between_position_and_end() -> None:
    metrics = BridgeMetrics()
    await metrics.observe(PositionedConsumer({TP0: 10, TP1: 5}, {TP0: 10, TP1: 5}))
    assert _lag(metrics) == {0: 0, 1: 0}  # the control: caught up reads 0
    await metrics.observe(PositionedConsumer({TP0: 17, TP1: 5}, {TP0: 10, TP1: 2}))
    assert _lag(metrics) == {0: 7, 1: 3}
    # A partition not fetched from yet has no lag to tell; a revoked one loses its series.
    await metrics.observe(PositionedConsumer({TP0: None}, {TP0: 0}))
    assert _lag(metrics) == {}
