"""Failed items of an application's batches (``relayflow batch-failures``), through an extension.

A batch workflow that records each failed item somewhere outside its history
(its outcome names where: ``failed_items_ref``) gives operators the list
through a ``BatchFailures`` extension of its application.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from relayflow.application import Application
from relayflow.config import Settings
from relayflow.operate.errors import NotFound

__all__ = ["BatchFailures", "failed_items"]


@runtime_checkable
class BatchFailures(Protocol):
    """Where an application keeps the failed items of its batches."""

    def failed_items(self, settings: Settings, batch_id: str) -> list[tuple[str, str]]:
        """Every failed item of ``batch_id`` as (item id, reason), in processing order."""
        ...


def failed_items(settings: Settings, app: Application, batch_id: str) -> list[tuple[str, str]]:
    """The failed items of one of ``app``'s batches.

    Raises:
        NotFound: The application keeps no batch failures (no ``BatchFailures`` extension).
    """
    found = app.extension(BatchFailures)
    if found is None:
        raise NotFound(f"application {app.name!r} has no batches")
    return found.failed_items(settings, batch_id)
