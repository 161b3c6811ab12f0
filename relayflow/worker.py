"""The Temporal worker: every workflow and activity, registered explicitly here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from temporalio.client import Client
from temporalio.worker import Worker

from activities.approvals import ApprovalPolicy, ApprovalPolicyProvider
from activities.batches import BatchActivities
from activities.orders import OrderActivities
from activities.outcomes import OutcomePublisher
from activities.store import Store
from relayflow.settings import Settings
from relayflow.temporal import connect
from workflows.batch import BatchWorkflow, ChunkWorkflow
from workflows.order_saga import OrderSaga

__all__ = ["WORKFLOWS", "build_worker", "outcome_producer", "run_worker"]

log = logging.getLogger(__name__)

WORKFLOWS: list[type] = [OrderSaga, BatchWorkflow, ChunkWorkflow]
"""Every workflow relayflow runs."""

ACTIVITY_THREADS = 16


@contextlib.asynccontextmanager
async def outcome_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer for outcomes: acks from all replicas, idempotent, small linger."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        # Outcomes of concurrent workflows share a batch; 5 ms adds little latency.
        linger_ms=5,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def build_worker(client: Client, settings: Settings, producer: Any,
                 executor: ThreadPoolExecutor) -> Worker:
    """The worker with every workflow and activity, on ``settings.task_queue``.

    Args:
        client: Connected Temporal client (pydantic data converter).
        settings: Task queue, store path, card limit.
        producer: Started Kafka producer for outcome events.
        executor: Runs the synchronous (SQLite) activities.

    Returns:
        A worker ready to ``run()``.
    """
    store = Store(settings.store_path, card_limit_cents=settings.card_limit_cents)
    publisher = OutcomePublisher(producer, settings.codec())
    policy = ApprovalPolicyProvider(ApprovalPolicy(
        threshold_cents=settings.approval_threshold_cents,
        timeout_seconds=settings.approval_timeout_seconds,
        escalation_timeout_seconds=settings.escalation_timeout_seconds,
        approver=settings.approver,
        escalation_approver=settings.escalation_approver,
    ))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[*OrderActivities(store).all(), publisher.publish_outcome,
                    policy.approval_policy, *BatchActivities(store).all()],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        # On shutdown, running activities get this long to finish before cancellation.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run the worker until ``stop`` is set (or forever).

    Args:
        settings: Where Temporal and Kafka are.
        stop: Set it to shut down gracefully: polling stops, in-flight
            activities drain, then the producer closes.
    """
    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with outcome_producer(settings) as producer:
            worker = build_worker(client, settings, producer, executor)
            log.info("worker polling task queue %s on %s", settings.task_queue,
                     settings.temporal_address)
            async with worker:
                await (stop or asyncio.Event()).wait()
            log.info("worker stopped")
