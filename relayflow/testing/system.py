"""An application's bridge and worker running in the test process, on a real stack."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from relayflow.runtime.clients import connect_temporal, kafka_clients
from relayflow.testing.stacks import ensure_app_topics

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from relayflow.application import Application
    from relayflow.config.settings import Settings

__all__ = ["isolated", "running_system"]


def isolated(stack: Settings, prefix: str = "it", **update: Any) -> Settings:
    """``stack`` with a task queue and consumer group of its own (``<prefix>-<random>``).

    Args:
        stack: The session's Kafka and Temporal.
        prefix: Start of the task queue and group names.
        **update: Further settings (e.g. ``schema_registry_url``).
    """
    suffix = uuid.uuid4().hex[:8]
    return stack.model_copy(update={"task_queue": f"{prefix}-{suffix}",
                                    "kafka_consumer_group": f"{prefix}-{suffix}", **update})


@asynccontextmanager
async def running_system(stack: Settings, app: Application, *,
                         tracer_provider: TracerProvider | None = None,
                         **update: Any) -> AsyncIterator[Settings]:
    """Bridge and worker of ``app`` in this process, on their own task queue and consumer group.

    The application's topics are created first if missing. The group starts
    at the input topics' current end: earlier tests' records are theirs, and
    replaying them would only slow this one down.

    Args:
        stack: The session's Kafka and Temporal.
        app: The application to run.
        tracer_provider: Trace bridge and worker with this provider (default: as
            the settings say).
        **update: Further settings (e.g. ``schema_registry_url``).

    Yields:
        The settings bridge and worker run with; both stop gracefully afterwards,
        and the worker's ending sweep schedule (of this task queue alone) is deleted.
    """
    from relayflow.kafka.reads import start_group_at_end  # noqa: PLC0415
    from relayflow.runtime.bootstrap import running  # noqa: PLC0415 - Temporal, FastStream: on demand

    settings = isolated(stack, **update)
    await asyncio.to_thread(ensure_app_topics, settings, app.all_topics())
    await start_group_at_end(kafka_clients(settings), settings.kafka_consumer_group,
                             app.input_topics)
    try:
        async with running(settings, app, tracer_provider=tracer_provider):
            yield settings
    finally:
        await _delete_ending_schedule(settings)


async def _delete_ending_schedule(settings: Settings) -> None:
    """No schedule of a finished test keeps starting sweeps that no worker takes."""
    from temporalio.service import RPCError  # noqa: PLC0415

    from relayflow.runtime.endings import ending_schedule_id  # noqa: PLC0415

    client = await connect_temporal(settings)
    with contextlib.suppress(RPCError):  # none was made (no endings, or sweeping off)
        await client.get_schedule_handle(ending_schedule_id(settings.task_queue)).delete()
