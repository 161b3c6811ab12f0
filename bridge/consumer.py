"""Processing what one poll fetched: concurrent across keys, in order within a key, then commit.

Why explicit per-partition commits (and never FastStream's ``ack()``):
FastStream's manual ``ack()`` on Kafka calls aiokafka's ``commit()`` without
arguments, which commits the consumer's position on *every* partition it
holds. That is only safe when everything fetched is finished, so one slow or
stuck record would hold back the commit of a whole fetch, and a fetch cut
short could commit nothing at all. The bridge instead subscribes with
``AckPolicy.MANUAL`` (auto-commit off, FastStream never commits), processes
the fetch, and commits for each partition exactly the offset below which
every record is done with Temporal or safely on the dead-letter topic
(``bridge.offsets.plan_offsets``). Partitions with unfinished records are
rewound to the first of them so they are fetched again, never skipped.

Scheduling: records are grouped by (partition, key). Groups run concurrently
(at most ``concurrency`` at once), records of one group strictly in order, so a
slow Temporal round trip for one key never holds up the others.

Failures: permanent ones dead-letter the record and the partition moves on.
One exception: a SIGNAL for a workflow that does not exist yet is *held*
for up to ``signal_hold`` seconds from the record's first attempt before it
is dead-lettered as ``target-not-found``: the event that starts the workflow
may still be on its way. Holding never blocks the consumer: the record is left
unfinished, its partition is rewound to it and paused for a backoff delay, and
every other partition keeps flowing meanwhile (its start event among them).
Transient ones (Temporal or the schema registry unreachable, the DLQ write
failing) are retried with capped exponential backoff and jitter inside the
fetch; FastStream does not fetch meanwhile, so consumption pauses. A fetch
has a time budget well under ``max_poll_interval_ms``: when it is spent the
fetch stops starting records, commits what finished and rewinds the rest, and
the consumer polls again, so a long outage never gets it silently dropped from
its group. Health is logged once per change (unavailable / available again),
not once per retry. A producer error about the record itself
(``bridge.failures.REFUSED_RECORD``: too large for the producer or the topic)
is never retried: the dead-letter sink sends a bounded copy instead
(``bridge.dead_letters``).

Rebalances and crashes: anything not committed is redelivered, to this
bridge or to another member of the group. Redelivery is harmless: workflow
ids come from business keys with explicit id policies, signals carry event
ids, and a cancel for an already cancelled workflow is a success.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from temporalio.common import RawValue

from bridge.commands import Commands, Delivery, PayloadSizes
from bridge.consumed import ConsumedRecord, where
from bridge.dead_letters import DeadLetterSink
from bridge.decoding import Decoder, Routed
from bridge.failures import REFUSED_RECORD, PermanentFailure, TransientFailure, refused
from bridge.metrics import BridgeMetrics
from bridge.observing import RecordObserver, RecordScope
from bridge.offsets import Offsets, plan_offsets
from bridge.parking import KeyParking, Parking, ends_replay
from bridge.retry import Backoff, Deadline, Health
from bridge.routes import UPDATING, Action, Route
from bridge.updates import UpdateCommands
from schemas.dead_letters import DlqReason
from schemas.envelope import Inbound, InboundBatch

__all__ = ["FetchConsumer", "FetchProcessor", "FetchReport"]

log = logging.getLogger(__name__)
T = TypeVar("T")


_GAVE_UP: Final = object()
_KAFKA_TRANSIENT: Final = (KafkaError, OSError, TimeoutError)


_FALL_BACK: Final = object()
_BATCH_BYTES: Final = 256 * 1024
"""Most record-value bytes one batched signal carries: well under Temporal's payload
warning (512 KiB) and limit (2 MiB), whatever the route's count allows."""


@dataclass(slots=True)
class _Batch:
    """Consecutive records of one key that go to one workflow as one signal."""

    route: Route
    workflow_id: str
    indexes: list[int] = field(default_factory=list)
    routed: list[Routed] = field(default_factory=list)
    size: int = 0

    def takes(self, record: ConsumedRecord, routed: Routed) -> bool:
        """Whether the record may join: same route and workflow, room left."""
        assert self.route.batch is not None
        return (routed.route is self.route and len(self.indexes) < self.route.batch
                and self.size + len(record.value or b"") <= _BATCH_BYTES
                and self.route.id_for(routed.inbound.event) == self.workflow_id)

    def add(self, index: int, record: ConsumedRecord, routed: Routed) -> None:
        """Append the record (in offset order)."""
        self.indexes.append(index)
        self.routed.append(routed)
        self.size += len(record.value or b"")


@dataclass(frozen=True, slots=True)
class _Held:
    """A record whose target does not exist yet: fetch it again after ``wait`` seconds."""

    wait: float


@dataclass(slots=True)
class _Progress:
    """One fetch as it is processed: each record's result, and partitions to pause."""

    records: Sequence[ConsumedRecord]
    deadline: Deadline
    results: list[str | None] = field(init=False)
    retry_after: dict[TopicPartition, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.records)

    def settle(self, index: int, result: str | _Held | None) -> bool:
        """Note a record's result; False when its key must stop here (held or given up)."""
        if isinstance(result, _Held):
            tp = TopicPartition(self.records[index].topic, self.records[index].partition)
            self.retry_after[tp] = min(self.retry_after.get(tp, result.wait), result.wait)
            return False
        if result is None:
            return False  # gave up on this key: later records must wait their turn
        self.results[index] = result
        return True


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What happened to each record of a fetch.

    Attributes:
        records: The records, as fetched.
        results: Per record: Temporal's answer (``started``, ``signalled``,
            ...), ``dlq:<reason>``, or None when it did not finish (time
            budget spent, or held) and must be fetched again.
        retry_after: Partitions with a held record: seconds to wait before
            fetching them again.
    """

    records: Sequence[ConsumedRecord]
    results: Sequence[str | None]
    retry_after: Mapping[TopicPartition, float] = field(default_factory=dict)

    @property
    def finished(self) -> list[bool]:
        """Per record: done with Temporal or on the dead-letter topic."""
        return [result is not None for result in self.results]

    @property
    def pending(self) -> int:
        """How many records did not finish."""
        return self.results.count(None)


class FetchProcessor:
    """Decides and executes what each record of a fetch means.

    Args:
        decoder: Validates, decodes and routes records.
        commands: Executes routed events against Temporal.
        dead_letters: Takes records that can never be processed.
        concurrency: Key groups processed at once (across every fetch in flight).
        backoff: Retry schedule for transient failures and held signals.
        signal_hold: Seconds a SIGNAL for a workflow that does not exist yet is
            retried before it is dead-lettered.
        parking: Parked keys (``bridge.parking``); None turns parking off.
        observer: Gives each record its log context and, tracing on, its span.
        metrics: Counts commands, dead letters, retries and outages.
        updates: Runs request routes (``UPDATE``, ``UPDATE_WITH_START``) and
            publishes their replies; None dead-letters requests.
        sizes: Refuses, before the Temporal call, an event whose encoded argument
            is over Temporal's limit (``oversize``); None leaves it to the server.
    """

    def __init__(self, decoder: Decoder, commands: Commands, dead_letters: DeadLetterSink, *,
                 concurrency: int = 64, backoff: Backoff | None = None,
                 signal_hold: float = 0.0, parking: Parking | None = None,
                 observer: RecordObserver | None = None,
                 metrics: BridgeMetrics | None = None,
                 updates: UpdateCommands | None = None,
                 sizes: PayloadSizes | None = None) -> None:
        self._decoder = decoder
        self._sizes = sizes
        self._updates = updates
        self._commands = commands
        self._dead_letters = dead_letters
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff = backoff or Backoff()
        self._signal_hold = signal_hold
        self._parking = None if parking is None else KeyParking(parking)
        self._observer = observer or RecordObserver()
        # (topic, partition, offset) -> (first attempt, attempts): survives refetches.
        self._held: dict[tuple[str, int, int], tuple[float, int]] = {}
        self.metrics = metrics = metrics or BridgeMetrics()
        self.temporal = Health("Temporal", "temporal", metrics)
        self.dlq = Health("dead-letter topic", "kafka", metrics)
        self.registry = Health("schema registry", "schema-registry", metrics)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Shutdown begins: start no record and wait for no retry; in-flight calls finish."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self._stopping.is_set()

    @property
    def degraded(self) -> bool:
        """True while a dependency is failing transiently."""
        return self.temporal.degraded or self.dlq.degraded or self.registry.degraded

    async def process(self, records: Sequence[ConsumedRecord], *,
                      budget: float | None = None) -> FetchReport:
        """Process a fetch: every record ends done, dead-lettered, or (budget spent) pending.

        Args:
            records: The records, as fetched.
            budget: Seconds after which no record is started and no retry is
                waited for; None waits as long as it takes.

        Raises:
            asyncio.CancelledError: On shutdown; nothing of the fetch counts as done.
        """
        progress = _Progress(records, Deadline(budget, self._stopping))
        groups: dict[tuple[str, int, bytes | None], list[int]] = {}
        for index, record in enumerate(records):
            groups.setdefault((record.topic, record.partition, record.key), []).append(index)
        # The whole fetch in one pass before any Temporal call: decoding back to back
        # keeps the codec's and the validators' code and data hot in the CPU's caches;
        # interleaved with the calls each record cost about twice the CPU (BENCHMARKS.md).
        # A record that needs the registry first is decoded in its key's turn, with
        # that key's retries, so a slow or failing registry never holds other keys.
        decoded = [self._decode_ahead(record) for record in records]
        # A few workers take the key groups in turn, rather than a task per key queued
        # on the slots: a fetch of distinct keys made a task, a slot wait and a wake-up
        # per record (BENCHMARKS.md). Each worker holds one slot while it works.
        waiting = deque(groups.values())
        async with asyncio.TaskGroup() as tasks:
            for _ in range(min(self._concurrency, len(waiting))):
                tasks.create_task(self._work(progress, waiting, decoded))
        return FetchReport(records, progress.results, progress.retry_after)

    async def _work(self, progress: _Progress, waiting: deque[list[int]],
                    decoded: Sequence[Routed | None]) -> None:
        """Process key groups, one after another, until none is left."""
        async with self._slots:
            while waiting:
                await self._run_key(progress, waiting.popleft(), decoded)

    async def _run_key(self, progress: _Progress, indexes: list[int],
                       decoded: Sequence[Routed | None]) -> None:
        """One key's records of a fetch, in order; consecutive batched ones as one signal."""
        records, deadline = progress.records, progress.deadline
        batch: _Batch | None = None
        for index in indexes:
            if deadline.expired():
                return
            record = records[index]
            routed = self._usable(record, decoded[index])
            if routed is not None and batch is not None and batch.takes(record, routed):
                batch.add(index, record, routed)
                continue
            if batch is not None and not await self._flush(progress, batch):
                return
            batch = None
            if routed is not None and routed.route.batch is not None:
                batch = _Batch(routed.route, routed.route.id_for(routed.inbound.event))
                batch.add(index, record, routed)
                continue
            if not progress.settle(index, await self._handle(record, deadline, routed)):
                return
        if batch is not None and not deadline.expired():
            await self._flush(progress, batch)

    async def _flush(self, progress: _Progress, batch: _Batch) -> bool:
        """Send a batch; False when its key must stop (held or given up)."""
        records, deadline = progress.records, progress.deadline
        sent = await self._handle_batch(records, batch, deadline)
        if sent is _FALL_BACK:
            # Permanent trouble with the batch: each record alone, exactly as
            # unbatched records go (dead letters and parking record by record).
            for index, routed in zip(batch.indexes, batch.routed, strict=True):
                if deadline.expired() or not progress.settle(
                        index, await self._handle(records[index], deadline, routed)):
                    return False
            return True
        if not isinstance(sent, list):
            return progress.settle(batch.indexes[0], cast("_Held | None", sent))
        for index in batch.indexes:
            progress.results[index] = sent[0]
        return True

    def _decode_ahead(self, record: ConsumedRecord) -> Routed | None:
        """The record decoded, or None when the full path must decode it (and handle the failure).

        None too when its writer schema must be fetched first: the full path does
        that in the key's own task. A parked key or the end of a replay are decided
        when the record's turn comes (``_usable``): an earlier record of its key may
        park it meanwhile.
        """
        try:
            return self._decoder.decode_now(record)
        except Exception:  # noqa: BLE001 - the full path repeats it and handles the failure
            return None

    def _usable(self, record: ConsumedRecord, routed: Routed | None) -> Routed | None:
        """The record's decoding, unless it must take the full path record by record.

        Anything unusual (a decoding problem, a parked key, the end of a replay)
        goes through ``_handle`` record by record, whose rules apply unchanged.
        """
        if self._parking is not None and (
                self._parking.blocking(record) is not None or ends_replay(record)):
            return None
        return routed

    async def _handle_batch(self, records: Sequence[ConsumedRecord], batch: _Batch,
                            deadline: Deadline) -> list[str] | _Held | object | None:
        """Send a batch as one signal: ``[answer]``, held, None (gave up) or ``_FALL_BACK``."""
        first = records[batch.indexes[0]]
        with self._observer.scope(first) as scope:
            scope.routed(batch.route, batch.workflow_id, batch.routed[0].inbound.meta.event_id)
            event_type = type(batch.routed[0].inbound.event)
            envelope: Any = InboundBatch[event_type]  # type: ignore[valid-type]
            delivery = envelope(events=[routed.inbound for routed in batch.routed])
            try:
                outcome = await self._execute(first, batch.route, delivery, deadline,
                                              count=len(batch.indexes))
            except Exception:  # noqa: BLE001 - each record's own path handles and reports it
                return _FALL_BACK
            if isinstance(outcome, _Held):
                return outcome
            if outcome is _GAVE_UP:
                return None
            scope.done(str(outcome))
        for index in batch.indexes:
            self._held.pop(_coordinates(records[index]), None)
        return [str(outcome)]

    async def _handle(self, record: ConsumedRecord, deadline: Deadline,
                      routed: Routed | None = None) -> str | _Held | None:
        """Temporal's answer, ``dlq:<reason>``, held, or None when left pending (budget spent).

        ``routed`` is the record already decoded (by ``_decode_ahead``), if it was.
        """
        with self._observer.scope(record) as scope:
            return await self._handle_in(record, scope, deadline, routed)

    async def _handle_in(self, record: ConsumedRecord, scope: RecordScope,
                         deadline: Deadline, routed: Routed | None) -> str | _Held | None:
        parked = None if self._parking is None else self._parking.blocking(record)
        if parked is not None:
            return await self._dead_letter(record, scope, PermanentFailure(
                DlqReason.PARKED, f"key parked since {record.topic}[{parked.source_partition}]"
                        f"@{parked.source_offset} ({parked.reason})"), deadline)
        try:
            outcome = await self._decode_and_execute(record, scope, deadline, routed)
        except PermanentFailure as failure:
            result = await self._dead_letter(record, scope, failure, deadline)
        except Exception as error:
            # No rule covers it (a bug, or a failure nobody foresaw): keep the record
            # on the DLQ with the evidence rather than crash-loop on it.
            log.exception("unexpected error at %s; dead-lettering it", where(record))
            unexpected = PermanentFailure(DlqReason.INTERNAL_ERROR,
                                          f"{type(error).__name__}: {error}")
            result = await self._dead_letter(record, scope, unexpected, deadline)
        else:
            if isinstance(outcome, _Held):
                return outcome
            if outcome is _GAVE_UP:
                return None
            if self._parking is not None and ends_replay(record):  # not on the hot path
                parking = self._parking
                if await self._retrying(self.dlq, record, deadline, _KAFKA_TRANSIENT,
                                        lambda: parking.processed(record)) is _GAVE_UP:
                    return None
            result = str(outcome)
            scope.done(result)
        if result is not None:
            self._held.pop(_coordinates(record), None)
        return result

    async def _decode_and_execute(self, record: ConsumedRecord, scope: RecordScope,
                                  deadline: Deadline, routed: Routed | None) -> object:
        """Temporal's answer, ``_Held``, or ``_GAVE_UP`` (a dependency stayed away)."""
        if routed is None:
            decoded = await self._retrying(self.registry, record, deadline, (TransientFailure,),
                                           lambda: self._decoder.decode(record))
            if decoded is _GAVE_UP:
                return _GAVE_UP
            routed = cast("Routed", decoded)
        route = routed.route
        scope.routed(route, route.id_for(routed.inbound.event), routed.inbound.meta.event_id)
        delivery: Delivery = routed.inbound
        if route.batch is not None:  # a batched route's signal always carries a batch
            envelope: Any = InboundBatch[type(routed.inbound.event)]  # type: ignore[misc]
            delivery = envelope(events=[routed.inbound])
        return await self._execute(record, route, delivery, deadline)

    async def _execute(self, record: ConsumedRecord, route: Route, delivery: Delivery,
                       deadline: Deadline, *, count: int = 1) -> object:
        """Send one command (``count`` records' worth) with retries of transient failures."""
        # Converted once: the measured argument is the one sent.
        argument = None if self._sizes is None else await self._sizes.check(
            delivery, len(record.value or b""))
        try:
            outcome = await self._retrying(
                self.temporal, record, deadline, (TransientFailure,),
                lambda: self._command(record, route, delivery, argument))
        except PermanentFailure as failure:
            wait = self._hold(record, route, failure)
            if wait is None:
                raise
            return _Held(wait)  # its clock keeps running across refetches
        if outcome is not _GAVE_UP:
            log.debug("%s %s: %s", route.action, route.workflow, outcome)
            self.metrics.command_done(record.topic, route.event_type.__name__,
                                      route.action.value, str(outcome), count)
        return outcome

    def _command(self, record: ConsumedRecord, route: Route, delivery: Delivery,
                 argument: RawValue | None) -> Awaitable[str]:
        if route.action in UPDATING:
            if self._updates is None:
                raise PermanentFailure(DlqReason.INTERNAL_ERROR, "this bridge runs no requests")
            # Update routes never batch (``Route.problems``): one record, one update.
            assert isinstance(delivery, Inbound)
            return self._updates.execute(route, delivery, record)
        return self._commands.execute(route, delivery, argument)

    def _hold(self, record: ConsumedRecord, route: Route,
              failure: PermanentFailure) -> float | None:
        """Seconds to wait before signalling again, or None to dead-letter now."""
        if route.action is not Action.SIGNAL or failure.reason is not DlqReason.TARGET_NOT_FOUND:
            return None
        now = time.monotonic()
        first, attempts = self._held.get(_coordinates(record), (now, 0))
        left = first + self._signal_hold - now
        if left <= 0:
            return None
        if not attempts:
            log.info("holding %s for up to %.0fs: %s", where(record), self._signal_hold, failure)
            # Forget holds of records this consumer lost in a rebalance (long expired).
            expired = now - 2 * self._signal_hold
            for stale in [key for key, (at, _) in self._held.items() if at < expired]:
                del self._held[stale]
        self._held[_coordinates(record)] = (first, attempts + 1)
        return min(left, self._backoff.delay(attempts + 1))

    async def _dead_letter(self, record: ConsumedRecord, scope: RecordScope,
                           failure: PermanentFailure, deadline: Deadline) -> str | None:
        """Write the record to the DLQ, then park its key; None if the fetch must stop first."""
        where_to = await self._retrying(
            self.dlq, record, deadline, _KAFKA_TRANSIENT,
            lambda: self._dead_letters.send(record, failure.reason, str(failure)))
        if where_to is _GAVE_UP:
            return None
        scope.dead_lettered(failure.reason, str(failure))
        if self._parking is not None:
            parking, landed = self._parking, cast("tuple[int, int]", where_to)
            try:
                parked = await self._retrying(
                    self.dlq, record, deadline, _KAFKA_TRANSIENT,
                    lambda: parking.dead_lettered(record, failure.reason, str(failure), landed))
            except REFUSED_RECORD:
                # The record is safe on the DLQ; a park entry the broker will never
                # take (a key of megabytes) must not hold the partition forever.
                log.exception("key of %s not parked: the parked-keys topic refuses it",
                              where(record))
                parked = None
            if parked is _GAVE_UP:
                return None  # redelivered: a second dead letter, then the park
        self.metrics.dead_letters.labels(record.topic, failure.reason).inc()
        return f"dlq:{failure.reason}"

    async def _retrying(self, health: Health, record: ConsumedRecord, deadline: Deadline,
                        transient: tuple[type[BaseException], ...],
                        call: Callable[[], Awaitable[T]]) -> T | object:
        while True:
            try:
                result = await call()
            except transient as error:
                if refused(error):
                    raise  # the same bytes again cannot succeed: retrying would stall the partition
                # Consecutive failures across all keys drive the delay, so an
                # outage backs every group off together instead of each starting over.
                # A success of another key's call ends the wait: the outage is over.
                delay = self._backoff.delay(health.failed(record, error))
                if not await deadline.sleep(delay, health.recovered):
                    return _GAVE_UP
                continue
            health.succeeded()
            return result


def _coordinates(record: ConsumedRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


class FetchConsumer:
    """Processes the records of one fetch, then commits and rewinds per partition.

    Args:
        processor: Processes the records.
        offsets: Commits and rewinds the consumer's offsets.
        budget: Seconds one fetch may take before it stops starting records
            (keep it well under the consumer's ``max_poll_interval_ms``).
    """

    def __init__(self, processor: FetchProcessor, offsets: Offsets, *, budget: float,
                 backoff: Backoff | None = None) -> None:
        self.processor = processor
        self._offsets = offsets
        self._budget = budget
        self._backoff = backoff or Backoff()
        self._failed_batches = 0
        self.consumer: Any = None
        """The consumer of the latest fetch (``AIOKafkaConsumer``), for lag and readiness."""

    def stop(self) -> None:
        """Shutdown begins: the fetch in flight finishes what it started and commits that."""
        self.processor.stop()

    async def consume(self, records: Sequence[ConsumedRecord], consumer: Any) -> FetchReport:
        """Process one fetch of ``consumer`` and commit what finished.

        Args:
            records: The records, as fetched.
            consumer: The consumer that fetched it (``AIOKafkaConsumer``).

        Returns:
            What happened to each record.
        """
        self.consumer = consumer
        self.processor.metrics.consumed(record.topic for record in records)
        try:
            report = await self.processor.process(records, budget=self._budget)
        except BaseException as error:
            # Shutdown or a bug: nothing of this fetch is committed, all of it is fetched again.
            with suppress(Exception):
                self._offsets.rewind(consumer, plan_offsets(records, [False] * len(records)).rewind)
            if isinstance(error, Exception):
                # Pause before the refetch, so a bug that fails every attempt cannot spin.
                self._failed_batches += 1
                await asyncio.sleep(self._backoff.delay(self._failed_batches))
            raise
        self._failed_batches = 0
        # A failpoint: a fault test may kill the process here (the repository\'s failpoints).
        sys.audit("relayflow.failpoint", "bridge.before-commit")
        plan = plan_offsets(records, report.finished)
        self._offsets.rewind(consumer, plan.rewind)
        if report.retry_after:
            self._offsets.pause(consumer, report.retry_after)
        if report.pending and self.processor.stopping:
            log.info("shutting down: %d of %d records of the fetch in flight finished; "
                     "committing those, the rest is redelivered", len(records) - report.pending,
                     len(records))
        elif report.pending:
            log.log(logging.DEBUG if self.processor.degraded else logging.INFO,
                    "fetch budget of %.0fs spent: %d of %d records finished; "
                    "committing those, fetching the rest again",
                    self._budget, len(records) - report.pending, len(records))
        try:
            await self._offsets.commit(consumer, plan.commit)
        except CommitFailedError:
            # The group rebalanced mid-fetch: the partitions' owners redeliver from
            # their last commit, and duplicates are harmless.
            log.warning("commit refused after a rebalance; %d records will be redelivered",
                        len(records))
        return report
