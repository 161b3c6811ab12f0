"""What the bridge is given: its own settings and a way to build Kafka clients.

The bridge never reads the environment and never imports the top layer: the
composition root (``relayflow.runtime.bootstrap``) fills a ``BridgeConfig`` from its
settings and hands in connected clients, and a ``KafkaClientFactory`` for the
clients the bridge must build itself (FastStream's broker, the parked-keys
follower). One factory builds every Kafka client, so connection and security
options are decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker

from bridge.decoding import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT
from schemas.topics import PARKED_KEYS

__all__ = ["FETCH_BUDGET_S", "MAX_POLL_INTERVAL_MS", "SESSION_TIMEOUT_S", "BridgeConfig",
           "KafkaClientFactory"]

MAX_POLL_INTERVAL_MS = 300_000
"""Kafka's default: a member that does not poll for this long is dropped from its group."""

SESSION_TIMEOUT_S = 10.0
"""aiokafka's default ``session_timeout_ms``: a member silent this long leaves its group."""

FETCH_BUDGET_S = 120.0
"""A fetch stops starting records after this long. Under ``MAX_POLL_INTERVAL_MS`` with
room for the calls still in flight (bounded by their own timeouts), so the consumer
polls again in time even while Temporal is down."""


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """The bridge's settings.

    Attributes:
        consumer_group: Kafka consumer group of every bridge process.
        task_queue: Task queue new workflows start on.
        fetch_max_records: Most records fetched, processed and committed as one
            fetch; larger fetches lose less throughput at their edges, and a
            crash redelivers at most one.
        concurrency: Key groups processed at once.
        signal_hold_seconds: How long a SIGNAL for a workflow that does not
            exist yet is retried before it is dead-lettered.
        shutdown_seconds: On shutdown, how long in-flight Temporal calls may take.
        temporal_call_seconds: Bound on one Temporal call besides an update's own
            (bounded by its route's ``reply_within``); one that timed out is retried.
        park_keys: Park the key of a dead-lettered record (``bridge.parking``).
        parked_keys_topic: The compacted topic that holds parked keys.
        max_payload_bytes: Larger record values are dead-lettered undecoded.
        max_header_count: Records with more headers are dead-lettered undecoded.
        max_header_bytes: Records whose header names and values total more
            bytes are dead-lettered undecoded.
        fetch_budget_seconds: A fetch stops starting records after this long.
        fetch_max_bytes: Most bytes (as stored, compressed) one fetch asks the
            brokers for; one larger batch still comes, so that consumption progresses.
        max_partition_fetch_bytes: Most bytes (as stored) one fetch asks for
            from one partition, with the same exception.
        session_timeout_seconds: The consumer group drops a bridge whose
            heartbeats stopped for this long (a killed one), and only then
            gives its partitions to the others (Kafka's ``session.timeout.ms``).
    """

    consumer_group: str
    task_queue: str
    fetch_max_records: int = 2000
    concurrency: int = 64
    signal_hold_seconds: float = 300.0
    shutdown_seconds: float = 15.0
    temporal_call_seconds: float = 10.0
    park_keys: bool = True
    parked_keys_topic: str = PARKED_KEYS
    max_payload_bytes: int = 512 * 1024
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    fetch_budget_seconds: float = FETCH_BUDGET_S
    fetch_max_bytes: int = 8 * 1024 * 1024
    max_partition_fetch_bytes: int = 1024 * 1024
    session_timeout_seconds: float = SESSION_TIMEOUT_S


class KafkaClientFactory(Protocol):
    """Builds the Kafka clients the bridge owns (``relayflow.kafka.clients`` in production)."""

    def broker(self, **options: Any) -> KafkaBroker:
        """A FastStream broker connected like every other client; ``options`` add to it."""
        ...

    def consumer(self, **options: Any) -> AIOKafkaConsumer:
        """An aiokafka consumer (not started) connected like every other client."""
        ...
