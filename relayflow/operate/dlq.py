"""Operating the dead-letter topics: list, show, replay and release parked keys.

``relayflow dlq`` is built on these functions. A dead letter is the original
record, untouched, plus ``dlq-*`` headers (``bridge.dead_letters``); a parked key is an
entry of the compacted ``relayflow.parked-keys`` topic (``bridge.parking``).

Replay copies the dead letters of one parked key, from the one that parked
it on, back to their source topic and partition, in order, with the
``dlq-*`` headers removed and ``dlq-replay-id`` / ``dlq-replay-of`` (and
``dlq-replay-last`` on the last) added; the bridge lets exactly those
records pass the parked key and releases it after the last one. Replay is
idempotent: a key with a replay in progress, or no longer parked, is left
alone, and replayed events keep their event ids, so workflows and
activities give a record replayed twice one effect.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from bridge.parking import ParkEntry, ParkingLot
from relayflow.application import load_application
from relayflow.config.settings import Settings
from relayflow.kafka.reads import StoredRecord, partitions_of, read_records
from relayflow.operate.deadlines import kafka_answers
from relayflow.operate.records import key_text
from relayflow.runtime.clients import kafka_clients
from schemas.dead_letters import DlqReason
from schemas.headers import DLQ_REPLAY_ID, DLQ_REPLAY_LAST, DLQ_REPLAY_OF
from schemas.topics import dlq_topic

__all__ = [
    "DeadLetter",
    "DlqListing",
    "ReplayResult",
    "input_topics",
    "kafka_answering",
    "list_dead_letters",
    "parked_keys",
    "read_dead_letters",
    "release",
    "replay",
]

_DLQ_PREFIX = "dlq-"


DeadLetter = StoredRecord
"""A record of a dead-letter topic: the original record plus its ``dlq-*`` headers."""


def input_topics(settings: Settings) -> tuple[str, ...]:
    """The input topics of the configured application (``settings.app``)."""
    return load_application(settings.app).input_topics


async def read_dead_letters(settings: Settings, topics: Iterable[str] | None = None, *,
                            partition: int | None = None, from_offset: int = 0,
                            ) -> list[DeadLetter]:
    """Every dead letter now on the DLQs of ``topics``.

    Args:
        settings: Where Kafka is.
        topics: Source topics whose DLQs to read (default: the configured
            application's input topics).
        partition: Only this partition (of each DLQ).
        from_offset: Start here (with ``partition``).

    Returns:
        Dead letters ordered by DLQ topic, partition and offset.
    """
    sources = list(topics or ()) or input_topics(settings)
    return await read_records(kafka_clients(settings), [dlq_topic(s) for s in sources],
                              partition=partition, from_offset=from_offset)


@asynccontextmanager
async def _lot(settings: Settings) -> AsyncIterator[tuple[ParkingLot, AIOKafkaProducer]]:
    kafka = kafka_clients(settings)
    async with kafka.started_producer() as producer:
        lot = ParkingLot(kafka.consumer(enable_auto_commit=False), producer)
        try:
            await lot.start()
            yield lot, producer
        finally:
            await lot.stop()


async def parked_keys(settings: Settings, topics: Iterable[str] | None = None,
                      ) -> dict[tuple[str, bytes], ParkEntry]:
    """Every parked (source topic, key) of ``topics``, with its entry.

    Args:
        settings: Where Kafka is.
        topics: Source topics (default: the configured application's input
            topics; the parked-keys topic may hold other applications' keys too).
    """
    sources = set(topics or ()) or set(input_topics(settings))
    async with _lot(settings) as (lot, _):
        return {(topic, key): entry for (topic, key), entry in lot.entries.items()
                if topic in sources}


async def kafka_answering(settings: Settings, topic: str, seconds: float) -> None:
    """Return once Kafka answers for ``topic``; ``Unanswered`` after ``seconds`` of silence.

    Asked before work that must not stop half-way (a replay, a release), which
    then runs unbounded.
    """
    async with kafka_answers(settings, seconds):
        await partitions_of(kafka_clients(settings), [topic])


async def release(settings: Settings, topic: str, key: bytes) -> ParkEntry | None:
    """Release a parked key without replaying: its dead letters stay on the DLQ.

    Returns:
        The entry that was released, or None when the key was not parked.
    """
    async with _lot(settings) as (lot, _):
        entry = lot.get(topic, key)
        if entry is not None:
            await lot.put(topic, key, None)
        return entry


@dataclass(frozen=True, slots=True)
class DlqListing:
    """What ``relayflow dlq list`` lists: the dead letters and parked keys of some source topics.

    Attributes:
        sources: The source topics (an application's input topics).
        letters: Every dead letter on their DLQs, ordered by DLQ topic, partition and offset.
        parked: Their parked keys, by (source topic, key).
    """

    sources: tuple[str, ...]
    letters: tuple[DeadLetter, ...]
    parked: dict[tuple[str, bytes], ParkEntry]

    @property
    def dlq_topics(self) -> tuple[str, ...]:
        """The dead-letter topics read."""
        return tuple(dlq_topic(source) for source in self.sources)

    def parked_json(self) -> list[dict[str, object]]:
        """The parked keys as JSON objects (key as text, ``key_text``), sorted."""
        return [{"topic": source, "key": key_text(key), **entry.model_dump(mode="json")}
                for (source, key), entry in sorted(self.parked.items())]


async def list_dead_letters(settings: Settings,
                            topics: Iterable[str] | None = None) -> DlqListing:
    """The dead letters and parked keys of ``topics``.

    Args:
        settings: Where Kafka is.
        topics: Source topics (default: the configured application's input topics).
    """
    sources = tuple(topics or ()) or input_topics(settings)
    return DlqListing(sources, tuple(await read_dead_letters(settings, sources)),
                      await parked_keys(settings, sources))


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What ``replay`` did.

    Attributes:
        status: ``replaying`` (records copied; the bridge releases the key after
            the last), ``released`` (nothing to copy, key released),
            ``not-parked`` or ``in-progress`` (nothing done).
        replay_id: The replay's id (``replaying`` / ``in-progress``).
        copied: The dead letters copied back, in order.
    """

    status: str
    replay_id: str | None = None
    copied: tuple[DeadLetter, ...] = ()


async def replay(settings: Settings, topic: str, key: bytes, *,
                 parked_only: bool = False) -> ReplayResult:
    """Copy a parked key's dead letters back to ``topic`` so the bridge processes them again.

    Args:
        settings: Where Kafka is.
        topic: The source topic of the parked key.
        key: The key.
        parked_only: Skip the record that parked the key (it is bad for good) and
            replay only those dead-lettered after it as ``parked``.

    Returns:
        What was done.
    """
    async with _lot(settings) as (lot, producer):
        entry = lot.get(topic, key)
        if entry is None:
            return ReplayResult("not-parked")
        if entry.replay_id is not None:
            return ReplayResult("in-progress", entry.replay_id)
        letters = [
            d for d in await read_dead_letters(settings, [topic], partition=entry.dlq_partition,
                                               from_offset=entry.dlq_offset)
            if d.key == key and d.source[0] == topic
            and (d.reason == DlqReason.PARKED or not parked_only)
        ]
        if not letters:
            await lot.put(topic, key, None)
            return ReplayResult("released")
        replay_id = uuid.uuid4().hex
        # Mark first: from here only this replay's records pass the key.
        await lot.put(topic, key, entry.model_copy(update={"replay_id": replay_id}))
        for index, letter in enumerate(letters):
            headers = [(n, v) for n, v in letter.headers if not n.startswith(_DLQ_PREFIX)]
            headers += [(DLQ_REPLAY_ID, replay_id.encode()),
                        (DLQ_REPLAY_OF, letter.coordinates.encode())]
            if index == len(letters) - 1:
                headers.append((DLQ_REPLAY_LAST, b"1"))
            await producer.send_and_wait(topic, letter.value, key=letter.key,
                                         partition=letter.source[1], headers=headers)
        return ReplayResult("replaying", replay_id, tuple(letters))
