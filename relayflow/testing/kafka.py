"""An application's topics as a test drives them: send events, wait for outcomes and dead letters.

``AppKafka`` (the ``relayflow_kafka`` fixture) encodes events exactly as the
contract says (``schemas.framing.to_record`` with the application's codec),
sends them to the topic their route reads, and watches every output topic
and dead-letter topic of the application from the moment it was opened.
``AppTopics`` is what it shares with the in-memory ``relayflow.testing.memory.AppMemory``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from aiokafka import TopicPartition

from relayflow.kafka.reads import StoredRecord, partitions_of, resolved_if_found, stored
from relayflow.kafka.sends import Delivered, input_topic_for, send_event
from relayflow.runtime.bootstrap import event_codec
from relayflow.runtime.clients import blob_store, kafka_clients
from schemas.headers import CLAIM_CHECK_KEY
from schemas.topics import DLQ_SUFFIX, dlq_topic

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from activities.claim_check import BlobStore
    from activities.outcomes import Producer
    from relayflow.application import Application
    from relayflow.config.settings import Settings
    from schemas.formats import EventCodec
    from schemas.models import Event

__all__ = ["AppKafka", "AppTopics", "Delivered", "app_kafka", "input_topic_for", "watched_topics"]

EventT = TypeVar("EventT", bound="Event")

_LISTED = 30
"""Records listed in a timeout message (the most recent ones)."""


class AppTopics:
    """An application's topics as a test drives them: what ``AppKafka`` and ``AppMemory`` share.

    Sending encodes events as contract records with the application's codec;
    waiting looks at the records that arrived on the watched topics (outputs
    and dead-letter topics) since it was opened. Subclasses say how records
    arrive (``_poll``) and what happens after a send (``_sent``).

    Args:
        app: The application under test.
        codec: The application's codec (with the schema registry, if any).
        producer: Sends records (aiokafka's ``send_and_wait`` signature).
        watched: The watched topics.
    """

    def __init__(self, app: Application, codec: EventCodec, producer: Producer,
                 watched: Sequence[str]) -> None:
        self._app = app
        self._codec = codec
        self._producer = producer
        self._loop = asyncio.get_running_loop()
        self.watched: tuple[str, ...] = tuple(watched)
        """Output and dead-letter topics being watched."""
        self.arrived: list[StoredRecord] = []
        """Every record that arrived on a watched topic so far, in arrival order."""

    async def _poll(self, seconds: float) -> None:
        """Add what arrived on the watched topics to ``arrived``, waiting up to ``seconds``."""
        raise NotImplementedError

    async def _sent(self, delivered: Delivered) -> None:
        """After a record was sent (the in-memory harness hands it to the bridge)."""

    @property
    def codec(self) -> EventCodec:
        """The application's codec, e.g. to build a record by hand."""
        return self._codec

    def topic_for(self, event_type: type[Event]) -> str:
        """The input topic events of this type are sent to (``input_topic_for``)."""
        return input_topic_for(self._app, event_type)

    async def send(self, event: Event, *, topic: str | None = None,
                   correlation_id: str | None = None, causation_id: str | None = None,
                   traceparent: str | None = None) -> Delivered:
        """Encode an event as a contract record and send it; wait for the broker's ack.

        Args:
            event: The event.
            topic: Where to send it (default: the one input topic that takes its type).
            correlation_id: ``correlation-id`` header (default: the event id).
            causation_id: ``causation-id`` header (default: empty).
            traceparent: W3C trace context (default: a new one).

        Returns:
            Where it landed.
        """
        self._same_loop()
        delivered = await send_event(self._producer, self._codec, event,
                                     topic or self.topic_for(type(event)),
                                     correlation_id=correlation_id, causation_id=causation_id,
                                     traceparent=traceparent)
        await self._sent(delivered)
        return delivered

    async def send_bytes(self, topic: str, value: bytes, *, key: str,
                         headers: Sequence[tuple[str, bytes]] = ()) -> Delivered:
        """Send a raw record (e.g. bytes the bridge must dead-letter).

        Args:
            topic: The topic.
            value: The record value, as is.
            key: The record key.
            headers: Headers, as is.

        Returns:
            Where it landed (``event_id`` is empty).
        """
        self._same_loop()
        metadata = await self._producer.send_and_wait(topic, value, key=key.encode(),
                                                      headers=list(headers))
        delivered = Delivered(topic, metadata.partition, metadata.offset, key, "")
        await self._sent(delivered)
        return delivered

    async def wait_for(self, event_type: type[EventT], *, key: str,
                       timeout: float = 30.0) -> EventT:  # noqa: ASYNC109 - a test's deadline
        """The first event of this type with this key on an output topic, decoded.

        Args:
            event_type: The event model to wait for.
            key: Its business key (the record key).
            timeout: Seconds to wait.

        Returns:
            The decoded, validated event.

        Raises:
            AssertionError: None arrived in time; the message lists what did.
        """
        found = await self._first(
            lambda r: r.event_type == event_type.avro_name and r.key == key.encode()
            and not r.topic.endswith(DLQ_SUFFIX),
            timeout, f"{event_type.__name__} ({event_type.avro_name}) with key {key!r}")
        assert found.value is not None
        await self._codec.prepare_decode(found.value)
        event = self._codec.decode(found.value, found.event_type or None)
        assert isinstance(event, event_type), \
            f"{found.coordinates} decoded as {type(event).__name__}, not {event_type.__name__}"
        return event

    async def wait_for_dead_letter(self, topic: str, *, key: str,
                                   timeout: float = 30.0) -> StoredRecord:  # noqa: ASYNC109
        """The first dead letter of a record with this key from this input topic.

        Args:
            topic: The input topic (its ``.dlq`` is watched) or the DLQ itself.
            key: The original record's key.
            timeout: Seconds to wait.

        Returns:
            The dead letter: original value and headers, plus ``reason``
            (``dlq-reason``), ``error`` and ``source``.

        Raises:
            AssertionError: None arrived in time; the message lists what did.
        """
        dlq = topic if topic.endswith(DLQ_SUFFIX) else dlq_topic(topic)
        if dlq not in self.watched:
            raise ValueError(f"{dlq} is not a dead-letter topic of {self._app.name}")
        return await self._first(lambda r: r.topic == dlq and r.key == key.encode(),
                                 timeout, f"a dead letter on {dlq} with key {key!r}")

    async def _first(self, matches: Callable[[StoredRecord], bool], timeout: float,  # noqa: ASYNC109
                     wanted: str) -> StoredRecord:
        self._same_loop()
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for record in self.arrived[checked:]:
                if matches(record):
                    return record
            checked = len(self.arrived)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(self._nothing_came(wanted, timeout))
            await self._poll(min(left, 0.2))

    def _nothing_came(self, wanted: str, timeout: float) -> str:
        lines = [f"  {r.coordinates} key={(r.key or b'').decode(errors='replace')!r} "
                 f"event-type={r.event_type or '-'}"
                 + (f" dlq-reason={r.reason}" if r.reason else "")
                 for r in self.arrived[-_LISTED:]]
        more = len(self.arrived) - len(lines)
        return (f"no {wanted} within {timeout:g} s on {', '.join(self.watched)}; "
                f"{len(self.arrived)} record(s) arrived since watching began"
                + (f" ({more} earlier not listed)" if more > 0 else "")
                + (":\n" + "\n".join(lines) if lines else ""))

    def _same_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "relayflow_kafka was opened in another event loop than this test's: run "
                "tests that use the relayflow fixtures in the session loop "
                '(asyncio_default_test_loop_scope = "session", or '
                '@pytest.mark.asyncio(loop_scope="session"))')


class AppKafka(AppTopics):
    """Sends an application's events to a real Kafka and watches its output and dead-letter topics.

    Build it with ``app_kafka`` (or take the ``relayflow_kafka`` fixture); it
    sees records that arrive after it was opened, not the topics' history.

    Args:
        app: The application under test.
        codec: The application's codec (with the schema registry, if any).
        producer: A started producer.
        consumer: A started consumer assigned to the watched topics' partitions.
        watched: The watched topics.
        blobs: The claim-check store, to fetch the value of an outcome that went by
            claim check.
    """

    def __init__(self, app: Application, codec: EventCodec, producer: AIOKafkaProducer,
                 consumer: AIOKafkaConsumer, watched: Sequence[str], *,
                 blobs: BlobStore | None = None) -> None:
        super().__init__(app, codec, producer, watched)
        self._consumer = consumer
        self._blobs = blobs

    async def _poll(self, seconds: float) -> None:
        batch = await self._consumer.getmany(timeout_ms=int(seconds * 1000) or 1)
        for tp, records in batch.items():
            # An outcome that went by claim check arrives with the value it names.
            self.arrived += [await asyncio.to_thread(resolved_if_found, found, self._blobs)
                             if found.header(CLAIM_CHECK_KEY) else found
                             for found in (stored(tp, r) for r in records)]


def watched_topics(app: Application) -> list[str]:
    """What a test watches: output topics and dead-letter topics (not inputs, not parked keys)."""
    return [t.name for t in app.all_topics() if not t.inbound and not t.compacted]


@asynccontextmanager
async def app_kafka(settings: Settings, app: Application) -> AsyncIterator[AppKafka]:
    """An ``AppKafka`` for ``app``, watching its output and dead-letter topics from now on.

    The topics must exist (``relayflow.testing.stacks.ensure_app_topics``).

    Args:
        settings: Where Kafka (and the schema registry, if any) is.
        app: The application under test.

    Yields:
        The open ``AppKafka``; its clients close afterwards.
    """
    kafka = kafka_clients(settings)
    watched = watched_topics(app)
    partitions: list[TopicPartition] = await partitions_of(kafka, watched)
    missing = sorted(set(watched) - {tp.topic for tp in partitions})
    if missing:
        raise RuntimeError(f"topics of {app.name} missing: {missing} (create app.all_topics())")
    codec = event_codec(settings, app)
    async with kafka.started_producer() as producer, \
            kafka.started_consumer(enable_auto_commit=False) as consumer:
        consumer.assign(partitions)
        await consumer.seek_to_end()
        for tp in partitions:
            await consumer.position(tp)  # fixes "the end" now, not at the first poll
        yield AppKafka(app, codec, producer, consumer, watched, blobs=blob_store(settings))
