"""relayflow itself (bridge and worker) running in the test process on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from relayflow.bootstrap import running
from relayflow.kafka_reads import start_group_at_end
from relayflow.settings import Settings

__all__ = ["relayflow_running"]


@asynccontextmanager
async def relayflow_running(stack: Settings, **update: Any) -> AsyncIterator[Settings]:
    """Bridge and worker in this process, on their own task queue and consumer group.

    The group starts at the topics' current end: earlier tests' records are
    theirs, and replaying them would only slow this module down.

    Args:
        stack: The session's Kafka and Temporal.
        **update: Further settings (e.g. ``schema_registry_url``).
    """
    suffix = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={"task_queue": f"it-{suffix}",
                                        "kafka_consumer_group": f"it-{suffix}", **update})
    await start_group_at_end(settings, settings.kafka_consumer_group)
    async with running(settings):
        yield settings
