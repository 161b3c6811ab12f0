"""The Kafka contract: Avro schemas (source of truth), pydantic models, codec.

This package is a leaf: it imports nothing else of relayflow's.
"""

from schemas.envelope import EventMeta, Inbound
from schemas.models import (
    ApprovalDecided,
    ApprovalDecisionRefused,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalTimedOut,
    BatchCancelled,
    BatchCompleted,
    BatchProgress,
    BatchRequested,
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderFailed,
    OrderLine,
    OrderPlaced,
    Outcome,
)

EVENT_TYPES: dict[str, type[Event]] = {
    model.avro_name: model
    for model in (
        OrderPlaced, OrderCancelled, ApprovalDecided, OrderCompleted, OrderFailed,
        ApprovalRequested, ApprovalEscalated, ApprovalTimedOut, ApprovalDecisionRefused,
        BatchRequested, BatchCancelled, BatchProgress, BatchCompleted,
    )
}
"""Every event model by its Avro full name (the ``event-type`` header)."""

__all__ = [
    "EVENT_TYPES",
    "ApprovalDecided",
    "ApprovalDecisionRefused",
    "ApprovalEscalated",
    "ApprovalRequested",
    "ApprovalTimedOut",
    "BatchCancelled",
    "BatchCompleted",
    "BatchProgress",
    "BatchRequested",
    "Event",
    "EventMeta",
    "Inbound",
    "OrderCancelled",
    "OrderCompleted",
    "OrderFailed",
    "OrderLine",
    "OrderPlaced",
    "Outcome",
]
