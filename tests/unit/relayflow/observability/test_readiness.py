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
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.metrics import WorkerMetrics
from activities.outcomes import OutcomePublisher, PublishOutcomeInput
from bridge.app import BridgeStatus, build_broker
from bridge.consumer import FetchConsumer
from bridge.metrics import BridgeMetrics
from relayflow.config.settings import Settings
from relayflow.kafka.clients import KafkaClients
from relayflow.observability.monitoring import (
    KAFKA_REACHABLE,
    Endpoints,
    WorkerProbe,
    bridge_readiness,
)
from relayflow.observability.reach import KafkaReach, asking
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


class Cluster:
    """What a ``KafkaReach`` asks, answered or not as the test says, on a clock the test moves."""

    def __init__(self, counting: bool = True) -> None:
        self.now = 1000.0
        self.up = True
        self.hangs = False
        self.asked = 0
        self.endpoints = Endpoints(counting=counting)

    async def ask(self) -> object:
        self.asked += 1
        if self.hangs:
            await asyncio.Event().wait()  # a black-holed link: no answer, no error
        if not self.up:
            raise KafkaConnectionError("Unable connect to node with id 1")
        return "answered"

    def reach(self, service: str = "bridge") -> KafkaReach:
        return KafkaReach(self.ask, self.endpoints.kafka_reachable(service), service,
                          timeout=0.05, clock=lambda: self.now)

    def gauge(self, service: str = "bridge") -> float | None:
        return self.endpoints.registry.get_sample_value(KAFKA_REACHABLE, {"service": service})


async def test_a_bridge_whose_kafka_does_not_answer_is_not_ready_after_the_grace(
        status: BridgeStatus) -> None:
    cluster = Cluster()
    reach = cluster.reach()
    status.consumer.assign([TP0])
    assert await reach.ask()
    assert bridge_readiness(status, 10, reach) is None  # the control: Kafka answers
    assert cluster.gauge() == 1
    cluster.up, cluster.now = False, cluster.now + 4
    assert not await reach.ask()
    assert cluster.gauge() == 0  # the gauge says it at once
    assert reach.unreachable_for() == 4  # counted from the last answer, not the first failure
    assert bridge_readiness(status, 10, reach) is None  # within the grace
    cluster.now += 7
    assert not await reach.ask()
    assert bridge_readiness(status, 10, reach) == "kafka failing for 11s"
    cluster.up, cluster.hangs, cluster.now = True, True, cluster.now + 1
    assert not await reach.ask()  # an ask nobody answers counts as no answer
    assert bridge_readiness(status, 10, reach) == "kafka failing for 12s"
    cluster.hangs = False
    assert await reach.ask()
    assert (bridge_readiness(status, 10, reach), reach.unreachable_for(), cluster.gauge()) == \
        (None, None, 1)
    cluster.up, cluster.now = False, cluster.now + 3
    assert not await reach.ask()
    assert reach.unreachable_for() == 3  # the next outage counts from the latest answer


async def test_the_worker_is_not_ready_while_its_outcome_producer_reaches_no_broker(
        workflow_env: WorkflowEnvironment) -> None:
    cluster = Cluster()
    reach = cluster.reach("worker")
    metrics = WorkerMetrics()
    probe = WorkerProbe(grace=10)
    probe.client, probe.metrics, probe.kafka = workflow_env.client, metrics, reach
    async with Worker(workflow_env.client, task_queue=f"readiness-{uuid.uuid4()}",
                      activities=[OutcomePublisher(FakeProducer(), CODEC).publish_outcome],
                      ) as worker:
        probe.worker = worker
        await _polling(worker)
        assert await probe() is None  # the control
        cluster.up, cluster.now = False, cluster.now + 15
        assert not await reach.ask()
        # No outcome was published meanwhile: only the ask tells the outage.
        assert await probe() == "kafka failing for 15s"
        assert cluster.gauge("worker") == 0
        metrics.publish_failed()  # a publish failing just now does not shorten it
        assert await probe() == "kafka failing for 15s"
        cluster.up = True
        assert await reach.ask()
        metrics.published(ORDERS_OUTCOMES, OrderCompleted.avro_name, 0.01)
        assert await probe() is None


async def test_the_cluster_is_asked_while_watched_and_no_longer() -> None:
    cluster = Cluster()
    async with cluster.reach().watching(interval=0.01):
        async with asyncio.timeout(5):
            while cluster.asked < 3:  # noqa: ASYNC110 - the watcher's own pace
                await asyncio.sleep(0.01)
        cluster.up = False
        async with asyncio.timeout(5):
            while cluster.gauge() != 0:  # noqa: ASYNC110 - the watcher's own pace
                await asyncio.sleep(0.01)
    asked = cluster.asked
    await asyncio.sleep(0.05)
    assert cluster.asked == asked  # stopped with the block


async def test_a_client_that_knows_no_broker_reaches_nothing() -> None:
    # A real aiokafka client, never bootstrapped: it knows no broker, so it sends nothing.
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1")
    reach = KafkaReach(asking(client), Endpoints().kafka_reachable("bridge"), "bridge")
    assert not await reach.ask()
    assert reach.unreachable_for() is not None


@pytest.mark.parametrize("counting", [True, False])
def test_one_gauge_per_process_labelled_by_service(counting: bool) -> None:
    cluster = Cluster(counting)
    cluster.reach("bridge")
    cluster.reach("worker")  # ``relayflow run``: both on one registry
    expected = 1 if counting else None
    assert (cluster.gauge("bridge"), cluster.gauge("worker")) == (expected, expected)


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
