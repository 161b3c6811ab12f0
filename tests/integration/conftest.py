"""Fixtures shared by the integration tests: relayflow itself running on the real stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bridge.app import run_bridge
from relayflow.settings import Settings
from relayflow.worker import run_worker


@pytest.fixture(scope="module")
async def system(stack: Settings) -> AsyncIterator[Settings]:
    """Bridge and worker in this process, on their own task queue and consumer group."""
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={"task_queue": f"it-{suffix}",
                                        "kafka_consumer_group": f"it-{suffix}"})
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(settings, stop=stop)),
             asyncio.create_task(run_bridge(settings, stop=stop))]
    try:
        yield settings
    finally:
        stop.set()
        await asyncio.gather(*tasks)
