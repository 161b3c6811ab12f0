"""``RELAYFLOW_METRICS``: off, bridge and worker work and count nothing; ``/metrics`` is gone.

Each test runs with metrics on too, where the same steps must count, so it
can tell "counted nothing" from "the steps did nothing countable".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from temporalio.testing import ActivityEnvironment

from activities.metrics import WorkerMetrics
from activities.outcomes import OutcomePublisher, PublishOutcomeInput
from bridge.consumer import FetchConsumer, FetchProcessor
from bridge.metrics import BridgeMetrics
from relayflow.config.settings import Settings
from relayflow.observability.monitoring import Endpoints, monitored
from relayflow.reference.events import OrderCompleted
from relayflow.reference.topics import ORDERS_EVENTS, ORDERS_OUTCOMES
from tests.helpers.fakes import FakeCommands, FakeDeadLetters, FakeOffsets, FakeProducer, Record
from tests.helpers.support import CODEC, FAST, decoder, order_placed, record

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(registry: CollectorRegistry) -> Samples:
    """Every sample of ``registry`` but the creation times, by name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in registry.collect() for s in metric.samples
            if not s.name.endswith("_created")}


@pytest.mark.parametrize("counting", [True, False])
async def test_the_bridge_counts_only_with_metrics_on(counting: bool) -> None:
    endpoints = Endpoints(counting=counting)
    metrics = endpoints.metrics(BridgeMetrics)
    metrics.topics([ORDERS_EVENTS])
    good = record(order_placed(), 1)
    bad = Record(good.topic, good.partition, 2, good.key, b"\xc3\x01garbage", good.headers)
    # One transient Temporal failure first: retries, an outage and recovery are counted too.
    processor = FetchProcessor(decoder(), FakeCommands(outage=1), FakeDeadLetters(),
                               backoff=FAST, metrics=metrics)
    report = await FetchConsumer(processor, FakeOffsets(), budget=60).consume(
        [good, bad], consumer=None)
    with metrics.temporal_call("start"):
        pass

    assert report.results[0] == "started"
    assert str(report.results[1]).startswith("dlq:")
    served = samples(endpoints.registry)
    if counting:
        assert served[("relayflow_bridge_records_consumed_total",
                       (("topic", ORDERS_EVENTS),))] == 2
        assert served[("relayflow_dependency_retries_total", (("dependency", "temporal"),))] == 1
        assert served[("relayflow_bridge_temporal_call_seconds_count",
                       (("command", "start"),))] == 1
    else:
        assert served == {}
        # What the bridge holds is unchanged from metrics that never counted anything.
        assert samples(metrics.registry) == samples(BridgeMetrics().registry)


@pytest.mark.parametrize("counting", [True, False])
async def test_the_worker_counts_only_with_metrics_on(counting: bool) -> None:
    endpoints = Endpoints(counting=counting)
    metrics = endpoints.metrics(WorkerMetrics)
    producer = FakeProducer(failures=1)
    publisher = OutcomePublisher(producer, CODEC, metrics=metrics)
    event = OrderCompleted(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), correlation_id="c",
        causation_id="c", order_id="A-1", amount_cents=100, currency="EUR",
        reservation_id="r", payment_id="p", shipment_id="s")
    request = PublishOutcomeInput(topic=ORDERS_OUTCOMES, event_type=event.avro_name,
                                  event=event.model_dump(mode="json"), traceparent="")
    env = ActivityEnvironment()
    with pytest.raises(Exception, match="Timeout"):
        await env.run(publisher.publish_outcome, request)
    assert metrics.kafka_failing_since is not None  # readiness still follows the publishes
    await env.run(publisher.publish_outcome, request)

    assert len(producer.sent) == 1
    assert metrics.kafka_failing_since is None
    served = samples(endpoints.registry)
    if counting:
        assert served[("relayflow_outcomes_published_total",
                       (("event_type", event.avro_name), ("topic", ORDERS_OUTCOMES)))] == 1
    else:
        assert served == {}
        assert samples(metrics.registry) == samples(WorkerMetrics().registry)


@pytest.mark.parametrize("counting", [True, False])
async def test_metrics_route_only_with_metrics_on_health_always(
        counting: bool) -> None:
    settings = Settings(metrics=counting, bridge_http_port=0, temporal_metrics_port=-1)
    async with monitored(settings, "bridge_http_port") as monitoring, \
            aiohttp.ClientSession() as http:
        endpoints = monitoring.endpoints

        async def ready() -> str | None:
            return None

        endpoints.checks["bridge"] = ready
        endpoints.metrics(BridgeMetrics).records_consumed.labels(ORDERS_EVENTS).inc()
        base = f"http://127.0.0.1:{endpoints.port}"
        async with http.get(f"{base}/metrics") as answer:
            assert answer.status == (200 if counting else 404)
            assert ("relayflow_bridge_records_consumed_total" in await answer.text()) is counting
        async with http.get(f"{base}/health/live") as answer:
            assert answer.status == 200
            assert await answer.json() == {"live": True}
        async with http.get(f"{base}/health/ready") as answer:
            assert answer.status == 200
            assert await answer.json() == {"ready": True, "checks": {"bridge": "ok"}}
