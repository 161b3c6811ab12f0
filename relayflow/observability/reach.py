"""Whether a process's Kafka client still reaches the cluster: for readiness and a gauge.

aiokafka retries an unreachable broker without end and says so only in its
log: a consumer keeps its assignment through an outage, and a producer with
nothing to send does not notice one at all. So bridge and worker ask: every
``REACH_INTERVAL_S`` one metadata request naming no topic (the answer is the
broker list, a few bytes), over the connections of the producer the process
already has (the bridge's dead-letter producer, the worker's outcome
producer), hence with its addresses and security settings. A broker that
answers within ``ASK_TIMEOUT_S`` reached; anything else (refused, reset,
timed out, no broker known) did not.

``KafkaReach.unreachable_for`` is what readiness reads (``monitoring``) and
``relayflow_kafka_reachable{service}`` is what Prometheus scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol

from aiokafka.errors import NodeNotReadyError
from aiokafka.protocol.metadata import MetadataRequest

__all__ = ["ASK_TIMEOUT_S", "REACH_INTERVAL_S", "Ask", "KafkaReach", "Settable", "asking"]

log = logging.getLogger(__name__)

REACH_INTERVAL_S: Final = 2.0
"""Seconds between two asks of the cluster."""

ASK_TIMEOUT_S: Final = 2.0
"""Seconds a broker has to answer an ask (a black-holed link hangs instead of failing)."""


class Settable(Protocol):
    """A gauge (or a stand-in that records nothing): ``set`` is all ``KafkaReach`` uses."""

    def set(self, value: float) -> None:
        """Set the value."""


Ask = Callable[[], Awaitable[object]]
"""One request to the cluster: returns when a broker answered, raises when none did."""


def asking(client: Any) -> Ask:
    """Ask through ``client`` (a started producer's ``AIOKafkaClient``): metadata of no topic."""
    async def ask() -> object:
        node = client.get_random_node()  # None: no broker known (metadata lost)
        if node is None:
            raise NodeNotReadyError("no broker known")
        return await client.send(node, MetadataRequest([]))

    return ask


class KafkaReach:
    """How long a process's Kafka client has not reached the cluster, kept up to date.

    Args:
        ask: One request to the cluster (``asking(producer.client)``).
        gauge: Set to 1 while the cluster answers, 0 while it does not.
        service: Who asks (``bridge``, ``worker``), for the log.
        timeout: Seconds an ask may take before it counts as unanswered.
        clock: Monotonic seconds (tests give their own).
    """

    def __init__(self, ask: Ask, gauge: Settable, service: str, *,
                 timeout: float = ASK_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ask = ask
        self._timeout = timeout
        self._gauge = gauge
        self._service = service
        self._clock = clock
        # The client was started, so the cluster answered just now.
        self._last_reached = clock()
        self._reachable = True
        gauge.set(1)

    async def ask(self) -> bool:
        """Ask the cluster once and record the answer; True when a broker answered."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._ask()
        except Exception as error:  # noqa: BLE001 - any failure to answer is no answer
            if self._reachable:
                log.warning("%s: Kafka unreachable (%s); not ready after the grace "
                            "(RELAYFLOW_READY_OUTAGE_GRACE_SECONDS)", self._service,
                            type(error).__name__)
            self._reachable = False
            self._gauge.set(0)
            return False
        if not self._reachable:
            log.warning("%s: Kafka reachable again after %.0fs", self._service,
                        self._clock() - self._last_reached)
        self._last_reached = self._clock()
        self._reachable = True
        self._gauge.set(1)
        return True

    def unreachable_for(self) -> float | None:
        """Seconds since the cluster last answered, if the last ask failed; None if it answered."""
        return None if self._reachable else self._clock() - self._last_reached

    @contextlib.asynccontextmanager
    async def watching(self, interval: float = REACH_INTERVAL_S) -> AsyncIterator[KafkaReach]:
        """Ask every ``interval`` seconds while the block runs (before the client stops)."""
        async def watch() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.ask()

        task = asyncio.create_task(watch(), name=f"{self._service}-kafka-reach")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
