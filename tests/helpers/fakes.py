"""Fakes of relayflow's own interfaces, shared by the unit tests.

Each fake implements one of our protocols (``bridge.commands.Commands``,
``bridge.dead_letters.DeadLetterSink``, ``bridge.offsets.Offsets``,
``bridge.parking.Parking``, the producers of ``bridge.dead_letters`` and
``activities.outcomes``) or is shaped like the record the bridge reads. No
library is mocked; test modules import these instead of importing each other.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata
from temporalio.common import RawValue

from bridge.commands import Delivery
from bridge.consumed import ConsumedRecord
from bridge.failures import PermanentFailure, TransientFailure
from bridge.parking import ParkEntry
from bridge.routes import Route
from schemas import Event, Inbound
from schemas.dead_letters import DlqReason
from schemas.envelope import InboundBatch

__all__ = ["FakeCommands", "FakeDeadLetters", "FakeOffsets", "FakeParking", "FakeProducer",
           "Record"]


@dataclass
class Record:
    """Shaped like aiokafka's ConsumerRecord (the fields the bridge reads)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


@dataclass
class FakeCommands:
    """Our ``Commands``: records calls in order; scripted failures and gates per key.

    The first ``outage`` calls fail transiently, whatever their key (Temporal is
    down); ``transient[key]`` failures happen before the key's next call succeeds;
    ``permanent[key]`` makes every call for the key fail permanently;
    ``not_found[key]`` calls fail as ``target-not-found`` first; a gate
    in ``gates[key]`` holds the key's calls until it is set.
    """

    outage: int = 0
    transient: dict[str, int] = field(default_factory=dict)
    not_found: dict[str, int] = field(default_factory=dict)
    permanent: dict[str, PermanentFailure] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0
    max_in_flight: int = 0
    signals: list[list[int]] = field(default_factory=list)
    """Offsets each command carried (several for a batched signal)."""

    async def execute(self, route: Route, inbound: Delivery,
                      argument: RawValue | None = None) -> str:  # noqa: ARG002
        events: list[Inbound[Event]] = (inbound.events if isinstance(inbound, InboundBatch)
                                        else [inbound])
        key = events[0].event.key
        self.attempts[key] += 1
        if self.outage > 0:
            self.outage -= 1
            raise TransientFailure("temporal unavailable")
        if self.transient.get(key, 0) > 0:
            self.transient[key] -= 1
            raise TransientFailure("temporal unavailable")
        if key in self.permanent:
            raise self.permanent[key]
        if self.not_found.get(key, 0) > 0:
            self.not_found[key] -= 1
            raise PermanentFailure(DlqReason.TARGET_NOT_FOUND, f"no workflow for {key} yet")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if key in self.gates:
                await self.gates[key].wait()
        finally:
            self.in_flight -= 1
        self.calls += [(route.id_for(one.event), type(one.event).__name__, one.meta.offset)
                       for one in events]
        self.signals.append([one.meta.offset for one in events])
        return "started"


@dataclass
class FakeDeadLetters:
    """Our ``DeadLetterSink``: keeps what it was given; can refuse N times first."""

    refusals: int = 0
    sent: list[tuple[int, DlqReason, str]] = field(default_factory=list)

    async def send(self, record: ConsumedRecord, reason: DlqReason, error: str) -> tuple[int, int]:
        if self.refusals > 0:
            self.refusals -= 1
            raise KafkaConnectionError("broker down")
        self.sent.append((record.offset, reason, error))
        return record.partition, len(self.sent) - 1


@dataclass
class FakeOffsets:
    """Our ``Offsets``: records commits, rewinds, pauses; can refuse a commit after a rebalance."""

    refuse_commit: bool = False
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    rewinds: list[dict[TopicPartition, int]] = field(default_factory=list)
    pauses: list[dict[TopicPartition, float]] = field(default_factory=list)

    async def commit(self, consumer: Any, offsets: Mapping[TopicPartition, int]) -> None:
        del consumer  # the fake keeps offsets itself
        if self.refuse_commit:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))

    def rewind(self, consumer: Any, positions: Mapping[TopicPartition, int]) -> None:
        del consumer
        self.rewinds.append(dict(positions))

    def pause(self, consumer: Any, delays: Mapping[TopicPartition, float]) -> None:
        del consumer
        self.pauses.append(dict(delays))


@dataclass
class FakeParking:
    """Our ``Parking``: a dict; can refuse the next writes (Kafka down, or ``refusal``)."""

    entries: dict[tuple[str, bytes], ParkEntry] = field(default_factory=dict)
    refusals: int = 0
    writes: int = 0
    refusal: type[Exception] = KafkaConnectionError

    def get(self, topic: str, key: bytes) -> ParkEntry | None:
        return self.entries.get((topic, key))

    async def put(self, topic: str, key: bytes, entry: ParkEntry | None) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise self.refusal("broker down")
        self.writes += 1
        if entry is None:
            self.entries.pop((topic, key), None)
        else:
            self.entries[(topic, key)] = entry


@dataclass
class FakeProducer:
    """The producer interfaces of ``bridge.dead_letters`` and ``activities.outcomes``.

    Keeps every record it was given; ``partitions`` answers ``partitions_for``;
    the next ``failures`` sends fail as a broker timeout would; a record larger
    than ``max_bytes`` (by aiokafka's own estimate) is refused as a topic's
    ``max.message.bytes`` refuses it, and counted in ``refused``.
    """

    partitions: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    max_bytes: int | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions[topic]))

    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: Sequence[tuple[str, bytes | None]] | None = None,
                            ) -> RecordMetadata:
        del timestamp_ms
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers or []))
        if self.max_bytes is not None and size > self.max_bytes:
            self.refused += 1
            raise MessageSizeTooLargeError(f"{size} bytes > {self.max_bytes}")
        self.sent.append({"topic": topic, "value": value, "key": key, "partition": partition,
                          "headers": list(headers or [])})
        landed = 0 if partition is None else partition
        return RecordMetadata(topic, landed, TopicPartition(topic, landed), len(self.sent) - 1,
                              0, 0, 0)
