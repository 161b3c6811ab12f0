"""The operator's CLI on a real Kafka and Temporal: send, tail, decide, status, top, approvals.

The commands run through typer's CliRunner against the module's running
system (bridge and worker in this process, their own task queue and group).
Where a dependency must be missing, a saga is started on a task queue no
worker polls, or an address is pointed at a port nothing listens on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from relayflow.config.settings import Settings
from relayflow.devstack.process import free_port
from relayflow.kafka.reads import end_offsets, partitions_of, record_counts
from relayflow.operate.dlq import parked_keys
from relayflow.reference.events import ApprovalRequested, OrderCompleted, OrderPlaced
from relayflow.reference.pending_approvals import pending_approvals
from relayflow.reference.settings import ReferenceSettings
from relayflow.reference.topics import ORDERS_EVENTS
from relayflow.runtime.bootstrap import connect_temporal
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.kafka import AppKafka
from schemas import EventMeta, Inbound
from schemas.topics import dlq_topic
from tests.helpers.support import as_json, cli, order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REFERENCE = ReferenceSettings()
"""The reference app's settings, as its worker reads them (the same environment)."""

SHORT = "2"  # --timeout of the commands that must find a dependency silent


def order_json(order: OrderPlaced) -> str:
    return order.model_dump_json(exclude={"event_id", "occurred_at"})


async def test_send_validates_encodes_and_tail_finds_it(system: Settings) -> None:
    order = order_placed()
    sent = as_json(await cli(system, "send", "OrderPlaced", "--json", order_json(order),
                             "-o", "json"))
    assert (sent["topic"], sent["key"], sent["event_type"]) == \
        (ORDERS_EVENTS, order.order_id, OrderPlaced.avro_name)

    tailed = await cli(system, "tail", ORDERS_EVENTS, "--key", order.order_id, "-o", "json")
    [record] = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert tailed.exit_code == 0, tailed.output
    assert (record["partition"], record["offset"]) == (sent["partition"], sent["offset"])
    assert record["headers"]["event-id"] == sent["event_id"] == record["event"]["event_id"]
    assert record["event"]["items"] == json.loads(order_json(order))["items"]

    text = await cli(system, "tail", ORDERS_EVENTS, "--key", order.order_id)
    assert f"{ORDERS_EVENTS}/{sent['partition']}/{sent['offset']}" in text.stdout
    assert OrderPlaced.avro_name in text.stdout


async def test_invalid_input_exits_2_and_sends_nothing(system: Settings) -> None:
    partitions = await partitions_of(kafka_clients(system), [ORDERS_EVENTS])
    before = await end_offsets(kafka_clients(system), partitions)
    order = order_placed()
    wrong_total = json.loads(order_json(order)) | {"amount_cents": order.amount_cents + 1}

    invalid = await cli(system, "send", "OrderPlaced", "--json", json.dumps(wrong_total))
    not_json = await cli(system, "send", "OrderPlaced", "--json", "{'order_id': 1")
    unknown = await cli(system, "send", "OrderShipped", "--json", "{}")

    assert invalid.exit_code == not_json.exit_code == unknown.exit_code == 2
    assert "not a valid OrderPlaced" in invalid.stderr
    assert "amount_cents" in invalid.stderr
    assert "not JSON" in not_json.stderr
    assert "no event type 'OrderShipped'" in unknown.stderr
    assert await end_offsets(kafka_clients(system), partitions) == before


async def test_decide_approves_a_pending_order_and_the_saga_completes(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    order = order_placed(unit_price_cents=REFERENCE.approval_threshold_cents, quantity=1)
    await relayflow_kafka.send(order)
    await relayflow_kafka.wait_for(ApprovalRequested, key=order.order_id)

    stranger = await cli(system, "decide", order.order_id, "approve", "--by", "mallory")
    assert stranger.exit_code == 2, stranger.output
    assert f"'mallory' may not decide order '{order.order_id}'" in stranger.stderr

    decided = as_json(await cli(system, "decide", order.order_id, "approve",
                                "--by", f"{REFERENCE.approver}/ann", "--comment", "fine",
                                "-o", "json"))
    assert (decided["topic"], decided["key"], decided["decision"]) == \
        ("approvals.decisions", order.order_id, "APPROVED")
    completed = await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
    assert completed.order_id == order.order_id

    again = await cli(system, "decide", order.order_id, "reject", "--by", REFERENCE.approver)
    missing = await cli(system, "decide", f"no-such-{uuid.uuid4().hex[:6]}", "approve",
                        "--by", REFERENCE.approver)
    assert again.exit_code == missing.exit_code == 1
    assert "has no pending approval" in again.stderr
    assert "no order" in missing.stderr


async def test_status_of_a_completed_order_shows_steps_outcome_and_link(
        system: Settings, relayflow_kafka: AppKafka) -> None:
    order = order_placed()
    await relayflow_kafka.send(order)
    outcome = await relayflow_kafka.wait_for(OrderCompleted, key=order.order_id)
    client = await connect_temporal(system)
    await client.get_workflow_handle(f"order-{order.order_id}").result()

    report = as_json(await cli(system, "status", order.order_id, "-o", "json"))
    [saga] = report["workflows"]
    assert (saga["workflow_id"], saga["status"]) == (f"order-{order.order_id}", "completed")
    assert [(s["name"], s["state"]) for s in saga["steps"]] == [
        ("reserve_inventory", "completed"), ("approval_policy", "completed"),
        ("charge_payment", "completed"), ("create_shipment", "completed"),
        ("publish_outcome", "completed")]
    assert [o["event"]["event_id"] for o in saga["outcomes"]] == [str(outcome.event_id)]
    assert saga["ui_url"] == (f"{system.temporal_ui_url}/namespaces/{system.temporal_namespace}"
                              f"/workflows/order-{order.order_id}/{saga['run_id']}/history")
    assert report["unanswered"] == []

    text = await cli(system, "status", order.order_id)
    assert text.exit_code == 0, text.output
    assert f"Temporal UI: {saga['ui_url']}" in text.stdout
    assert OrderCompleted.avro_name in text.stdout


@pytest.fixture
async def saga_without_worker(system: Settings) -> Any:
    """An order saga waiting on a task queue no worker polls; terminated afterwards."""
    client = await connect_temporal(system)
    order = order_placed(unit_price_cents=REFERENCE.approval_threshold_cents, quantity=1)
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    meta = EventMeta(event_type=OrderPlaced.avro_name, event_id=str(order.event_id),
                     correlation_id=str(order.event_id))
    handle = await client.start_workflow("OrderSaga", Inbound[OrderPlaced](event=order, meta=meta),
                                         id=f"order-{order.order_id}", task_queue=queue)
    yield order, system.model_copy(update={"task_queue": queue})
    await handle.terminate("test over")


async def test_a_silent_dependency_is_named_with_exit_3(
        saga_without_worker: tuple[OrderPlaced, Settings]) -> None:
    order, settings = saga_without_worker

    approvals = await cli(settings, "approvals", "--timeout", SHORT)
    assert approvals.exit_code == 3, approvals.output
    assert ("a worker did not answer the 'approval' query of 1 of 1 running saga(s) "
            f"(order-{order.order_id})") in approvals.stderr

    status = await cli(settings, "status", order.order_id, "--timeout", SHORT)
    assert status.exit_code == 3, status.output
    assert (f"a worker (task queue '{settings.task_queue}') did not answer the 'status' query "
            f"of order-{order.order_id}") in status.stderr
    assert f"order-{order.order_id}: running" in status.stdout  # the rest is still shown

    decide = await cli(settings, "decide", order.order_id, "approve", "--by", REFERENCE.approver,
                       "--timeout", SHORT)
    assert decide.exit_code == 3, decide.output
    assert "did not answer the 'approval' query" in decide.stderr

    nowhere = f"127.0.0.1:{free_port()}"
    kafka = await cli(settings, "send", "OrderPlaced", "--json", order_json(order_placed()),
                      "--timeout", SHORT, RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS=nowhere)
    temporal = await cli(settings, "status", order.order_id, "--timeout", SHORT,
                         RELAYFLOW_TEMPORAL_ADDRESS=nowhere)
    assert kafka.exit_code == temporal.exit_code == 3
    assert f"Kafka at {nowhere} did not answer" in kafka.stderr
    assert f"Temporal at {nowhere} did not answer" in temporal.stderr


class _Consumed(Collector):
    """``relayflow_bridge_records_consumed_total`` that grows by 10 at each scrape."""

    def __init__(self) -> None:
        self.scrapes = 0

    def collect(self) -> Iterable[CounterMetricFamily]:
        self.scrapes += 1
        family = CounterMetricFamily("relayflow_bridge_records_consumed", "records",
                                     labels=["topic"])
        family.add_metric([ORDERS_EVENTS], 10.0 * self.scrapes)
        yield family


@pytest.fixture
def metrics() -> Iterator[tuple[str, _Consumed]]:
    """A /metrics endpoint with some of the contract's names, served by prometheus_client."""
    registry = CollectorRegistry()
    consumed = _Consumed()
    registry.register(consumed)
    commands = Counter("relayflow_bridge_commands", "commands",
                       ["topic", "route", "command", "result"], registry=registry)
    commands.labels(ORDERS_EVENTS, "OrderPlaced", "start", "started").inc(5)
    commands.labels(ORDERS_EVENTS, "OrderCancelled", "cancel", "cancelled").inc(2)
    Counter("relayflow_batch_items", "items", ["result"], registry=registry) \
        .labels("failed").inc(3)
    Gauge("relayflow_bridge_temporal_calls_in_flight", "calls", registry=registry).set(4)
    lag = Gauge("relayflow_bridge_consumer_lag", "lag", ["topic", "partition"],
                registry=registry)
    lag.labels(ORDERS_EVENTS, "0").set(6)
    lag.labels(ORDERS_EVENTS, "1").set(1)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics", consumed
    finally:
        server.shutdown()
        thread.join()


async def test_top_once_shows_metrics_kafka_and_temporal_numbers(
        system: Settings, relayflow_kafka: AppKafka, metrics: tuple[str, _Consumed]) -> None:
    url, consumed = metrics
    junk = f"junk-{uuid.uuid4().hex[:8]}"
    await relayflow_kafka.send_bytes(ORDERS_EVENTS, b"not avro", key=junk)
    await relayflow_kafka.wait_for_dead_letter(ORDERS_EVENTS, key=junk)
    waiting = order_placed(unit_price_cents=REFERENCE.approval_threshold_cents, quantity=1)
    await relayflow_kafka.send(waiting)
    await relayflow_kafka.wait_for(ApprovalRequested, key=waiting.order_id)

    frame = as_json(await cli(system, "top", "--once", "--metrics", url, "--interval", "0.2",
                              "-o", "json"))

    assert frame["totals"]["consumed"] == 10.0 * consumed.scrapes
    assert frame["rates_per_second"]["consumed"] > 0
    assert (frame["totals"]["started"], frame["totals"]["cancelled"],
            frame["totals"]["batch_items_failed"]) == (5, 2, 3)
    assert (frame["in_flight"], frame["lag"]) == (4, {ORDERS_EVENTS: 7})
    dlq = dlq_topic(ORDERS_EVENTS)
    counts = await record_counts(kafka_clients(system), [dlq])
    assert frame["dead_letters"][dlq] == counts[dlq] > 0
    parked = [key for topic, key in await parked_keys(system) if topic == ORDERS_EVENTS]
    assert junk.encode() in parked
    assert frame["parked_keys"][ORDERS_EVENTS] == len(parked)
    client = await connect_temporal(system)
    pending = await pending_approvals(client, task_queue=system.task_queue)
    await client.get_workflow_handle(f"order-{waiting.order_id}").terminate("test over")
    assert frame["pending_approvals"] == len(pending) >= 1
    assert frame["running_workflows"]["BatchWorkflow"] == 0
    assert set(frame["running_workflows"]) == {"OrderSaga", "BatchWorkflow", "ChunkWorkflow"}
    assert frame["unanswered"] == []

    text = await cli(system, "top", "--once", "--metrics", url, "--interval", "0.05")
    assert text.exit_code == 0, text.output
    assert f"dead letters {dlq}" in text.stdout
    assert f"lag {ORDERS_EVENTS}" in text.stdout


async def test_top_once_names_a_silent_metrics_endpoint(system: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = await cli(system, "top", "--once", "--metrics", url, "--interval", "0.05",
                       "--timeout", SHORT, "-o", "json")
    assert result.exit_code == 3, result.output
    assert f"the metrics endpoint {url} did not answer" in result.stderr
    assert json.loads(result.stdout)["totals"] == {}

