"""The worker's Prometheus metrics: outcomes published, their latency, batch items.

The composition root builds one ``WorkerMetrics`` on the registry its HTTP
endpoint serves and hands it to the outcome publisher and the batch
activities; code that gets none counts into a private registry nobody reads.
Counting happens in activities, never in workflow code (a replay would count
twice), and only where the store says an item was new, so retries count once.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BATCH_DONE", "BATCH_FAILED", "WorkerMetrics"]

BATCH_DONE = "done"
"""``result`` label of batch items processed."""
BATCH_FAILED = "failed"
"""``result`` label of batch items that failed for good."""


class WorkerMetrics:
    """The worker's metrics on one registry.

    Args:
        registry: Where they are registered; default a registry of their own.

    Attributes:
        registry: The registry.
        outcomes_published: ``relayflow_outcomes_published_total{topic,event_type}``.
        outcome_publish_seconds: ``relayflow_outcome_publish_seconds{topic}``: from
            sending an outcome to the broker's acknowledgement.
        batch_items: ``relayflow_batch_items_total{result}``, ``done`` or ``failed``.
        kafka_failing_since: ``time.monotonic()`` of the first failed publish of
            the failures going on now; None while publishing works (readiness).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.outcomes_published = Counter(
            "relayflow_outcomes_published", "Outcome events the broker acknowledged.",
            ["topic", "event_type"], registry=self.registry)
        self.outcome_publish_seconds = Histogram(
            "relayflow_outcome_publish_seconds",
            "Seconds from sending an outcome event to the broker's acknowledgement.",
            ["topic"], registry=self.registry)
        self.batch_items = Counter(
            "relayflow_batch_items", "Batch items finished, by result (done or failed).",
            ["result"], registry=self.registry)
        for result in (BATCH_DONE, BATCH_FAILED):
            self.batch_items.labels(result)  # both series exist from the start, at 0
        self.kafka_failing_since: float | None = None

    def publish_failed(self) -> None:
        """An outcome could not be published (Temporal retries the activity)."""
        if self.kafka_failing_since is None:
            self.kafka_failing_since = time.monotonic()

    def published(self, topic: str, event_type: str, seconds: float) -> None:
        """An outcome was acknowledged after ``seconds``."""
        self.kafka_failing_since = None
        self.outcomes_published.labels(topic, event_type).inc()
        self.outcome_publish_seconds.labels(topic).observe(seconds)
