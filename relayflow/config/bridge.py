"""Bridge settings: how it consumes and hands records to Temporal, and what input it refuses.

The composition root copies them into the bridge's own ``bridge.config.BridgeConfig``;
the defaults here are the bridge's (a unit test keeps them equal).
"""

from __future__ import annotations

from pydantic import Field

from relayflow.config.base import EnvSettings

__all__ = ["MIN_HEADER_BYTES", "MIN_HEADER_COUNT", "TEMPORAL_PAYLOAD_LIMIT", "BridgeSettings",
           "LimitsSettings"]

_MIB = 1024 * 1024

TEMPORAL_PAYLOAD_LIMIT = 2 * _MIB
"""Temporal's default payload limit (``limit.blobSize.error``), the highest ``max_payload_bytes``:
Temporal refuses larger arguments (equals ``bridge.commands.TEMPORAL_PAYLOAD_LIMIT``)."""

MIN_HEADER_COUNT = 9
"""Lowest ``max_header_count``: the contract's six headers plus the three of a DLQ replay."""
MIN_HEADER_BYTES = 2048
"""Lowest ``max_header_bytes``: room for those nine at their longest (ids of 200 characters)."""


class BridgeSettings(EnvSettings):
    """Bridge: batches, concurrency, held signals, shutdown, parked keys.

    Attributes:
        bridge_batch_size: Most records the bridge fetches and commits as one batch.
            A batch ends with its slowest records in flight, so larger batches lose
            less throughput at their edges (BENCHMARKS.md); a crash redelivers at
            most one batch.
        bridge_signal_hold_seconds: How long the bridge holds a signal for a
            workflow that does not exist yet (retrying) before dead-lettering it.
        bridge_shutdown_seconds: On SIGTERM, how long the bridge waits for the
            Temporal calls in flight before it abandons them (uncommitted).
        bridge_temporal_call_seconds: Bound on one call of the bridge to Temporal
            (a start, a signal, a cancel, a describe; an update is bounded by
            its route's ``reply_within``). A call that timed out counts as
            Temporal unavailable: the record is retried with backoff, which is
            safe because every command is idempotent. At most 120, so that a
            fetch's last calls end well within Kafka's poll interval.
        bridge_park_keys: Park the key of a dead-lettered record, so later records
            of that key go to the DLQ too (``parked``) until released or replayed.
        bridge_concurrency: Key groups of a batch the bridge processes at once.
        bridge_session_timeout_seconds: A bridge whose heartbeats to its consumer
            group stopped for this long (it was killed, or its link to Kafka
            hangs) is dropped from the group, and only then are its partitions
            given to the other bridges (Kafka's ``session.timeout.ms``; the
            bridge heartbeats every third of it, at most every 3 s). Shorter
            notices a dead bridge sooner, and drops a live one whose event loop
            stalls that long. It must lie within the brokers'
            ``group.min.session.timeout.ms`` and ``group.max.session.timeout.ms``
            (6 s and 30 min by default), or the bridge cannot join its group.
    """

    bridge_batch_size: int = 2000
    bridge_signal_hold_seconds: float = 300.0
    bridge_shutdown_seconds: float = Field(default=15.0, gt=0)
    bridge_temporal_call_seconds: float = Field(default=10.0, gt=0, le=120)
    bridge_park_keys: bool = True
    bridge_concurrency: int = 64
    bridge_session_timeout_seconds: float = Field(default=10.0, ge=1.0, le=1800.0)


class LimitsSettings(EnvSettings):
    """Limits: the largest records the bridge decodes; larger ones are dead-lettered.

    Attributes:
        max_payload_bytes: Largest record value the bridge accepts; larger ones
            are dead-lettered as ``oversize``. At most ``TEMPORAL_PAYLOAD_LIMIT``
            (2 MiB), Temporal refusing larger arguments, unless the claim
            check is on (``claim_check_dir``). The bridge also measures
            the event as Temporal will see it (converted to JSON, through the
            payload codec) and dead-letters it as ``oversize`` when that is over
            Temporal's limit, naming both sizes.
        max_header_count: Most headers a record may carry; records with more are
            dead-lettered as ``bad-header`` before their value is decoded. At
            least ``MIN_HEADER_COUNT``.
        max_header_bytes: Most bytes a record's header names and values may
            total (UTF-8); larger ones are dead-lettered as ``bad-header``
            before their value is decoded. At least ``MIN_HEADER_BYTES``.
        max_fetch_bytes: Most bytes, as stored (compressed), one fetch of a
            consumer asks the brokers for across its partitions (Kafka's
            ``fetch.max.bytes``). A broker still returns one record batch
            larger than this (up to its ``message.max.bytes``) so that
            consumption progresses, and the client decompresses each batch
            whole: this bounds what a fetch costs before decompression, not
            after (docs/concepts/dead-letters.md).
        max_partition_fetch_bytes: Most bytes, as stored, one fetch asks for
            from one partition (Kafka's ``max.partition.fetch.bytes``), with
            the same one-batch exception.
    """

    max_payload_bytes: int = Field(default=512 * 1024, gt=0)
    max_header_count: int = Field(default=64, ge=MIN_HEADER_COUNT)
    max_header_bytes: int = Field(default=16 * 1024, ge=MIN_HEADER_BYTES)
    max_fetch_bytes: int = Field(default=8 * _MIB, gt=0)
    max_partition_fetch_bytes: int = Field(default=_MIB, gt=0)
