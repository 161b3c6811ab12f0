"""Parked keys: after a key's record is dead-lettered, its later records wait on the DLQ too.

Kafka keeps order per key; skipping one record of a key and processing the
next would break that order silently (a cancel applied before the order it
cancels was placed, a second decision before the first). So the bridge
*parks* the key of every dead-lettered record: later records of that
(topic, key) go to the DLQ as ``parked`` until an operator releases the key
or replays it (``relayflow dlq``). Other keys keep flowing.

The state is a log-compacted topic (``relayflow.parked-keys``): record key
``<topic>/<key>``, value a JSON ``ParkEntry``, a tombstone on release. Every
bridge of the group follows it, and catches up to its end whenever
partitions are assigned, so the new owner of a partition knows what the old
one parked. A park is written (and read back) before the dead-lettered
record counts as done, so a crash in between only repeats the dead letter.

Replay: the operator tool marks the entry with a replay id and copies the
parked records back to their source topic, each with ``dlq-replay-id``; only
records of that replay pass the parked key. When the last one
(``dlq-replay-last``) is processed, the bridge releases the key, unless a
replayed record failed again (the key is re-parked from that record) or new
records arrived meanwhile (re-parked from the first of them: replay again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from bridge.consumed import ConsumedRecord
from bridge.failures import writing_to
from bridge.metrics import BridgeMetrics
from schemas.dead_letters import DlqReason
from schemas.headers import DLQ_REPLAY_ID, DLQ_REPLAY_LAST
from schemas.topics import PARKED_KEYS

__all__ = [
    "CatchUpOnAssign",
    "KeyParking",
    "ParkEntry",
    "Parking",
    "ParkingLot",
    "ends_replay",
    "parked_key",
    "replay_of",
]

log = logging.getLogger(__name__)


class ParkEntry(BaseModel):
    """Why a key is parked and where its dead letters start.

    Attributes:
        reason: ``dlq-reason`` of the record that parked the key.
        error: Its ``dlq-error``.
        source_partition: Partition of the key in its source topic.
        source_offset: Offset of the record that parked the key.
        dlq_partition: Partition of the dead letters in ``<topic>.dlq``.
        dlq_offset: Offset there of the first dead letter of this parking:
            a replay copies the key's dead letters from here on.
        parked_at: When.
        replay_id: A replay in progress: its records pass the key.
        late_dlq_offset: First record parked while the replay was in progress
            (the replay does not include it).
    """

    reason: str
    error: str = ""
    source_partition: int
    source_offset: int
    dlq_partition: int
    dlq_offset: int
    parked_at: datetime
    replay_id: str | None = None
    late_dlq_offset: int | None = None


def parked_key(topic: str, key: bytes) -> bytes:
    """The state topic's record key of a parked (topic, key); topic names have no '/'."""
    return topic.encode() + b"/" + key


def _split(state_key: bytes) -> tuple[str, bytes]:
    topic, _, key = state_key.partition(b"/")
    return topic.decode(), key


def ends_replay(record: ConsumedRecord) -> bool:
    """True for the last record of a replay: the only success that changes parking."""
    for name, value in record.headers:  # noqa: SIM110 - a loop is faster than any(genexpr), per record
        if name == DLQ_REPLAY_LAST and value is not None:
            return True
    return False


def replay_of(record: ConsumedRecord) -> tuple[str | None, bool]:
    """The replay id a record carries (None if it is not replayed) and whether it is the last."""
    ids = [value for name, value in record.headers if name == DLQ_REPLAY_ID and value is not None]
    replay = ids[-1] if ids else None  # the last one counts, as it always did
    return (replay.decode(errors="replace") if replay else None), ends_replay(record)


class Parking(Protocol):
    """Parked keys as the bridge uses them; ``ParkingLot`` in production."""

    def get(self, topic: str, key: bytes) -> ParkEntry | None:
        """The entry of a parked key, or None when it flows."""
        ...

    async def put(self, topic: str, key: bytes, entry: ParkEntry | None) -> None:
        """Park (or update) a key, or release it (None); returns once durable and applied."""
        ...


class ParkingLot:
    """Follows the parked-keys topic and writes to it.

    Args:
        follower: A consumer, not started, with no group and auto-commit off; the
            lot assigns it every partition of the state topic and owns it.
        producer: A started producer (``acks="all"``, idempotent).
        topic: The compacted state topic.
        metrics: Its ``parked_keys`` gauge follows the entries.
    """

    def __init__(self, follower: AIOKafkaConsumer, producer: AIOKafkaProducer, *,
                 topic: str = PARKED_KEYS, metrics: BridgeMetrics | None = None) -> None:
        self._parked = (metrics or BridgeMetrics()).parked_keys
        self._topic = topic
        self._producer = producer
        self._consumer = follower
        self._entries: dict[tuple[str, bytes], ParkEntry] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._moved = asyncio.Condition()
        self._follower: asyncio.Task[None] | None = None

    @property
    def entries(self) -> Mapping[tuple[str, bytes], ParkEntry]:
        """Every parked (topic, key), as far as this lot has read."""
        return self._entries

    async def start(self) -> None:
        """Read the state from the beginning, then keep following it."""
        await self._consumer.start()
        partitions = await self._wait_for_partitions()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._follower = asyncio.create_task(self._follow(), name="parked-keys")
        await self.catch_up()
        log.info("parked keys: %d", len(self._entries))

    async def stop(self) -> None:
        """Stop following."""
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        await self._consumer.stop()

    async def _wait_for_partitions(self) -> list[TopicPartition]:
        try:
            found = await self._producer.partitions_for(self._topic)
        except KafkaError as error:
            raise RuntimeError(f"topic {self._topic} is missing; create it (compacted) first"
                               ) from error
        return [TopicPartition(self._topic, p) for p in sorted(found)]

    async def _follow(self) -> None:
        while True:
            fetched = await self._consumer.getmany(timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    self._apply(record.key, record.value)
            positions = {tp: await self._consumer.position(tp)
                         for tp in self._consumer.assignment()}
            async with self._moved:
                self._positions = positions
                self._moved.notify_all()

    def _apply(self, state_key: bytes | None, value: bytes | None) -> None:
        if not state_key:
            return
        topic, key = _split(state_key)
        if value is None:
            if self._entries.pop((topic, key), None) is not None:
                self._parked.labels(topic).dec()
        else:
            if (topic, key) not in self._entries:
                self._parked.labels(topic).inc()
            self._entries[(topic, key)] = ParkEntry.model_validate_json(value)

    async def _reached(self, targets: Mapping[TopicPartition, int]) -> None:
        async with self._moved:
            await self._moved.wait_for(
                lambda: all(self._positions.get(tp, -1) >= end for tp, end in targets.items()))

    async def catch_up(self) -> None:
        """Return once everything written to the state topic before this call is applied."""
        ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
        await self._reached(ends)

    def get(self, topic: str, key: bytes) -> ParkEntry | None:
        """The entry of a parked key, or None when it flows."""
        return self._entries.get((topic, key))

    async def put(self, topic: str, key: bytes, entry: ParkEntry | None) -> None:
        """Park (or update) a key, or release it (None); returns once durable and applied.

        Waiting until the follower has read the write back keeps this lot's view
        exactly the log's order, whoever wrote.
        """
        value = None if entry is None else entry.model_dump_json().encode()
        with writing_to(self._topic):
            sent = await self._producer.send_and_wait(self._topic, value,
                                                      key=parked_key(topic, key))
        await self._reached({TopicPartition(self._topic, sent.partition): sent.offset + 1})


class CatchUpOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: a bridge that gains partitions first reads every park up to now.

    Its ``lot`` is set once the parking lot has started (the subscriber is built first).
    """

    def __init__(self) -> None:
        self.lot: ParkingLot | None = None

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Nothing to do: uncommitted records are redelivered to the new owner."""
        del revoked

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Catch up before any record of the new partitions is processed."""
        if self.lot is not None and assigned:
            await self.lot.catch_up()


class KeyParking:
    """The bridge's parking rules on top of a ``Parking`` store.

    Args:
        parking: Where parked keys are kept.
    """

    def __init__(self, parking: Parking) -> None:
        self._parking = parking

    def blocking(self, record: ConsumedRecord) -> ParkEntry | None:
        """The entry that parks this record's key, or None when the record may go ahead."""
        if not record.key:
            return None  # no (or an empty) key: no order to protect
        entry = self._parking.get(record.topic, record.key)
        if entry is None:
            return None
        replay, _ = replay_of(record)
        return None if replay is not None and replay == entry.replay_id else entry

    async def dead_lettered(self, record: ConsumedRecord, reason: DlqReason, error: str,
                            dlq: tuple[int, int]) -> None:
        """Park the key of a record just written to the DLQ at ``dlq`` (partition, offset)."""
        if not record.key:
            return
        entry = self._parking.get(record.topic, record.key)
        if reason is DlqReason.PARKED:
            # Parked while a replay is in progress: remember the first such record,
            # so the key is re-parked from it instead of released after the replay.
            if entry is not None and entry.replay_id and entry.late_dlq_offset is None:
                await self._parking.put(record.topic, record.key,
                                        entry.model_copy(update={"late_dlq_offset": dlq[1]}))
            return
        # A first failure, or a replayed record that failed again: (re)park from it.
        await self._parking.put(record.topic, record.key, ParkEntry(
            reason=reason, error=error, source_partition=record.partition,
            source_offset=record.offset, dlq_partition=dlq[0], dlq_offset=dlq[1],
            parked_at=datetime.now(UTC)))
        log.warning("parked key %s of %s: later records of it go to the DLQ until "
                    "released or replayed (relayflow dlq)",
                    (record.key or b"").decode(errors="backslashreplace"), record.topic)

    async def processed(self, record: ConsumedRecord) -> None:
        """After a record succeeded: the last record of a replay releases its key."""
        replay, last = replay_of(record)
        if not last or not record.key:
            return
        entry = self._parking.get(record.topic, record.key)
        if entry is None or entry.replay_id != replay:
            return
        if entry.late_dlq_offset is None:
            await self._parking.put(record.topic, record.key, None)
            log.warning("released key %r of %s after replay %s", record.key, record.topic, replay)
            return
        await self._parking.put(record.topic, record.key, entry.model_copy(update={
            "reason": DlqReason.PARKED, "error": f"arrived while replay {replay} was in progress",
            "dlq_offset": entry.late_dlq_offset, "replay_id": None, "late_dlq_offset": None,
            "parked_at": datetime.now(UTC)}))
