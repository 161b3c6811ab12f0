"""Topics of the Kafka contract: an application's topic table is a tuple of ``Topic``.

Every input topic gets a ``<topic>.dlq`` with its partition count, and every
application shares the bridge's compacted parked-keys topic
(``with_dead_letters``). The dev stack creates an application's topics from
its table; the compose file's init job mirrors the reference application's
(a unit test checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DLQ_SUFFIX", "PARKED_KEYS", "Topic", "dlq_topic", "with_dead_letters"]

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
        replies: A reply topic (outbound): the bridge answers requests (update
            routes) on it, with one of ``events`` or the framework's
            ``RequestFailed``. The only topics a ``reply-to`` header may name.
    """

    name: str
    partitions: int
    inbound: bool
    compacted: bool = False
    events: tuple[str, ...] = ()
    replies: bool = False

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
