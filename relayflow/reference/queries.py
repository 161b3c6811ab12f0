"""What ``relayflow status`` asks the reference application's running workflows (``StatusQueries``).

A saga's step first (where it stands), then its approval; a batch's progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["ReferenceStatusQueries"]


@dataclass(frozen=True)
class ReferenceStatusQueries:
    """The reference application's ``StatusQueries``.

    Attributes:
        status_queries: Workflow type → the queries to ask, in order.
    """

    status_queries: Mapping[str, Sequence[str]] = field(default_factory=lambda: {
        "OrderSaga": ("status", "approval"), "BatchWorkflow": ("progress",)})
