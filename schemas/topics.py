"""The topic table of the Kafka contract, in one place: names, partitions, which events go where.

The dev stack creates these topics, the reference application's routes read
its input topics from here, workflows name their outcome topics from here,
and the compose file's init job mirrors it (a unit test checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
    OrderPlaced,
)

__all__ = [
    "APPROVALS_DECISIONS",
    "BATCHES_OUTCOMES",
    "BATCHES_REQUESTS",
    "DLQ_SUFFIX",
    "INPUT_TOPICS",
    "ORDERS_EVENTS",
    "ORDERS_OUTCOMES",
    "PARKED_KEYS",
    "REFERENCE_TOPICS",
    "TOPICS",
    "Topic",
    "dlq_topic",
    "with_dead_letters",
]

ORDERS_EVENTS = "orders.events"
APPROVALS_DECISIONS = "approvals.decisions"
BATCHES_REQUESTS = "batches.requests"
ORDERS_OUTCOMES = "orders.outcomes"
BATCHES_OUTCOMES = "batches.outcomes"
DLQ_SUFFIX = ".dlq"
PARKED_KEYS = "relayflow.parked-keys"
"""Compacted: the keys the bridge parked after a dead letter (key ``<topic>/<key>``)."""


def dlq_topic(source: str) -> str:
    """Dead-letter topic of an input topic."""
    return source + DLQ_SUFFIX


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of the contract.

    Attributes:
        name: Topic name.
        partitions: Partition count (parallelism of consumers keyed by entity).
        inbound: True for topics the bridge consumes.
        compacted: Log-compacted (``cleanup.policy=compact``): the latest
            value per key is the state, a tombstone deletes it.
        events: Avro full names of the events that travel on it (empty for
            DLQs, which carry whatever failed, and internal topics).
    """

    name: str
    partitions: int
    inbound: bool
    compacted: bool = False
    events: tuple[str, ...] = ()

    @property
    def configs(self) -> dict[str, str]:
        """Topic configs to create it with."""
        return {"cleanup.policy": "compact"} if self.compacted else {}


def with_dead_letters(topics: Iterable[Topic]) -> tuple[Topic, ...]:
    """``topics``, a ``<topic>.dlq`` for each input, and the bridge's parked-keys topic."""
    own = tuple(topics)
    # A DLQ has its source's partition count so a record keeps its partition (and key order).
    dlqs = tuple(Topic(dlq_topic(t.name), t.partitions, inbound=False) for t in own if t.inbound)
    return (*own, *dlqs, Topic(PARKED_KEYS, 3, inbound=False, compacted=True))


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
