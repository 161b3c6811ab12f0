"""The bridge's Prometheus metrics, on a registry the composition root hands in.

Counters count at the point where the bridge knows the answer (Temporal
acknowledged, the DLQ write was acknowledged), so they agree with what is
on the topics. Lag and paused partitions are read from the consumer when
the endpoint is scraped (``observe``). Code that gets no ``BridgeMetrics``
counts into a private registry nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any, Final

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DEPENDENCIES", "BridgeMetrics"]

DEPENDENCIES: Final = ("temporal", "kafka", "schema-registry")
"""Values of the ``dependency`` label."""

_POSITION_WAIT_S = 1.0  # a partition whose position is being reset is skipped, not waited for


class BridgeMetrics:
    """The bridge's metrics on one registry (names in README, "Operating relayflow").

    Args:
        registry: Where they are registered; default a registry of their own.

    Attributes:
        registry: The registry.
        records_consumed: Records fetched, redeliveries and refetches included.
        commands: Temporal commands acknowledged, by topic, route (event
            type), command (the route's action) and result.
        dead_letters: Records the DLQ acknowledged, by reason.
        parked_keys: Keys parked now, by source topic.
        temporal_call_seconds: Latency of each Temporal command, by command.
        temporal_calls_in_flight: Temporal commands awaiting an answer.
        consumer_lag: Records behind the partition's end, per assigned partition.
        partitions_paused: Assigned partitions paused now (held signals).
        dependency_retries: Transient failures retried, by dependency.
        dependency_outages: Outages begun (a first failure after success).
        dependency_up: 0 during an outage, else 1.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self.records_consumed = Counter(
            "relayflow_bridge_records_consumed", "Records fetched from input topics.",
            ["topic"], registry=registry)
        self.commands = Counter(
            "relayflow_bridge_commands", "Temporal commands acknowledged, by result.",
            ["topic", "route", "command", "result"], registry=registry)
        self.dead_letters = Counter(
            "relayflow_bridge_dead_letters", "Records written to the dead-letter topic.",
            ["topic", "reason"], registry=registry)
        self.parked_keys = Gauge(
            "relayflow_bridge_parked_keys", "Keys parked now.", ["topic"], registry=registry)
        self.temporal_call_seconds = Histogram(
            "relayflow_bridge_temporal_call_seconds", "Seconds a Temporal command took.",
            ["command"], registry=registry)
        self.temporal_calls_in_flight = Gauge(
            "relayflow_bridge_temporal_calls_in_flight", "Temporal commands awaiting an answer.",
            registry=registry)
        # Read when scraped: counting a plain int per call spares two locked updates.
        self._in_flight = 0
        self.temporal_calls_in_flight.set_function(lambda: self._in_flight)
        self.consumer_lag = Gauge(
            "relayflow_bridge_consumer_lag", "Records between the consumer's position and "
            "the partition's end.", ["topic", "partition"], registry=registry)
        self.partitions_paused = Gauge(
            "relayflow_bridge_partitions_paused", "Assigned partitions paused now.", ["topic"],
            registry=registry)
        self.dependency_retries = Counter(
            "relayflow_dependency_retries", "Transient failures retried, by dependency.",
            ["dependency"], registry=registry)
        self.dependency_outages = Counter(
            "relayflow_dependency_outages", "Outages begun, by dependency.", ["dependency"],
            registry=registry)
        self.dependency_up = Gauge(
            "relayflow_dependency_up", "0 while a dependency fails, else 1.", ["dependency"],
            registry=registry)
        for dependency in DEPENDENCIES:
            self.dependency_retries.labels(dependency)
            self.dependency_outages.labels(dependency)
            self.dependency_up.labels(dependency).set(1)
        self._lagging: set[tuple[str, str]] = set()
        self._paused_topics: set[str] = set()
        # Labelled children by label values: ``labels()`` costs a lock and a few
        # microseconds, paid per record before (BENCHMARKS.md, tuning log).
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def consumed(self, topics: Iterable[str]) -> None:
        """Count fetched records, given each one's topic (one increment per topic)."""
        for topic, count in Tally(topics).items():
            self._child(self.records_consumed, topic).inc(count)

    def command_done(self, topic: str, route: str, command: str, result: str,
                     count: int = 1) -> None:
        """Count ``count`` records' worth of acknowledged commands (``commands``)."""
        self._child(self.commands, topic, route, command, result).inc(count)

    def topics(self, topics: Iterable[str]) -> None:
        """Create the per-topic series at 0, so rates and sums exist before the first record."""
        for topic in topics:
            self.records_consumed.labels(topic)
            self.parked_keys.labels(topic)
            self.partitions_paused.labels(topic)

    def temporal_call(self, command: str) -> _TemporalCall:
        """Time one Temporal command and count it in flight meanwhile (a context manager)."""
        return _TemporalCall(self, self._child(self.temporal_call_seconds, command))

    async def observe(self, consumer: Any) -> None:
        """Set lag and paused partitions from an ``AIOKafkaConsumer`` (before a scrape).

        Lag is the last fetched high watermark minus the position, as Kafka's
        own ``records-lag`` metric: what the consumer has not yet handed over.
        The bridge rewinds to the first unfinished record after every fetch,
        so records in flight or held count as lag too.
        """
        assigned: set[TopicPartition] = set(consumer.assignment())
        seen: set[tuple[str, str]] = set()
        for tp in assigned:
            end = consumer.highwater(tp)
            if end is None:
                continue  # nothing fetched from it yet
            position = await _position(consumer, tp)
            if position is None:
                continue
            labels = (tp.topic, str(tp.partition))
            self.consumer_lag.labels(*labels).set(max(0, end - position))
            seen.add(labels)
        for gone in self._lagging - seen:
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(*gone)
        self._lagging = seen
        paused: dict[str, int] = {}
        for tp in consumer.paused():
            if tp in assigned:
                paused[tp.topic] = paused.get(tp.topic, 0) + 1
        for topic in self._paused_topics | paused.keys():
            self.partitions_paused.labels(topic).set(paused.get(topic, 0))
        self._paused_topics |= paused.keys()


class _TemporalCall:
    """``BridgeMetrics.temporal_call``: a class, not a generator (per call, a few µs less)."""

    __slots__ = ("_metrics", "_seconds", "_started")

    def __init__(self, metrics: BridgeMetrics, seconds: Any) -> None:
        self._metrics = metrics
        self._seconds = seconds
        self._started = 0.0

    def __enter__(self) -> None:
        self._metrics._in_flight += 1  # noqa: SLF001 - its own metrics' counter
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self._seconds.observe(time.perf_counter() - self._started)
        self._metrics._in_flight -= 1  # noqa: SLF001


async def _position(consumer: Any, tp: TopicPartition) -> int | None:
    """The consumer's position, or None when it is being reset or the partition was revoked."""
    try:
        async with asyncio.timeout(_POSITION_WAIT_S):
            return int(await consumer.position(tp))
    except (TimeoutError, KafkaError):
        return None
