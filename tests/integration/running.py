"""relayflow itself (bridge and worker) running in the test process on the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from relayflow.reference import APP
from relayflow.settings import Settings
from relayflow.testing.system import running_system

__all__ = ["relayflow_running"]


@asynccontextmanager
async def relayflow_running(stack: Settings, **update: Any) -> AsyncIterator[Settings]:
    """The reference application's bridge and worker, run as ``relayflow_system`` runs them.

    On their own task queue and consumer group, the group at the input topics'
    current end (``relayflow.testing.system.running_system``).

    Args:
        stack: The session's Kafka and Temporal.
        **update: Further settings (e.g. ``schema_registry_url``).
    """
    async with running_system(stack, APP, **update) as settings:
        yield settings
