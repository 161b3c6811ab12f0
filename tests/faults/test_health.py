"""Readiness follows Temporal: stopped, bridge and worker turn not ready; back, ready again.

Stopping Temporal needs the session's own local dev stack (``restart_refusal``);
elsewhere the test skips.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from relayflow import devstack
from relayflow.config.settings import Settings
from relayflow.kafka.reads import start_group_at_end
from relayflow.observability.monitoring import monitored
from relayflow.reference.app import APP
from relayflow.reference.events import OrderCompleted
from relayflow.runtime.bootstrap import running
from relayflow.runtime.clients import kafka_clients
from relayflow.testing.kafka import app_kafka
from relayflow.testing.stacks import restart_refusal
from relayflow.testing.system import isolated
from tests.helpers.readiness import Ready, metric, readiness_until
from tests.helpers.support import order_placed

pytestmark = [pytest.mark.timeout(240)]

GRACE_S = 1.0
WAIT_S = 90.0

def _both_failing(answer: Ready) -> bool:
    status, body = answer
    checks = body["checks"]
    assert isinstance(checks, dict)
    return status == 503 and all("temporal failing" in str(checks[service])
                                 for service in ("bridge", "worker"))


async def _temporal_up(session: aiohttp.ClientSession, port: int | None) -> float | None:
    return await metric(session, port, "relayflow_dependency_up", {"dependency": "temporal"})


async def test_readiness_follows_a_temporal_outage(stack: Settings) -> None:
    refusal = restart_refusal(stack, "temporal")
    if refusal is not None:
        pytest.skip(f"stopping Temporal needs the session's local dev stack: {refusal}")
    settings = isolated(stack, "health", ready_outage_grace_seconds=GRACE_S)
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             APP.input_topics)
    async with (monitored(settings, "bridge_http_port") as monitoring,
                running(settings, APP, monitoring=monitoring),
                app_kafka(settings, APP) as kafka, aiohttp.ClientSession() as session):
        port = monitoring.endpoints.port
        await readiness_until(session, port, lambda answer: answer[0] == 200)
        stopped = await asyncio.to_thread(devstack.stop_temporal, settings)
        assert stopped
        try:
            order = order_placed()
            await kafka.send(order)  # held back by the outage: the bridge retries it
            # Each service turns not ready once the outage is older than the grace.
            _, body = await readiness_until(session, port, _both_failing)
            assert body["ready"] is False
            assert await _temporal_up(session, port) == 0
            async with session.get(f"http://127.0.0.1:{port}/health/live") as live:
                assert live.status == 200  # alive all along: restarting it would not help
        finally:
            await asyncio.to_thread(devstack.start_temporal, settings)
        await readiness_until(session, port, lambda answer: answer == (
            200, {"ready": True, "checks": {"bridge": "ok", "worker": "ok"}}))
        await kafka.wait_for(OrderCompleted, key=order.order_id, timeout=WAIT_S)
        assert await _temporal_up(session, port) == 1
