"""A real Prometheus scrapes the bridge, the worker and the Temporal SDK while orders flow.

The bridge and the worker run as two services, each with its own endpoints
(``relayflow bridge`` and ``relayflow worker`` do the same), on free ports;
Debian's ``prometheus`` (``make prometheus``) scrapes them every second, and
its query API must report exactly what the test sent. The consumer-lag gauge is
also watched on a real backlog, scraped straight from the bridge: above 0 while
it drains, 0 once every record was consumed.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.prometheus import Prometheus, find_prometheus, prometheus_server
from relayflow.config.settings import Settings
from relayflow.devstack import free_port
from relayflow.kafka.reads import start_group_at_end
from relayflow.observability.monitoring import Monitoring, monitored
from relayflow.reference.app import APP
from relayflow.reference.events import BatchCompleted, BatchRequested, OrderCompleted
from relayflow.reference.topics import BATCHES_REQUESTS, ORDERS_EVENTS
from relayflow.runtime.bootstrap import running
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.kafka import AppKafka, app_kafka
from relayflow.testing.system import isolated
from tests.helpers.support import as_json, cli, order_placed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ORDERS = 5
UNKNOWN_SCHEMA = 3
BATCH_ITEMS, BATCH_FAIL_EVERY = 40, 10  # items 0, 10, 20 and 30 are invalid
SETTLE_S = 60.0


@dataclass
class Observed:
    """Bridge and worker running with their endpoints, and a Prometheus scraping them."""

    settings: Settings
    bridge: Monitoring
    worker: Monitoring
    prometheus: Prometheus
    kafka: AppKafka


@pytest.fixture
async def observed(stack: Settings, tmp_path: Path) -> AsyncIterator[Observed]:
    if find_prometheus() is None:
        pytest.fail("no prometheus binary: run `make prometheus`")
    # The SDK's exporter binds a fixed port (it does not report a picked one): the worker's.
    settings = isolated(stack, "metrics", temporal_metrics_port=free_port())
    bridge_settings = settings.model_copy(update={"temporal_metrics_port": -1})
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             APP.input_topics)
    async with (monitored(bridge_settings, "bridge_http_port") as bridge,
                monitored(settings, "worker_http_port") as worker,
                running(bridge_settings, APP, worker=False, monitoring=bridge),
                running(settings, APP, bridge=False, monitoring=worker),
                app_kafka(settings, APP) as kafka):
        jobs = {"bridge": [f"127.0.0.1:{bridge.endpoints.port}"],
                "worker": [f"127.0.0.1:{worker.endpoints.port}"],
                "temporal": [f"127.0.0.1:{settings.temporal_metrics_port}"]}
        with prometheus_server(tmp_path / "prometheus", jobs) as prometheus:
            yield Observed(settings, bridge, worker, prometheus, kafka)


async def _until(prometheus: Prometheus, expected: dict[str, float]) -> None:
    """Wait until every query yields its value (Prometheus scrapes every second)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        got = {q: await asyncio.to_thread(prometheus.value, q) for q in expected}
        if got == expected:
            return
        if time.monotonic() > deadline:
            wrong = {q: (got[q], want) for q, want in expected.items() if got[q] != want}
            raise AssertionError(f"Prometheus answered (got, expected): {wrong}; "
                                 f"targets: {prometheus.targets_up()}")
        await asyncio.sleep(0.5)


async def _get(port: int | None, path: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as answer:
        return answer.status, await answer.json()


async def test_prometheus_counts_what_was_sent(observed: Observed) -> None:
    kafka, prometheus = observed.kafka, observed.prometheus
    orders = [order_placed() for _ in range(ORDERS)]
    for order in orders:
        await kafka.send(order)
    bad_keys = [f"bad-{uuid.uuid4().hex[:8]}" for _ in range(UNKNOWN_SCHEMA)]
    for key in bad_keys:  # single-object framing, a fingerprint no schema has
        await kafka.send_bytes(ORDERS_EVENTS, b"\xc3\x01" + os.urandom(8) + b"\x02", key=key)
    batch = BatchRequested(event_id=uuid.uuid4(), occurred_at=datetime.now(UTC),
                           batch_id=f"b-{uuid.uuid4().hex[:10]}", item_count=BATCH_ITEMS,
                           seed=7, fail_every=BATCH_FAIL_EVERY, chunk_size=10,
                           max_concurrent_children=2, progress_every_chunks=1)
    await kafka.send(batch)
    for order in orders:
        await kafka.wait_for(OrderCompleted, key=order.order_id, timeout=SETTLE_S)
    for key in bad_keys:
        assert (await kafka.wait_for_dead_letter(ORDERS_EVENTS, key=key)).reason == \
            "unknown-schema"
    completed = await kafka.wait_for(BatchCompleted, key=batch.batch_id, timeout=SETTLE_S)
    failed = BATCH_ITEMS // BATCH_FAIL_EVERY
    assert (completed.succeeded, completed.failed) == (BATCH_ITEMS - failed, failed)

    bridge, worker = 'job="bridge"', 'job="worker"'
    await _until(prometheus, {
        f'sum(relayflow_bridge_dead_letters_total{{{bridge},reason="unknown-schema"}})':
            UNKNOWN_SCHEMA,
        f"sum(relayflow_bridge_dead_letters_total{{{bridge}}})": UNKNOWN_SCHEMA,
        f'sum(relayflow_bridge_commands_total{{{bridge},topic="{ORDERS_EVENTS}",'
        f'route="OrderPlaced",command="start",result="started"}})': ORDERS,
        f'sum(relayflow_bridge_commands_total{{{bridge},topic="{BATCHES_REQUESTS}",'
        f'route="BatchRequested",command="start",result="started"}})': 1,
        f'sum(relayflow_bridge_records_consumed_total{{{bridge},topic="{ORDERS_EVENTS}"}}) '
        f'>= bool {ORDERS + UNKNOWN_SCHEMA}': 1,
        f'sum(relayflow_bridge_temporal_call_seconds_count{{{bridge},command="start"}}) '
        f'>= bool {ORDERS + 1}': 1,
        f"relayflow_bridge_temporal_calls_in_flight{{{bridge}}}": 0,
        # Everything consumed: no partition of the orders topic lags.
        f'max(relayflow_bridge_consumer_lag{{{bridge},topic="{ORDERS_EVENTS}"}})': 0,
        f'relayflow_dependency_up{{{bridge},dependency="temporal"}}': 1,
        f'relayflow_kafka_reachable{{{bridge},service="bridge"}}': 1,
        f'relayflow_kafka_reachable{{{worker},service="worker"}}': 1,
        f'sum(relayflow_outcomes_published_total{{{worker},'
        f'event_type="{OrderCompleted.avro_name}"}})': ORDERS,
        f'sum(relayflow_outcomes_published_total{{{worker},'
        f'event_type="{BatchCompleted.avro_name}"}})': 1,
        f'sum(relayflow_outcome_publish_seconds_count{{{worker},topic="orders.outcomes"}}) '
        f'>= bool {ORDERS}': 1,
        f'relayflow_batch_items_total{{{worker},result="done"}}': BATCH_ITEMS - failed,
        f'relayflow_batch_items_total{{{worker},result="failed"}}': failed,
        # The Temporal SDK's own metrics, from its runtime's exporter.
        'count(up{job=~"bridge|worker|temporal"} == 1)': 3,
        'sum(temporal_workflow_completed{job="temporal"}) > bool 0': 1,
    })


async def test_health_endpoints_answer(observed: Observed) -> None:
    for monitoring, service in ((observed.bridge, "bridge"), (observed.worker, "worker")):
        assert await _get(monitoring.endpoints.port, "/health/live") == (200, {"live": True})
        deadline = time.monotonic() + SETTLE_S
        while (answer := await _get(monitoring.endpoints.port, "/health/ready"))[0] != 200:
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.2)
        assert answer == (200, {"ready": True, "checks": {service: "ok"}})


async def test_top_reads_the_bridge_and_worker_endpoints(observed: Observed) -> None:
    order = order_placed()
    await observed.kafka.send(order)
    await observed.kafka.wait_for(OrderCompleted, key=order.order_id, timeout=SETTLE_S)
    urls = [f"http://127.0.0.1:{m.endpoints.port}/metrics"
            for m in (observed.bridge, observed.worker)]
    frame = as_json(await cli(observed.settings, "top", "--once", "--interval", "0.2",
                              "-o", "json", "--metrics", urls[0], "--metrics", urls[1]))
    assert frame["unanswered"] == []
    assert frame["totals"]["started"] >= 1
    assert frame["totals"]["outcomes_published"] >= 1
    assert frame["in_flight"] == 0
    assert frame["dependencies_up"] == {"kafka": 1, "schema-registry": 1, "temporal": 1}
    assert set(frame["lag"]) >= {ORDERS_EVENTS}


BACKLOG = 40
"""Orders produced before the bridge starts: one fetch each (``bridge_batch_size=1``)."""


async def _bridge_samples(port: int | None, name: str) -> list[float]:
    """The bridge's ``name`` samples for the orders topic, read from its ``/metrics``."""
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/metrics") as answer:
        text = await answer.text()
    return [sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and sample.labels.get("topic") == ORDERS_EVENTS]


async def test_the_lag_gauge_shows_a_backlog_and_its_end(stack: Settings) -> None:
    settings = isolated(stack, "lag", bridge_batch_size=1, temporal_metrics_port=-1)
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             APP.input_topics)
    async with app_kafka(settings, APP) as kafka:
        for _ in range(BACKLOG):  # the group's position stays before them: a backlog
            await kafka.send(order_placed())
    seen: list[float] = []
    async with (monitored(settings, "bridge_http_port") as bridge,
                running(settings, APP, worker=False, monitoring=bridge)):
        port = bridge.endpoints.port
        deadline = time.monotonic() + SETTLE_S
        # One record per fetch, each a Temporal start and a commit: the backlog takes a
        # while to drain, and scrapes every 10 ms watch it do so.
        while True:
            if lag := await _bridge_samples(port, "relayflow_bridge_consumer_lag"):
                seen.append(sum(lag))
            consumed = sum(await _bridge_samples(port, "relayflow_bridge_records_consumed_total"))
            if seen and seen[-1] == 0 and consumed >= BACKLOG:
                break
            assert time.monotonic() < deadline, f"lag seen: {seen}, consumed: {consumed}"
            await asyncio.sleep(0.01)
    assert 0 < max(seen) <= BACKLOG, seen  # behind while it drained (the gauge is not stuck)
    assert seen[-1] == 0  # and caught up once every record was consumed
