"""The reference application's topics: names, partitions, which events go where."""

from __future__ import annotations

from relayflow.reference.events import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalTimedOut,
    BatchCancelled,
    BatchCompleted,
    BatchProgress,
    BatchRequested,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
)
from schemas.models import Event
from schemas.topics import Topic, with_dead_letters

__all__ = [
    "APPROVALS_DECISIONS",
    "BATCHES_OUTCOMES",
    "BATCHES_REQUESTS",
    "INPUT_TOPICS",
    "ORDERS_EVENTS",
    "ORDERS_OUTCOMES",
    "REFERENCE_TOPICS",
    "TOPICS",
]

ORDERS_EVENTS = "orders.events"
APPROVALS_DECISIONS = "approvals.decisions"
BATCHES_REQUESTS = "batches.requests"
ORDERS_OUTCOMES = "orders.outcomes"
BATCHES_OUTCOMES = "batches.outcomes"


def _names(*models: type[Event]) -> tuple[str, ...]:
    return tuple(model.avro_name for model in models)


REFERENCE_TOPICS: tuple[Topic, ...] = (
    Topic(ORDERS_EVENTS, 6, inbound=True, events=_names(OrderPlaced, OrderCancelled)),
    Topic(APPROVALS_DECISIONS, 3, inbound=True, events=_names(ApprovalDecided)),
    Topic(BATCHES_REQUESTS, 3, inbound=True, events=_names(BatchRequested, BatchCancelled)),
    Topic(ORDERS_OUTCOMES, 3, inbound=False, events=_names(
        OrderCompleted, OrderFailed, ApprovalRequested, ApprovalEscalated, ApprovalTimedOut,
        ApprovalDecisionRefused)),
    Topic(BATCHES_OUTCOMES, 3, inbound=False, events=_names(BatchProgress, BatchCompleted)),
)
"""relayflow's own application's topics (inputs and outcomes)."""

INPUT_TOPICS: tuple[str, ...] = tuple(t.name for t in REFERENCE_TOPICS if t.inbound)
"""The reference application's input topics (each with a ``.dlq``)."""

TOPICS: tuple[Topic, ...] = with_dead_letters(REFERENCE_TOPICS)
"""Every topic the reference application needs, with its partition count."""
