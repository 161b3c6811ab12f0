"""The topic table of the Kafka contract, in one place.

The dev stack creates these topics, the bridge reads its input topics from
here, and the compose file's init job mirrors it (a unit test checks).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APPROVALS_DECISIONS",
    "BATCHES_OUTCOMES",
    "BATCHES_REQUESTS",
    "DLQ_SUFFIX",
    "INPUT_TOPICS",
    "ORDERS_EVENTS",
    "ORDERS_OUTCOMES",
    "PARKED_KEYS",
    "TOPICS",
    "Topic",
    "dlq_topic",
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
    """

    name: str
    partitions: int
    inbound: bool
    compacted: bool = False

    @property
    def configs(self) -> dict[str, str]:
        """Topic configs to create it with."""
        return {"cleanup.policy": "compact"} if self.compacted else {}


_INPUTS = (Topic(ORDERS_EVENTS, 6, True), Topic(APPROVALS_DECISIONS, 3, True),
           Topic(BATCHES_REQUESTS, 3, True))
_OUTPUTS = (Topic(ORDERS_OUTCOMES, 3, False), Topic(BATCHES_OUTCOMES, 3, False))

INPUT_TOPICS: tuple[str, ...] = tuple(t.name for t in _INPUTS)
"""The topics the bridge may consume (each with a ``.dlq``)."""

TOPICS: tuple[Topic, ...] = (
    *_INPUTS,
    *_OUTPUTS,
    # A DLQ has its source's partition count so a record keeps its partition (and key order).
    *(Topic(dlq_topic(t.name), t.partitions, False) for t in _INPUTS),
    Topic(PARKED_KEYS, 3, False, compacted=True),
)
"""Every topic relayflow needs, with its partition count."""
