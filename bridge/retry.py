"""Retrying what may work later: capped exponential backoff, health per dependency, deadlines.

Used by the consumer for every transient failure (Temporal, the schema
registry, the dead-letter and parked-keys writes) and by the composition root
while it waits for Temporal to come up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from bridge.consumed import ConsumedRecord, where
from bridge.metrics import BridgeMetrics

__all__ = ["Backoff", "Deadline", "Health"]

log = logging.getLogger("bridge.consumer")  # the records' log, where operators look


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter.

    Attributes:
        initial: First delay, seconds.
        maximum: Cap, seconds.
        multiplier: Growth per consecutive failure.
    """

    initial: float = 0.2
    maximum: float = 30.0
    multiplier: float = 2.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1-based)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** max(0, failures - 1))
        # Jitter spreads the retries of many bridges (and key groups) after a shared outage.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - not cryptographic


class Health:
    """Availability of one dependency, logged once per change.

    Args:
        name: What it is, for the log (``Temporal``, ``dead-letter topic``).
        dependency: Its ``dependency`` label (``bridge.metrics.DEPENDENCIES``).
        metrics: Counts retries and outages, and whether it is up.

    Attributes:
        name: As given.
        dependency: As given.
        failures: Consecutive transient failures; 0 while it is up.
    """

    def __init__(self, name: str, dependency: str = "",
                 metrics: BridgeMetrics | None = None) -> None:
        self.name = name
        self.failures = 0
        self._since = 0.0
        self.dependency = dependency
        self._metrics = metrics
        self.recovered = asyncio.Event()
        """Set by a success after failures: retries waiting out their backoff go at once."""

    @property
    def degraded(self) -> bool:
        """True between a transient failure and the next success."""
        return self.failures > 0

    @property
    def outage_seconds(self) -> float:
        """How long the outage going on now has held records back; 0 when there is none."""
        return time.monotonic() - self._since if self.failures else 0.0

    def failed(self, record: ConsumedRecord, error: BaseException) -> int:
        """Count a transient failure; returns the number of consecutive failures."""
        if self._metrics is not None:
            self._metrics.dependency_retries.labels(self.dependency).inc()
        if not self.failures:
            self._since = time.monotonic()
            self.recovered.clear()
            if self._metrics is not None:
                self._metrics.dependency_outages.labels(self.dependency).inc()
                self._metrics.dependency_up.labels(self.dependency).set(0)
            log.warning("%s unavailable (at %s: %s); pausing consumption, retrying with backoff",
                        self.name, where(record), error)
        else:
            log.debug("%s still unavailable at %s: %s", self.name, where(record), error)
        self.failures += 1
        return self.failures

    def succeeded(self) -> None:
        """Record a success; logs the recovery once."""
        if self.failures:
            if self._metrics is not None:
                self._metrics.dependency_up.labels(self.dependency).set(1)
            log.warning("%s available again after %d failed attempts over %.1fs",
                        self.name, self.failures, time.monotonic() - self._since)
            self.failures = 0
            self.recovered.set()


class Deadline:
    """When a fetch must stop starting work: its time budget spent, or shutdown.

    Args:
        budget: Seconds from now; None for no time limit.
        stopping: Set when shutdown begins.
    """

    def __init__(self, budget: float | None, stopping: asyncio.Event) -> None:
        self._at = None if budget is None else time.monotonic() + budget
        self._stopping = stopping

    def expired(self) -> bool:
        """True once the budget is spent or shutdown began."""
        return self._stopping.is_set() or (self._at is not None and time.monotonic() >= self._at)

    async def sleep(self, delay: float, wake: asyncio.Event | None = None) -> bool:
        """Wait ``delay`` seconds, or until ``wake`` is set; False when the fetch must stop.

        Without waiting it out, too, when the delay would outlast the fetch's budget.
        """
        if self.expired() or (self._at is not None and time.monotonic() + delay >= self._at):
            return False
        waits = [asyncio.ensure_future(event.wait()) for event in (self._stopping, wake) if event]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return not self._stopping.is_set()
