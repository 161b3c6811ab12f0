"""The one place that builds Kafka clients.

Every Kafka client relayflow runs is built here: the bridge's FastStream
broker and parked-keys follower, its dead-letter producer, the worker's
outcome producer, admin clients, and the operator tools' readers. Connection
options (today the bootstrap servers; security settings belong here too)
are therefore decided once, and a client built anywhere else is a bug.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from relayflow.settings import Settings

__all__ = ["KafkaClients"]

T = TypeVar("T")

_DURABLE = {"acks": "all", "enable_idempotence": True}
"""Producer defaults: acknowledged by every in-sync replica, no duplicates on retry."""


class KafkaClients:
    """Builds Kafka clients connected as the settings say.

    Implements the bridge's ``KafkaClientFactory``. Clients come back not
    started (the caller owns them); the ``started_*`` context managers start
    them and close them afterwards.

    Args:
        settings: Where Kafka is.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def connection(self) -> dict[str, Any]:
        """The connection options every aiokafka client gets."""
        return {"bootstrap_servers": self._settings.kafka_bootstrap_servers}

    def broker(self, **options: Any) -> KafkaBroker:
        """A FastStream broker (the bridge's consumer)."""
        return KafkaBroker(self._settings.kafka_bootstrap_servers, **options)

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        """A consumer of ``topics`` (none: assign partitions yourself)."""
        return AIOKafkaConsumer(*topics, **self.connection(), **options)

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """A producer; ``acks="all"`` and idempotence unless ``options`` say otherwise."""
        return AIOKafkaProducer(**self.connection(), **(_DURABLE | options))

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        """An admin client."""
        return AIOKafkaAdminClient(**self.connection(), **options)

    def started_producer(self, **options: Any) -> AbstractAsyncContextManager[AIOKafkaProducer]:
        """A started producer (see ``producer``), stopped afterwards."""
        producer = self.producer(**options)
        return _started(producer, producer.stop)

    def started_consumer(self, *topics: str,
                         **options: Any) -> AbstractAsyncContextManager[AIOKafkaConsumer]:
        """A started consumer (see ``consumer``), stopped afterwards."""
        consumer = self.consumer(*topics, **options)
        return _started(consumer, consumer.stop)

    def started_admin(self, **options: Any) -> AbstractAsyncContextManager[AIOKafkaAdminClient]:
        """A started admin client, closed afterwards."""
        admin = self.admin(**options)
        return _started(admin, admin.close)


@asynccontextmanager
async def _started(client: T, close: Callable[[], Awaitable[object]]) -> AsyncIterator[T]:
    await client.start()  # type: ignore[attr-defined]  # every aiokafka client has start()
    try:
        yield client
    finally:
        await close()
